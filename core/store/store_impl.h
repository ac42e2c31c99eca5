/*
 * store_impl.h -- private contract between store.c (dispatch, counters,
 * URL helpers) and the backends file.c, s3.c and http.c.
 *
 * A struct store holds a copy of the connection options and the counters.
 * Each public store_* call is dispatched on the scheme of its URL (not of
 * the prefix the store was opened with), so one store can follow a
 * manifest that points from file:// to s3:// and back. Backends that need
 * state (the curl pool, S3 credentials) create it lazily through
 * store_http_pool()/store_s3_ctx() under st->mu; file:// is stateless.
 *
 * Backends count their own requests and bytes (one LIST call may be many
 * pages); store.c counts failures.
 *
 * Hedging state (store.c): a ring of the latencies of recent small ranged
 * GETs (lock-free: atomic slots, an atomic write position) from which the
 * hedge delay is max(floor, factor x p90), and a token bucket that keeps
 * hedges to a small share of requests (each hedgeable request earns one
 * token, a hedge costs STORE_HEDGE_COST, the bucket holds at most
 * STORE_HEDGE_BURST hedges' worth and starts full).
 */
#ifndef SF_STORE_IMPL_H
#define SF_STORE_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "err.h"
#include "store.h"

/* Connection settings, copied from struct sf_options at store_open() with
 * defaults filled in. Strings are owned (NULL = not set). */
struct store_conf {
	char *endpoint_url;
	char *region;
	char *profile;
	char *access_key_id;
	char *secret_access_key;
	char *session_token;
	int no_sign_request;
	enum sf_addressing addressing;
	long connect_timeout_ms;
	long request_timeout_ms;
	int max_attempts;
	long retry_budget_ms;
	long backoff_base_ms; /* first backoff ceiling; default 100 */
	long backoff_cap_ms;  /* largest backoff ceiling; default 5000 */
	int list_page_size;   /* max-keys for S3 LIST; 0 = server default */
	long list_max_pages;  /* S3 LIST pages before SF_ETOOBIG; 100000 */
	long hedge_floor_ms;  /* smallest hedge delay; default 20 */
	long hedge_cold_ms;   /* hedge delay before enough samples; 250 */
	int hedge_factor;     /* delay = factor x recent p90; default 3 */
	uint64_t mpu_threshold; /* s3 PUTs above this go multipart; 64 MiB */
	uint64_t mpu_part_size; /* part size of multipart uploads; 16 MiB */
};

#define STORE_LIST_MAX_PAGES 100000L /* default cap of S3 LIST pages */
#define STORE_LAT_RING 64      /* latency samples kept */
#define STORE_LAT_MIN 8        /* samples needed before the p90 is used */
#define STORE_HEDGE_COST 20    /* tokens per hedge: at most ~5% hedged */
#define STORE_HEDGE_BURST 10   /* hedges allowed back to back */

enum store_ctr {
	STORE_CTR_GET,
	STORE_CTR_RANGE,
	STORE_CTR_HEAD,
	STORE_CTR_LIST,
	STORE_CTR_PUT,
	STORE_CTR_BYTES_IN,
	STORE_CTR_BYTES_OUT,
	STORE_CTR_RETRIES,
	STORE_CTR_HEDGED,
	STORE_CTR_FAILURES,
	/* body bytes received, by request kind (sum = STORE_CTR_BYTES_IN) */
	STORE_CTR_BYTES_GET,
	STORE_CTR_BYTES_RANGE,
	STORE_CTR_BYTES_OTHER,
	STORE_NCTR
};

/* Counts n body bytes received by a request of kind `ctr` (a request
 * counter: STORE_CTR_GET, STORE_CTR_RANGE, ...), in the total and in the
 * per-kind counter. */
void store_count_bytes_in(struct store *st, enum store_ctr ctr, uint64_t n);

struct http_pool;
struct s3_ctx;

struct store {
	char *prefix;
	struct store_conf conf;
	_Atomic uint64_t ctr[STORE_NCTR];
	_Atomic uint32_t lat_us[STORE_LAT_RING]; /* recent latencies (us) */
	_Atomic uint64_t lat_n;                  /* samples recorded */
	_Atomic int64_t hedge_tokens;
	/* st->mu protects the lazily created backend states below; it is
	 * never held across network I/O (creating them does none). */
	pthread_mutex_t mu;
	struct http_pool *pool; /* protected by st->mu until set */
	struct s3_ctx *s3;      /* protected by st->mu until set */
};

static inline void store_count(struct store *st, enum store_ctr c, uint64_t n)
{
	atomic_fetch_add_explicit(&st->ctr[c], n, memory_order_relaxed);
}

/* One backend: every operation gets the full URL of its own scheme. */
struct store_ops {
	const char *name;
	int (*get)(struct store *st, const char *url, size_t max_bytes,
		   uint8_t **data, size_t *len, struct store_info *info,
		   char *err, size_t errlen);
	int (*get_range)(struct store *st, const char *url, uint64_t off,
			 size_t len, const struct store_range_opts *ro,
			 uint8_t *dst, size_t *got, struct store_info *info,
			 char *err, size_t errlen);
	int (*get_to_fd)(struct store *st, const char *url, int fd,
			 uint64_t max_bytes, const char *if_match,
			 struct store_info *info, char *err, size_t errlen);
	int (*head)(struct store *st, const char *url, struct store_info *info,
		    char *err, size_t errlen);
	int (*list)(struct store *st, const char *url_prefix,
		    const char *delimiter, store_list_cb cb, void *ctx,
		    char *err, size_t errlen);
	int (*put)(struct store *st, const char *url, const void *data,
		   size_t len, const char *content_type,
		   struct store_info *info, char *err, size_t errlen);
	int (*put_file)(struct store *st, const char *url, const char *path,
			const char *content_type, struct store_info *info,
			char *err, size_t errlen);
	int (*create_bucket)(struct store *st, const char *bucket, char *err,
			     size_t errlen);
};

extern const struct store_ops file_ops;
extern const struct store_ops s3_ops;
extern const struct store_ops http_ops;

/* Lazily created shared states (0 or SF_ENOMEM/SF_EIO). */
int store_http_pool(struct store *st, struct http_pool **out, char *err,
		    size_t errlen);
int store_s3_ctx(struct store *st, struct s3_ctx **out, char *err,
		 size_t errlen);

/* Destructors used by store_close(). */
void http_pool_free(struct http_pool *p);
void s3_ctx_free(struct s3_ctx *s3);
int s3_ctx_new(struct store *st, struct s3_ctx **out, char *err,
	       size_t errlen);
int http_pool_new(struct store *st, struct http_pool **out, char *err,
		  size_t errlen);

/* Hedging (store.c): record the latency of a small ranged GET that got
 * an answer; earn a token for a hedgeable request; take a hedge's worth
 * of tokens (1 if granted, 0 if hedging is over its share). */
void store_hedge_record(struct store *st, double ms);
void store_hedge_credit(struct store *st);
int store_hedge_take(struct store *st);

/* Maps a local errno to an SF_E* code (ENOENT -> SF_EHTTP_404). */
int store_errno_code(int e);

/* Case-insensitive scheme test: "s3" for "S3://x". */
int store_url_has_scheme(const char *url, const char *scheme);

#endif
