/*
 * test_vfs.c -- the range-read VFS over the real file:// store: every
 * fixture shard reads through sfv_db_open + sfv_db_connect exactly like a
 * plain local open (with no sidecar, with a bound sidecar, with the
 * fixture's own sidecar whose db_tag a file:// store never matches); raw
 * reads at random offsets are byte-identical; a cache of 3 pages still
 * answers right; 8 threads read at once; an object replaced mid-read fails
 * with SF_EHTTP_412 and never yields data of the new version; and the
 * request counters move as the design says: on a shard shaped like a
 * key-ordered build, opening is the one sidecar GET, a cold lookup one
 * ranged GET (two at most for a big value), warm lookups and warm
 * ascending re-reads none.
 */
#include <criterion/criterion.h>
#include <glob.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sf_test.h"
#include "sfvfs.h"
#include "sfvfs_int.h"
#include "sidecar.h"
#include "store.h"

TestSuite(vfs, .timeout = 300);

/* ---- helpers ----------------------------------------------------------- */

struct env {
	char *dir;
	struct store *st;
	struct sfv_cache *cache;
};

static void env_open(struct env *e, uint64_t budget, int threads)
{
	char err[256] = "", *url = NULL;

	e->dir = sft_tmpdir();
	cr_assert(asprintf(&url, "file://%s", e->dir) > 0);
	cr_assert_eq(store_open(&e->st, url, NULL, err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_eq(sfv_cache_new(&e->cache, budget, threads, err,
				   sizeof(err)), 0, "%s", err);
	free(url);
}

static void env_close(struct env *e)
{
	sfv_cache_free(e->cache);
	store_close(e->st);
	sft_rmrf(e->dir);
	free(e->dir);
}

static glob_t fixture_dbs(void)
{
	glob_t g;
	char *pat = sft_data("shardyfusion/*/snapshot/shards/*/*/*/shard.db");

	cr_assert_eq(glob(pat, 0, NULL, &g), 0);
	cr_assert_geq(g.gl_pathc, 13);
	free(pat);
	return g;
}

static char *utf8_shard(int n)
{
	char *rel = NULL, *p;

	cr_assert(asprintf(&rel, "shardyfusion/utf8/snapshot/shards/"
			   "run_id=b9aa90b271ef41d7ad4ae9f6e42e4aac/"
			   "db=%05d/attempt=00/shard.db", n) > 0);
	p = sft_data(rel);
	free(rel);
	return p;
}

/* Copies a local file into the env's directory as `name`; returns its
 * file:// URL (malloc'd). */
static char *put_copy(struct env *e, const char *src, const char *name)
{
	char *url = NULL, *path = NULL;
	size_t len;
	uint8_t *b = sft_read_file(src, &len);

	cr_assert(b, "%s", src);
	cr_assert(asprintf(&path, "%s/%s", e->dir, name) > 0);
	cr_assert_eq(sft_write_file(path, b, len), 0);
	cr_assert(asprintf(&url, "file://%s", path) > 0);
	free(b);
	free(path);
	return url;
}

/* Builds a sidecar for the object at db_url (local path src) bound to its
 * live ETag and stores it as `name`; returns its URL. */
static char *put_bound_sidecar(struct env *e, const char *src,
			       const char *db_url, const char *name)
{
	struct store_info info;
	char err[256] = "", *url = NULL;
	uint8_t *sc = NULL;
	size_t len;

	cr_assert_eq(store_head(e->st, db_url, &info, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(sfv_sidecar_build(src, info.etag, &sc, &len, err,
				       sizeof(err)), 0, "%s", err);
	cr_assert(asprintf(&url, "file://%s/%s", e->dir, name) > 0);
	cr_assert_eq(store_put(e->st, url, sc, len, NULL, NULL, err,
			       sizeof(err)), 0, "%s", err);
	free(sc);
	return url;
}

static struct sfv_db *db_open(struct env *e, const char *db_url,
			      const char *sc_url)
{
	struct sfv_open_spec spec = {.store = e->st, .cache = e->cache,
				     .db_url = db_url, .sidecar_url = sc_url};
	struct sfv_db *db = NULL;
	char err[256] = "";

	cr_assert_eq(sfv_db_open(&db, &spec, err, sizeof(err)), 0, "%s", err);
	return db;
}

/* A digest of `SELECT k, v FROM kv ORDER BY k` (count + running hash). */
struct digest {
	uint64_t rows, h;
};

static void mix(uint64_t *h, const void *p, size_t n)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		*h = (*h ^ b[i]) * 0x100000001b3ull;
	*h = (*h ^ n) * 0x100000001b3ull;
}

static int digest_of(sqlite3 *s, struct digest *d)
{
	sqlite3_stmt *q = NULL;
	int rc;

	d->rows = 0;
	d->h = 0xcbf29ce484222325ull;
	rc = sqlite3_prepare_v2(s, "SELECT k, v FROM kv ORDER BY k", -1, &q,
				NULL);
	if (rc != SQLITE_OK)
		return rc;
	for (;;) {
		rc = sqlite3_step(q);
		if (rc != SQLITE_ROW)
			break;
		mix(&d->h, sqlite3_column_blob(q, 0),
		    (size_t)sqlite3_column_bytes(q, 0));
		mix(&d->h, sqlite3_column_blob(q, 1),
		    (size_t)sqlite3_column_bytes(q, 1));
		d->rows++;
	}
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static struct digest local_digest(const char *path)
{
	sqlite3 *s = NULL;
	struct digest d;
	char *uri = NULL;

	cr_assert(asprintf(&uri, "file:%s?immutable=1", path) > 0);
	cr_assert_eq(sqlite3_open_v2(uri, &s, SQLITE_OPEN_READONLY |
					      SQLITE_OPEN_URI, NULL),
		     SQLITE_OK);
	cr_assert_eq(digest_of(s, &d), SQLITE_OK);
	sqlite3_close(s);
	free(uri);
	return d;
}

static struct digest vfs_digest(struct sfv_db *db)
{
	sqlite3 *s = NULL;
	struct digest d;
	char err[256] = "";
	int rc;

	cr_assert_eq(sfv_db_connect(db, &s, err, sizeof(err)), 0, "%s", err);
	rc = digest_of(s, &d);
	if (rc != SQLITE_OK) {
		sfv_last_error(err, sizeof(err));
		cr_assert_fail("query: %s (%s)", sqlite3_errmsg(s), err);
	}
	sqlite3_close(s);
	return d;
}

/* Keys (and value lengths) of a local shard, in key order. */
struct kv {
	uint8_t *k;
	size_t klen;
	int vlen;
};

static struct kv *local_keys(const char *path, size_t *n)
{
	sqlite3 *s = NULL;
	sqlite3_stmt *q = NULL;
	struct kv *a = NULL;
	size_t cap = 0;

	*n = 0;
	cr_assert_eq(sqlite3_open_v2(path, &s, SQLITE_OPEN_READONLY, NULL),
		     SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(s, "SELECT k, length(v) FROM kv "
					"ORDER BY k", -1, &q, NULL), SQLITE_OK);
	while (sqlite3_step(q) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 256;
			a = realloc(a, cap * sizeof(*a));
		}
		a[*n].klen = (size_t)sqlite3_column_bytes(q, 0);
		a[*n].k = malloc(a[*n].klen + 1);
		memcpy(a[*n].k, sqlite3_column_blob(q, 0), a[*n].klen);
		a[*n].vlen = sqlite3_column_int(q, 1);
		(*n)++;
	}
	sqlite3_finalize(q);
	sqlite3_close(s);
	return a;
}

static void free_keys(struct kv *a, size_t n)
{
	while (n > 0)
		free(a[--n].k);
	free(a);
}

/* Looks k up; returns SQLITE_ROW with a hash of v in *h, or an error. */
static int lookup(sqlite3_stmt *q, const struct kv *k, uint64_t *h,
		  int *vlen)
{
	int rc;

	sqlite3_reset(q);
	sqlite3_bind_blob(q, 1, k->k, (int)k->klen, SQLITE_STATIC);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		*h = 0xcbf29ce484222325ull;
		*vlen = sqlite3_column_bytes(q, 0);
		mix(h, sqlite3_column_blob(q, 0), (size_t)*vlen);
	}
	return rc;
}

/* ---- correctness -------------------------------------------------------- */

Test(vfs, every_fixture_shard_reads_like_a_local_open)
{
	glob_t g = fixture_dbs();
	struct env e;
	size_t i;

	env_open(&e, 0, 2);
	for (i = 0; i < g.gl_pathc; i++) {
		char *url = NULL;
		struct digest want = local_digest(g.gl_pathv[i]), got;
		struct sfv_db *db;

		cr_assert(asprintf(&url, "file://%s", g.gl_pathv[i]) > 0);
		db = db_open(&e, url, NULL);
		cr_assert_not(sfv_db_has_sidecar(db));
		got = vfs_digest(db);
		cr_assert_eq(got.rows, want.rows, "%s", g.gl_pathv[i]);
		cr_assert_eq(got.h, want.h, "%s", g.gl_pathv[i]);
		sfv_db_close(db);
		free(url);
	}
	globfree(&g);
	env_close(&e);
}

Test(vfs, every_fixture_shard_reads_right_with_a_bound_sidecar)
{
	glob_t g = fixture_dbs();
	struct env e;
	size_t i;

	env_open(&e, 0, 2);
	for (i = 0; i < g.gl_pathc; i++) {
		char name[32];
		struct digest want = local_digest(g.gl_pathv[i]), got;
		struct sfv_db *db;
		char *url, *sc;

		snprintf(name, sizeof(name), "s%zu.db", i);
		url = put_copy(&e, g.gl_pathv[i], name);
		snprintf(name, sizeof(name), "s%zu.sidecar", i);
		sc = put_bound_sidecar(&e, g.gl_pathv[i], url, name);
		db = db_open(&e, url, sc);
		cr_assert(sfv_db_has_sidecar(db));
		got = vfs_digest(db);
		cr_assert_eq(got.rows, want.rows);
		cr_assert_eq(got.h, want.h);
		cr_assert(sfv_db_has_sidecar(db), "still bound after reads");
		sfv_db_close(db);
		free(url);
		free(sc);
	}
	globfree(&g);
	env_close(&e);
}

/* The fixtures' sidecars name S3 MD5 ETags; a file:// store synthesises
 * its own, so the binding fails on the first leaf read. The VFS declines
 * the sidecar, checks that what it served equals the live pages, and
 * carries on: answers stay right. */
Test(vfs, fixture_sidecar_with_a_foreign_db_tag_is_declined_safely)
{
	struct env e;
	char *path = utf8_shard(2), *url = NULL, *sc = NULL;
	struct digest want = local_digest(path), got;
	struct sfv_db *db;

	env_open(&e, 0, 0);
	cr_assert(asprintf(&url, "file://%s", path) > 0);
	cr_assert(asprintf(&sc, "%.*s/shard.sidecar",
			   (int)(strrchr(url, '/') - url), url) > 0);
	db = db_open(&e, url, sc);
	cr_assert(sfv_db_has_sidecar(db));
	got = vfs_digest(db);
	cr_assert_eq(got.rows, want.rows);
	cr_assert_eq(got.h, want.h);
	cr_assert_not(sfv_db_has_sidecar(db));
	cr_assert_str_neq(sfv_db_etag(db), "\"6a6d7c452e2bde65df5738705476531f\"");
	sfv_db_close(db);
	free(url);
	free(sc);
	free(path);
	env_close(&e);
}

/* A sidecar bound to the right tag but describing another database must
 * never feed SQLite: the pages it served differ, so the read fails. */
Test(vfs, sidecar_of_another_database_never_yields_wrong_rows)
{
	struct env e;
	char *p0 = utf8_shard(0), *p1 = utf8_shard(1), *url, *sc = NULL;
	char err[256] = "";
	struct store_info info;
	uint8_t *b = NULL;
	size_t len;
	struct sfv_db *db;
	sqlite3 *s = NULL;
	struct digest d;
	int rc;

	env_open(&e, 0, 0);
	url = put_copy(&e, p0, "a.db");
	cr_assert_eq(store_head(e.st, url, &info, err, sizeof(err)), 0);
	/* a sidecar of shard 1, but claiming shard 0's live ETag */
	cr_assert_eq(sfv_sidecar_build(p1, "\"other\"", &b, &len, err,
				       sizeof(err)), 0, "%s", err);
	cr_assert(asprintf(&sc, "file://%s/a.sidecar", e.dir) > 0);
	cr_assert_eq(store_put(e.st, sc, b, len, NULL, NULL, err,
			       sizeof(err)), 0);
	db = db_open(&e, url, sc);
	cr_assert_eq(sfv_db_connect(db, &s, err, sizeof(err)), 0);
	sfv_clear_error();
	rc = digest_of(s, &d);
	if (rc == SQLITE_OK) {
		/* only possible if every page it served was identical */
		struct digest want = local_digest(p0);

		cr_assert_eq(d.h, want.h);
	} else {
		cr_assert_eq(sfv_last_error(NULL, 0), SF_EHTTP_412);
	}
	sqlite3_close(s);
	sfv_db_close(db);
	free(b);
	free(url);
	free(sc);
	free(p0);
	free(p1);
	env_close(&e);
}

Test(vfs, random_reads_are_byte_identical)
{
	struct env e;
	char *path = utf8_shard(0), *url, *sc, err[256];
	size_t flen, i;
	uint8_t *file = sft_read_file(path, &flen), *buf = malloc(70000);
	struct sfv_db *dbs[2];
	int k;

	env_open(&e, 64 * 4096, 2);
	url = put_copy(&e, path, "r.db");
	sc = put_bound_sidecar(&e, path, url, "r.sidecar");
	dbs[0] = db_open(&e, url, NULL);
	dbs[1] = db_open(&e, url, sc);
	cr_assert_eq(sfv_db_size(dbs[0]), flen);
	cr_assert_eq(sfv_db_size(dbs[1]), flen);
	cr_assert_eq(sfv_db_page_size(dbs[1]), 4096);
	srand(7);
	for (k = 0; k < 2; k++) {
		for (i = 0; i < 400; i++) {
			uint64_t off = (uint64_t)rand() % (flen + 5000);
			size_t len = (size_t)rand() % (i % 10 == 0 ? 70000 : 9000);
			size_t got = 0, want;

			memset(buf, 0xee, len);
			cr_assert_eq(sfv_db_read(dbs[k], off, len, buf, &got,
						 err, sizeof(err)), 0, "%s", err);
			want = off >= flen ? 0 : (off + len > flen ? flen - off
								   : len);
			cr_assert_eq(got, want, "read %zu at %llu", len,
				     (unsigned long long)off);
			cr_assert_eq(memcmp(buf, file + off, got), 0,
				     "bytes at %llu+%zu", (unsigned long long)off,
				     len);
			for (size_t z = got; z < len; z++)
				cr_assert_eq(buf[z], 0, "zero fill");
		}
	}
	sfv_db_close(dbs[0]);
	sfv_db_close(dbs[1]);
	free(buf);
	free(file);
	free(url);
	free(sc);
	free(path);
	env_close(&e);
}

Test(vfs, a_three_page_cache_still_answers_right)
{
	struct env e;
	char *path = utf8_shard(3), *url, *sc;
	struct digest want = local_digest(path), got;
	struct sfv_stats s;
	struct sfv_db *db;

	env_open(&e, 3 * 4096, 2);
	url = put_copy(&e, path, "t.db");
	sc = put_bound_sidecar(&e, path, url, "t.sidecar");
	db = db_open(&e, url, NULL);
	got = vfs_digest(db);
	cr_assert_eq(got.rows, want.rows);
	cr_assert_eq(got.h, want.h);
	sfv_db_close(db);
	db = db_open(&e, url, sc);
	got = vfs_digest(db);
	cr_assert_eq(got.h, want.h);
	sfv_cache_stats(e.cache, &s);
	cr_assert_leq(s.cache_bytes, 3 * 4096);
	cr_assert_eq(s.cache_budget, 3 * 4096);
	sfv_db_close(db);
	sfv_cache_stats(e.cache, &s);
	cr_assert_eq(s.cache_bytes, 0, "closing drops the pages");
	free(url);
	free(sc);
	free(path);
	env_close(&e);
}

Test(vfs, a_budget_smaller_than_a_page_reads_uncached)
{
	struct env e;
	char *path = utf8_shard(1), *url;
	struct digest want = local_digest(path), got;
	struct sfv_stats s;
	struct sfv_db *db;

	env_open(&e, 1000, 0);
	url = put_copy(&e, path, "u.db");
	db = db_open(&e, url, NULL);
	got = vfs_digest(db);
	cr_assert_eq(got.h, want.h);
	sfv_cache_stats(e.cache, &s);
	cr_assert_eq(s.cache_bytes, 0);
	sfv_db_close(db);
	free(url);
	free(path);
	env_close(&e);
}

/* ---- concurrency -------------------------------------------------------- */

struct worker {
	struct sfv_db *db;
	const struct kv *keys;
	const uint64_t *hashes;
	size_t n;
	unsigned seed;
	int failures;
	char why[512];
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	sqlite3 *s = NULL;
	sqlite3_stmt *q = NULL;
	char err[256];
	int i;

	if (sfv_db_connect(w->db, &s, err, sizeof(err)) != 0 ||
	    sqlite3_prepare_v2(s, "SELECT v FROM kv WHERE k = ?", -1, &q,
			       NULL) != SQLITE_OK) {
		w->failures++;
		snprintf(w->why, sizeof(w->why), "connect: %s", err);
		goto out;
	}
	for (i = 0; i < 300; i++) {
		size_t j = (size_t)rand_r(&w->seed) % w->n;
		uint64_t h = 0;
		int vlen = 0, rc = lookup(q, &w->keys[j], &h, &vlen);

		if (rc != SQLITE_ROW || h != w->hashes[j] ||
		    vlen != w->keys[j].vlen) {
			w->failures++;
			sfv_last_error(err, sizeof(err));
			snprintf(w->why, sizeof(w->why), "key %zu: rc %d %s",
				 j, rc, err);
		}
	}
out:
	sqlite3_finalize(q);
	sqlite3_close(s);
	return NULL;
}

static void run_threads(uint64_t budget, int pf_threads, int with_sidecar)
{
	struct env e;
	char *path = utf8_shard(0), *url, *sc;
	struct worker w[8];
	pthread_t th[8];
	uint64_t *hashes;
	struct kv *keys;
	size_t n, i;
	struct sfv_db *db;
	sqlite3 *s = NULL;
	sqlite3_stmt *q = NULL;

	env_open(&e, budget, pf_threads);
	url = put_copy(&e, path, "m.db");
	sc = put_bound_sidecar(&e, path, url, "m.sidecar");
	keys = local_keys(path, &n);
	hashes = calloc(n, sizeof(*hashes));
	/* expected values, from a plain local open */
	cr_assert_eq(sqlite3_open_v2(path, &s, SQLITE_OPEN_READONLY, NULL),
		     SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(s, "SELECT v FROM kv WHERE k = ?", -1,
					&q, NULL), SQLITE_OK);
	for (i = 0; i < n; i++) {
		int vlen;

		cr_assert_eq(lookup(q, &keys[i], &hashes[i], &vlen),
			     SQLITE_ROW);
	}
	sqlite3_finalize(q);
	sqlite3_close(s);

	db = db_open(&e, url, with_sidecar ? sc : NULL);
	for (i = 0; i < 8; i++) {
		w[i] = (struct worker){.db = db, .keys = keys,
				       .hashes = hashes, .n = n,
				       .seed = (unsigned)i * 7919 + 1};
		cr_assert_eq(pthread_create(&th[i], NULL, worker_main, &w[i]),
			     0);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		cr_expect_eq(w[i].failures, 0, "thread %zu: %d failures (%s)",
			     i, w[i].failures, w[i].why);
	}
	sfv_db_close(db);
	free_keys(keys, n);
	free(hashes);
	free(url);
	free(sc);
	free(path);
	env_close(&e);
}

Test(vfs, eight_threads_read_concurrently)
{
	run_threads(0, 2, 1);
}

Test(vfs, eight_threads_share_a_tiny_cache)
{
	run_threads(3 * 4096, 2, 0);
}

Test(vfs, eight_threads_without_prefetch_or_sidecar)
{
	run_threads(16 * 4096, 0, 0);
}

/* ---- identity ----------------------------------------------------------- */

Test(vfs, an_object_replaced_mid_read_fails_with_412_never_mixes)
{
	struct env e;
	char *p0 = utf8_shard(0), *p2 = utf8_shard(2), *url, err[256] = "";
	struct kv *keys;
	size_t n, i, ok = 0, len;
	uint8_t *other;
	struct sfv_db *db;
	sqlite3 *s = NULL, *ls = NULL;
	sqlite3_stmt *q = NULL, *lq = NULL;
	int saw412 = 0;

	env_open(&e, 0, 0);
	url = put_copy(&e, p0, "x.db");
	keys = local_keys(p0, &n);
	db = db_open(&e, url, NULL);
	cr_assert_eq(sfv_db_connect(db, &s, err, sizeof(err)), 0);
	cr_assert_eq(sqlite3_prepare_v2(s, "SELECT v FROM kv WHERE k = ?", -1,
					&q, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_open_v2(p0, &ls, SQLITE_OPEN_READONLY, NULL),
		     SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(ls, "SELECT v FROM kv WHERE k = ?", -1,
					&lq, NULL), SQLITE_OK);
	/* one good lookup, then the object is replaced in the store */
	{
		uint64_t h, lh;
		int vlen;

		cr_assert_eq(lookup(q, &keys[0], &h, &vlen), SQLITE_ROW);
		cr_assert_eq(lookup(lq, &keys[0], &lh, &vlen), SQLITE_ROW);
		cr_assert_eq(h, lh);
	}
	other = sft_read_file(p2, &len);
	cr_assert_eq(store_put(e.st, url, other, len, NULL, NULL, err,
			       sizeof(err)), 0, "%s", err);
	for (i = 0; i < n; i++) {
		uint64_t h = 0, lh = 0;
		int vlen, rc;

		sfv_clear_error();
		rc = lookup(q, &keys[i], &h, &vlen);
		if (rc == SQLITE_ROW) {
			/* only pages cached before the change: old version */
			cr_assert_eq(lookup(lq, &keys[i], &lh, &vlen),
				     SQLITE_ROW);
			cr_assert_eq(h, lh, "key %zu came from the new object",
				     i);
			ok++;
			continue;
		}
		cr_assert_neq(rc, SQLITE_DONE, "an error must not read as "
			      "not found");
		cr_assert_eq(sfv_last_error(err, sizeof(err)), SF_EHTTP_412,
			     "rc %d: %s", rc, err);
		saw412++;
	}
	cr_assert_gt(saw412, 0, "the change was noticed");
	cr_log_info("%zu lookups answered from cached old pages, %d failed "
		    "with 412", ok, saw412);
	/* the raw read path says the same */
	{
		uint8_t b[4096];
		size_t got;

		cr_assert_eq(sfv_db_read(db, 40 * 4096, 4096, b, &got, err,
					 sizeof(err)), SF_EHTTP_412);
	}
	sqlite3_finalize(q);
	sqlite3_close(s);
	sqlite3_finalize(lq);
	sqlite3_close(ls);
	sfv_db_close(db);
	free_keys(keys, n);
	free(other);
	free(url);
	free(p0);
	free(p2);
	env_close(&e);
}

Test(vfs, a_missing_object_fails_to_open_with_404)
{
	struct env e;
	struct sfv_open_spec spec = {0};
	struct sfv_db *db = NULL;
	char *url = NULL, err[256] = "";

	env_open(&e, 0, 0);
	cr_assert(asprintf(&url, "file://%s/nope.db", e.dir) > 0);
	spec.store = e.st;
	spec.cache = e.cache;
	spec.db_url = url;
	cr_assert_eq(sfv_db_open(&db, &spec, err, sizeof(err)), SF_EHTTP_404);
	cr_assert_null(db);
	free(url);
	env_close(&e);
}

Test(vfs, a_file_that_is_not_sqlite_fails_to_open)
{
	struct env e;
	struct sfv_open_spec spec = {0};
	struct sfv_db *db = NULL;
	char *url, *src = NULL, err[256] = "";

	env_open(&e, 0, 0);
	cr_assert(asprintf(&src, "%s/junk", e.dir) > 0);
	cr_assert_eq(sft_write_file(src, "hello, not a database", 21), 0);
	url = put_copy(&e, src, "junk.db");
	spec.store = e.st;
	spec.cache = e.cache;
	spec.db_url = url;
	cr_assert_eq(sfv_db_open(&db, &spec, err, sizeof(err)), SF_ECORRUPT);
	free(url);
	free(src);
	env_close(&e);
}

Test(vfs, a_corrupt_sidecar_is_ignored)
{
	struct env e;
	char *path = utf8_shard(1), *url, *sc = NULL, err[256] = "";
	struct digest want = local_digest(path), got;
	struct sfv_db *db;

	env_open(&e, 0, 0);
	url = put_copy(&e, path, "c.db");
	cr_assert(asprintf(&sc, "file://%s/c.sidecar", e.dir) > 0);
	cr_assert_eq(store_put(e.st, sc, "SQPC\x08garbage", 12, NULL, NULL,
			       err, sizeof(err)), 0);
	db = db_open(&e, url, sc);
	cr_assert_not(sfv_db_has_sidecar(db));
	got = vfs_digest(db);
	cr_assert_eq(got.h, want.h);
	sfv_db_close(db);
	free(sc);
	sc = NULL;
	/* a missing sidecar too */
	cr_assert(asprintf(&sc, "file://%s/none.sidecar", e.dir) > 0);
	db = db_open(&e, url, sc);
	cr_assert_not(sfv_db_has_sidecar(db));
	sfv_db_close(db);
	free(sc);
	free(url);
	free(path);
	env_close(&e);
}

/* ---- counters ----------------------------------------------------------- */

/* The first key (in key order) whose value is small, and one stored on an
 * overflow chain. */
static void pick_keys(const struct kv *keys, size_t n, size_t *small,
		      size_t *large)
{
	size_t i;

	*small = *large = n;
	for (i = 0; i < n; i++) {
		if (*small == n && keys[i].vlen < 100 && i > n / 2)
			*small = i;
		if (*large == n && keys[i].vlen > 9000 && i > n / 2)
			*large = i;
	}
	cr_assert_lt(*small, n);
	cr_assert_lt(*large, n);
}

static char *u64_shard(int n)
{
	char *rel = NULL, *p;

	cr_assert(asprintf(&rel, "shardyfusion/u64/snapshot/shards/"
			   "run_id=9e08d2f841e14314bf89b9a27b8b9ee6/"
			   "db=%05d/attempt=00/shard.db", n) > 0);
	p = sft_data(rel);
	free(rel);
	return p;
}

/* u64 shards have no overflow pages: a cold lookup reads exactly one leaf */
Test(vfs, a_cold_lookup_with_a_sidecar_costs_one_ranged_get)
{
	struct env e;
	char *path = u64_shard(2), *url, *sc, err[256];
	struct store_stats before, after;
	struct kv *keys;
	size_t n, i;
	struct sfv_db *db;
	sqlite3 *s = NULL;
	sqlite3_stmt *q = NULL;
	uint64_t h;
	int vlen;

	env_open(&e, 0, 0); /* no readahead: exact counts */
	url = put_copy(&e, path, "k.db");
	sc = put_bound_sidecar(&e, path, url, "k.sidecar");
	keys = local_keys(path, &n);
	store_stats(e.st, &before);
	db = db_open(&e, url, sc);
	store_stats(e.st, &after);
	cr_assert_eq(after.get_requests - before.get_requests, 1,
		     "open = one GET of the sidecar");
	cr_assert_eq(after.range_requests - before.range_requests, 0);
	cr_assert_eq(after.head_requests - before.head_requests, 0);
	cr_assert_eq(sfv_db_connect(db, &s, err, sizeof(err)), 0);
	cr_assert_eq(sqlite3_prepare_v2(s, "SELECT v FROM kv WHERE k = ?", -1,
					&q, NULL), SQLITE_OK);
	for (i = 0; i < n; i += n / 5) {
		uint64_t r0;

		store_stats(e.st, &before);
		r0 = before.range_requests;
		cr_assert_eq(lookup(q, &keys[i], &h, &vlen), SQLITE_ROW);
		store_stats(e.st, &after);
		/* 0 when an earlier lookup already fetched that leaf */
		cr_assert_leq(after.range_requests - r0, 1, "key %zu", i);
		cr_assert_eq(after.get_requests, before.get_requests);
	}
	store_stats(e.st, &after);
	cr_assert_geq(after.range_requests, 1);
	sqlite3_finalize(q);
	sqlite3_close(s);
	sfv_db_close(db);
	free_keys(keys, n);
	free(url);
	free(sc);
	free(path);
	env_close(&e);
}

/* utf8 shards spill values onto overflow chains, and SQLite's binary search
 * reads the chains of the cells it compares: the chains next to the leaf
 * come in the leaf's GET, any other one whole when its head is read. */
Test(vfs, cold_lookups_with_overflow_stay_cheap)
{
	struct env e;
	char *path = utf8_shard(0), *url, *sc, err[256];
	struct store_stats before, after;
	struct sfv_stats vs;
	struct kv *keys;
	size_t n, small, large;
	struct sfv_db *db;
	sqlite3 *s = NULL;
	sqlite3_stmt *q = NULL;
	uint64_t h;
	int vlen;

	env_open(&e, 0, 2);
	url = put_copy(&e, path, "k.db");
	sc = put_bound_sidecar(&e, path, url, "k.sidecar");
	keys = local_keys(path, &n);
	pick_keys(keys, n, &small, &large);

	store_stats(e.st, &before);
	db = db_open(&e, url, sc);
	store_stats(e.st, &after);
	cr_assert_eq(after.get_requests - before.get_requests, 1,
		     "open = one GET of the sidecar");
	cr_assert_eq(after.range_requests - before.range_requests, 0);
	cr_assert_eq(after.head_requests - before.head_requests, 0);

	cr_assert_eq(sfv_db_connect(db, &s, err, sizeof(err)), 0);
	cr_assert_eq(sqlite3_prepare_v2(s, "SELECT v FROM kv WHERE k = ?", -1,
					&q, NULL), SQLITE_OK);
	store_stats(e.st, &before);
	cr_assert_eq(lookup(q, &keys[small], &h, &vlen), SQLITE_ROW);
	store_stats(e.st, &after);
	cr_log_info("a small value next to overflowing cells took %llu "
		    "ranged GETs", (unsigned long long)(after.range_requests -
							 before.range_requests));
	cr_assert_eq(after.range_requests - before.range_requests, 1);
	cr_assert_eq(after.get_requests - before.get_requests, 0);

	store_stats(e.st, &before);
	cr_assert_eq(lookup(q, &keys[large], &h, &vlen), SQLITE_ROW);
	cr_assert_eq(vlen, keys[large].vlen);
	store_stats(e.st, &after);
	cr_assert_leq(after.range_requests - before.range_requests, 2,
		      "leaf + overflow chain: two round trips at most");
	cr_log_info("a %d-byte value took %llu ranged GETs", vlen,
		    (unsigned long long)(after.range_requests -
					 before.range_requests));

	/* warm: no request at all */
	store_stats(e.st, &before);
	cr_assert_eq(lookup(q, &keys[small], &h, &vlen), SQLITE_ROW);
	cr_assert_eq(lookup(q, &keys[large], &h, &vlen), SQLITE_ROW);
	store_stats(e.st, &after);
	cr_assert_eq(after.range_requests, before.range_requests);
	sfv_cache_stats(e.cache, &vs);
	cr_assert_gt(vs.sidecar_hits, 0);
	cr_assert_gt(vs.pinned_bytes, 0);
	cr_assert_gt(vs.fetches, 0);
	cr_assert_eq(vs.inflight_fetches, 0);
	cr_assert_eq(vs.inflight_bytes, 0);

	sqlite3_finalize(q);
	sqlite3_close(s);
	sfv_db_close(db);
	sfv_cache_stats(e.cache, &vs);
	cr_assert_eq(vs.pinned_bytes, 0);
	free_keys(keys, n);
	free(url);
	free(sc);
	free(path);
	env_close(&e);
}

Test(vfs, without_a_sidecar_open_is_one_ranged_get_and_lookups_cost_more)
{
	struct env e;
	char *path = utf8_shard(0), *url, err[256];
	struct store_stats before, after;
	struct kv *keys;
	size_t n, small, large;
	struct sfv_db *db;
	sqlite3 *s = NULL;
	sqlite3_stmt *q = NULL;
	uint64_t h;
	int vlen;

	env_open(&e, 0, 0);
	url = put_copy(&e, path, "w.db");
	keys = local_keys(path, &n);
	pick_keys(keys, n, &small, &large);
	store_stats(e.st, &before);
	db = db_open(&e, url, NULL);
	store_stats(e.st, &after);
	cr_assert_eq(after.range_requests - before.range_requests, 1);
	cr_assert_eq(after.get_requests + after.head_requests,
		     before.get_requests + before.head_requests);
	cr_assert_eq(sfv_db_connect(db, &s, err, sizeof(err)), 0);
	cr_assert_eq(sqlite3_prepare_v2(s, "SELECT v FROM kv WHERE k = ?", -1,
					&q, NULL), SQLITE_OK);
	store_stats(e.st, &before);
	cr_assert_eq(lookup(q, &keys[large], &h, &vlen), SQLITE_ROW);
	store_stats(e.st, &after);
	cr_assert_geq(after.range_requests - before.range_requests, 1);
	sqlite3_finalize(q);
	sqlite3_close(s);
	sfv_db_close(db);
	free_keys(keys, n);
	free(url);
	free(path);
	env_close(&e);
}

Test(vfs, a_key_listing_triggers_readahead)
{
	struct env e;
	char *path = utf8_shard(0), *url;
	struct digest want = local_digest(path), got;
	struct sfv_stats vs;
	struct sfv_db *db;

	env_open(&e, 0, 2);
	url = put_copy(&e, path, "l.db");
	db = db_open(&e, url, NULL);
	got = vfs_digest(db);
	cr_assert_eq(got.h, want.h);
	sfv_cache_stats(e.cache, &vs);
	cr_assert_gt(vs.prefetch_issued, 0);
	cr_log_info("listing: %llu fetches, %llu prefetches, %llu prefetch "
		    "hits", (unsigned long long)vs.fetches,
		    (unsigned long long)vs.prefetch_issued,
		    (unsigned long long)vs.prefetch_hits);
	sfv_db_close(db);
	free(url);
	free(path);
	env_close(&e);
}

Test(vfs, vfs_reports_its_name_and_refuses_writes)
{
	struct env e;
	char *path = utf8_shard(1), *url, err[256], *name = NULL;
	struct sfv_db *db;
	sqlite3 *s = NULL;

	env_open(&e, 0, 0);
	url = put_copy(&e, path, "n.db");
	db = db_open(&e, url, NULL);
	cr_assert_eq(sfv_db_connect(db, &s, err, sizeof(err)), 0);
	cr_assert_eq(sqlite3_file_control(s, "main", SQLITE_FCNTL_VFSNAME,
					  &name), SQLITE_OK);
	cr_assert_str_eq(name, "shardyfs");
	sqlite3_free(name);
	cr_assert_neq(sqlite3_exec(s, "INSERT INTO kv VALUES (x'00', x'00')",
				   NULL, NULL, NULL), SQLITE_OK);
	/* a sort big enough for a temp b-tree works (delegated temp files) */
	cr_assert_eq(sqlite3_exec(s, "SELECT v FROM kv ORDER BY v DESC", NULL,
				  NULL, NULL), SQLITE_OK);
	sqlite3_close(s);
	sfv_db_close(db);
	free(url);
	free(path);
	env_close(&e);
}

/* ---- a builder-shaped shard: request counts per cold lookup ------------ */

#define GEN_KEYS 20000

static int gen_big(int i)
{
	return i % 100 == 7;
}

static int gen_len(int i)
{
	return gen_big(i) ? 9000 + (i * 7919) % 4000 : 90 + i % 21;
}

static void gen_value(int i, uint8_t *buf)
{
	uint32_t x = (uint32_t)i * 2654435761u + 1;
	int k;

	for (k = 0; k < gen_len(i); k++) {
		x = x * 1103515245u + 12345u;
		buf[k] = (uint8_t)('a' + (x >> 16) % 26);
	}
}

/*
 * Writes a shard shaped like the benchmark's (and like any builder that
 * inserts in key order): GEN_KEYS keys "user-%07d" in a WITHOUT ROWID kv
 * table, 90-110 byte values, and every hundredth value 9-13 KiB long (on
 * overflow chains, some of them under interior cells).
 */
static void make_shard(const char *path)
{
	sqlite3 *s = NULL;
	sqlite3_stmt *q = NULL;
	uint8_t *v = malloc(16384);
	char k[32];
	int i;

	cr_assert_eq(sqlite3_open(path, &s), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(s, "PRAGMA page_size = 4096; "
				  "PRAGMA journal_mode = OFF; "
				  "CREATE TABLE kv (k BLOB PRIMARY KEY, v BLOB "
				  "NOT NULL) WITHOUT ROWID; BEGIN", NULL, NULL,
				  NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(s, "INSERT INTO kv VALUES (?, ?)", -1,
					&q, NULL), SQLITE_OK);
	for (i = 0; i < GEN_KEYS; i++) {
		snprintf(k, sizeof(k), "user-%07d", i);
		gen_value(i, v);
		sqlite3_bind_blob(q, 1, k, (int)strlen(k), SQLITE_STATIC);
		sqlite3_bind_blob(q, 2, v, gen_len(i), SQLITE_STATIC);
		cr_assert_eq(sqlite3_step(q), SQLITE_DONE);
		sqlite3_reset(q);
	}
	sqlite3_finalize(q);
	cr_assert_eq(sqlite3_exec(s, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(s);
	free(v);
}

/* Looks up generated key i and checks its value; returns SQLITE_ROW. */
static int gen_lookup(sqlite3_stmt *q, int i)
{
	static _Thread_local uint8_t want[16384];
	char k[32];
	int rc;

	snprintf(k, sizeof(k), "user-%07d", i);
	sqlite3_reset(q);
	sqlite3_bind_blob(q, 1, k, (int)strlen(k), SQLITE_TRANSIENT);
	rc = sqlite3_step(q);
	if (rc != SQLITE_ROW)
		return rc;
	gen_value(i, want);
	if (sqlite3_column_bytes(q, 0) != gen_len(i) ||
	    memcmp(sqlite3_column_blob(q, 0), want, (size_t)gen_len(i)) != 0)
		return SQLITE_CORRUPT;
	return rc;
}

static uint32_t be32_of(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint64_t ranged(struct store *st)
{
	struct store_stats s;

	store_stats(st, &s);
	return s.range_requests;
}

static uint64_t whole(struct store *st)
{
	struct store_stats s;

	store_stats(st, &s);
	return s.get_requests + s.head_requests + s.list_requests;
}

/*
 * Issue 3's request targets, on fresh caches: opening the shard is the one
 * sidecar GET (the interior cells' overflow chains are in it), a cold
 * lookup of a small value is one ranged GET (the chains of the leaf's
 * cells that its binary search compares come in that GET when they sit
 * next to the leaf), a cold lookup of a big value at most two; and a second
 * connection re-reading those keys issues no request at all.
 */
static void one_request_per_cold_lookup(int pf_threads)
{
	struct env e;
	char *path, *url, *sc, err[256];
	uint64_t seed = 0x5eed + (uint64_t)pf_threads, big_total = 0;
	int sample, big_ones = 0, samples = 16;

	env_open(&e, 0, pf_threads);
	cr_assert(asprintf(&path, "%s/gen.src", e.dir) > 0);
	make_shard(path);
	url = put_copy(&e, path, "gen.db");
	sc = put_bound_sidecar(&e, path, url, "gen.sidecar");
	for (sample = 0; sample < samples; sample++) {
		struct sfv_cache *cache = NULL;
		struct sfv_open_spec spec = {.store = e.st, .db_url = url,
					     .sidecar_url = sc};
		struct sfv_db *db = NULL;
		sqlite3 *s = NULL, *s2 = NULL;
		sqlite3_stmt *q = NULL, *q2 = NULL;
		uint64_t r0, w0, d;
		int small, big;

		cr_assert_eq(sfv_cache_new(&cache, 0, pf_threads, err,
					   sizeof(err)), 0, "%s", err);
		spec.cache = cache;
		do {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			small = (int)((seed >> 33) % GEN_KEYS);
		} while (gen_big(small));
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		big = (int)((seed >> 33) % (GEN_KEYS / 100)) * 100 + 7;

		r0 = ranged(e.st);
		w0 = whole(e.st);
		cr_assert_eq(sfv_db_open(&db, &spec, err, sizeof(err)), 0,
			     "%s", err);
		cr_assert(sfv_db_has_sidecar(db));
		cr_assert_eq(sfv_db_connect(db, &s, err, sizeof(err)), 0);
		cr_assert_eq(sqlite3_prepare_v2(s, "SELECT v FROM kv WHERE "
						"k = ?", -1, &q, NULL),
			     SQLITE_OK);
		cr_assert_eq(whole(e.st) - w0, 1, "open = the sidecar GET");
		cr_assert_eq(ranged(e.st) - r0, 0, "open: no ranged GET");

		r0 = ranged(e.st);
		cr_assert_eq(gen_lookup(q, small), SQLITE_ROW, "key %d", small);
		cr_assert_eq(ranged(e.st) - r0, 1,
			     "cold lookup of small key %d: one ranged GET",
			     small);

		r0 = ranged(e.st);
		cr_assert_eq(gen_lookup(q, big), SQLITE_ROW, "key %d", big);
		d = ranged(e.st) - r0;
		cr_assert_leq(d, 2, "cold lookup of big key %d", big);
		big_total += d;
		big_ones += d == 1;
		cr_assert_eq(whole(e.st) - w0, 1, "no other whole GET");

		/* warm: a new connection (an empty SQLite cache) */
		r0 = ranged(e.st);
		cr_assert_eq(sfv_db_connect(db, &s2, err, sizeof(err)), 0);
		cr_assert_eq(sqlite3_prepare_v2(s2, "SELECT v FROM kv WHERE "
						"k = ?", -1, &q2, NULL),
			     SQLITE_OK);
		cr_assert_eq(gen_lookup(q2, big), SQLITE_ROW);
		cr_assert_eq(gen_lookup(q2, small), SQLITE_ROW);
		cr_assert_eq(ranged(e.st), r0, "warm lookups cost nothing");

		sqlite3_finalize(q2);
		sqlite3_close(s2);
		sqlite3_finalize(q);
		sqlite3_close(s);
		sfv_db_close(db);
		sfv_cache_free(cache);
	}
	cr_log_info("%d prefetch threads: big values took %llu ranged GETs in "
		    "%d cold lookups (%d with one)", pf_threads,
		    (unsigned long long)big_total, samples, big_ones);
	/* chains sit next to their leaf in a key-ordered build: the leaf's
	 * GET brings them */
	cr_assert_geq(big_ones, samples / 2);
	free(path);
	free(url);
	free(sc);
	env_close(&e);
}

Test(vfs, a_cold_lookup_is_one_ranged_get_with_prefetch_workers)
{
	one_request_per_cold_lookup(2);
}

Test(vfs, a_cold_lookup_is_one_ranged_get_without_prefetch_workers)
{
	one_request_per_cold_lookup(0);
}

/*
 * Readahead follows leaves read from the store, not leaves a connection
 * re-reads from the shared cache: three ascending leaves that are already
 * cached (and were fetched out of order, so without readahead) start no
 * prefetch from a fresh connection.
 */
Test(vfs, warm_ascending_reads_start_no_readahead)
{
	struct env e;
	char *path, *url, err[256];
	struct sfv_stats before, after;
	struct sfv_db *db;
	sqlite3 *s = NULL;
	sqlite3_stmt *q = NULL;
	int order1[3] = {4200, 4000, 4100}, order2[3] = {4000, 4100, 4200};
	uint64_t r0;
	int i;

	env_open(&e, 0, 2);
	cr_assert(asprintf(&path, "%s/ra.src", e.dir) > 0);
	make_shard(path);
	url = put_copy(&e, path, "ra.db");
	db = db_open(&e, url, NULL);
	cr_assert_eq(sfv_db_connect(db, &s, err, sizeof(err)), 0);
	cr_assert_eq(sqlite3_prepare_v2(s, "SELECT v FROM kv WHERE k = ?", -1,
					&q, NULL), SQLITE_OK);
	for (i = 0; i < 3; i++)
		cr_assert_eq(gen_lookup(q, order1[i]), SQLITE_ROW);
	sqlite3_finalize(q);
	sqlite3_close(s);
	sfv_cache_stats(e.cache, &before);
	cr_assert_eq(before.prefetch_issued, 0, "out of order: no readahead");

	r0 = ranged(e.st);
	cr_assert_eq(sfv_db_connect(db, &s, err, sizeof(err)), 0);
	cr_assert_eq(sqlite3_prepare_v2(s, "SELECT v FROM kv WHERE k = ?", -1,
					&q, NULL), SQLITE_OK);
	for (i = 0; i < 3; i++)
		cr_assert_eq(gen_lookup(q, order2[i]), SQLITE_ROW);
	sfv_cache_stats(e.cache, &after);
	cr_assert_eq(after.prefetch_issued, 0, "cached leaves: no readahead");
	cr_assert_eq(ranged(e.st), r0);
	sqlite3_finalize(q);
	sqlite3_close(s);
	sfv_db_close(db);
	free(path);
	free(url);
	env_close(&e);
}

/* Turning SQLite's memory statistics off works in a process that has not
 * used SQLite yet (each Criterion test runs in a fresh one). */
Test(vfs, sqlite_setup_turns_memory_statistics_off)
{
	void *p;

	sfv_sqlite_setup();
	sfv_sqlite_setup(); /* idempotent */
	cr_assert_eq(sqlite3_initialize(), SQLITE_OK);
	p = sqlite3_malloc(100000);
	cr_assert(p);
	cr_assert_eq(sqlite3_memory_used(), 0, "statistics are off");
	sqlite3_free(p);
}

/*
 * Without a sidecar the VFS cannot tell a chain head from any other page,
 * so it notes the chains of every B-tree page it fetches: once a leaf has
 * been read, reading the head of one of its cells' chains brings the whole
 * (contiguous) chain in one ranged GET.
 */
Test(vfs, without_a_sidecar_a_noted_chain_comes_in_one_get)
{
	struct env e;
	char *path, *url, err[256];
	uint8_t *img, page[4096];
	size_t len, got;
	uint32_t pg, npg, heads[64], lens[64], n = 0, j;
	struct sfv_db *db;
	uint64_t r0;

	env_open(&e, 0, 0);
	cr_assert(asprintf(&path, "%s/h.src", e.dir) > 0);
	make_shard(path);
	img = sft_read_file(path, &len);
	npg = (uint32_t)(len / 4096);
	/* a leaf past the open-time read with a 3-page contiguous chain */
	for (pg = npg / 2; pg <= npg; pg++) {
		const uint8_t *p = img + (size_t)(pg - 1) * 4096;

		if (p[0] != 10)
			continue;
		n = sidecar_page_chains(p, pg, 4096, 4096, heads, lens, 64);
		for (j = 0; j < n; j++)
			if (lens[j] == 3 && heads[j] > pg + 1)
				break;
		if (j < n) {
			heads[0] = heads[j];
			break;
		}
		n = 0;
	}
	cr_assert_gt(n, 0, "no leaf with a 3-page chain after it");
	for (j = 1; j < 3; j++)
		cr_assert_eq(be32_of(img + (size_t)(heads[0] + j - 2) * 4096),
			     heads[0] + j, "the chain is contiguous");
	url = put_copy(&e, path, "h.db");
	db = db_open(&e, url, NULL);
	cr_assert_eq(sfv_db_read(db, (uint64_t)(pg - 1) * 4096, 4096, page,
				 &got, err, sizeof(err)), 0, "%s", err);
	r0 = ranged(e.st);
	for (j = 0; j < 3; j++) {
		cr_assert_eq(sfv_db_read(db, (uint64_t)(heads[0] + j - 1) * 4096,
					 4096, page, &got, err, sizeof(err)),
			     0, "%s", err);
		cr_assert_eq(memcmp(page, img + (size_t)(heads[0] + j - 1) *
					  4096, 4096), 0);
	}
	cr_assert_eq(ranged(e.st) - r0, 1, "head read: the whole chain");
	sfv_db_close(db);
	free(img);
	free(url);
	free(path);
	env_close(&e);
}
