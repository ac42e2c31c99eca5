/*
 * shardyfs.h -- the one public header of libshardyfs.
 *
 * libshardyfs reads sharded key-value snapshots written in the shardyfusion
 * layout (N SQLite shards, a SQLite manifest, a `_CURRENT` pointer) from
 * s3://, http(s):// and file:// prefixes. Everything a program needs is here:
 * a reader that pins one snapshot per lookup and refreshes atomically,
 * synchronous, batch and asynchronous lookups, introspection (snapshot info,
 * shard details, health, history, counters), key iteration per shard, and a
 * builder that publishes snapshots in the same layout.
 *
 * Conventions (after libuv and curl):
 *   - Functions return 0 on success or a negative SF_E* code. Lookups return
 *     SF_NOTFOUND (a positive value) when a key is truly absent; errors are
 *     never reported as "not found".
 *   - Functions that can fail take `char *err, size_t errlen`: an optional
 *     caller-owned buffer that receives a one-line, secret-free detail.
 *   - Structs are opaque; only option/info/result structs are visible.
 *   - Memory returned to the caller is freed with sf_free() unless a function
 *     says otherwise. Strings inside info structs are borrowed from the object
 *     they describe and live as long as it does.
 *   - Every function on a reader or snapshot is thread-safe unless it says
 *     otherwise.
 */
#ifndef SHARDYFS_H
#define SHARDYFS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SF_VERSION_MAJOR 0
#define SF_VERSION_MINOR 1
#define SF_VERSION_PATCH 0
#define SF_VERSION_STRING "0.1.0"

#if defined(__GNUC__)
#define SF_EXPORT __attribute__((visibility("default")))
#else
#define SF_EXPORT
#endif

/* ------------------------------------------------------------------ */
/* Result codes                                                        */
/* ------------------------------------------------------------------ */

/* Positive: a lookup found nothing. Not an error. */
#define SF_NOTFOUND 1

/* Negative errno where one fits. */
#define SF_ENOMEM (-12)     /* -ENOMEM */
#define SF_EINVAL (-22)     /* -EINVAL: bad argument or option */
#define SF_EIO (-5)         /* -EIO: local I/O failure */
#define SF_ETIMEDOUT (-110) /* -ETIMEDOUT: deadline or retry budget exhausted */

/* shardyfs' own codes. */
#define SF_EHTTP_403 (-2001)   /* 403: access denied / bad signature */
#define SF_EHTTP_404 (-2002)   /* 404: object does not exist */
#define SF_EHTTP_412 (-2003)   /* 412: object changed under its ETag */
#define SF_EHTTP_416 (-2004)   /* 416: range not satisfiable */
#define SF_EHTTP (-2005)       /* any other unexpected HTTP status */
#define SF_ENET (-2006)        /* connection failure, reset, DNS, TLS */
#define SF_ENOSNAPSHOT (-2007) /* no _CURRENT under the prefix */
#define SF_ECURRENT (-2008)    /* malformed _CURRENT */
#define SF_EMANIFEST (-2009)   /* malformed or invalid manifest */
#define SF_EUNSUPPORTED (-2010)/* valid but unsupported (version, CEL direct) */
#define SF_EKEY (-2011)        /* key does not fit the snapshot's encoding */
#define SF_ECORRUPT (-2012)    /* corrupt shard / integrity failure */
#define SF_ECLOSED (-2013)     /* reader closed */
#define SF_EAUTH (-2014)       /* no usable credentials */
#define SF_ETOOBIG (-2015)     /* object larger than the caller's cap */
#define SF_EURL (-2016)        /* unparseable or unsupported URL */

/* Static, human-readable name of a code ("not found", "HTTP 403", ...). */
SF_EXPORT const char *sf_strerror(int code);

/* Frees memory returned by this library (values, history arrays...). */
SF_EXPORT void sf_free(void *p);

/* ------------------------------------------------------------------ */
/* Keys                                                                */
/* ------------------------------------------------------------------ */

