/*
 * sidecar.h -- the FORMAT.md section 7 page-cache sidecar (format v8):
 * a hostile-input parser that validates every rule before a single page is
 * served, page/slice lookup for the VFS, the chain table for overflow
 * prefetch, and the writer used by the builder (sfv_sidecar_build()).
 *
 * What this module knows: the sidecar layout, SQLite's B-tree page header
 * (to strip/rebuild the unallocated gap) and overflow-chain layout (to
 * build the chain table). What it never knows: stores, caches, URLs.
 *
 * Memory: a parsed sidecar keeps the decompressed body and rebuilds pages
 * on demand (an insert of zeros at the gap), so its pinned footprint is
 * about body_size. sidecar_mem() reports it.
 *
 * Thread safety: a parsed sidecar is immutable; every read function may be
 * called concurrently.
 */
#ifndef SF_SIDECAR_H
#define SF_SIDECAR_H

#include <stddef.h>
#include <stdint.h>

#define SIDECAR_MAGIC "SQPC"
#define SIDECAR_VERSION 8
#define SIDECAR_PREFIX 18 /* bytes before db_tag */

struct sidecar;

/* What the caller knows about the live database when parsing. */
struct sidecar_check {
	const char *live_etag;  /* NULL: do not check the binding (but an
				   empty db_tag is still refused) */
	uint32_t db_page_size;  /* 0: unknown (checked against the sidecar's
				   own page 1 when it holds one) */
	uint64_t max_body;      /* cap on body_size; 0 = 256 MiB */
};

/*
 * Parses and validates a whole sidecar file (buf, len: borrowed). Every
 * FORMAT.md 7 rejection rule is checked; on failure returns SF_ECORRUPT (or
 * SF_ENOMEM / SF_ETOOBIG) with the broken rule in err and *out untouched.
 * On success *out is owned by the caller (sidecar_free()).
 */
int sidecar_parse(struct sidecar **out, const uint8_t *buf, size_t len,
		  const struct sidecar_check *chk, char *err, size_t errlen);
void sidecar_free(struct sidecar *sc);

uint32_t sidecar_page_size(const struct sidecar *sc);
/* The db_tag (NUL-terminated, borrowed; "" when unbound). */
const char *sidecar_db_tag(const struct sidecar *sc);
uint32_t sidecar_npages(const struct sidecar *sc);
uint32_t sidecar_nchains(const struct sidecar *sc);
/* Page number of the i-th stored page (ascending). */
uint32_t sidecar_pgno(const struct sidecar *sc, uint32_t i);
/* Bytes held by the parsed sidecar (body + tables). */
size_t sidecar_mem(const struct sidecar *sc);

/* Index of page pgno among the stored pages, or -1. */
long sidecar_find(const struct sidecar *sc, uint32_t pgno);
/* Copies bytes [off, off+len) of the rebuilt i-th page into dst
 * (off + len <= page_size, checked by the caller). */
void sidecar_read(const struct sidecar *sc, uint32_t i, uint32_t off,
		  uint32_t len, void *dst);

/* The unallocated gap of the i-th page: bytes [*at, *at + *len) of the
 * rebuilt page are zeros standing for whatever the database holds there
 * (*len is 0 for pages stored whole). */
void sidecar_gap(const struct sidecar *sc, uint32_t i, uint32_t *at,
		 uint32_t *len);

/* The overflow chain whose head is `head`: *pages (borrowed, head first)
 * and *n. Returns 0, or -1 when head is not a chain head. */
int sidecar_chain(const struct sidecar *sc, uint32_t head,
		  const uint32_t **pages, uint32_t *n);

/* The overflow chain whose pages are contiguous and end at page `last`:
 * its *head and length *n (pages *head .. last). Returns 0, or -1 when no
 * such chain ends there. */
int sidecar_chain_ending(const struct sidecar *sc, uint32_t last,
			 uint32_t *head, uint32_t *n);

/*
 * Lists the overflow chains the cells of one B-tree page point to: for each
 * cell with overflow, heads[k] is its first overflow page and npages[k] the
 * chain length its payload size implies. page holds ps bytes (page number
 * pgno, usable bytes per page `usable`). Returns how many were found (at
 * most max); 0 for a page that is not a B-tree page or is malformed.
 */
uint32_t sidecar_page_chains(const uint8_t *page, uint32_t pgno, uint32_t ps,
			     uint32_t usable, uint32_t *heads,
			     uint32_t *npages, uint32_t max);

/*
 * Writer. Builds the uncompressed body for the SQLite image db[0:dblen]
 * (borrowed): every schema page (the sqlite_schema tree with its overflow
 * pages), every interior page of every other B-tree, and the chain table
 * of every overflow chain: byte for byte what shardyfusion writes. *body
 * (malloc'd, caller frees) and *bodylen get the result.
 */
int sidecar_build_body(const uint8_t *db, size_t dblen, uint8_t **body,
		       size_t *bodylen, char *err, size_t errlen);

/*
 * The same with flags. SIDECAR_BUILD_ICHAINS also stores the overflow
 * pages of interior index cells: SQLite reads the whole payload of every
 * cell its binary search compares, and interior cells sit on many search
 * paths, so without them the first lookups of a shard cost extra GETs.
 * Chains of at most 16 pages, at most 16 MiB of them, shallowest cells
 * first. Still a valid v8 sidecar (the page table may hold any page).
 * sfv_sidecar_build() uses it.
 */
#define SIDECAR_BUILD_ICHAINS 1u
int sidecar_build_body_ex(const uint8_t *db, size_t dblen, unsigned flags,
			  uint8_t **body, size_t *bodylen, char *err,
			  size_t errlen);
/* Wraps a body in the prefix + zstd frame (with content checksum). */
int sidecar_wrap(const uint8_t *body, size_t bodylen, uint32_t page_size,
		 const char *db_tag, uint8_t **out, size_t *outlen, char *err,
		 size_t errlen);

#endif
