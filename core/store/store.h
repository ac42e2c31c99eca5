/*
 * store.h -- the object-store contract: one interface over file://,
 * s3:// and http(s):// (FORMAT.md 1, issue "core read path" point 2).
 *
 * A store is created for one prefix URL and serves any URL of the same
 * scheme (and, for s3://, any bucket). Operations take full URLs:
 *   file:///abs/dir/obj   s3://bucket/key   https://host/path
 * A plain path ("/data/snap" or "./snap") is accepted as file://.
 *
 * What this module owns: connections (a pool of reused curl easy handles),
 * credentials and signing (AWS SigV4 with x-amz-content-sha256 and session
 * tokens), retries (exponential backoff with full jitter on 5xx, 429,
 * timeouts and resets, bounded in attempts and total time; Retry-After is
 * honoured), hedged ranged GETs (tail latency, store_set_hedge()),
 * multipart uploads of large s3:// objects, and request counters.
 * What it never knows: manifests, shards, SQLite.
 *
 * Errors: SF_EHTTP_403/404/412/416 are distinct; other statuses are
 * SF_EHTTP; connection trouble is SF_ENET; exhausted budgets SF_ETIMEDOUT.
 * A missing file:// object is SF_EHTTP_404 too, so callers treat every
 * backend alike. Messages name the URL and status, never a secret.
 *
 * Thread safety: every function may be called concurrently on one store.
 */
#ifndef SF_STORE_H
#define SF_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "shardyfs.h"

struct store;

/* What a response said about the object. etag is as the server sent it,
 * quotes included ("" when the backend has none: file:// synthesises one
 * from size and mtime). size is the full object size (from Content-Length
 * of a whole GET/HEAD or the total of Content-Range). */
struct store_info {
	uint64_t size;
	char etag[136];
	int64_t mtime; /* seconds since the epoch, 0 if unknown */
};

/* Counters (monotonic; read without locks via atomics). */
struct store_stats {
	uint64_t get_requests;   /* whole-object GETs */
	uint64_t range_requests; /* ranged GETs */
	uint64_t head_requests;
	uint64_t list_requests;
	uint64_t put_requests;
	uint64_t bytes_in;       /* body bytes received */
	uint64_t bytes_out;      /* body bytes sent */
	uint64_t retries;
	uint64_t hedged;         /* ranged GETs re-sent because they were slow */
	uint64_t failures;       /* requests that ended in an error */
	uint64_t bytes_get;      /* bytes_in of whole GETs */
	uint64_t bytes_range;    /* bytes_in of ranged GETs */
	uint64_t bytes_other;    /* bytes_in of LIST, HEAD, PUT answers */
};

/* Per-request knobs for ranged reads (issue "range VFS" point 6). */
struct store_range_opts {
	const char *if_match;  /* pin to this ETag (412 -> SF_EHTTP_412) */
	long deadline_ms;      /* 0 = the store's request timeout */
	int hedge;             /* allow a hedged re-send when much slower than usual */
};

/*
 * Creates a store for `prefix_url` with connection settings from `opt`
 * (NULL = defaults + environment). Credentials resolve in the order:
 * explicit options, environment (AWS_* then S3_* names), AWS_PROFILE with
 * ~/.aws/credentials and ~/.aws/config, EC2 instance metadata (IMDSv2);
 * anonymous only with opt->no_sign_request. Credentials are resolved
 * lazily on the first signed request. On success *out is owned by the
 * caller (store_close()).
 */
int store_open(struct store **out, const char *prefix_url,
	       const struct sf_options *opt, char *err, size_t errlen);
void store_close(struct store *st);

/* Whole GET. *data (caller frees with free()) gets the body, NUL-terminated
 * for convenience (the NUL is not counted in *len). Bodies larger than
 * max_bytes fail with SF_ETOOBIG. info is optional. */
int store_get(struct store *st, const char *url, size_t max_bytes,
	      uint8_t **data, size_t *len, struct store_info *info, char *err,
	      size_t errlen);

/* Ranged GET of [off, off+len) into dst. A range that runs past the end is
 * cut short (*got < len); a range starting at or past the end gives
 * SF_EHTTP_416. info (optional) gets the total size and ETag. */
int store_get_range(struct store *st, const char *url, uint64_t off,
		    size_t len, const struct store_range_opts *ro,
		    uint8_t *dst, size_t *got, struct store_info *info,
		    char *err, size_t errlen);

/* Whole GET streamed into the open file descriptor fd (from its current
 * offset). For large objects (download mode). if_match optional. A body
 * longer than max_bytes (0 = no cap) stops the transfer with SF_ETOOBIG,
 * so a hostile server cannot fill the disk. */
int store_get_to_fd(struct store *st, const char *url, int fd,
		    uint64_t max_bytes, const char *if_match,
		    struct store_info *info, char *err, size_t errlen);

