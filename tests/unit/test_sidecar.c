/*
 * test_sidecar.c -- the FORMAT.md section 7 sidecar: every real fixture
 * sidecar parses, is bound to the ETag info.json recorded, and rebuilds to
 * the pages of its shard.db; our writer reproduces the fixtures' bodies;
 * with SIDECAR_BUILD_ICHAINS it adds exactly the overflow pages of
 * interior index cells; the tail lookup of contiguous chains; and each
 * rejection rule refuses a sidecar crafted to break it (built by our
 * writer, then mutated).
 */
#include <criterion/criterion.h>
#include <glob.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "sf_test.h"
#include "sfvfs.h"
#include "sidecar.h"

TestSuite(sidecar, .timeout = 120);

/* ---- fixture helpers ---------------------------------------------------- */

static glob_t fixture_sidecars(void)
{
	glob_t g;
	char *pat = sft_data("shardyfusion/*/snapshot/shards/*/*/*/shard.sidecar");

	cr_assert_eq(glob(pat, 0, NULL, &g), 0, "no fixture sidecars at %s",
		     pat);
	cr_assert_geq(g.gl_pathc, 13);
	free(pat);
	return g;
}

static char *sibling(const char *sidecar_path, const char *name)
{
	char *p = NULL, *slash;

	cr_assert(asprintf(&p, "%s", sidecar_path) > 0);
	slash = strrchr(p, '/');
	*slash = '\0';
	cr_assert(asprintf(&slash, "%s/%s", p, name) > 0);
	free(p);
	return slash;
}

/* The ETag info.json recorded for the shard.db next to sidecar_path. */
static char *fixture_etag(const char *sidecar_path, const char *object)
{
	const char *snap = strstr(sidecar_path, "/snapshot/");
	char *info = NULL, *key = NULL, *dbkey, *res;
	json_error_t je;
	json_t *root, *v;

	cr_assert(snap);
	cr_assert(asprintf(&info, "%.*s/info.json",
			   (int)(snap - sidecar_path), sidecar_path) > 0);
	cr_assert(asprintf(&key, "%s", snap + strlen("/snapshot/")) > 0);
	dbkey = strstr(key, "shard.sidecar");
	cr_assert(dbkey);
	strcpy(dbkey, object);
	root = json_load_file(info, 0, &je);
	cr_assert(root, "%s: %s", info, je.text);
	v = json_object_get(json_object_get(root, "etags"), key);
	cr_assert(json_is_string(v), "no etag for %s", key);
	res = strdup(json_string_value(v));
	json_decref(root);
	free(info);
	free(key);
	return res;
}