enum sf_key_encoding {
	SF_ENC_U64BE = 0,
	SF_ENC_U32BE = 1,
	SF_ENC_UTF8 = 2,
	SF_ENC_RAW = 3,
};

/* Name ("u64be", ...) of an encoding; "?" for an unknown value. */
SF_EXPORT const char *sf_encoding_name(enum sf_key_encoding enc);
/* Parses an encoding name. Returns 0 or SF_EINVAL. */
SF_EXPORT int sf_encoding_parse(const char *name, enum sf_key_encoding *out);

enum sf_key_type {
	SF_KEY_INT = 0,   /* an integer: routes as 8 little-endian bytes */
	SF_KEY_TEXT = 1,  /* UTF-8 text: routes as its bytes */
	SF_KEY_BYTES = 2, /* raw bytes: routes as themselves */
};

/*
 * A user key, typed as in shardyfusion (routing hashes the key by its type;
 * the stored bytes depend on the snapshot's key encoding, FORMAT.md 4-5).
 * For SF_KEY_INT, `u` holds the value's 64-bit two's-complement bits and
 * `negative` says whether it is below zero. For TEXT/BYTES, `data`/`len`
 * point at caller memory that must stay valid for the call (asynchronous
 * submissions copy it).
 *
 * `token` matters only for snapshots routed by categorical CEL (FORMAT.md
 * 4): the routing token (NUL-terminated text; integers in decimal) whose
 * position in the manifest's routing_values selects the shard. When NULL,
 * the key itself is the token, which is right only when the CEL
 * expression is the key column; for any other expression a lookup without
 * a token fails with SF_EINVAL rather than guess. Asynchronous submissions
 * do not copy the token: it must outlive the submission.
 */
struct sf_key {
	enum sf_key_type type;
	int negative;
	uint64_t u;
	const void *data;
	size_t len;
	const char *token;
};

static inline struct sf_key sf_key_uint(uint64_t v)
{
	struct sf_key k = {SF_KEY_INT, 0, v, NULL, 0, NULL};
	return k;
}
static inline struct sf_key sf_key_int(int64_t v)
{
	struct sf_key k = {SF_KEY_INT, v < 0, (uint64_t)v, NULL, 0, NULL};
	return k;
}
static inline struct sf_key sf_key_text(const char *s, size_t n)
{
	struct sf_key k = {SF_KEY_TEXT, 0, 0, s, n, NULL};
	return k;
}
static inline struct sf_key sf_key_bytes(const void *p, size_t n)
{
	struct sf_key k = {SF_KEY_BYTES, 0, 0, p, n, NULL};
	return k;
}

/*
 * Interprets user-supplied text as a key for a snapshot of encoding `enc`:
 * for u64be/u32be a decimal integer (optional leading '+', no spaces, in
 * range for the encoding) giving SF_KEY_INT; for utf8/raw the bytes
 * themselves as SF_KEY_TEXT/SF_KEY_BYTES (out->data aliases `text`).
 * Returns 0, or SF_EKEY with a message ("abc" is not an integer, 2^40 does
 * not fit u32be).
 */
SF_EXPORT int sf_key_from_text(enum sf_key_encoding enc, const char *text,
			       size_t len, struct sf_key *out, char *err,
			       size_t errlen);

/*
 * Writes the bytes a key is stored as under `enc` (FORMAT.md 5) into `buf`
 * (capacity `cap`) and sets *outlen. A buffer of 8 bytes is enough for the
 * integer encodings; for text/bytes the length is the key's length (a
 * larger key gives SF_EINVAL with *outlen set to the size needed).
 * Returns 0 or SF_EKEY (wrong type or out of range for the encoding).
 */
SF_EXPORT int sf_key_encode(enum sf_key_encoding enc, const struct sf_key *key,
			    uint8_t *buf, size_t cap, size_t *outlen,
			    char *err, size_t errlen);

/* xxh3_64 (seed 0) of the key's canonical bytes (FORMAT.md 4). */
SF_EXPORT uint64_t sf_key_hash(const struct sf_key *key);

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */

