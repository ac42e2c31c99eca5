/*
 * sfvfs.h -- the range-read SQLite VFS: SQLite reads a remote shard page by
 * page through the object store (core/store/store.h), with one LRU page
 * cache shared by every shard of a reader, the FORMAT.md section 7 sidecar,
 * single-flight fetches and background prefetch.
 *
 * What this module knows: the store interface, SQLite's file format (page
 * size, B-tree page headers, overflow chains) and the sidecar format.
 * What it must never know: manifests, routing, snapshots, FUSE.
 *
 * Objects:
 *   struct sfv_cache  one per reader: the page cache under a hard byte
 *                     budget (that also bounds in-flight and prefetched
 *                     bytes) and the prefetch workers.
 *   struct sfv_db     one remote shard.db: its URL, pinned ETag, size, page
 *                     size and (optional) validated sidecar. Any number of
 *                     sqlite3 connections may be opened on it.
 *
 * Errors: SQLite only sees SQLITE_IOERR_*; the real cause (SF_EHTTP_412
 * when the object changed under its ETag, SF_ENET, ...) is kept per thread
 * and read with sfv_last_error() right after a failed sqlite3 call.
 *
 * Thread safety: all functions are thread-safe; one sqlite3 connection is
 * used by one thread at a time (callers pool connections).
 */
#ifndef SF_SFVFS_H
#define SF_SFVFS_H

#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>

struct store;
struct sfv_cache;
struct sfv_db;

#define SFV_DEFAULT_BUDGET (256ull * 1024 * 1024)

/* Creates a page cache with a hard budget in bytes (0 = default) and a
 * pool of `prefetch_threads` workers (0 = no prefetch). Owned by the caller
 * (sfv_cache_free(), after every sfv_db on it is closed). */
int sfv_cache_new(struct sfv_cache **out, uint64_t budget_bytes,
		  int prefetch_threads, char *err, size_t errlen);
void sfv_cache_free(struct sfv_cache *c);

struct sfv_open_spec {
	struct store *store;      /* borrowed; outlives the sfv_db */
	struct sfv_cache *cache;  /* borrowed; outlives the sfv_db */
	const char *db_url;       /* full URL of shard.db (copied) */
	const char *sidecar_url;  /* full URL of shard.sidecar, or NULL */
	uint64_t size_hint;       /* db_bytes from the manifest; 0 = unknown */
	long deadline_ms;         /* per ranged GET; 0 = 30 s (added field) */
};

/*
 * Opens a remote database: with a sidecar, one GET of the sidecar (its
 * db_tag gives the ETag to pin; the first ranged read of shard.db confirms
 * it); without, one ranged GET of the first page(s), whose Content-Range
 * and ETag give size and identity. No HEAD requests. A sidecar that fails
 * any FORMAT.md section 7 rule is logged and ignored. *out is owned by the
 * caller (sfv_db_close()).
 */
int sfv_db_open(struct sfv_db **out, const struct sfv_open_spec *spec,
		char *err, size_t errlen);

/* Opens a read-only, immutable sqlite3 connection on the database through
 * the VFS (registering it on first use). The caller closes it with
 * sqlite3_close() before sfv_db_close(). */
int sfv_db_connect(struct sfv_db *db, sqlite3 **out, char *err,
		   size_t errlen);

void sfv_db_close(struct sfv_db *db);

/* The ETag reads are pinned to, and whether a sidecar is in use. */
const char *sfv_db_etag(const struct sfv_db *db);
int sfv_db_has_sidecar(const struct sfv_db *db);
uint64_t sfv_db_size(const struct sfv_db *db);

/*
 * Process-wide SQLite tuning for concurrent lookups: turns SQLite's memory
 * statistics off (their mutex is taken on every allocation). Effective
 * only before SQLite is initialised, so callers should call it before any
 * other sqlite3_* use (the library: first thing in sf_reader_open(); it is
 * also tried when the VFS registers). Idempotent and thread-safe; changes
 * nothing else (sqlite3_memory_used() then reports 0).
 */
void sfv_sqlite_setup(void);

/* The SF_E* code (0 if none) and message of this thread's last VFS I/O
 * failure; cleared by sfv_clear_error(). */
int sfv_last_error(char *err, size_t errlen);
void sfv_clear_error(void);

struct sfv_stats {
	uint64_t cache_hits, cache_misses;
	uint64_t cache_bytes, cache_budget, pinned_bytes;
	uint64_t sidecar_hits;
	uint64_t prefetch_issued, prefetch_hits, prefetch_wasted, prefetch_shed;
	uint64_t inflight_fetches, inflight_bytes;
	uint64_t fetches, fetched_bytes;
};
void sfv_cache_stats(struct sfv_cache *c, struct sfv_stats *out);

/*
 * Sidecar writer (for the builder): builds a FORMAT.md section 7 v8 sidecar
 * for the SQLite file at db_path, bound to db_tag (the ETag the store gave
 * shard.db; "" for unbound). Besides what shardyfusion stores it holds the
 * overflow pages of interior index cells (sidecar.h, SIDECAR_BUILD_ICHAINS),
 * so that opening a shard costs exactly its GET. *out (malloc'd, caller
 * frees) gets the bytes.
 */
int sfv_sidecar_build(const char *db_path, const char *db_tag, uint8_t **out,
		      size_t *outlen, char *err, size_t errlen);

#endif
