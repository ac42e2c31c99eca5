/*
 * shard.h -- one opened shard database, whatever its access mode.
 *
 * A shard is a read-only SQLite file `kv(k BLOB PRIMARY KEY, v BLOB)`
 * reached either as a whole local copy in the download cache (download
 * mode) or page by page through the range-read VFS (range mode). Above
 * this interface nothing differs: lookups and key iteration run the same
 * SQL on a pooled sqlite3 connection.
 *
 * This module knows shard URLs, the download cache and the VFS; it does not
 * know manifests or routing (the snapshot passes it what it needs).
 *
 * Thread safety: shard_get() and iterators may run concurrently from many
 * threads; each borrows a connection from the shard's pool.
 */
#ifndef SF_SHARD_H
#define SF_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "shardyfs.h"

struct store;
struct sfv_cache;
struct shard;

struct shard_spec {
	uint32_t db_id;
	const char *db_url;        /* shard directory URL (rebased) */
	const char *checkpoint_id; /* may be NULL */
	uint64_t db_bytes;         /* from the manifest; 0 = unknown */
	const char *sidecar_name;  /* NULL = no sidecar */
	enum sf_access_mode mode;  /* DOWNLOAD or RANGE (resolved) */
	struct store *store;       /* borrowed, outlives the shard */
	struct sfv_cache *cache;   /* borrowed (range mode) */
	const char *cache_dir;     /* download cache directory */
};

/* Opens a shard. Download mode fetches shard.db into the cache directory
 * first, except for file:// shards, which are opened in place. *out is
 * owned by the caller (shard_close()). Errors name the shard and its URL. */
int shard_open(struct shard **out, const struct shard_spec *spec, char *err,
	       size_t errlen);
void shard_close(struct shard *sh);

/* Point lookup of stored key bytes. 0 with *value (malloc'd, never NULL)
 * and *vlen; SF_NOTFOUND; or a negative code naming the shard. */
int shard_get(struct shard *sh, const uint8_t *k, size_t klen, void **value,
	      size_t *vlen, char *err, size_t errlen);

/* Key iteration in stored order. The iterator holds one connection. */
struct shard_iter;
int shard_iter_open(struct shard *sh, struct shard_iter **out, char *err,
		    size_t errlen);
int shard_iter_next(struct shard_iter *it, const uint8_t **k, size_t *klen,
		    uint64_t *vlen, char *err, size_t errlen);
void shard_iter_close(struct shard_iter *it);

/* Did opening this shard download shard.db (into the cache)? */
int shard_was_downloaded(const struct shard *sh);

#endif