enum sf_access_mode {
	SF_ACCESS_AUTO = 0,     /* FORMAT.md 8 thresholds */
	SF_ACCESS_DOWNLOAD = 1, /* whole shard.db into the cache dir */
	SF_ACCESS_RANGE = 2,    /* pages by ranged GET through the VFS */
};

enum sf_addressing {
	SF_ADDR_AUTO = 0,    /* path-style for custom endpoints, else virtual */
	SF_ADDR_PATH = 1,
	SF_ADDR_VIRTUAL = 2,
};

enum sf_log_level {
	SF_LOG_ERROR = 0,
	SF_LOG_WARN = 1,
	SF_LOG_INFO = 2,
	SF_LOG_DEBUG = 3,
};

/* Log sink. Called from any thread; `msg` has no trailing newline. */
typedef void (*sf_log_fn)(void *ctx, enum sf_log_level level, const char *msg);

/*
 * Options for sf_reader_open() and sf_builder_open(). Initialise with
 * sf_options_init(), then set what you need. Every string is borrowed for
 * the duration of the open call only (the library copies it).
 */
struct sf_options {
	/* Object store connection. NULL means "from the environment". */
	const char *endpoint_url;
	const char *region;
	const char *profile;
	const char *access_key_id;
	const char *secret_access_key;
	const char *session_token;
	int no_sign_request;          /* anonymous S3 requests */
	enum sf_addressing addressing;
	long connect_timeout_ms;      /* default 3000 */
	long request_timeout_ms;      /* per attempt; default 30000 */
	int max_attempts;             /* default 5 */
	long retry_budget_ms;         /* total time for retries; default 20000 */

	/* Reading. */
	enum sf_access_mode access_mode;
	const char *cache_dir;        /* download cache; default $XDG_CACHE_HOME/shardyfs or /tmp */
	uint64_t cache_bytes;         /* page-cache budget (range mode); default 256 MiB */
	uint64_t auto_range_shard_bytes; /* default 16 MiB */
	uint64_t auto_range_total_bytes; /* default 2 GiB */
	int use_sidecar;              /* default 1 */
	int threads;                  /* worker threads for multi_get/async; default 4 */
	double staleness_s;           /* health threshold; 0 = never degraded */

	/* Pin an older manifest instead of following _CURRENT (no refresh). */
	const char *manifest_ref;     /* a full manifest URL, or NULL */
	int history_offset;           /* 0 = current; n = n-th older manifest */

	/* Logging. The sink is process-wide: a reader opened with a log_fn
	 * or a non-default level installs it for the whole process (the last
	 * one wins), so log_fn and log_ctx must stay valid while any reader
	 * lives. */
	enum sf_log_level log_level;  /* default SF_LOG_WARN */
	sf_log_fn log_fn;             /* default: stderr */
	void *log_ctx;
};

SF_EXPORT void sf_options_init(struct sf_options *opt);

/* ------------------------------------------------------------------ */
/* Reader and snapshots                                                */
/* ------------------------------------------------------------------ */

struct sf_reader;
struct sf_snapshot;

/*
 * Opens a reader on `prefix` (s3://bucket/path, http(s)://host/path or
 * file:///dir or a plain directory path). Reads `_CURRENT` and the manifest
 * it names (with the cold-start fallback of FORMAT.md 8). Shards are opened
 * lazily. On success *out owns the reader; close it with sf_reader_close().
 * Errors: SF_ENOSNAPSHOT ("no snapshot published at PREFIX"), SF_ECURRENT,
 * SF_EMANIFEST, SF_EUNSUPPORTED, store errors.
 */
SF_EXPORT int sf_reader_open(struct sf_reader **out, const char *prefix,
			     const struct sf_options *opt, char *err,
			     size_t errlen);

/* Closes the reader: waits for submitted asynchronous lookups to complete
 * (so never call it from an sf_*_async callback), then drops the reader.
 * Snapshots still borrowed stay valid until released. Not thread-safe
 * against other calls on the same reader. */
SF_EXPORT void sf_reader_close(struct sf_reader *r);

