/*
 * reader.h -- private definitions shared by the reader's files (reader.c:
 * snapshot model, lookups, introspection; async.c: asynchronous forms).
 *
 * Ownership model:
 *   struct sf_reader  refcounted context: options, store, page cache,
 *                     workers. The application's handle holds one
 *                     reference, every snapshot holds one, so borrowed
 *                     snapshots stay usable after sf_reader_close().
 *   struct sf_snapshot refcounted: one validated manifest plus its lazily
 *                     opened shards. The reader's `cur` holds one
 *                     reference; every borrower holds one.
 */
#ifndef SF_READER_H
#define SF_READER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "shardyfs.h"

struct manifest;
struct shard;
struct store;
struct sfv_cache;
struct workers;

#define SF_LAT_BUCKETS 160

struct sf_reader {
	atomic_int refs;
	char *prefix;            /* normalized URL, no trailing '/' */
	struct sf_options opt;   /* strings point into owned copies below */
	char *str_copies[16];
	char *cache_dir;
	struct store *store;
	struct sfv_cache *cache; /* created on first range-mode shard */
	pthread_mutex_t cache_mu;
	struct workers *workers;
	int pinned;              /* opened on a fixed manifest: no refresh */

	pthread_mutex_t mu;      /* protects the fields below */
	struct sf_snapshot *cur;
	int closed;
	double last_check_ok;    /* wall time of the last good _CURRENT read */
	int last_refresh_err;
	char last_refresh_msg[200];

	pthread_cond_t async_cv;    /* signalled when async_pending drops to 0 */
	size_t async_pending;       /* protected by mu */

	pthread_mutex_t refresh_mu; /* serialises refreshes (no I/O under mu) */
	atomic_uint_fast64_t next_gen;

	/* counters */
	atomic_uint_fast64_t n_lookups, n_found, n_notfound, n_errors;
	atomic_uint_fast64_t n_refreshes, n_refresh_errors;
	atomic_uint_fast64_t n_shard_opens, n_downloads;
	atomic_uint_fast64_t lat[SF_LAT_BUCKETS]; /* lookup latency histogram */
};

struct shard_slot {
	pthread_mutex_t mu;      /* serialises opens and retirements */
	/* The open shard, read without the lock (acquire/release). A shard
	 * whose object changed under its ETag is retired: moved to `retired`
	 * (protected by mu) and closed with the snapshot, because lookups in
	 * flight may still hold it; the next lookup opens it afresh. */
	_Atomic(struct shard *) sh;
	struct shard **retired;
	size_t n_retired;
};

struct sf_snapshot {
	atomic_int refs;
	struct sf_reader *r;     /* holds a reference */
	struct manifest *m;
	char *manifest_ref;      /* as named by _CURRENT / the caller */
	char *manifest_url;      /* rebased URL it was read from */
	uint64_t generation;
	enum sf_access_mode mode;
	struct shard_slot *slots; /* m->n_shards, parallel to m->shards */
};

void reader_retain(struct sf_reader *r);
void reader_release(struct sf_reader *r);
/* Async bookkeeping: a submission increments async_pending under mu;
 * reader_async_end() is called when its job is done, and
 * sf_reader_close() waits for the count to reach zero. */
void reader_async_end(struct sf_reader *r);
/* Records a lookup's outcome and latency (seconds) in the counters. */
void reader_count(struct sf_reader *r, int status, double seconds);

#endif
