/*
 * sidecar.c -- FORMAT.md section 7 sidecar (v8): parser, page rebuild and
 * writer.
 *
 * Why it exists: a range reader that opens a shard needs the schema and
 * every interior B-tree page before it can reach a single leaf. The sidecar
 * ships all of them in one compressed GET, so a cold lookup costs one
 * ranged GET of shard.db. Its chain table lists every overflow chain, so
 * the VFS fetches a chain whole (and the chains next to a leaf with it);
 * our writer also stores the chains of interior index cells, which SQLite
 * reads whenever a search path compares them.
 *
 * Trust: a sidecar is hostile input whose only job is to save requests, so
 * the parser refuses it outright on the first broken rule and the caller
 * falls back to plain page fetches; a sidecar can cost performance, never
 * correctness. Every length and offset is checked with 64-bit arithmetic
 * before it is used; body_size is capped before anything is allocated; the
 * zstd frame must be exactly one frame carrying a content checksum.
 *
 * Layout of this file:
 *   1. little helpers (LE/BE integers, SQLite varints)
 *   2. the gap rule shared by parser and writer (btree_gap())
 *   3. the parser and page/slice/chain lookup
 *   4. the writer: a bounded walk of every B-tree of the image that
 *      collects schema pages, interior pages (with the overflow pages of
 *      interior index cells) and overflow chains, then the
 *      body serialisation and the zstd wrapper.
 *
 * Omissions: pointer-map pages (auto_vacuum) and freelist pages are never
 * stored: a reader does not need them to find a row.
 */
#include "sidecar.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "err.h"
#include "sfvfs.h"

#define SIDECAR_DEFAULT_MAX_BODY (256ull * 1024 * 1024)

struct sidecar {
	uint32_t page_size;
	uint32_t n;          /* stored pages */
	uint32_t nchains;
	uint32_t *pgno;      /* [n], ascending */
	uint32_t *off;       /* [n + 1], into blob */
	uint32_t *gap_at;    /* [n]: cpa_end, or page_size when no gap */
	uint32_t *gap_len;   /* [n] */
	uint32_t *chead;     /* [nchains], ascending */
	uint32_t *coff;      /* [nchains + 1] */
	uint32_t *cpages;    /* [coff[nchains]] */
	uint64_t *ctail;     /* [ntails]: last page << 32 | chain index of
				every contiguous chain, ascending */
	uint32_t ntails;
	uint8_t *body;       /* decompressed body (owns blob) */
	const uint8_t *blob; /* points into body */
	size_t body_size;
	size_t mem;
	char tag[256];
};