/*
 * Re-reads `_CURRENT`; if the manifest ref changed, loads and validates the
 * new manifest and swaps it in atomically. On failure the old snapshot keeps
 * serving and the error is recorded for sf_health(). *changed (optional) is
 * set to 1 when a new snapshot was installed. A reader pinned to a manifest
 * never changes.
 */
SF_EXPORT int sf_reader_refresh(struct sf_reader *r, int *changed, char *err,
				size_t errlen);

/* Borrows the current snapshot (never NULL on an open reader). Release it
 * with sf_snapshot_release(). */
SF_EXPORT struct sf_snapshot *sf_reader_acquire(struct sf_reader *r);

/* Takes another reference on a snapshot already held. */
SF_EXPORT struct sf_snapshot *sf_snapshot_retain(struct sf_snapshot *s);

/* Releases a borrowed snapshot; the last release frees it. */
SF_EXPORT void sf_snapshot_release(struct sf_snapshot *s);

/*
 * Opens the manifest at `manifest_ref` (a full URL, rebased like any other)
 * as a read-only snapshot sharing the reader's store, caches and workers,
 * without touching `_CURRENT`. The caller owns one reference.
 */
SF_EXPORT int sf_reader_open_manifest(struct sf_reader *r,
				      const char *manifest_ref,
				      struct sf_snapshot **out, char *err,
				      size_t errlen);

/* A monotonically increasing number, distinct per snapshot a reader has
 * loaded (1 for the first). */
SF_EXPORT uint64_t sf_snapshot_generation(const struct sf_snapshot *s);

/* ------------------------------------------------------------------ */
/* Lookups                                                             */
/* ------------------------------------------------------------------ */

/*
 * Looks `key` up in one snapshot. On 0, *value (owned by the caller, free
 * with sf_free(); never NULL, even for an empty value) and *len are set.
 * Returns SF_NOTFOUND when the key is absent (empty shard, no row, unknown
 * categorical token), SF_EKEY when it does not fit the encoding, or another
 * negative code on any failure.
 */
SF_EXPORT int sf_snapshot_get(struct sf_snapshot *s, const struct sf_key *key,
			      void **value, size_t *len, char *err,
			      size_t errlen);

/* sf_snapshot_get() against the reader's current snapshot. */
SF_EXPORT int sf_get(struct sf_reader *r, const struct sf_key *key,
		     void **value, size_t *len, char *err, size_t errlen);

/* One result of a batch lookup. `value` is owned by the caller (sf_free). */
struct sf_result {
	int status; /* 0, SF_NOTFOUND or a negative code */
	void *value;
	size_t len;
};

/*
 * Looks up n keys against one pinned snapshot: keys are grouped per shard
 * and shards are read in parallel on the reader's workers. results[i]
 * receives the outcome of keys[i]. Returns 0 when every key was answered
 * (found or not found), else a negative status of one of the failed keys
 * (the first to fail in time; the per-key statuses say which failed).
 */
SF_EXPORT int sf_snapshot_multi_get(struct sf_snapshot *s,
				    const struct sf_key *keys, size_t n,
				    struct sf_result *results, char *err,
				    size_t errlen);
SF_EXPORT int sf_multi_get(struct sf_reader *r, const struct sf_key *keys,
			   size_t n, struct sf_result *results, char *err,
			   size_t errlen);

/* ------------------------------------------------------------------ */
/* Asynchronous lookups                                                */
/* ------------------------------------------------------------------ */

/*
 * Callback form: the callback runs on a reader worker thread once, with the
 * results (owned by the callee: free each value with sf_free, the array is
 * freed by the library after the callback returns). Keys are copied at
 * submission, so the caller's buffers may be reused at once.
 */
typedef void (*sf_multi_get_cb)(void *ud, int status,
				struct sf_result *results, size_t n);

SF_EXPORT int sf_get_async(struct sf_reader *r, const struct sf_key *key,
			   sf_multi_get_cb cb, void *ud);
SF_EXPORT int sf_multi_get_async(struct sf_reader *r,
				 const struct sf_key *keys, size_t n,
				 sf_multi_get_cb cb, void *ud);

