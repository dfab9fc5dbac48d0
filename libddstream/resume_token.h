/* resume_token.h — the resume token's format: "dds1-<fingerprint, 16 hex>-<chunk index>".
 *
 * The fingerprint covers everything that gives a chunk index its meaning: the query (the stream's
 * identity, config.h: one query, or the query list with the statistics and distribution metrics),
 * the granularity and the plan's aligned bounds and step. Not the keys, the site or the base URL: the
 * same data may be read through another proxy or with a rotated key. Pure and thread-safe. */
#ifndef DDSTREAM_RESUME_TOKEN_H
#define DDSTREAM_RESUME_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "ddstream.h"
#include "plan.h"

/* The smallest buffer a token is written into (a token is at most 5 + 16 + 1 + 20 bytes + NUL). */
#define DDS_RESUME_TOKEN_CAP 64

/* The fingerprint of (query, granularity, plan): equal for plans whose chunk indexes agree. */
uint64_t dds_resume_fingerprint(const char *query, int64_t granularity, const dds_plan *plan);

/* Write the token of chunk index of that plan into buf (cap >= DDS_RESUME_TOKEN_CAP). */
void dds_resume_token_write(const char *query, int64_t granularity, const dds_plan *plan,
                            size_t index, char *buf, size_t cap);

/* Parse a token strictly (lower-case hex, no sign, no spaces, no overflow, nothing after it).
 * Returns 0 and sets *fingerprint and *index, or -1. */
int dds_resume_token_parse(const char *token, uint64_t *fingerprint, uint64_t *index);

/*
 * The chunk a token says to resume at, checked against the plan it is used with: refused
 * (DDSTREAM_E_CONFIG, err says why) when it is not a token, was made for another query, range,
 * granularity or chunk size, or points past the plan's last chunk.
 */
ddstream_status dds_resume_token_read(const char *token, const char *query, int64_t granularity,
                                      const dds_plan *plan, size_t *index, ddstream_error *err);

#endif