/* ---- 1. helpers ------------------------------------------------------ */

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_be16(const uint8_t *p)
{
	return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* SQLite varint at p (at most end - p bytes). Returns its length, or 0
 * when it runs past end. */
static size_t get_varint(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
	uint64_t x = 0;
	size_t i;

	for (i = 0; i < 9; i++) {
		if (p + i >= end)
			return 0;
		if (i == 8) {
			*v = (x << 8) | p[i];
			return 9;
		}
		x = (x << 7) | (p[i] & 0x7f);
		if (!(p[i] & 0x80)) {
			*v = x;
			return i + 1;
		}
	}
	return 0;
}

static int is_btree_type(uint8_t t)
{
	return t == 2 || t == 5 || t == 10 || t == 13;
}

/* ---- 2. the gap rule ------------------------------------------------- */

/*
 * For a page whose first `have` bytes are at p (page number pgno, size
 * page_size): if it is a B-tree page, *at = cpa_end and *cca = start of
 * the cell content area; returns 1. Returns 0 for any other page type, -1
 * when the header fields are inconsistent (cca < cpa_end or beyond the
 * page) or the header itself is not within `have`.
 */
static int btree_gap(const uint8_t *p, size_t have, uint32_t pgno,
		     uint32_t page_size, uint32_t *at, uint32_t *cca)
{
	uint32_t base = pgno == 1 ? 100 : 0, hdr, ncells, c, end;

	if (have <= base || !is_btree_type(p[base]))
		return 0;
	hdr = (p[base] == 2 || p[base] == 5) ? 12 : 8;
	if (have < base + 8)
		return -1;
	ncells = get_be16(p + base + 3);
	c = get_be16(p + base + 5);
	if (c == 0)
		c = 65536;
	end = base + hdr + 2 * ncells;
	if (end > c || c > page_size)
		return -1;
	*at = end;
	*cca = c;
	return 1;
}

/* ---- 3. parser ------------------------------------------------------- */

void sidecar_free(struct sidecar *sc)
{
	if (!sc)
		return;
	free(sc->pgno);
	free(sc->off);
	free(sc->gap_at);
	free(sc->gap_len);
	free(sc->chead);
	free(sc->coff);
	free(sc->cpages);
	free(sc->ctail);
	free(sc->body);
	free(sc);
}

static uint32_t *u32_array(uint64_t n)
{
	return malloc(n ? n * sizeof(uint32_t) : 1);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Decodes the body held by sc (body, body_size) and checks every rule. */
static int parse_body(struct sidecar *sc, char *err, size_t errlen)
{
	const uint8_t *b = sc->body;
	uint64_t sz = sc->body_size, pos = 0, n, c, m, bloblen, i;

	if (sz < 4)
		return sf_errf(err, errlen, SF_ECORRUPT, "sidecar: body too short");
	n = get_le32(b);
	pos = 4;
	/* n page numbers, n + 1 offsets, the chain count */
	if (pos + 4 * n + 4 * (n + 1) + 4 > sz)
		return sf_errf(err, errlen, SF_ECORRUPT,
			       "sidecar: page table (%llu pages) overruns body",
			       (unsigned long long)n);
	sc->n = (uint32_t)n;
	sc->pgno = u32_array(n);
	sc->off = u32_array(n + 1);
	sc->gap_at = u32_array(n);
	sc->gap_len = u32_array(n);
	if (!sc->pgno || !sc->off || !sc->gap_at || !sc->gap_len)
		return sf_errf(err, errlen, SF_ENOMEM, "sidecar: out of memory");
	for (i = 0; i < n; i++) {
		sc->pgno[i] = get_le32(b + pos + 4 * i);
		if (sc->pgno[i] == 0 || (i > 0 && sc->pgno[i] <= sc->pgno[i - 1]))
			return sf_errf(err, errlen, SF_ECORRUPT,
				       "sidecar: page numbers not strictly "
				       "ascending at entry %llu",
				       (unsigned long long)i);
	}
	pos += 4 * n;
	for (i = 0; i <= n; i++) {
		sc->off[i] = get_le32(b + pos + 4 * i);
		if ((i == 0 && sc->off[0] != 0) ||
		    (i > 0 && sc->off[i] < sc->off[i - 1]))
			return sf_errf(err, errlen, SF_ECORRUPT,
				       "sidecar: page offsets not 0-based and "
				       "non-decreasing at entry %llu",
				       (unsigned long long)i);
	}
	pos += 4 * (n + 1);

	c = get_le32(b + pos);
	pos += 4;
	if (pos + 4 * c + 4 * (c + 1) > sz)
		return sf_errf(err, errlen, SF_ECORRUPT,
			       "sidecar: chain table (%llu chains) overruns body",
			       (unsigned long long)c);
	sc->nchains = (uint32_t)c;
	sc->chead = u32_array(c);
	sc->coff = u32_array(c + 1);
	if (!sc->chead || !sc->coff)
		return sf_errf(err, errlen, SF_ENOMEM, "sidecar: out of memory");
	for (i = 0; i < c; i++) {
		sc->chead[i] = get_le32(b + pos + 4 * i);
		if (sc->chead[i] == 0 ||
		    (i > 0 && sc->chead[i] <= sc->chead[i - 1]))
			return sf_errf(err, errlen, SF_ECORRUPT,
				       "sidecar: chain heads not strictly "
				       "ascending at entry %llu",
				       (unsigned long long)i);
	}
	pos += 4 * c;
	for (i = 0; i <= c; i++) {
		sc->coff[i] = get_le32(b + pos + 4 * i);
		if ((i == 0 && sc->coff[0] != 0) ||
		    (i > 0 && sc->coff[i] <= sc->coff[i - 1]))
			return sf_errf(err, errlen, SF_ECORRUPT,
				       "sidecar: chain offsets not 0-based and "
				       "strictly increasing at entry %llu",
				       (unsigned long long)i);
	}
	pos += 4 * (c + 1);
	m = sc->coff[c];
	if (pos + 4 * m > sz)
		return sf_errf(err, errlen, SF_ECORRUPT,
			       "sidecar: %llu chain pages overrun body",
			       (unsigned long long)m);
	sc->cpages = u32_array(m);
	if (!sc->cpages)
		return sf_errf(err, errlen, SF_ENOMEM, "sidecar: out of memory");
	for (i = 0; i < m; i++) {
		sc->cpages[i] = get_le32(b + pos + 4 * i);
		if (sc->cpages[i] == 0)
			return sf_errf(err, errlen, SF_ECORRUPT,
				       "sidecar: chain page number 0");
	}
	pos += 4 * m;
	for (i = 0; i < c; i++)
		if (sc->cpages[sc->coff[i]] != sc->chead[i])
			return sf_errf(err, errlen, SF_ECORRUPT,
				       "sidecar: chain %u does not start with "
				       "its head", sc->chead[i]);
	sc->ctail = malloc(c ? c * sizeof(*sc->ctail) : 1);
	if (!sc->ctail)
		return sf_errf(err, errlen, SF_ENOMEM, "sidecar: out of memory");
	for (i = 0; i < c; i++) {
		uint32_t k, cn = sc->coff[i + 1] - sc->coff[i];
		const uint32_t *cp = sc->cpages + sc->coff[i];

		for (k = 1; k < cn && cp[k] == cp[0] + k; k++)
			;
		if (k == cn && cp[0] + (cn - 1) >= cp[0])
			sc->ctail[sc->ntails++] =
				(uint64_t)(cp[0] + cn - 1) << 32 | i;
	}
	qsort(sc->ctail, sc->ntails, sizeof(*sc->ctail), cmp_u64);

	bloblen = sz - pos;
	if (sc->off[n] != bloblen)
		return sf_errf(err, errlen, SF_ECORRUPT,
			       "sidecar: last page offset %u != blob length "
			       "%llu", sc->off[n], (unsigned long long)bloblen);
	sc->blob = b + pos;

	for (i = 0; i < n; i++) {
		const uint8_t *p = sc->blob + sc->off[i];
		uint32_t len = sc->off[i + 1] - sc->off[i], at = 0, cca = 0;
		int bt = btree_gap(p, len, sc->pgno[i], sc->page_size, &at,
				   &cca);

		if (bt < 0 || (bt > 0 && at > len))
			return sf_errf(err, errlen, SF_ECORRUPT,
				       "sidecar: page %u has a bad B-tree "
				       "header", sc->pgno[i]);
		if (bt == 0) {
			at = sc->page_size;
			cca = at;
		}
		if ((uint64_t)len + (cca - at) != sc->page_size)
			return sf_errf(err, errlen, SF_ECORRUPT,
				       "sidecar: page %u rebuilds to %llu "
				       "bytes, not %u", sc->pgno[i],
				       (unsigned long long)len + (cca - at),
				       sc->page_size);
		sc->gap_at[i] = at;
		sc->gap_len[i] = cca - at;
	}
	return 0;
}

int sidecar_parse(struct sidecar **out, const uint8_t *buf, size_t len,
		  const struct sidecar_check *chk, char *err, size_t errlen)
{
	struct sidecar *sc = NULL;
	uint64_t body_size, max_body;
	unsigned long long fcs;
	const uint8_t *frame;
	size_t flen, r, taglen;
	uint32_t ps;
	long i1;
	int rc;

	max_body = chk && chk->max_body ? chk->max_body
					: SIDECAR_DEFAULT_MAX_BODY;
	if (!buf || len < SIDECAR_PREFIX)
		return sf_errf(err, errlen, SF_ECORRUPT,
			       "sidecar: %zu bytes is too short", len);
	if (memcmp(buf, SIDECAR_MAGIC, 4) != 0)
		return sf_errf(err, errlen, SF_ECORRUPT, "sidecar: bad magic");
	if (buf[4] != SIDECAR_VERSION)
		return sf_errf(err, errlen, SF_ECORRUPT,
			       "sidecar: unknown version %u", buf[4]);
	body_size = get_le64(buf + 5);
	ps = get_le32(buf + 13);
	if (ps < 512 || ps > 65536 || (ps & (ps - 1)) != 0)
		return sf_errf(err, errlen, SF_ECORRUPT,
			       "sidecar: page_size %u is not a power of two "
			       "in 512..65536", ps);
	if (chk && chk->db_page_size && chk->db_page_size != ps)
		return sf_errf(err, errlen, SF_ECORRUPT,
			       "sidecar: page_size %u differs from the "
			       "database's %u", ps, chk->db_page_size);
	taglen = buf[17];
	if (len < SIDECAR_PREFIX + taglen)
		return sf_errf(err, errlen, SF_ECORRUPT,
			       "sidecar: db_tag runs past the end");
	if (taglen == 0)
		return sf_errf(err, errlen, SF_ECORRUPT,
			       "sidecar: unbound (empty db_tag)");
	if (memchr(buf + SIDECAR_PREFIX, 0, taglen))
		return sf_errf(err, errlen, SF_ECORRUPT,
			       "sidecar: NUL inside db_tag");
	if (chk && chk->live_etag &&
	    (strlen(chk->live_etag) != taglen ||
	     memcmp(chk->live_etag, buf + SIDECAR_PREFIX, taglen) != 0))
		return sf_errf(err, errlen, SF_ECORRUPT,
			       "sidecar: db_tag %.*s differs from the live "
			       "ETag %s", (int)taglen, buf + SIDECAR_PREFIX,
			       chk->live_etag);
	if (body_size > max_body)
		return sf_errf(err, errlen, SF_ECORRUPT,
			       "sidecar: body_size %llu exceeds the cap %llu",
			       (unsigned long long)body_size,
			       (unsigned long long)max_body);

	frame = buf + SIDECAR_PREFIX + taglen;
	flen = len - SIDECAR_PREFIX - taglen;
	/* a zstd frame: magic FD2FB528 (LE), then the frame header
	 * descriptor whose bit 2 is Content_Checksum_flag */
	if (flen < 5 || get_le32(frame) != 0xFD2FB528u)
		return sf_errf(err, errlen, SF_ECORRUPT,
			       "sidecar: not a zstd frame");
	if (!(frame[4] & 0x04))
		return sf_errf(err, errlen, SF_ECORRUPT,
			       "sidecar: zstd frame has no content checksum");
	r = ZSTD_findFrameCompressedSize(frame, flen);
	if (ZSTD_isError(r) || r != flen)
		return sf_errf(err, errlen, SF_ECORRUPT,
			       "sidecar: not exactly one zstd frame");
	fcs = ZSTD_getFrameContentSize(frame, flen);
	if (fcs != ZSTD_CONTENTSIZE_UNKNOWN && fcs != body_size)
		return sf_errf(err, errlen, SF_ECORRUPT,
			       "sidecar: body_size %llu != frame content "
			       "size %llu", (unsigned long long)body_size, fcs);

	sc = calloc(1, sizeof(*sc));
	if (!sc)
		return sf_errf(err, errlen, SF_ENOMEM, "sidecar: out of memory");
	sc->page_size = ps;
	memcpy(sc->tag, buf + SIDECAR_PREFIX, taglen);
	sc->tag[taglen] = '\0';
	sc->body_size = (size_t)body_size;
	sc->body = malloc(body_size ? (size_t)body_size : 1);
	if (!sc->body) {
		rc = sf_errf(err, errlen, SF_ENOMEM, "sidecar: out of memory");
		goto out;
	}
	r = ZSTD_decompress(sc->body, (size_t)body_size, frame, flen);
	if (ZSTD_isError(r)) {
		if (ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall)
			rc = sf_errf(err, errlen, SF_ECORRUPT,
				     "sidecar: body longer than body_size "
				     "%llu", (unsigned long long)body_size);
		else
			rc = sf_errf(err, errlen, SF_ECORRUPT,
				     "sidecar: zstd: %s", ZSTD_getErrorName(r));
		goto out;
	}
	if (r != body_size) {
		rc = sf_errf(err, errlen, SF_ECORRUPT,
			     "sidecar: body is %zu bytes, body_size says %llu",
			     r, (unsigned long long)body_size);
		goto out;
	}
	rc = parse_body(sc, err, errlen);
	if (rc)
		goto out;

	/* the database header inside a stored page 1 must agree */
	i1 = sidecar_find(sc, 1);
	if (i1 >= 0) {
		uint8_t h[2];
		uint32_t hps;

		sidecar_read(sc, (uint32_t)i1, 16, 2, h);
		hps = get_be16(h);
		if (hps == 1)
			hps = 65536;
		if (hps != ps) {
			rc = sf_errf(err, errlen, SF_ECORRUPT,
				     "sidecar: page_size %u differs from the "
				     "database header's %u", ps, hps);
			goto out;
		}
	}
	sc->mem = sizeof(*sc) + sc->body_size +
		  4 * (4 * (size_t)sc->n + 2 + 2 * (size_t)sc->nchains) +
		  4 * (size_t)sc->coff[sc->nchains] + 8 * (size_t)sc->ntails;
	*out = sc;
	sc = NULL;
	rc = 0;
out:
	sidecar_free(sc);
	return rc;
}

uint32_t sidecar_page_size(const struct sidecar *sc)
{
	return sc->page_size;
}

const char *sidecar_db_tag(const struct sidecar *sc)
{
	return sc->tag;
}

uint32_t sidecar_npages(const struct sidecar *sc)
{
	return sc->n;
}

uint32_t sidecar_nchains(const struct sidecar *sc)
{
	return sc->nchains;
}

uint32_t sidecar_pgno(const struct sidecar *sc, uint32_t i)
{
	return i < sc->n ? sc->pgno[i] : 0;
}

size_t sidecar_mem(const struct sidecar *sc)
{
	return sc ? sc->mem : 0;
}

static long bsearch_u32(const uint32_t *a, uint32_t n, uint32_t key)
{
	uint32_t lo = 0, hi = n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (a[mid] < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && a[lo] == key ? (long)lo : -1;
}

long sidecar_find(const struct sidecar *sc, uint32_t pgno)
{
	return bsearch_u32(sc->pgno, sc->n, pgno);
}

void sidecar_read(const struct sidecar *sc, uint32_t i, uint32_t off,
		  uint32_t len, void *dst)
{
	const uint8_t *s = sc->blob + sc->off[i];
	uint32_t at = sc->gap_at[i], gl = sc->gap_len[i], end = off + len;
	uint8_t *d = dst;

	/* [0, at) stored as is; [at, at+gl) zeros; then stored shifted */
	if (off < at) {
		uint32_t e = end < at ? end : at;

		memcpy(d, s + off, e - off);
		d += e - off;
		off = e;
	}
	if (off < end && off < at + gl) {
		uint32_t e = end < at + gl ? end : at + gl;

		memset(d, 0, e - off);
		d += e - off;
		off = e;
	}
	if (off < end)
		memcpy(d, s + off - gl, end - off);
}

void sidecar_gap(const struct sidecar *sc, uint32_t i, uint32_t *at,
		 uint32_t *len)
{
	*at = sc->gap_at[i];
	*len = sc->gap_len[i];
}

int sidecar_chain(const struct sidecar *sc, uint32_t head,
		  const uint32_t **pages, uint32_t *n)
{
	long i = bsearch_u32(sc->chead, sc->nchains, head);

	if (i < 0)
		return -1;
	*pages = sc->cpages + sc->coff[i];
	*n = sc->coff[i + 1] - sc->coff[i];
	return 0;
}

int sidecar_chain_ending(const struct sidecar *sc, uint32_t last,
			 uint32_t *head, uint32_t *n)
{
	uint32_t lo = 0, hi = sc->ntails, ci;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if ((uint32_t)(sc->ctail[mid] >> 32) < last)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == sc->ntails || (uint32_t)(sc->ctail[lo] >> 32) != last)
		return -1;
	ci = (uint32_t)sc->ctail[lo];
	*head = sc->chead[ci];
	*n = sc->coff[ci + 1] - sc->coff[ci];
	return 0;
}

/* ---- 4. writer ------------------------------------------------------- */

#define BUILD_MAX_DEPTH 40 /* SQLite itself stops at 20 */
/* Overflow chains of interior index cells are stored too (every lookup
 * whose search path compares such a cell reads its whole payload), within
 * these caps: pages per chain, and bytes over all such chains (shallowest
 * cells first: the root's cells are on every search path). */
#define BUILD_ICHAIN_MAX 16
#define BUILD_ICHAINS_BYTES (16u << 20)

/* A chain of an interior index cell that may be stored. */
struct ichain {
	uint32_t depth, c0, n; /* pages cpages[c0 .. c0+n) */
};

struct u32vec {
	uint32_t *v;
	size_t n, cap;
};

struct walk {
	const uint8_t *db;
	size_t dblen;
	uint32_t ps, usable, npages;
	uint8_t *seen;          /* [npages + 1]: B-tree or overflow page met */
	struct u32vec pages;    /* pages to store */
	struct u32vec heads;    /* chain heads, in discovery order */
	struct u32vec coff;     /* chain start offsets into cpages */
	struct u32vec cpages;
	struct u32vec roots;    /* B-tree roots from sqlite_schema */
	int ichains;            /* store interior-cell chains */
	struct ichain *ich;     /* candidate interior-cell chains */
	size_t nich, capich;
	char *err;
	size_t errlen;
};

static int vec_push(struct u32vec *v, uint32_t x)
{
	if (v->n == v->cap) {
		size_t nc = v->cap ? v->cap * 2 : 64;
		uint32_t *nv = realloc(v->v, nc * sizeof(*nv));

		if (!nv)
			return SF_ENOMEM;
		v->v = nv;
		v->cap = nc;
	}
	v->v[v->n++] = x;
	return 0;
}

static const uint8_t *wpage(struct walk *w, uint32_t pgno)
{
	if (pgno == 0 || pgno > w->npages)
		return NULL;
	return w->db + (size_t)(pgno - 1) * w->ps;
}

/* Marks pgno as met; a second visit means a cycle or a shared page. */
static int wmark(struct walk *w, uint32_t pgno)
{
	if (pgno == 0 || pgno > w->npages)
		return sf_errf(w->err, w->errlen, SF_ECORRUPT,
			       "page %u out of range (%u pages)", pgno,
			       w->npages);
	if (w->seen[pgno])
		return sf_errf(w->err, w->errlen, SF_ECORRUPT,
			       "page %u reached twice", pgno);
	w->seen[pgno] = 1;
	return 0;
}

/*
 * Follows the overflow chain of a payload of P bytes of which `local` are
 * on the page; `first` is the first overflow page. Records the chain, and
 * stores its pages for the schema tree (schema = 1); the chain of the cell
 * of an interior index page at `depth` (schema = 2) becomes a candidate
 * for ichains_store() when it is short and no page of it could be mistaken
 * for a B-tree page by the gap rule. If pl is non-NULL, up to cap bytes of
 * the whole payload are gathered into it (schema records).
 */
static int walk_chain(struct walk *w, uint32_t first, uint64_t P,
		      uint32_t local, int schema, int depth, uint8_t *pl,
		      size_t cap)
{
	size_t c0 = w->cpages.n;
	uint64_t left = P - local, pages = (left + w->usable - 5) / (w->usable - 4);
	size_t have = local < cap ? local : cap;
	uint32_t pg = first;
	uint64_t i;
	int rc;

	rc = vec_push(&w->heads, first);
	if (!rc)
		rc = vec_push(&w->coff, (uint32_t)w->cpages.n);
	if (rc)
		return rc;
	for (i = 0; i < pages; i++) {
		const uint8_t *p = wpage(w, pg);
		uint32_t take;

		rc = wmark(w, pg);
		if (rc)
			return rc;
		rc = vec_push(&w->cpages, pg);
		if (!rc && schema == 1)
			rc = vec_push(&w->pages, pg);
		if (rc)
			return rc;
		take = left < w->usable - 4 ? (uint32_t)left : w->usable - 4;
		if (pl && have < cap) {
			size_t t = take < cap - have ? take : cap - have;

			memcpy(pl + have, p + 4, t);
			have += t;
		}
		left -= take;
		pg = get_be32(p);
	}
	if (pg != 0)
		return sf_errf(w->err, w->errlen, SF_ECORRUPT,
			       "overflow chain at %u longer than its payload",
			       first);
	if (schema != 2 || !w->ichains || pages > BUILD_ICHAIN_MAX)
		return 0;
	for (i = c0; i < w->cpages.n; i++)
		if (is_btree_type(wpage(w, w->cpages.v[i])[0]))
			return 0;
	if (w->nich == w->capich) {
		size_t nc = w->capich ? w->capich * 2 : 64;
		struct ichain *ni = realloc(w->ich, nc * sizeof(*ni));

		if (!ni)
			return SF_ENOMEM;
		w->ich = ni;
		w->capich = nc;
	}
	w->ich[w->nich++] = (struct ichain){(uint32_t)depth, (uint32_t)c0,
					    (uint32_t)pages};
	return 0;
}

static int cmp_ichain(const void *a, const void *b)
{
	const struct ichain *x = a, *y = b;

	if (x->depth != y->depth)
		return x->depth < y->depth ? -1 : 1;
	return x->c0 < y->c0 ? -1 : x->c0 > y->c0;
}

/* Stores the candidate interior-cell chains, shallowest first, while they
 * fit in BUILD_ICHAINS_BYTES. */
static int ichains_store(struct walk *w)
{
	uint64_t left = BUILD_ICHAINS_BYTES / w->ps;
	size_t i, j;
	int rc;

	if (w->nich == 0)
		return 0;
	qsort(w->ich, w->nich, sizeof(*w->ich), cmp_ichain);
	for (i = 0; i < w->nich; i++) {
		if (w->ich[i].n > left)
			continue;
		for (j = 0; j < w->ich[i].n; j++) {
			rc = vec_push(&w->pages, w->cpages.v[w->ich[i].c0 + j]);
			if (rc)
				return rc;
		}
		left -= w->ich[i].n;
	}
	return 0;
}

/* Reads the rootpage column (4th) of a sqlite_schema record. */
static int schema_rootpage(const uint8_t *rec, size_t len, uint64_t *root)
{
	const uint8_t *end = rec + len;
	uint64_t hsz, st, off;
	size_t k, col;

	k = get_varint(rec, end, &hsz);
	if (!k || hsz > len)
		return -1;
	off = hsz;
	for (col = 0; col < 4; col++) {
		size_t m = get_varint(rec + k, rec + hsz, &st);
		uint64_t sz;

		if (!m)
			return -1;
		k += m;
		if (st >= 12)
			sz = (st - 12) / 2;
		else if (st <= 4)
			sz = st;
		else if (st == 5)
			sz = 6;
		else if (st == 6 || st == 7)
			sz = 8;
		else
			sz = 0;
		if (col == 3) {
			uint64_t v = 0;
			size_t j;

			if (st == 8 || st == 9) {
				*root = st == 9;
				return 0;
			}
			if (st < 1 || st > 6 || off + sz > len)
				return -1;
			for (j = 0; j < sz; j++)
				v = (v << 8) | rec[off + j];
			*root = v;
			return 0;
		}
		off += sz;
	}
	return -1;
}

static int walk_tree(struct walk *w, uint32_t pgno, int schema, int depth,
		     int want_type_class)
{
	const uint8_t *p = wpage(w, pgno);
	uint32_t base = pgno == 1 ? 100 : 0, hdr, ncells, i, X, M;
	uint8_t t;
	int rc, interior, klass;

	if (depth > BUILD_MAX_DEPTH)
		return sf_errf(w->err, w->errlen, SF_ECORRUPT,
			       "B-tree deeper than %d at page %u",
			       BUILD_MAX_DEPTH, pgno);
	rc = wmark(w, pgno);
	if (rc)
		return rc;
	t = p[base];
	if (!is_btree_type(t))
		return sf_errf(w->err, w->errlen, SF_ECORRUPT,
			       "page %u is not a B-tree page (type %u)", pgno,
			       t);
	klass = (t == 5 || t == 13) ? 1 : 2; /* table : index */
	if (want_type_class && klass != want_type_class)
		return sf_errf(w->err, w->errlen, SF_ECORRUPT,
			       "page %u: B-tree kind changes", pgno);
	interior = t == 2 || t == 5;
	hdr = interior ? 12 : 8;
	ncells = get_be16(p + base + 3);
	if (base + hdr + 2 * ncells > w->ps)
		return sf_errf(w->err, w->errlen, SF_ECORRUPT,
			       "page %u: cell pointer array overflows", pgno);
	if (schema || interior) {
		rc = vec_push(&w->pages, pgno);
		if (rc)
			return rc;
	}
	if (t == 13) {
		X = w->usable - 35;
	} else {
		X = ((w->usable - 12) * 64 / 255) - 23;
	}
	M = ((w->usable - 12) * 32 / 255) - 23;

	for (i = 0; i < ncells; i++) {
		uint32_t co = get_be16(p + base + hdr + 2 * i), local;
		const uint8_t *c = p + co, *end = p + w->usable;
		uint64_t P = 0, rowid;
		size_t k;

		if (co < base + hdr + 2 * ncells || co >= w->usable)
			return sf_errf(w->err, w->errlen, SF_ECORRUPT,
				       "page %u: cell %u offset %u out of "
				       "range", pgno, i, co);
		if (interior) {
			if (c + 4 > end)
				return sf_errf(w->err, w->errlen, SF_ECORRUPT,
					       "page %u: truncated cell", pgno);
			rc = walk_tree(w, get_be32(c), schema, depth + 1,
				       klass);
			if (rc)
				return rc;
			c += 4;
		}
		if (t == 5)
			continue;
		k = get_varint(c, end, &P);
		if (!k)
			return sf_errf(w->err, w->errlen, SF_ECORRUPT,
				       "page %u: truncated cell", pgno);
		c += k;
		if (t == 13) {
			k = get_varint(c, end, &rowid);
			if (!k)
				return sf_errf(w->err, w->errlen, SF_ECORRUPT,
					       "page %u: truncated cell", pgno);
			c += k;
		}
		if (P <= X) {
			local = (uint32_t)P;
		} else {
			uint32_t K = M + (uint32_t)((P - M) % (w->usable - 4));

			local = K <= X ? K : M;
		}
		if (c + local + (P > X ? 4 : 0) > end)
			return sf_errf(w->err, w->errlen, SF_ECORRUPT,
				       "page %u: cell %u overflows the page",
				       pgno, i);
		if (schema && t == 13) {
			uint8_t rec[4096];
			size_t cap = sizeof(rec);
			uint64_t root = 0;

			memcpy(rec, c, local < cap ? local : cap);
			if (P > X) {
				rc = walk_chain(w, get_be32(c + local), P,
						local, 1, depth, rec, cap);
				if (rc)
					return rc;
			}
			if (schema_rootpage(rec, P < cap ? (size_t)P : cap,
					    &root) == 0 && root > 0) {
				if (root > w->npages)
					return sf_errf(w->err, w->errlen,
						       SF_ECORRUPT,
						       "schema names root page "
						       "%llu past the end",
						       (unsigned long long)root);
				rc = vec_push(&w->roots, (uint32_t)root);
				if (rc)
					return rc;
			}
		} else if (P > X) {
			rc = walk_chain(w, get_be32(c + local), P, local,
					schema ? 1 : interior ? 2 : 0, depth,
					NULL, 0);
			if (rc)
				return rc;
		}
	}
	if (interior)
		return walk_tree(w, get_be32(p + base + 8), schema, depth + 1,
				 klass);
	return 0;
}

uint32_t sidecar_page_chains(const uint8_t *page, uint32_t pgno, uint32_t ps,
			     uint32_t usable, uint32_t *heads,
			     uint32_t *npages, uint32_t max)
{
	uint32_t base = pgno == 1 ? 100 : 0, hdr, ncells, i, X, M, found = 0;
	const uint8_t *end = page + (usable <= ps ? usable : ps);
	uint8_t t;

	if (usable < 480 || usable > ps || base + 12 > ps)
		return 0;
	t = page[base];
	if (t != 2 && t != 10 && t != 13)
		return 0;
	hdr = t == 2 ? 12 : 8;
	ncells = get_be16(page + base + 3);
	if (base + hdr + 2 * ncells > usable)
		return 0;
	X = t == 13 ? usable - 35 : ((usable - 12) * 64 / 255) - 23;
	M = ((usable - 12) * 32 / 255) - 23;
	for (i = 0; i < ncells && found < max; i++) {
		uint32_t co = get_be16(page + base + hdr + 2 * i), local, K;
		const uint8_t *c = page + co;
		uint64_t P, rowid;
		size_t k;

		if (co < base + hdr + 2 * ncells || co >= usable)
			continue;
		if (t == 2)
			c += 4;
		k = c < end ? get_varint(c, end, &P) : 0;
		if (!k)
			continue;
		c += k;
		if (t == 13) {
			k = get_varint(c, end, &rowid);
			if (!k)
				continue;
			c += k;
		}
		if (P <= X)
			continue;
		K = M + (uint32_t)((P - M) % (usable - 4));
		local = K <= X ? K : M;
		if (c + local + 4 > end)
			continue;
		heads[found] = get_be32(c + local);
		npages[found] = (uint32_t)((P - local + usable - 5) /
					   (usable - 4));
		if (heads[found])
			found++;
	}
	return found;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Sorts chain indices by head (heads are unique: each page is met once). */
static int cmp_chain(const void *a, const void *b, void *arg)
{
	const uint32_t *heads = arg;
	uint32_t x = heads[*(const uint32_t *)a];
	uint32_t y = heads[*(const uint32_t *)b];

	return x < y ? -1 : x > y;
}

int sidecar_build_body(const uint8_t *db, size_t dblen, uint8_t **body,
		       size_t *bodylen, char *err, size_t errlen)
{
	return sidecar_build_body_ex(db, dblen, 0, body, bodylen, err, errlen);
}

int sidecar_build_body_ex(const uint8_t *db, size_t dblen, unsigned flags,
			  uint8_t **body, size_t *bodylen, char *err,
			  size_t errlen)
{
	struct walk w = {0};
	uint32_t *order = NULL;
	uint8_t *b = NULL, *q;
	uint64_t size, bloblen = 0;
	size_t i, j, nch;
	int rc;

	if (dblen < 512)
		return sf_errf(err, errlen, SF_ECORRUPT,
			       "not a SQLite database (%zu bytes)", dblen);
	if (memcmp(db, "SQLite format 3", 16) != 0)
		return sf_errf(err, errlen, SF_ECORRUPT,
			       "not a SQLite database (bad header)");
	w.db = db;
	w.dblen = dblen;
	w.ps = get_be16(db + 16);
	if (w.ps == 1)
		w.ps = 65536;
	if (w.ps < 512 || w.ps > 65536 || (w.ps & (w.ps - 1)))
		return sf_errf(err, errlen, SF_ECORRUPT, "bad page size %u",
			       w.ps);
	w.usable = w.ps - db[20];
	if (w.usable < 480)
		return sf_errf(err, errlen, SF_ECORRUPT,
			       "bad reserved-space byte %u", db[20]);
	if (dblen / w.ps > UINT32_MAX - 1)
		return sf_errf(err, errlen, SF_ETOOBIG, "database too large");
	w.npages = (uint32_t)(dblen / w.ps);
	w.err = err;
	w.errlen = errlen;
	w.ichains = (flags & SIDECAR_BUILD_ICHAINS) != 0;
	w.seen = calloc((size_t)w.npages + 1, 1);
	if (!w.seen) {
		rc = sf_errf(err, errlen, SF_ENOMEM, "out of memory");
		goto out;
	}
	rc = walk_tree(&w, 1, 1, 0, 1);
	for (i = 0; !rc && i < w.roots.n; i++) {
		if (w.seen[w.roots.v[i]])
			continue; /* two schema rows share a root: harmless */
		rc = walk_tree(&w, w.roots.v[i], 0, 0, 0);
	}
	if (!rc)
		rc = ichains_store(&w);
	if (rc)
		goto out;
	rc = SF_ENOMEM;
	if (vec_push(&w.coff, (uint32_t)w.cpages.n))
		goto out;

	/* stored pages: ascending (each was met once, so no duplicates) */
	qsort(w.pages.v, w.pages.n, sizeof(uint32_t), cmp_u32);
	nch = w.heads.n;
	order = malloc((nch ? nch : 1) * sizeof(*order));
	if (!order)
		goto out;
	for (i = 0; i < nch; i++)
		order[i] = (uint32_t)i;
	qsort_r(order, nch, sizeof(*order), cmp_chain, w.heads.v);

	for (i = 0; i < w.pages.n; i++) {
		const uint8_t *p = wpage(&w, w.pages.v[i]);
		uint32_t at, cca;
		int bt = btree_gap(p, w.ps, w.pages.v[i], w.ps, &at, &cca);

		if (bt < 0) {
			rc = sf_errf(err, errlen, SF_ECORRUPT,
				     "page %u: bad B-tree header",
				     w.pages.v[i]);
			goto out;
		}
		bloblen += bt ? w.ps - (cca - at) : w.ps;
	}
	size = 4 + 4 * (uint64_t)w.pages.n + 4 * ((uint64_t)w.pages.n + 1) +
	       4 + 4 * (uint64_t)nch + 4 * ((uint64_t)nch + 1) +
	       4 * (uint64_t)w.cpages.n + bloblen;
	if (bloblen > UINT32_MAX || size > SIZE_MAX / 2) {
		rc = sf_errf(err, errlen, SF_ETOOBIG, "sidecar too large");
		goto out;
	}
	b = malloc((size_t)size);
	if (!b)
		goto out;
	q = b;
	put_le32(q, (uint32_t)w.pages.n);
	q += 4;
	for (i = 0; i < w.pages.n; i++, q += 4)
		put_le32(q, w.pages.v[i]);
	{
		uint32_t o = 0;

		for (i = 0; i < w.pages.n; i++, q += 4) {
			const uint8_t *p = wpage(&w, w.pages.v[i]);
			uint32_t at, cca;

			put_le32(q, o);
			if (btree_gap(p, w.ps, w.pages.v[i], w.ps, &at, &cca) > 0)
				o += w.ps - (cca - at);
			else
				o += w.ps;
		}
		put_le32(q, o);
		q += 4;
	}
	put_le32(q, (uint32_t)nch);
	q += 4;
	for (i = 0; i < nch; i++, q += 4)
		put_le32(q, w.heads.v[order[i]]);
	{
		uint32_t o = 0;

		for (i = 0; i < nch; i++, q += 4) {
			put_le32(q, o);
			o += w.coff.v[order[i] + 1] - w.coff.v[order[i]];
		}
		put_le32(q, o);
		q += 4;
	}
	for (i = 0; i < nch; i++)
		for (j = w.coff.v[order[i]]; j < w.coff.v[order[i] + 1]; j++) {
			put_le32(q, w.cpages.v[j]);
			q += 4;
		}
	for (i = 0; i < w.pages.n; i++) {
		const uint8_t *p = wpage(&w, w.pages.v[i]);
		uint32_t at, cca;

		if (btree_gap(p, w.ps, w.pages.v[i], w.ps, &at, &cca) > 0) {
			memcpy(q, p, at);
			q += at;
			memcpy(q, p + cca, w.ps - cca);
			q += w.ps - cca;
		} else {
			memcpy(q, p, w.ps);
			q += w.ps;
		}
	}
	*body = b;
	*bodylen = (size_t)size;
	b = NULL;
	rc = 0;
out:
	free(b);
	free(order);
	free(w.seen);
	free(w.pages.v);
	free(w.heads.v);
	free(w.coff.v);
	free(w.cpages.v);
	free(w.roots.v);
	free(w.ich);
	return rc;
}

int sidecar_wrap(const uint8_t *body, size_t bodylen, uint32_t page_size,
		 const char *db_tag, uint8_t **out, size_t *outlen, char *err,
		 size_t errlen)
{
	size_t taglen = db_tag ? strlen(db_tag) : 0, bound, r;
	ZSTD_CCtx *cx = NULL;
	uint8_t *buf = NULL;
	int rc;

	if (taglen > 255)
		return sf_errf(err, errlen, SF_EINVAL,
			       "db_tag longer than 255 bytes");
	bound = ZSTD_compressBound(bodylen);
	buf = malloc(SIDECAR_PREFIX + taglen + bound);
	cx = ZSTD_createCCtx();
	if (!buf || !cx) {
		rc = sf_errf(err, errlen, SF_ENOMEM, "out of memory");
		goto out;
	}
	memcpy(buf, SIDECAR_MAGIC, 4);
	buf[4] = SIDECAR_VERSION;
	put_le32(buf + 5, (uint32_t)bodylen);
	put_le32(buf + 9, (uint32_t)((uint64_t)bodylen >> 32));
	put_le32(buf + 13, page_size);
	buf[17] = (uint8_t)taglen;
	if (taglen)
		memcpy(buf + SIDECAR_PREFIX, db_tag, taglen);
	ZSTD_CCtx_setParameter(cx, ZSTD_c_compressionLevel, 3);
	ZSTD_CCtx_setParameter(cx, ZSTD_c_checksumFlag, 1);
	ZSTD_CCtx_setParameter(cx, ZSTD_c_contentSizeFlag, 1);
	r = ZSTD_compress2(cx, buf + SIDECAR_PREFIX + taglen, bound, body,
			   bodylen);
	if (ZSTD_isError(r)) {
		rc = sf_errf(err, errlen, SF_EIO, "zstd: %s",
			     ZSTD_getErrorName(r));
		goto out;
	}
	*out = buf;
	*outlen = SIDECAR_PREFIX + taglen + r;
	buf = NULL;
	rc = 0;
out:
	ZSTD_freeCCtx(cx);
	free(buf);
	return rc;
}

/* The public writer (sfvfs.h): maps the file and builds + wraps. */
int sfv_sidecar_build(const char *db_path, const char *db_tag, uint8_t **out,
		      size_t *outlen, char *err, size_t errlen)
{
	uint8_t *body = NULL;
	void *map = MAP_FAILED;
	size_t bodylen = 0, maplen = 0;
	struct stat sb;
	uint32_t ps;
	int fd = -1, rc;

	if (!db_path || !out || !outlen)
		return sf_errf(err, errlen, SF_EINVAL, "sidecar: bad argument");
	fd = open(db_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) != 0) {
		rc = sf_errf(err, errlen, SF_EIO, "sidecar: %s: %s", db_path,
			     strerror(errno));
		goto out;
	}
	if (sb.st_size < 512) {
		rc = sf_errf(err, errlen, SF_ECORRUPT,
			     "sidecar: %s is not a SQLite database", db_path);
		goto out;
	}
	maplen = (size_t)sb.st_size;
	map = mmap(NULL, maplen, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		rc = sf_errf(err, errlen, SF_EIO, "sidecar: mmap %s: %s",
			     db_path, strerror(errno));
		goto out;
	}
	rc = sidecar_build_body_ex(map, maplen, SIDECAR_BUILD_ICHAINS, &body,
				   &bodylen, err, errlen);
	if (rc) {
		sf_err_prefix(err, errlen, "sidecar of %s", db_path);
		goto out;
	}
	ps = get_be16((const uint8_t *)map + 16);
	if (ps == 1)
		ps = 65536;
	rc = sidecar_wrap(body, bodylen, ps, db_tag ? db_tag : "", out, outlen,
			  err, errlen);
out:
	free(body);
	if (map != MAP_FAILED)
		munmap(map, maplen);
	if (fd >= 0)
		close(fd);
	return rc;
}