static uint8_t *decompress_body(const uint8_t *sc, size_t len, size_t *blen)
{
	size_t off = SIDECAR_PREFIX + sc[17];
	unsigned long long n = ZSTD_getFrameContentSize(sc + off, len - off);
	uint8_t *b;

	cr_assert(n != ZSTD_CONTENTSIZE_UNKNOWN && n != ZSTD_CONTENTSIZE_ERROR);
	b = malloc(n + 1);
	cr_assert_eq(ZSTD_decompress(b, n, sc + off, len - off), n);
	*blen = n;
	return b;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* ---- fixtures ---------------------------------------------------------- */

Test(sidecar, parses_every_fixture_and_rebuilds_its_pages)
{
	glob_t g = fixture_sidecars();
	size_t k, identical = 0, total = 0;

	for (k = 0; k < g.gl_pathc; k++) {
		const char *path = g.gl_pathv[k];
		char *dbp = sibling(path, "shard.db"), err[256] = "";
		char *etag = fixture_etag(path, "shard.db");
		struct sidecar_check chk = {.live_etag = etag,
					    .db_page_size = 4096};
		size_t sclen, dblen;
		uint8_t *scb = sft_read_file(path, &sclen);
		uint8_t *db = sft_read_file(dbp, &dblen);
		struct sidecar *sc = NULL;
		uint8_t *page = malloc(65536);
		uint32_t i, ps;

		cr_assert(scb && db);
		cr_assert_eq(sidecar_parse(&sc, scb, sclen, &chk, err,
					   sizeof(err)), 0, "%s: %s", path, err);
		ps = sidecar_page_size(sc);
		cr_assert_eq(ps, 4096);
		cr_assert_str_eq(sidecar_db_tag(sc), etag,
				 "db_tag of %s is not info.json's ETag", path);
		cr_assert_geq(sidecar_npages(sc), 1);
		cr_assert_eq(sidecar_pgno(sc, 0), 1, "page 1 is stored");
		for (i = 0; i < sidecar_npages(sc); i++) {
			uint32_t pg = sidecar_pgno(sc, i), at, gl;
			const uint8_t *want = db + (size_t)(pg - 1) * ps;

			cr_assert_leq((size_t)pg * ps, dblen);
			sidecar_read(sc, i, 0, ps, page);
			sidecar_gap(sc, i, &at, &gl);
			/* outside the unallocated gap: byte for byte */
			cr_assert_eq(memcmp(page, want, at), 0,
				     "%s page %u head", path, pg);
			cr_assert_eq(memcmp(page + at + gl, want + at + gl,
					    ps - at - gl), 0,
				     "%s page %u tail", path, pg);
			/* the gap rebuilds as zeros */
			for (uint32_t b = at; b < at + gl; b++)
				cr_assert_eq(page[b], 0);
			identical += memcmp(page, want, ps) == 0;
			total++;
			/* slices agree with the whole page */
			{
				uint8_t s[300];
				uint32_t o = at > 100 ? at - 100 : 0;
				uint32_t n = o + sizeof(s) <= ps ? sizeof(s)
								 : ps - o;

				sidecar_read(sc, i, o, n, s);
				cr_assert_eq(memcmp(s, page + o, n), 0);
			}
		}
		sidecar_free(sc);
		free(page);
		free(scb);
		free(db);
		free(dbp);
		free(etag);
	}
	/* Some real pages hold stale bytes in their unallocated gap (left by
	 * the writer's B-tree balancing): they rebuild with zeros there. */
	cr_log_info("%zu of %zu fixture sidecar pages are byte-identical to "
		    "shard.db; the rest differ only inside the gap",
		    identical, total);
	globfree(&g);
}

Test(sidecar, fixture_chains_follow_the_overflow_pointers)
{
	glob_t g = fixture_sidecars();
	size_t k, chains_seen = 0;

	for (k = 0; k < g.gl_pathc; k++) {
		const char *path = g.gl_pathv[k];
		char *dbp = sibling(path, "shard.db"), err[256];
		size_t sclen, dblen;
		uint8_t *scb = sft_read_file(path, &sclen);
		uint8_t *db = sft_read_file(dbp, &dblen);
		struct sidecar *sc = NULL;
		uint32_t p, heads = 0;

		cr_assert_eq(sidecar_parse(&sc, scb, sclen, NULL, err,
					   sizeof(err)), 0, "%s", err);
		for (p = 1; p <= dblen / 4096; p++) {
			const uint32_t *cp;
			uint32_t n, j;

			if (sidecar_chain(sc, p, &cp, &n) != 0)
				continue;
			heads++;
			cr_assert_eq(cp[0], p);
			for (j = 0; j < n; j++) {
				uint32_t next = be32(db + (size_t)(cp[j] - 1) *
							      4096);

				cr_assert_eq(next, j + 1 < n ? cp[j + 1] : 0,
					     "%s chain %u", path, p);
			}
		}
		cr_assert_eq(heads, sidecar_nchains(sc));
		chains_seen += heads;
		sidecar_free(sc);
		free(scb);
		free(db);
		free(dbp);
	}
	cr_assert_gt(chains_seen, 0, "the utf8 fixture has overflow chains");
	globfree(&g);
}

Test(sidecar, writer_reproduces_every_fixture_body_byte_for_byte)
{
	glob_t g = fixture_sidecars();
	size_t k;

	for (k = 0; k < g.gl_pathc; k++) {
		const char *path = g.gl_pathv[k];
		char *dbp = sibling(path, "shard.db"), err[256] = "";
		size_t sclen, dblen, theirs_len, ours_len;
		uint8_t *scb = sft_read_file(path, &sclen);
		uint8_t *db = sft_read_file(dbp, &dblen);
		uint8_t *theirs = decompress_body(scb, sclen, &theirs_len);
		uint8_t *ours = NULL;

		cr_assert_eq(sidecar_build_body(db, dblen, &ours, &ours_len,
						err, sizeof(err)), 0, "%s",
			     err);
		cr_assert_eq(ours_len, theirs_len, "%s: body length", path);
		cr_assert_eq(memcmp(ours, theirs, ours_len), 0,
			     "%s: body differs", path);
		free(ours);
		free(theirs);
		free(scb);
		free(db);
		free(dbp);
	}
	globfree(&g);
}

Test(sidecar, built_sidecar_round_trips_through_the_parser)
{
	glob_t g = fixture_sidecars();
	size_t k;

	for (k = 0; k < g.gl_pathc; k++) {
		char *dbp = sibling(g.gl_pathv[k], "shard.db"), err[256] = "";
		struct sidecar_check chk = {.live_etag = "\"abc\""};
		struct sidecar *sc = NULL;
		uint8_t *out = NULL, *db, page[4096];
		size_t outlen, dblen;
		uint32_t i;

		cr_assert_eq(sfv_sidecar_build(dbp, "\"abc\"", &out, &outlen,
					       err, sizeof(err)), 0, "%s", err);
		cr_assert_eq(sidecar_parse(&sc, out, outlen, &chk, err,
					   sizeof(err)), 0, "%s", err);
		db = sft_read_file(dbp, &dblen);
		for (i = 0; i < sidecar_npages(sc); i++) {
			uint32_t pg = sidecar_pgno(sc, i), at, gl;
			const uint8_t *want = db + (size_t)(pg - 1) * 4096;

			sidecar_read(sc, i, 0, 4096, page);
			sidecar_gap(sc, i, &at, &gl);
			cr_assert_eq(memcmp(page, want, at), 0);
			cr_assert_eq(memcmp(page + at + gl, want + at + gl,
					    4096 - at - gl), 0);
		}
		sidecar_free(sc);
		free(out);
		free(db);
		free(dbp);
	}
	globfree(&g);
}

Test(sidecar, writer_refuses_a_file_that_is_not_sqlite)
{
	char *dir = sft_tmpdir(), *p = NULL, err[256] = "";
	uint8_t junk[4096] = {1, 2, 3}, *out = NULL;
	size_t outlen;

	cr_assert(asprintf(&p, "%s/junk.db", dir) > 0);
	cr_assert_eq(sft_write_file(p, junk, sizeof(junk)), 0);
	cr_assert_eq(sfv_sidecar_build(p, "\"x\"", &out, &outlen, err,
				       sizeof(err)), SF_ECORRUPT);
	cr_assert_null(out);
	sft_rmrf(dir);
	free(dir);
	free(p);
}

/* ---- rejection rules ---------------------------------------------------- */

/* A body built from the utf8 fixture's shard 0 (2 stored pages, chains). */
static uint8_t *base_body(size_t *len)
{
	char *p = sft_data("shardyfusion/utf8/snapshot/shards/"
			   "run_id=b9aa90b271ef41d7ad4ae9f6e42e4aac/db=00000/"
			   "attempt=00/shard.db");
	char err[256] = "";
	size_t dblen;
	uint8_t *db = sft_read_file(p, &dblen), *body = NULL;

	cr_assert(db);
	cr_assert_eq(sidecar_build_body(db, dblen, &body, len, err,
					sizeof(err)), 0, "%s", err);
	free(db);
	free(p);
	return body;
}

struct layout {
	size_t n, pgno, off, c, heads, coff, cpages, blob;
};

static struct layout layout_of(const uint8_t *b)
{
	struct layout l;

	l.n = le32(b);
	l.pgno = 4;
	l.off = l.pgno + 4 * l.n;
	l.c = l.off + 4 * (l.n + 1);
	l.heads = l.c + 4;
	l.coff = l.heads + 4 * le32(b + l.c);
	l.cpages = l.coff + 4 * (le32(b + l.c) + 1);
	l.blob = l.cpages + 4 * le32(b + l.coff + 4 * le32(b + l.c));
	return l;
}

static uint8_t *wrap(const uint8_t *body, size_t blen, uint32_t ps,
		     const char *tag, size_t *len)
{
	uint8_t *out = NULL;
	char err[128];

	cr_assert_eq(sidecar_wrap(body, blen, ps, tag, &out, len, err,
				  sizeof(err)), 0, "%s", err);
	return out;
}

/* Expects the parser to refuse buf with a message containing `why`. */
static void expect_reject(const uint8_t *buf, size_t len,
			  const struct sidecar_check *chk, const char *why)
{
	struct sidecar *sc = NULL;
	char err[256] = "";
	int rc = sidecar_parse(&sc, buf, len, chk, err, sizeof(err));

	cr_assert_eq(rc, SF_ECORRUPT, "accepted (rc %d), wanted: %s", rc, why);
	cr_assert_null(sc);
	cr_assert(strstr(err, why), "message \"%s\" lacks \"%s\"", err, why);
}

static void expect_body_reject(uint8_t *body, size_t blen, const char *why)
{
	size_t len;
	uint8_t *sc = wrap(body, blen, 4096, "\"t\"", &len);

	expect_reject(sc, len, NULL, why);
	free(sc);
}

Test(sidecar, accepts_the_unmutated_base)
{
	size_t blen, len;
	uint8_t *body = base_body(&blen), *sc = wrap(body, blen, 4096, "\"t\"",
						     &len);
	struct sidecar_check chk = {.live_etag = "\"t\"", .db_page_size = 4096};
	struct sidecar *s = NULL;
	char err[256];

	cr_assert_eq(sidecar_parse(&s, sc, len, &chk, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_gt(sidecar_nchains(s), 0);
	cr_assert_gt(sidecar_mem(s), blen);
	sidecar_free(s);
	free(sc);
	free(body);
}

Test(sidecar, rejects_bad_magic)
{
	size_t blen, len;
	uint8_t *body = base_body(&blen), *sc = wrap(body, blen, 4096, "\"t\"",
						     &len);

	sc[0] = 'X';
	expect_reject(sc, len, NULL, "bad magic");
	free(sc);
	free(body);
}

Test(sidecar, rejects_unknown_version)
{
	size_t blen, len;
	uint8_t *body = base_body(&blen), *sc = wrap(body, blen, 4096, "\"t\"",
						     &len);

	sc[4] = 7;
	expect_reject(sc, len, NULL, "unknown version 7");
	sc[4] = 9;
	expect_reject(sc, len, NULL, "unknown version 9");
	free(sc);
	free(body);
}

Test(sidecar, rejects_page_size_not_a_power_of_two_in_range)
{
	static const uint32_t bad[] = {0, 256, 3000, 4095, 131072};
	size_t blen, len, i;
	uint8_t *body = base_body(&blen);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t *sc = wrap(body, blen, bad[i], "\"t\"", &len);

		expect_reject(sc, len, NULL, "not a power of two");
		free(sc);
	}
	free(body);
}

Test(sidecar, rejects_page_size_differing_from_the_database_header)
{
	size_t blen, len;
	uint8_t *body = base_body(&blen), *sc;
	struct layout l = layout_of(body);
	struct sidecar_check chk = {.db_page_size = 8192};

	/* the caller knows the database's page size */
	sc = wrap(body, blen, 4096, "\"t\"", &len);
	expect_reject(sc, len, &chk, "differs from the database's 8192");
	free(sc);
	/* the stored page 1 says 8192 while the prefix says 4096 */
	body[l.blob + 16] = 0x20;
	body[l.blob + 17] = 0x00;
	expect_body_reject(body, blen, "differs from the database header");
	free(body);
}

Test(sidecar, rejects_corrupt_zstd_data)
{
	size_t blen, len;
	uint8_t *body = base_body(&blen), *sc = wrap(body, blen, 4096, "\"t\"",
						     &len);
	size_t mid = SIDECAR_PREFIX + 3 + (len - SIDECAR_PREFIX - 3) / 2;

	sc[mid] ^= 0x5a;
	expect_reject(sc, len, NULL, "zstd");
	free(sc);
	free(body);
}

Test(sidecar, rejects_a_bad_content_checksum)
{
	size_t blen, len;
	uint8_t *body = base_body(&blen), *sc = wrap(body, blen, 4096, "\"t\"",
						     &len);

	sc[len - 1] ^= 0x01; /* the frame's last 4 bytes are the checksum */
	expect_reject(sc, len, NULL, "zstd: ");
	free(sc);
	free(body);
}

Test(sidecar, rejects_a_frame_without_content_checksum)
{
	size_t blen, len;
	uint8_t *body = base_body(&blen), *sc = wrap(body, blen, 4096, "\"t\"",
						     &len);

	sc[SIDECAR_PREFIX + 3 + 4] &= (uint8_t)~0x04;
	expect_reject(sc, len, NULL, "no content checksum");
	free(sc);
	free(body);
}

Test(sidecar, rejects_trailing_bytes_after_the_frame)
{
	size_t blen, len;
	uint8_t *body = base_body(&blen), *sc = wrap(body, blen, 4096, "\"t\"",
						     &len), *big;

	big = malloc(len + 7);
	memcpy(big, sc, len);
	memset(big + len, 0, 7);
	expect_reject(big, len + 7, NULL, "exactly one zstd frame");
	expect_reject(sc, len - 3, NULL, "exactly one zstd frame");
	free(big);
	free(sc);
	free(body);
}

Test(sidecar, rejects_body_size_mismatch)
{
	size_t blen, len;
	uint8_t *body = base_body(&blen), *sc = wrap(body, blen, 4096, "\"t\"",
						     &len);

	put_le32(sc + 5, (uint32_t)blen + 1);
	expect_reject(sc, len, NULL, "body_size");
	put_le32(sc + 5, (uint32_t)blen - 1);
	expect_reject(sc, len, NULL, "body_size");
	free(sc);
	free(body);
}

/* Without a content size in the frame, decoding itself must notice. */
Test(sidecar, rejects_body_size_mismatch_without_frame_content_size)
{
	size_t blen, r;
	uint8_t *body = base_body(&blen), *sc;
	ZSTD_CCtx *cx = ZSTD_createCCtx();
	size_t cap = SIDECAR_PREFIX + 3 + ZSTD_compressBound(blen);

	sc = malloc(cap);
	memcpy(sc, "SQPC\x08", 5);
	put_le32(sc + 9, 0);
	put_le32(sc + 13, 4096);
	sc[17] = 3;
	memcpy(sc + SIDECAR_PREFIX, "\"t\"", 3);
	ZSTD_CCtx_setParameter(cx, ZSTD_c_checksumFlag, 1);
	ZSTD_CCtx_setParameter(cx, ZSTD_c_contentSizeFlag, 0);
	ZSTD_CCtx_setPledgedSrcSize(cx, ZSTD_CONTENTSIZE_UNKNOWN);
	{
		ZSTD_inBuffer in = {body, blen, 0};
		ZSTD_outBuffer out = {sc + SIDECAR_PREFIX + 3,
				      cap - SIDECAR_PREFIX - 3, 0};

		r = ZSTD_compressStream2(cx, &out, &in, ZSTD_e_end);
		cr_assert_eq(r, 0);
		r = out.pos;
	}
	cr_assert_eq(ZSTD_getFrameContentSize(sc + SIDECAR_PREFIX + 3, r),
		     ZSTD_CONTENTSIZE_UNKNOWN);
	put_le32(sc + 5, (uint32_t)blen + 10);
	expect_reject(sc, SIDECAR_PREFIX + 3 + r, NULL, "body is");
	put_le32(sc + 5, (uint32_t)blen - 10);
	expect_reject(sc, SIDECAR_PREFIX + 3 + r, NULL, "longer than body_size");
	put_le32(sc + 5, (uint32_t)blen);
	{
		struct sidecar *s = NULL;
		char err[256];

		cr_assert_eq(sidecar_parse(&s, sc, SIDECAR_PREFIX + 3 + r, NULL,
					   err, sizeof(err)), 0, "%s", err);
		sidecar_free(s);
	}
	ZSTD_freeCCtx(cx);
	free(sc);
	free(body);
}

Test(sidecar, rejects_body_size_over_the_cap)
{
	size_t blen, len;
	uint8_t *body = base_body(&blen), *sc = wrap(body, blen, 4096, "\"t\"",
						     &len);
	struct sidecar_check chk = {.max_body = 100};

	expect_reject(sc, len, &chk, "exceeds the cap");
	put_le32(sc + 5, 0xffffffffu);
	put_le32(sc + 9, 0xffffffffu);
	expect_reject(sc, len, NULL, "exceeds the cap");
	free(sc);
	free(body);
}

Test(sidecar, rejects_non_ascending_page_numbers)
{
	size_t blen;
	uint8_t *body = base_body(&blen);
	struct layout l = layout_of(body);

	cr_assert_eq(l.n, 2);
	put_le32(body + l.pgno + 4, 1); /* 1, 1 */
	expect_body_reject(body, blen, "page numbers not strictly ascending");
	put_le32(body + l.pgno, 0);     /* page 0 */
	expect_body_reject(body, blen, "page numbers not strictly ascending");
	free(body);
}

Test(sidecar, rejects_decreasing_or_misplaced_offsets)
{
	size_t blen;
	uint8_t *body = base_body(&blen);
	struct layout l = layout_of(body);
	uint32_t o1 = le32(body + l.off + 4), o2 = le32(body + l.off + 8);

	put_le32(body + l.off + 4, o2 + 1); /* offsets[1] > offsets[2] */
	expect_body_reject(body, blen, "page offsets not 0-based");
	put_le32(body + l.off + 4, o1);
	put_le32(body + l.off, 1);          /* first offset not 0 */
	expect_body_reject(body, blen, "page offsets not 0-based");
	put_le32(body + l.off, 0);
	put_le32(body + l.off + 8, o2 - 1); /* last != blob length */
	expect_body_reject(body, blen, "last page offset");
	free(body);
}

Test(sidecar, rejects_a_chain_that_does_not_start_with_its_head)
{
	size_t blen;
	uint8_t *body = base_body(&blen);
	struct layout l = layout_of(body);

	cr_assert_gt(le32(body + l.c), 1);
	put_le32(body + l.cpages, le32(body + l.cpages) + 1000);
	expect_body_reject(body, blen, "does not start with its head");
	free(body);
}

Test(sidecar, rejects_unordered_chain_tables)
{
	size_t blen;
	uint8_t *body = base_body(&blen);
	struct layout l = layout_of(body);
	uint32_t h0 = le32(body + l.heads), c1 = le32(body + l.coff + 4);

	put_le32(body + l.heads, le32(body + l.heads + 4)); /* equal heads */
	expect_body_reject(body, blen, "chain heads not strictly ascending");
	put_le32(body + l.heads, h0);
	put_le32(body + l.coff + 4, 0);                     /* empty chain */
	expect_body_reject(body, blen, "chain offsets not 0-based");
	put_le32(body + l.coff + 4, c1);
	put_le32(body + l.c, 0xfffffff0u);                  /* huge count */
	expect_body_reject(body, blen, "chain table");
	free(body);
}

Test(sidecar, rejects_a_page_that_rebuilds_to_the_wrong_size)
{
	size_t blen;
	uint8_t *body = base_body(&blen);
	struct layout l = layout_of(body);
	size_t p2 = l.blob + le32(body + l.off + 4); /* stored page 2 */
	uint8_t save = body[p2 + 6];

	cr_assert_eq(body[p2], 2, "page 2 is an interior index page");
	body[p2 + 6] = (uint8_t)(save + 8); /* cca moves: the gap grows */
	expect_body_reject(body, blen, "rebuilds to");
	body[p2 + 6] = save;
	body[p2 + 5] = 0x00; /* cca < cpa_end */
	body[p2 + 6] = 0x01;
	expect_body_reject(body, blen, "bad B-tree header");
	free(body);
}

Test(sidecar, rejects_a_truncated_prefix)
{
	size_t blen, len, cut;
	uint8_t *body = base_body(&blen), *sc = wrap(body, blen, 4096, "\"t\"",
						     &len);

	for (cut = 0; cut < SIDECAR_PREFIX; cut++)
		expect_reject(sc, cut, NULL, "too short");
	expect_reject(sc, SIDECAR_PREFIX + 2, NULL, "db_tag runs past");
	free(sc);
	free(body);
}

Test(sidecar, rejects_an_unbound_sidecar)
{
	size_t blen, len;
	uint8_t *body = base_body(&blen), *sc = wrap(body, blen, 4096, "",
						     &len);
	struct sidecar_check chk = {.live_etag = ""};

	expect_reject(sc, len, NULL, "unbound");
	expect_reject(sc, len, &chk, "unbound");
	free(sc);
	free(body);
}

Test(sidecar, rejects_a_tag_that_is_not_the_live_etag)
{
	size_t blen, len;
	uint8_t *body = base_body(&blen), *sc = wrap(body, blen, 4096,
						     "\"abc\"", &len);
	struct sidecar_check chk = {.live_etag = "\"abd\""};
	struct sidecar_check unq = {.live_etag = "abc"};

	expect_reject(sc, len, &chk, "differs from the live ETag");
	/* compared opaquely: quotes included */
	expect_reject(sc, len, &unq, "differs from the live ETag");
	free(sc);
	free(body);
}

/* ---- interior-cell chains and chain tails ------------------------------ */

/* A key-ordered shard with every 50th value on a 2-4 page overflow chain
 * (so some of them end up in interior index cells). Returns the image. */
static uint8_t *big_cell_db(size_t *len)
{
	char *dir = sft_tmpdir(), *path = NULL, k[32];
	uint8_t *v = malloc(16384), *img;
	sqlite3 *s = NULL;
	sqlite3_stmt *q = NULL;
	int i;

	cr_assert(asprintf(&path, "%s/big.db", dir) > 0);
	cr_assert_eq(sqlite3_open(path, &s), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(s, "PRAGMA page_size = 4096; "
				  "CREATE TABLE kv (k BLOB PRIMARY KEY, v BLOB "
				  "NOT NULL) WITHOUT ROWID; BEGIN", NULL, NULL,
				  NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(s, "INSERT INTO kv VALUES (?, ?)", -1,
					&q, NULL), SQLITE_OK);
	for (i = 0; i < 6000; i++) {
		int n = i % 50 == 3 ? 6000 + (i * 37) % 8000 : 100;

		snprintf(k, sizeof(k), "key-%06d", i);
		memset(v, 'a' + i % 26, (size_t)n);
		sqlite3_bind_blob(q, 1, k, (int)strlen(k), SQLITE_STATIC);
		sqlite3_bind_blob(q, 2, v, n, SQLITE_STATIC);
		cr_assert_eq(sqlite3_step(q), SQLITE_DONE);
		sqlite3_reset(q);
	}
	sqlite3_finalize(q);
	cr_assert_eq(sqlite3_exec(s, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(s);
	img = sft_read_file(path, len);
	cr_assert(img);
	sft_rmrf(dir);
	free(dir);
	free(path);
	free(v);
	return img;
}

static struct sidecar *parse_body(const uint8_t *body, size_t blen)
{
	struct sidecar_check chk = {0};
	struct sidecar *sc = NULL;
	char err[256] = "";
	size_t len;
	uint8_t *w = wrap(body, blen, 4096, "\"t\"", &len);

	cr_assert_eq(sidecar_parse(&sc, w, len, &chk, err, sizeof(err)), 0,
		     "%s", err);
	free(w);
	return sc;
}

Test(sidecar, ichains_adds_exactly_the_interior_cells_chains)
{
	size_t dblen, b0len, b1len;
	uint8_t *db = big_cell_db(&dblen), *b0 = NULL, *b1 = NULL;
	uint8_t *want = calloc(dblen / 4096 + 1, 1), page[4096];
	uint32_t npg = (uint32_t)(dblen / 4096), pg, i, extra = 0;
	struct sidecar *s0, *s1;
	char err[256] = "";

	cr_assert_eq(sidecar_build_body(db, dblen, &b0, &b0len, err,
					sizeof(err)), 0, "%s", err);
	cr_assert_eq(sidecar_build_body_ex(db, dblen, SIDECAR_BUILD_ICHAINS,
					   &b1, &b1len, err, sizeof(err)), 0,
		     "%s", err);
	s0 = parse_body(b0, b0len);
	s1 = parse_body(b1, b1len);
	/* the chains interior index cells point to, found independently */
	for (pg = 2; pg <= npg; pg++) {
		const uint8_t *p = db + (size_t)(pg - 1) * 4096;
		uint32_t heads[64], lens[64], n, k;

		if (p[0] != 2)
			continue;
		n = sidecar_page_chains(p, pg, 4096, 4096, heads, lens, 64);
		for (k = 0; k < n; k++) {
			const uint32_t *cp;
			uint32_t cn, j;

			cr_assert_eq(sidecar_chain(s1, heads[k], &cp, &cn), 0);
			for (j = 0; j < cn; j++)
				want[cp[j]] = 1;
		}
	}
	for (pg = 1; pg <= npg; pg++)
		extra += want[pg];
	cr_assert_gt(extra, 0, "the test database has big interior cells");
	cr_assert_eq(sidecar_npages(s1), sidecar_npages(s0) + extra);
	cr_assert_eq(sidecar_nchains(s1), sidecar_nchains(s0));
	for (i = 0; i < sidecar_npages(s1); i++) {
		pg = sidecar_pgno(s1, i);
		cr_assert(sidecar_find(s0, pg) >= 0 || want[pg],
			  "page %u stored for no reason", pg);
		if (want[pg]) {
			/* overflow pages are stored whole */
			sidecar_read(s1, i, 0, 4096, page);
			cr_assert_eq(memcmp(page, db + (size_t)(pg - 1) * 4096,
					    4096), 0, "page %u", pg);
		}
	}
	sidecar_free(s0);
	sidecar_free(s1);
	free(b0);
	free(b1);
	free(want);
	free(db);
}

Test(sidecar, chain_ending_finds_every_contiguous_chain_by_its_tail)
{
	size_t dblen, blen;
	uint8_t *db = big_cell_db(&dblen), *b = NULL;
	uint32_t npg = (uint32_t)(dblen / 4096), pg, found = 0, head, n;
	struct sidecar *sc;
	char err[256] = "";

	cr_assert_eq(sidecar_build_body(db, dblen, &b, &blen, err,
					sizeof(err)), 0, "%s", err);
	sc = parse_body(b, blen);
	for (pg = 1; pg <= npg; pg++) {
		const uint32_t *cp;
		uint32_t cn, j;

		if (sidecar_chain(sc, pg, &cp, &cn) != 0)
			continue;
		for (j = 1; j < cn && cp[j] == cp[0] + j; j++)
			;
		if (j < cn)
			continue; /* not contiguous: no tail entry */
		cr_assert_eq(sidecar_chain_ending(sc, pg + cn - 1, &head, &n),
			     0, "chain %u", pg);
		cr_assert_eq(head, pg);
		cr_assert_eq(n, cn);
		if (cn > 1)
			cr_assert_eq(sidecar_chain_ending(sc, pg + cn - 2,
							  &head, &n), -1);
		found++;
	}
	cr_assert_gt(found, 10);
	cr_assert_eq(sidecar_chain_ending(sc, 1, &head, &n), -1);
	cr_assert_eq(sidecar_chain_ending(sc, npg + 100, &head, &n), -1);
	sidecar_free(sc);
	free(b);
	free(db);
}
