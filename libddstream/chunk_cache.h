/* chunk_cache.h — the persistent chunk cache: a request's answer kept on disk once its chunk has
 * settled, so that asking again costs no request.
 *
 * Keyed by the request as sent — base URL, method, path and query string, request body — within
 * a scope that is a one-way hash of the API key, so anything that changes an answer changes the
 * key, and one organisation's answers are never served to another. Entries (cache_entry.h) are
 * written to a temporary file in their folder and renamed into place, so a reader sees a whole
 * entry or none; every read checks the entry, and a bad one is a miss (logged at WARN) that the
 * fetch replaces. See include/ddstream.h (cache_dir) for the layout users see. */
#ifndef DDSTREAM_CHUNK_CACHE_H
#define DDSTREAM_CHUNK_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ddstream.h"
#include "fetch.h"
#include "log.h"
#include "sha256.h"

/* After this many writes by one cache, the directory is scanned again even when the running
 * estimate of its size is under the bound: other processes write into it too. */
#define DDS_CACHE_RESCAN_WRITES 256

typedef struct dds_chunk_cache dds_chunk_cache;

/*
 * The cache of dir for requests to base_url with api_key (hashed at once, never kept). Creates
 * dir (and its parents, mode 0700) and the key's scope folder. max_bytes and settle_s as
 * resolved by the settings (> 0). log is borrowed. NULL with err set (DDSTREAM_E_CONFIG naming
 * dir and the reason) when the folder cannot be made or written.
 */
dds_chunk_cache *dds_chunk_cache_new(const char *dir, const char *base_url, const char *api_key,
                                     int64_t max_bytes, int64_t settle_s, dds_log *log,
                                     ddstream_error *err);

/* The stream's cache from its settings: *out NULL (and DDSTREAM_OK) when cache_dir is unset. */
DDSTREAM_NODISCARD ddstream_status dds_chunk_cache_open(const dds_settings *s, dds_log *log,
                                                        dds_chunk_cache **out, ddstream_error *err);
void dds_chunk_cache_free(dds_chunk_cache *c);

/* The key of a request as sent: method ("GET"), path and query string, body (NULL for none). */
void dds_chunk_cache_key(const dds_chunk_cache *c, const char *method, const char *path_query,
                         const void *body, size_t body_len, uint8_t key[DDS_SHA256_BYTES]);

/* Nonzero when data ending at end_s (epoch s, exclusive) has settled: end_s <= now - settle. */
int dds_chunk_cache_settled(const dds_chunk_cache *c, int64_t end_s, int64_t now_s);

/*
 * The stored answer for key: 1 with *body (malloc'd, NUL-terminated, writable) and *len, and the
 * entry touched (its modification time is its last use); 0 on a miss. A missing entry is a
 * silent miss; a bad one (truncated, corrupt, another format version) a miss logged at WARN.
 * An answer over max_len is a miss.
 */
int dds_chunk_cache_lookup(dds_chunk_cache *c, const uint8_t key[DDS_SHA256_BYTES], size_t max_len,
                           char **body, size_t *len);

/* Store body[0..len) under key (temporary file + rename), then prune when due. Failures are
 * logged at WARN and otherwise ignored: the answer was fetched, only its copy is lost. */
void dds_chunk_cache_store(dds_chunk_cache *c, const uint8_t key[DDS_SHA256_BYTES],
                           const char *body, size_t len);

/*
 * A request's read through the cache: dds_http_get_read of path (path and query string) when body
 * is NULL, else dds_http_post_read of body[0..body_len) to path (both keys; send_app_key unused).
 * When data_end_s has settled, a stored answer is handed to read without any request (no gate,
 * no budget), else the request is made and its answer stored once read accepts it. The key is
 * the method, path and body (dds_chunk_cache_key), so a GET and a POST never share an entry. An
 * unsettled chunk goes straight to the network. c NULL: no cache.
 */
DDSTREAM_NODISCARD ddstream_status dds_cache_read(dds_chunk_cache *c, dds_http *h, const char *path,
                                                  const char *body, size_t body_len,
                                                  int send_app_key, int64_t data_end_s,
                                                  dds_body_reader read, void *arg,
                                                  ddstream_error *err);

/* dds_cache_read that also says where the answer came from: *from_cache 1 when read was handed a
 * stored answer and accepted it (no request sent), else 0. For callers that report their hits
 * (ddstream_scalar's table). */
DDSTREAM_NODISCARD ddstream_status dds_cache_read_counted(dds_chunk_cache *c, dds_http *h,
                                                          const char *path, const char *body,
                                                          size_t body_len, int send_app_key,
                                                          int64_t data_end_s, dds_body_reader read,
                                                          void *arg, int *from_cache,
                                                          ddstream_error *err);

#endif
