/* query.c — building the four-rollup query. */
#include "query.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *dds_rollup_query(const char *query, int64_t g) {
    static const char *const methods[4] = {"avg", "min", "max", "sum"};
    size_t qlen = strlen(query);
    size_t cap = 4 * (qlen + 40) + 1;
    char *out = malloc(cap);
    if (!out) return NULL;
    size_t used = 0;
    for (int i = 0; i < 4; i++) {
        int n = snprintf(out + used, cap - used, "%s%s.rollup(%s,%" PRId64 ")", i ? "," : "", query,
                         methods[i], g);
        if (n < 0 || (size_t)n >= cap - used) {
            free(out);
            return NULL;
        }
        used += (size_t)n;
    }
    return out;
}
