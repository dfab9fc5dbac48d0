/* json_tree.h — small readers of a parsed cJSON tree. */
#ifndef DDSTREAM_JSON_TREE_H
#define DDSTREAM_JSON_TREE_H

#include "cJSON.h"

/* First member of obj called key (duplicates: the first one wins, as in most JSON readers), or
 * NULL. obj must be an object. */
const cJSON *dds_json_member(const cJSON *obj, const char *key);

/* "string", "number", "null"...: what a message says a value was; "nothing" for NULL. */
const char *dds_json_type_name(const cJSON *v);

#endif
