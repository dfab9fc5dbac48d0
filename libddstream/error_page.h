/* error_page.h — the readable text of an HTML error page. */
#ifndef DDSTREAM_ERROR_PAGE_H
#define DDSTREAM_ERROR_PAGE_H

#include <stddef.h>

#include "text_sanitize.h"

/* Nonzero if s[0..n) looks like HTML: starts with '<', or has "<html" in its first KiB. */
int dds_looks_like_html(const char *s, size_t n);

/* Append the page's <title> to t, else (no title, or an empty one) its visible text. */
void dds_error_page_put_text(dds_text *t, const char *s, size_t n);

#endif
