/*
 * sfvfs_int.h -- private hooks of the range VFS for its unit tests and
 * benchmarks (not part of the sfvfs.h contract).
 */
#ifndef SF_SFVFS_INT_H
#define SF_SFVFS_INT_H

#include <stddef.h>
#include <stdint.h>

struct sfv_db;

/*
 * Reads [off, off+len) of the remote database through the cache, the
 * sidecar and single-flight fetches, exactly as xRead does (without a
 * connection's readahead state). *got gets the bytes that exist (the rest
 * of buf is zero-filled). Returns 0 or a negative SF_E* code.
 */
int sfv_db_read(struct sfv_db *db, uint64_t off, size_t len, void *buf,
		size_t *got, char *err, size_t errlen);

/* Page size of the database. */
uint32_t sfv_db_page_size(const struct sfv_db *db);

#endif
