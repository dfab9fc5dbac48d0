/* json_tree.c — small readers of a parsed cJSON tree, shared by the response and error-body parsers. */
#include "json_tree.h"

#include <string.h>

/* First dds_json_member called key (duplicates: the first one wins, as in most JSON readers). */
const cJSON *dds_json_member(const cJSON *obj, const char *key) {
    for (const cJSON *c = obj->child; c != NULL; c = c->next)
        if (c->string != NULL && strcmp(c->string, key) == 0) return c;
    return NULL;
}

const char *dds_json_type_name(const cJSON *v) {
    if (v == NULL) return "nothing";
    switch (v->type & 0xFF) {
    case cJSON_False:
    case cJSON_True: return "boolean";
    case cJSON_NULL: return "null";
    case cJSON_Number: return "number";
    case cJSON_String: return "string";
    case cJSON_Array: return "array";
    case cJSON_Object: return "object";
    default: return "an invalid value";
    }
}
