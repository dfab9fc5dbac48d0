/*
 * error_body.c — a human-readable message from the body of a failed request: Datadog's error
 * JSON ({"errors": [...]}, {"error": ...}, JSON:API items), an HTML page, or plain text.
 */
#include "error_body.h"

#include <string.h>

#include "cJSON.h"
#include "error_page.h"
#include "json_check.h"
#include "json_tree.h"

/* Text of one error item given as an object: "title: detail", or whichever is there. */
static int put_error_object(dds_text *t, const cJSON *obj) {
    const cJSON *title = dds_json_member(obj, "title");
    const cJSON *detail = dds_json_member(obj, "detail");
    const char *ts = cJSON_IsString(title) && title->valuestring[0] ? title->valuestring : NULL;
    const char *ds = cJSON_IsString(detail) && detail->valuestring[0] ? detail->valuestring : NULL;
    if (ts != NULL && ds != NULL && strcmp(ts, ds) == 0) ds = NULL;
    if (ts != NULL || ds != NULL) {
        if (ts != NULL) dds_text_puts(t, ts);
        if (ts != NULL && ds != NULL) dds_text_puts(t, ":");
        dds_text_space(t);
        if (ds != NULL) dds_text_puts(t, ds);
        return 1;
    }
    const cJSON *m = dds_json_member(obj, "message");
    if (!cJSON_IsString(m) || m->valuestring[0] == '\0') m = dds_json_member(obj, "error");
    if (cJSON_IsString(m) && m->valuestring[0] != '\0') {
        dds_text_puts(t, m->valuestring);
        return 1;
    }
    return 0;
}

/* Items of an "errors" array joined with "; ". Returns the number of items written. */
static int put_error_list(dds_text *t, const cJSON *list) {
    int n = 0;
    for (const cJSON *it = list->child; it != NULL && !t->full; it = it->next) {
        size_t before = t->len;
        int pending = t->pending_space;
        if (n > 0) {
            dds_text_puts(t, ";");
            dds_text_space(t);
        }
        int wrote = 0;
        if (cJSON_IsString(it) && it->valuestring[0] != '\0') {
            dds_text_puts(t, it->valuestring);
            wrote = 1;
        } else if (cJSON_IsObject(it)) {
            wrote = put_error_object(t, it);
        }
        if (wrote) n++;
        else if (!t->full) {
            t->len = before; /* undo the separator of an item that said nothing */
            t->pending_space = pending;
        }
    }
    return n;
}

int dds_error_body_put_json(dds_text *t, const cJSON *root) {
    if (cJSON_IsArray(root)) return put_error_list(t, root);
    if (!cJSON_IsObject(root)) return 0;
    const cJSON *errors = dds_json_member(root, "errors");
    if (cJSON_IsArray(errors) && put_error_list(t, errors) > 0) return 1;
    if (cJSON_IsString(errors) && errors->valuestring[0] != '\0') {
        dds_text_puts(t, errors->valuestring);
        return 1;
    }
    const cJSON *error = dds_json_member(root, "error");
    if (cJSON_IsString(error) && error->valuestring[0] != '\0') {
        dds_text_puts(t, error->valuestring);
        return 1;
    }
    if (cJSON_IsObject(error) && put_error_object(t, error)) return 1;
    return put_error_object(t, root);
}

void dds_parse_error_body(const char *body, size_t len, char *out, size_t out_cap) {
    if (out == NULL || out_cap == 0) return;
    out[0] = '\0';
    if (body == NULL || len == 0) return;
    dds_text t;
    dds_text_init(&t, out, out_cap);
    size_t start = dds_json_skip_bom_ws(body, len);
    if (start == len) return;
    const char *s = body + start;
    size_t n = len - start;
    if (s[0] == '{' || s[0] == '[') {
        /* Trailing bytes are tolerated here: an error body is read for a message, not for data.
         * A string holding U+0000 would be cut there, hiding the rest: such a body is quoted as
         * it is (below), "\u0000" and all. */
        dds_json_check check;
        cJSON *root =
            dds_json_nul_string_path(body, len, &check) ? NULL : cJSON_ParseWithLength(body, len);
        if (root != NULL) {
            int found = dds_error_body_put_json(&t, root);
            cJSON_Delete(root);
            if (found && t.len > 0) {
                dds_text_finish(&t);
                return;
            }
            dds_text_init(&t, out, out_cap);
        }
    } else if (dds_looks_like_html(s, n)) {
        dds_error_page_put_text(&t, s, n);
        if (t.len > 0) {
            dds_text_finish(&t);
            return;
        }
        dds_text_init(&t, out, out_cap);
    }
    dds_text_put(&t, s, n);
    dds_text_finish(&t);
}