/*
 * Pollable form: submissions to a completion queue complete into it; its
 * file descriptor becomes readable when completions are waiting (for poll,
 * epoll, or an event loop), and sf_cq_next() takes them without blocking.
 */
struct sf_cq;
struct sf_completion {
	void *ud;                /* as given at submission */
	int status;              /* batch status, as sf_multi_get() */
	struct sf_result *results; /* n results; free with sf_completion_free */
	size_t n;
};

SF_EXPORT int sf_cq_new(struct sf_cq **out);
SF_EXPORT void sf_cq_free(struct sf_cq *cq); /* after all submissions completed */
SF_EXPORT int sf_cq_fd(const struct sf_cq *cq);
SF_EXPORT int sf_cq_submit(struct sf_reader *r, struct sf_cq *cq,
			   const struct sf_key *keys, size_t n, void *ud);
/* Returns 1 and fills *c when a completion was waiting, 0 when none. */
SF_EXPORT int sf_cq_next(struct sf_cq *cq, struct sf_completion *c);
/* Waits up to timeout_ms (-1 = forever) for a completion; 1, 0 on timeout. */
SF_EXPORT int sf_cq_wait(struct sf_cq *cq, struct sf_completion *c,
			 int timeout_ms);
/* Frees the results of a completion (each value and the array). */
SF_EXPORT void sf_completion_free(struct sf_completion *c);

/* ------------------------------------------------------------------ */
/* Introspection                                                       */
/* ------------------------------------------------------------------ */

/* Routes a key: the shard id it belongs to. Returns 0, SF_EKEY, or
 * SF_NOTFOUND for an unknown categorical token. */
SF_EXPORT int sf_snapshot_route(struct sf_snapshot *s, const struct sf_key *key,
				uint32_t *db_id, char *err, size_t errlen);

/* Snapshot-level facts (strings borrowed from the snapshot). */
struct sf_snapshot_info {
	const char *run_id;
	const char *created_at;    /* as in the manifest */
	double created_at_epoch;   /* seconds since the epoch */
	const char *manifest_ref;  /* as named by _CURRENT (not rebased) */
	const char *manifest_url;  /* where it was actually read from */
	const char *s3_prefix;
	const char *strategy;      /* "hash" or "cel" */
	const char *hash_algorithm;
	const char *key_col;
	enum sf_key_encoding key_encoding;
	uint32_t num_dbs;
	uint32_t num_nonempty;
	uint64_t total_rows;
	uint64_t total_bytes;
	int format_version;
	int has_sidecars;
	enum sf_access_mode access_mode; /* resolved mode: DOWNLOAD or RANGE */
	uint64_t generation;
};
SF_EXPORT void sf_snapshot_info(const struct sf_snapshot *s,
				struct sf_snapshot_info *out);

/* One shard (strings borrowed from the snapshot). Empty shards have
 * empty = 1, db_url = NULL and zero counts. */
struct sf_shard_info {
	uint32_t db_id;
	int empty;
	const char *db_url;        /* rebased URL of the shard directory */
	uint64_t row_count;
	uint64_t db_bytes;
	const char *min_key_json;  /* JSON text as in the manifest, or NULL */
	const char *max_key_json;
	const char *checkpoint_id;
	int attempt;
	int opened;                /* shard currently open */
};
/* Returns 0, or SF_EINVAL when db_id >= num_dbs. */
SF_EXPORT int sf_snapshot_shard(const struct sf_snapshot *s, uint32_t db_id,
				struct sf_shard_info *out);

enum sf_health_status {
	SF_HEALTHY = 0,
	SF_DEGRADED = 1,
	SF_UNHEALTHY = 2,
};
struct sf_health {
	enum sf_health_status status;
	double age_s;              /* now - snapshot created_at */
	double since_refresh_s;    /* now - last successful _CURRENT check */
	int last_refresh_error;    /* 0 or the code of the last failed refresh */
	char message[256];         /* why degraded/unhealthy; "" when healthy */
};
/* staleness_s <= 0 uses the reader's option. */
SF_EXPORT int sf_health(struct sf_reader *r, double staleness_s,
			struct sf_health *out);

