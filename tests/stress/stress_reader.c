/*
 * stress_reader.c -- many threads against one reader while its snapshot is
 * swapped underneath, for ThreadSanitizer (Criterion's runner does not
 * start under TSan, so this is a plain program; ctest label `stress`).
 *
 * A copy of the utf8 fixture gets a second manifest (same shards, newer
 * name); a refresher thread flips _CURRENT between the two and refreshes
 * continuously, while lookup threads run sf_get, sf_multi_get, completion-
 * queue submissions and shard iteration in range mode with a page cache
 * far smaller than the data, plus a download-mode reader. Every value is
 * checked against answers.tsv by SHA-256. Exit 0 and "N passed, 0 failed"
 * when all checks hold.
 */
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shardyfs.h"

#ifndef SF_TEST_DATA_DIR
#error "SF_TEST_DATA_DIR must be defined"
#endif

struct answer {
	uint8_t key[256];
	size_t klen;
	size_t vlen;
	unsigned char sha[32];
};

static struct answer *ans;
static size_t nans;
static atomic_int failures;
static atomic_long checks;
static atomic_int stop;
static char dir[4096];

#define FAIL(...)                                                            \
	do {                                                                 \
		fprintf(stderr, "FAIL: " __VA_ARGS__);                       \
		fputc('\n', stderr);                                         \
		atomic_fetch_add(&failures, 1);                              \
	} while (0)

static int hexv(int c)
{
	return c <= '9' ? c - '0' : (c | 32) - 'a' + 10;
}

static void load_answers(void)
{
	char path[4096], line[8192];
	FILE *f;

	snprintf(path, sizeof(path), "%s/shardyfusion/utf8/answers.tsv",
		 SF_TEST_DATA_DIR);
	f = fopen(path, "r");
	if (!f) {
		perror(path);
		exit(2);
	}
	ans = calloc(4096, sizeof(*ans));
	while (ans && nans < 4096 && fgets(line, sizeof(line), f)) {
		char *t1 = strchr(line, '\t'), *t2, *t3;
		if (!t1 || !(t2 = strchr(t1 + 1, '\t')) || !(t3 = strchr(t2 + 1, '\t')))
			continue;
		struct answer *a = &ans[nans++];
		a->klen = (size_t)(t1 - line) / 2;
		for (size_t i = 0; i < a->klen && i < sizeof(a->key); i++)
			a->key[i] = (uint8_t)(hexv(line[2 * i]) * 16 + hexv(line[2 * i + 1]));
		a->vlen = strtoull(t2 + 1, NULL, 10);
		for (int i = 0; i < 32; i++)
			a->sha[i] = (unsigned char)(hexv(t3[1 + 2 * i]) * 16 + hexv(t3[2 + 2 * i]));
	}
	fclose(f);
}

static void check_value(const struct answer *a, int rc, const void *v,
			size_t len, const char *what)
{
	unsigned char md[32];

	atomic_fetch_add(&checks, 1);
	if (rc != 0) {
		FAIL("%s: rc %d (%s)", what, rc, sf_strerror(rc));
		return;
	}
	SHA256(v, len, md);
	if (len != a->vlen || memcmp(md, a->sha, 32) != 0)
		FAIL("%s: wrong value for key of %zu bytes", what, a->klen);
}

static struct sf_key key_of(const struct answer *a)
{
	return sf_key_text((const char *)a->key, a->klen);
}

struct worker {
	struct sf_reader *r;
	unsigned seed;
	int kind;
};

static void *lookup_thread(void *p)
{
	struct worker *w = p;
	struct sf_cq *cq = NULL;

	if (w->kind == 2 && sf_cq_new(&cq) != 0) {
		FAIL("cq");
		return NULL;
	}
	while (!atomic_load(&stop)) {
		size_t i = (size_t)rand_r(&w->seed) % nans;
		if (w->kind == 0) {
			struct sf_key k = key_of(&ans[i]);
			void *v = NULL;
			size_t len = 0;
			int rc = sf_get(w->r, &k, &v, &len, NULL, 0);
			check_value(&ans[i], rc, v, len, "get");
			sf_free(v);
		} else if (w->kind == 1) {
			struct sf_key keys[16];
			struct sf_result res[16];
			size_t idx[16];
			for (int j = 0; j < 16; j++) {
				idx[j] = (size_t)rand_r(&w->seed) % nans;
				keys[j] = key_of(&ans[idx[j]]);
			}
			int rc = sf_multi_get(w->r, keys, 16, res, NULL, 0);
			if (rc)
				FAIL("multi_get: %d", rc);
			for (int j = 0; j < 16; j++) {
				check_value(&ans[idx[j]], res[j].status, res[j].value,
					    res[j].len, "multi_get");
				sf_free(res[j].value);
			}
		} else if (w->kind == 2) {
			struct sf_key k = key_of(&ans[i]);
			struct sf_completion c;
			if (sf_cq_submit(w->r, cq, &k, 1, &ans[i]) != 0) {
				FAIL("submit");
				continue;
			}
			if (sf_cq_wait(cq, &c, 30000) != 1) {
				FAIL("completion never arrived");
				continue;
			}
			check_value(c.ud, c.results[0].status, c.results[0].value,
				    c.results[0].len, "cq");
			sf_completion_free(&c);
		} else {
			struct sf_snapshot *s = sf_reader_acquire(w->r);
			struct sf_iter *it = NULL;
			const uint8_t *k;
			size_t kl;
			uint64_t vl, n = 0;
			struct sf_shard_info si;
			uint32_t db = (uint32_t)(i % 4);
			int rc;
			sf_snapshot_shard(s, db, &si);
			if (sf_iter_open(s, db, &it, NULL, 0) != 0) {
				FAIL("iter_open");
			} else {
				while ((rc = sf_iter_next(it, &k, &kl, &vl, NULL, 0)) == 0)
					n++;
				if (rc != SF_NOTFOUND || n != si.row_count)
					FAIL("iteration: rc %d, %llu of %llu rows", rc,
					     (unsigned long long)n,
					     (unsigned long long)si.row_count);
				atomic_fetch_add(&checks, 1);
				sf_iter_close(it);
			}
			sf_snapshot_release(s);
		}
	}
	sf_cq_free(cq);
	return NULL;
}