int store_head(struct store *st, const char *url, struct store_info *info,
	       char *err, size_t errlen);

/* Lists keys under url_prefix (a full URL, usually ending in '/'). With a
 * delimiter, common prefixes are reported once with is_prefix = 1. `name`
 * is a full URL. Pagination is handled inside. The callback returns 0 to go
 * on, non-zero to stop (that value is returned). */
typedef int (*store_list_cb)(void *ctx, const char *name, int is_prefix);
int store_list(struct store *st, const char *url_prefix,
	       const char *delimiter, store_list_cb cb, void *ctx, char *err,
	       size_t errlen);

/* PUT of a buffer or a whole file. info (optional) receives the new ETag.
 * file:// writes a temp file then renames it into place. */
int store_put(struct store *st, const char *url, const void *data,
	      size_t len, const char *content_type, struct store_info *info,
	      char *err, size_t errlen);
int store_put_file(struct store *st, const char *url, const char *path,
		   const char *content_type, struct store_info *info,
		   char *err, size_t errlen);

/* Creates a bucket (s3:// only; for tests and demos). Existing is 0. */
int store_create_bucket(struct store *st, const char *bucket, char *err,
			size_t errlen);

void store_stats(struct store *st, struct store_stats *out);

/* The scheme of a URL: "file", "s3", "http", "https", or NULL. */
const char *store_url_scheme(const char *url);

/*
 * Joins base and a relative path with exactly one '/' between them.
 * Returns a malloc'd string (caller frees) or NULL on ENOMEM.
 */
char *store_url_join(const char *base, const char *rel);

/* Normalises a prefix: plain paths become file:// absolute URLs, trailing
 * slashes are removed. Returns malloc'd string or NULL. */
char *store_url_normalize(const char *prefix);

/* ---- additions (internal knobs, mainly for tests and benchmarks) ---- */

/* Sets the S3 LIST page size (max-keys, 1..1000; 0 = server default).
 * The environment variable SF_STORE_LIST_PAGE_SIZE sets it at open. */
void store_set_list_page_size(struct store *st, int n);

/* Caps the pages one S3 LIST may walk (n <= 0 restores the default of
 * 100000, i.e. up to 10^8 keys at 1000 a page; also
 * SF_STORE_LIST_MAX_PAGES at open). A listing that would need more
 * fails with SF_ETOOBIG, so a server that keeps sending truncated pages
 * cannot keep store_list() busy forever. A continuation token that
 * comes back (after any number of pages) fails with SF_EHTTP. Call
 * right after store_open(). */
void store_set_list_max_pages(struct store *st, long n);

/* Sets the retry backoff: the first ceiling and the largest ceiling of the
 * full-jitter exponential backoff, in ms (defaults 100 and 5000; also
 * SF_STORE_BACKOFF_BASE_MS / SF_STORE_BACKOFF_CAP_MS at open). Not
 * thread-safe against requests in flight: call right after store_open(). */
void store_set_backoff(struct store *st, long base_ms, long cap_ms);

/* The local filesystem path a file:// URL ("file:///a/b", "file://
 * localhost/a/b") or a plain path ("/a/b", "./a") names: a pointer into
 * url (borrowed, valid as long as url). NULL for any other scheme, for
 * NULL or "". No percent-decoding, as the file:// backend. */
const char *store_local_path(const char *url);

/*
 * Hedged ranged GETs (store_range_opts.hedge). A ranged GET of at most
 * 1 MiB that has not finished after the hedge delay is sent again on a
 * fresh connection; the first answer wins and the other is cancelled.
 * The delay is max(floor_ms, 3 x the p90 of recent small ranged GETs),
 * or max(floor_ms, cold_ms) until enough samples exist (defaults 20 and
 * 250 ms; also SF_STORE_HEDGE_FLOOR_MS / SF_STORE_HEDGE_COLD_MS at
 * open). Hedges are kept to about 5% of requests after a burst of 10.
 * Values <= 0 keep the current setting. Call right after store_open().
 */
void store_set_hedge(struct store *st, long floor_ms, long cold_ms);
/* The hedge delay a request starting now would get, in ms. */
long store_hedge_delay_ms(struct store *st);

/*
 * s3:// PUTs (store_put, store_put_file) larger than threshold bytes use
 * a multipart upload with parts of part_size bytes (defaults 64 MiB and
 * 16 MiB; SF_STORE_MULTIPART_THRESHOLD / SF_STORE_MULTIPART_PART_SIZE at
 * open). The part size grows when needed to stay within 10000 parts.
 * Values of 0 keep the current setting. S3 refuses parts below 5 MiB
 * (except the last) when completing; smaller sizes are accepted here
 * only so that tests can provoke that failure. Call right after
 * store_open().
 */
void store_set_multipart(struct store *st, uint64_t threshold,
			 uint64_t part_size);

#endif