/* One published manifest, newest first. */
struct sf_history_entry {
	char *manifest_ref;   /* full URL under the reader's prefix */
	char *timestamp;      /* the <TS> of the directory name */
	char *run_id;
	int is_current;       /* the manifest _CURRENT names */
};
/* Lists manifests/ newest first. *out is an array of *n entries; free with
 * sf_history_free(). */
SF_EXPORT int sf_history(struct sf_reader *r, struct sf_history_entry **out,
			 size_t *n, char *err, size_t errlen);
SF_EXPORT void sf_history_free(struct sf_history_entry *h, size_t n);

/* Counters, cumulative since open (monotonic, read without locks). */
struct sf_stats {
	uint64_t lookups, found, notfound, errors;
	uint64_t get_requests, range_requests, head_requests, list_requests,
		put_requests;
	uint64_t bytes_downloaded;    /* all body bytes received, of which: */
	uint64_t bytes_get, bytes_range, bytes_other; /* whole GETs, ranged
					 GETs, LIST/HEAD answers */
	uint64_t retries, hedged_requests;
	uint64_t cache_hits, cache_misses, cache_bytes, cache_budget;
	uint64_t sidecar_hits, prefetch_hits, prefetch_wasted;
	uint64_t inflight_fetches;
	uint64_t shard_opens, downloads;
	uint64_t refreshes, refresh_errors;
	double lookup_p50_us, lookup_p99_us;
};
SF_EXPORT void sf_reader_stats(struct sf_reader *r, struct sf_stats *out);

/* ------------------------------------------------------------------ */
/* Key iteration (per shard, in stored-key order)                      */
/* ------------------------------------------------------------------ */

struct sf_iter;
/* Iterates the keys of one shard of a snapshot (holds a reference on it).
 * Empty shards yield nothing. */
SF_EXPORT int sf_iter_open(struct sf_snapshot *s, uint32_t db_id,
			   struct sf_iter **out, char *err, size_t errlen);
/* Returns 0 with *key and *klen borrowed until the next call, SF_NOTFOUND at
 * the end, or a negative code. *vlen gets the value length. */
SF_EXPORT int sf_iter_next(struct sf_iter *it, const uint8_t **key,
			   size_t *klen, uint64_t *vlen, char *err,
			   size_t errlen);
SF_EXPORT void sf_iter_close(struct sf_iter *it);

/* ------------------------------------------------------------------ */
/* Builder                                                             */
/* ------------------------------------------------------------------ */

struct sf_builder;

struct sf_build_options {
	uint32_t num_dbs;              /* default 1 */
	enum sf_key_encoding key_encoding; /* default u64be */
	int emit_sidecar;              /* default 1 */
	const char *key_col;           /* default "_key" */
	const char *run_id;            /* default: random uuid hex */
	const char *tmp_dir;           /* default $TMPDIR or /tmp */
};
SF_EXPORT void sf_build_options_init(struct sf_build_options *bo);

/* Starts a build of a snapshot under `prefix`; nothing is published until
 * sf_builder_publish(). */
SF_EXPORT int sf_builder_open(struct sf_builder **out, const char *prefix,
			      const struct sf_options *opt,
			      const struct sf_build_options *bo, char *err,
			      size_t errlen);
/* Adds one row (the key must fit the encoding: SF_EKEY otherwise). A key
 * added twice keeps the last value. */
SF_EXPORT int sf_builder_add(struct sf_builder *b, const struct sf_key *key,
			     const void *value, size_t vlen, char *err,
			     size_t errlen);
/* Uploads shards (and sidecars), then the manifest, then `_CURRENT`.
 * *manifest_ref (optional) receives the published manifest URL (sf_free). */
SF_EXPORT int sf_builder_publish(struct sf_builder *b, char **manifest_ref,
				 char *err, size_t errlen);
SF_EXPORT void sf_builder_free(struct sf_builder *b);

#ifdef __cplusplus
}
#endif
#endif /* SHARDYFS_H */