static void *refresh_thread(void *p)
{
	struct sf_reader *r = p;
	char cur[4200], a[4200], b[4200];
	int flip = 0;

	snprintf(cur, sizeof(cur), "%s/_CURRENT", dir);
	snprintf(a, sizeof(a), "%s/_CURRENT.a", dir);
	snprintf(b, sizeof(b), "%s/_CURRENT.b", dir);
	while (!atomic_load(&stop)) {
		char cmd[20000];
		int changed = 0;
		snprintf(cmd, sizeof(cmd), "cp '%s' '%s.tmp' && mv '%s.tmp' '%s'",
			 flip ? a : b, cur, cur, cur);
		if (system(cmd) != 0)
			FAIL("flip _CURRENT");
		flip = !flip;
		if (sf_reader_refresh(r, &changed, NULL, 0) != 0)
			FAIL("refresh");
		usleep(20000);
	}
	return NULL;
}

static struct sf_reader *open_reader(enum sf_access_mode mode, const char *cache)
{
	struct sf_options opt;
	struct sf_reader *r = NULL;
	char err[1024] = "";

	sf_options_init(&opt);
	opt.access_mode = mode;
	opt.cache_bytes = 96 * 1024; /* far below the 1 MiB of shards */
	opt.cache_dir = cache;
	opt.threads = 3;
	opt.log_level = SF_LOG_ERROR;
	if (sf_reader_open(&r, dir, &opt, err, sizeof(err)) != 0) {
		fprintf(stderr, "open %s: %s\n", dir, err);
		exit(2);
	}
	return r;
}

int main(int argc, char **argv)
{
	int seconds = argc > 1 ? atoi(argv[1]) : 8;
	char cmd[16384], cache[4200];
	pthread_t th[10];
	struct worker w[10];
	int nth = 0;

	load_answers();
	snprintf(dir, sizeof(dir), "%s/sf-stress-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir))
		return 2;
	snprintf(cache, sizeof(cache), "%s/cache", dir);
	/* The fixture, plus a second manifest name for the same run, and the
	 * two _CURRENT bodies the refresher alternates. */
	snprintf(cmd, sizeof(cmd),
		 "set -e; cd '%s'; mkdir snap; cp -r '%s/shardyfusion/utf8/snapshot/.' snap/; chmod -R u+w snap;"
		 "m=$(ls snap/manifests); n=2099-01-01T00:00:00.000000Z_run_id=b9aa90b271ef41d7ad4ae9f6e42e4aac;"
		 "mkdir snap/manifests/$n; cp snap/manifests/$m/manifest snap/manifests/$n/;"
		 "cp snap/_CURRENT snap/_CURRENT.a; sed \"s/$m/$n/\" snap/_CURRENT > snap/_CURRENT.b",
		 dir, SF_TEST_DATA_DIR);
	if (system(cmd) != 0)
		return 2;
	strcat(dir, "/snap");

	struct sf_reader *rr = open_reader(SF_ACCESS_RANGE, cache);
	struct sf_reader *rd = open_reader(SF_ACCESS_DOWNLOAD, cache);
	for (int k = 0; k < 4; k++) {
		w[nth] = (struct worker){rr, 17u + (unsigned)k, k};
		pthread_create(&th[nth], NULL, lookup_thread, &w[nth]);
		nth++;
	}
	w[nth] = (struct worker){rr, 99u, 0};
	pthread_create(&th[nth], NULL, lookup_thread, &w[nth]);
	nth++;
	w[nth] = (struct worker){rd, 7u, 1};
	pthread_create(&th[nth], NULL, lookup_thread, &w[nth]);
	nth++;
	pthread_t rt;
	pthread_create(&rt, NULL, refresh_thread, rr);

	sleep((unsigned)seconds);
	atomic_store(&stop, 1);
	for (int i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	pthread_join(rt, NULL);

	struct sf_stats st;
	sf_reader_stats(rr, &st);
	sf_reader_close(rr);
	sf_reader_close(rd);
	dir[strlen(dir) - strlen("/snap")] = 0;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed\n");
	printf("stress: %ld checks, %llu refreshes, %llu cache hits, %llu misses\n",
	       atomic_load(&checks), (unsigned long long)st.refreshes,
	       (unsigned long long)st.cache_hits, (unsigned long long)st.cache_misses);
	int f = atomic_load(&failures);
	printf("%ld passed, %d failed\n", atomic_load(&checks) - f, f);
	return f ? 1 : 0;
}
