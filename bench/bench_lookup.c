/*
 * bench_lookup.c -- point-lookup benchmark of libshardyfs against an S3
 * server (moto), side by side with two local baselines.
 *
 *   bench_lookup --endpoint http://127.0.0.1:PORT [--bucket B] [--keys N]
 *                [--shards N] [--delay-ms N] [--cold N] [--hot N]
 *                [--warm-secs S] [--workdir DIR] [--modes LIST]
 *
 * What it does. The parent process builds the same snapshot twice with the
 * public builder (sf_builder_*): once under s3://BUCKET/lookup on the S3
 * endpoint (the bucket must exist), once under a local directory (for the
 * SQLite baseline). Keys are "user-%07d" (utf8 encoding), values ~100
 * bytes, and 1% of them (index % 100 == 7) 9-13 KiB so that they span
 * overflow pages. Then each mode runs in its own child process (this same
 * binary with --child MODE), so that peak RSS figures are separate; the
 * child prints "metric value" lines that the parent collects into one
 * table:
 *
 *   range+sc    range mode with the sidecar (the default)
 *   range       range mode, use_sidecar = 0
 *   download    download mode (whole shard into a fresh cache dir)
 *   sqlite      SQLite on the local shard files (SELECT v FROM kv WHERE k=?)
 *   file        open/pread/close of a 100-byte local file (the floor)
 *
 * Cold figures come from fresh readers: each sample opens a new reader
 * (and, in download mode, a new cache dir), looks up a key A (this opens
 * A's shard: "first lookup"), then a key B of the same shard ("cold
 * lookup": the shard is open, B's pages are not cached), then a key O with
 * a big value in the same shard ("overflow lookup"). Requests and bytes
 * are sf_reader_stats() deltas around each lookup; "shard open" is first
 * minus cold. Warm figures come from one reader whose hot set (--hot keys)
 * was looked up once beforehand: per-lookup latency percentiles, then
 * lookups per second from 1 and 2 threads calling sf_get() for
 * --warm-secs each. Every value read is checked against the generator.
 *
 * With --delay-ms N the readers go through delay_proxy (built next to this
 * binary), which adds N ms to every HTTP request; the builds go direct.
 *
 * Nothing here asserts on time: it prints figures, plus the targets they
 * are meant to be compared against.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "shardyfs.h"

#ifndef BENCH_PROXY
#define BENCH_PROXY "delay_proxy"
#endif

#define KEYLEN 16         /* "user-%07d" + NUL fits in 13; room to spare */
#define LAT_SAMPLES 20000 /* per-lookup timings in the warm phase */
#define MAX_METRICS 64

enum mode { M_RANGE_SC, M_RANGE, M_DOWNLOAD, M_SQLITE, M_FILE, N_MODES };
static const char *const mode_names[N_MODES] = {
	"range+sc", "range", "download", "sqlite", "file",
};

struct cfg {
	const char *endpoint;      /* S3 endpoint the builds use */
	const char *read_endpoint; /* what readers use (proxy or endpoint) */
	const char *bucket;
	const char *workdir;
	char s3_prefix[512];
	char local_prefix[512];
	long nkeys;
	long shards;
	long delay_ms;
	long cold;
	long hot;
	double warm_secs;
	int modes[N_MODES];
	const char *lists;         /* --lists DIR: write the mount's name lists */
};

static char errbuf[512];

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_lookup: %s: %s (%s)\n", what, sf_strerror(rc),
		errbuf);
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- keys and values ------------------------------------------------- */

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int is_big(long i)
{
	return i % 100 == 7;
}

static size_t value_len(long i)
{
	if (is_big(i))
		return 9000 + (size_t)((i * 7919) % 4000);
	return 90 + (size_t)(i % 21);
}

/* Writes value i into buf (value_len(i) bytes). */
static void value_fill(long i, uint8_t *buf)
{
	uint64_t s = (uint64_t)i * 2654435761u + 1;
	size_t n = value_len(i);

	for (size_t k = 0; k < n; k += 8) {
		uint64_t x = splitmix(&s);

		for (size_t j = 0; j < 8 && k + j < n; j++)
			buf[k + j] = (uint8_t)('a' + ((x >> (8 * j)) & 0xff) % 26);
	}
}

static int value_ok(long i, const void *v, size_t len)
{
	static _Thread_local uint8_t want[16384];

	if (len != value_len(i))
		return 0;
	value_fill(i, want);
	return memcmp(v, want, len) == 0;
}

static size_t key_text(long i, char *buf)
{
	return (size_t)snprintf(buf, KEYLEN, "user-%07ld", i);
}

static long rand_small(uint64_t *s, long nkeys)
{
	for (;;) {
		long i = (long)(splitmix(s) % (uint64_t)nkeys);

		if (!is_big(i))
			return i;
	}
}

/* A big-value key, or -1 when the snapshot has none. */
static long rand_big(uint64_t *s, long nkeys)
{
	long nbig = (nkeys + 92) / 100;

	if (nbig <= 0)
		return -1;
	return 100 * (long)(splitmix(s) % (uint64_t)nbig) + 7;
}

/* ---- metrics ---------------------------------------------------------- */

/* Children print "name value" lines on stdout. */
static void put(const char *name, double v)
{
	printf("%s %.6f\n", name, v);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double pct(double *v, size_t n, double q)
{
	size_t k;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	k = (size_t)(q * (double)(n - 1) + 0.5);
	return v[k < n ? k : n - 1];
}

static double mean(const double *v, size_t n)
{
	double s = 0;

	for (size_t i = 0; i < n; i++)
		s += v[i];
	return n ? s / (double)n : 0;
}

static double maxof(const double *v, size_t n)
{
	double m = 0;

	for (size_t i = 0; i < n; i++)
		if (v[i] > m)
			m = v[i];
	return m;
}

static double peak_rss_mib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	double kb = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmHWM:", 6))
			kb = atof(line + 6);
	fclose(f);
	return kb / 1024.0;
}

/* ---- library modes ---------------------------------------------------- */

static uint64_t n_requests(const struct sf_stats *s)
{
	return s->get_requests + s->range_requests + s->head_requests +
	       s->list_requests;
}

static void lib_options(const struct cfg *c, enum mode m,
			const char *cache_dir, struct sf_options *o)
{
	sf_options_init(o);
	o->endpoint_url = c->read_endpoint;
	o->region = "us-east-1";
	o->access_key_id = "bench";
	o->secret_access_key = "bench";
	o->addressing = SF_ADDR_PATH;
	o->access_mode = m == M_DOWNLOAD ? SF_ACCESS_DOWNLOAD : SF_ACCESS_RANGE;
	o->use_sidecar = m == M_RANGE_SC;
	o->cache_dir = cache_dir;
}

static uint32_t route(struct sf_reader *r, const char *k, size_t n)
{
	struct sf_snapshot *s = sf_reader_acquire(r);
	struct sf_key key = sf_key_text(k, n);
	uint32_t db = 0;
	int rc = sf_snapshot_route(s, &key, &db, errbuf, sizeof(errbuf));

	sf_snapshot_release(s);
	if (rc != 0)
		die("route", rc);
	return db;
}

/* One timed, checked lookup: returns seconds; counts a wrong value. */
static double timed_get(struct sf_reader *r, long i, long *errors)
{
	char k[KEYLEN];
	size_t n = key_text(i, k);
	struct sf_key key = sf_key_text(k, n);
	void *v = NULL;
	size_t len = 0;
	double t0 = now_s();
	int rc = sf_get(r, &key, &v, &len, errbuf, sizeof(errbuf));
	double t = now_s() - t0;

	if (rc != 0 || !value_ok(i, v, len)) {
		if (*errors < 5)
			fprintf(stderr, "bench_lookup: key %s: %s %s\n", k,
				rc ? sf_strerror(rc) : "wrong value",
				rc ? errbuf : "");
		(*errors)++;
	}
	sf_free(v);
	return t;
}

static char *make_tmpdir(const struct cfg *c, const char *tag)
{
	char *p = NULL;

	if (asprintf(&p, "%s/%s.XXXXXX", c->workdir, tag) < 0 || !mkdtemp(p)) {
		perror("bench_lookup: mkdtemp");
		exit(1);
	}
	return p;
}

static void rmrf(const char *p)
{
	char *cmd = NULL;

	if (asprintf(&cmd, "rm -rf '%s'", p) >= 0 && system(cmd) != 0)
		fprintf(stderr, "bench_lookup: could not remove %s\n", p);
	free(cmd);
}

struct delta {
	double req, bytes, range, miss;
};

static struct delta stats_delta(const struct sf_stats *a,
				const struct sf_stats *b)
{
	struct delta d = {
		(double)(n_requests(b) - n_requests(a)),
		(double)(b->bytes_downloaded - a->bytes_downloaded),
		(double)(b->range_requests - a->range_requests),
		(double)(b->cache_misses - a->cache_misses),
	};
	return d;
}

/* Cold samples: fresh reader, first lookup (opens the shard), cold
 * lookup in the open shard, overflow lookup in the open shard. */
static void lib_cold(const struct cfg *c, enum mode m, long *errors)
{
	long n = c->cold;
	double *open_t, *open_req, *open_b, *f_t, *f_req, *f_b, *c_t, *c_req,
		*c_b, *c_miss, *o_t, *o_req, *o_b, *o_rng, *o_miss;
	size_t no = 0;
	uint64_t seed = 42;
	double cold_zero = 0, extra = 0;

	if (m == M_DOWNLOAD && n > 15)
		n = 15; /* each sample downloads a whole shard */
	open_t = calloc((size_t)n, sizeof(double));
	open_req = calloc((size_t)n, sizeof(double));
	open_b = calloc((size_t)n, sizeof(double));
	f_t = calloc((size_t)n, sizeof(double));
	f_req = calloc((size_t)n, sizeof(double));
	f_b = calloc((size_t)n, sizeof(double));
	c_t = calloc((size_t)n, sizeof(double));
	c_req = calloc((size_t)n, sizeof(double));
	c_b = calloc((size_t)n, sizeof(double));
	c_miss = calloc((size_t)n, sizeof(double));
	o_miss = calloc((size_t)n, sizeof(double));
	o_t = calloc((size_t)n, sizeof(double));
	o_req = calloc((size_t)n, sizeof(double));
	o_b = calloc((size_t)n, sizeof(double));
	o_rng = calloc((size_t)n, sizeof(double));
	if (!open_t || !open_req || !open_b || !f_t || !f_req || !f_b ||
	    !c_t || !c_req || !c_b || !c_miss || !o_miss || !o_t || !o_req || !o_b || !o_rng) {
		fprintf(stderr, "bench_lookup: out of memory\n");
		exit(1);
	}

	for (long s = 0; s < n; s++) {
		char *cache = make_tmpdir(c, "cache");
		struct sf_options o;
		struct sf_reader *r = NULL;
		struct sf_stats s0, s1, s2, s3, s4;
		struct delta d;
		char k[KEYLEN];
		long a, b, big = -1;
		uint32_t db;
		double t0;
		int rc;

		lib_options(c, m, cache, &o);
		memset(&s0, 0, sizeof(s0));
		t0 = now_s();
		rc = sf_reader_open(&r, c->s3_prefix, &o, errbuf,
				    sizeof(errbuf));
		if (rc != 0)
			die("sf_reader_open", rc);
		open_t[s] = now_s() - t0;
		sf_reader_stats(r, &s1);
		d = stats_delta(&s0, &s1);
		open_req[s] = d.req;
		open_b[s] = d.bytes;

		a = rand_small(&seed, c->nkeys);
		db = route(r, k, key_text(a, k));
		do {
			b = rand_small(&seed, c->nkeys);
		} while (b == a || route(r, k, key_text(b, k)) != db);
		for (int tries = 0; tries < 10000; tries++) {
			long x = rand_big(&seed, c->nkeys);

			if (x >= 0 && x < c->nkeys &&
			    route(r, k, key_text(x, k)) == db) {
				big = x;
				break;
			}
		}

		f_t[s] = timed_get(r, a, errors);
		sf_reader_stats(r, &s2);
		d = stats_delta(&s1, &s2);
		f_req[s] = d.req;
		f_b[s] = d.bytes;

		c_t[s] = timed_get(r, b, errors);
		sf_reader_stats(r, &s3);
		d = stats_delta(&s2, &s3);
		c_req[s] = d.req;
		c_b[s] = d.bytes;
		c_miss[s] = d.miss;
		if (d.req == 0)
			cold_zero++;

		if (big >= 0) {
			o_t[no] = timed_get(r, big, errors);
			sf_reader_stats(r, &s4);
			d = stats_delta(&s3, &s4);
			o_req[no] = d.req;
			o_b[no] = d.bytes;
			o_rng[no] = d.range;
			o_miss[no] = d.miss;
			no++;
		}
		sf_reader_stats(r, &s4);
		extra += (double)(s4.retries + s4.hedged_requests);
		sf_reader_close(r);
		rmrf(cache);
		free(cache);
	}

	put("samples", (double)n);
	put("cold_extra", extra);

	put("open_req", mean(open_req, (size_t)n));
	put("open_bytes", mean(open_b, (size_t)n));
	put("open_ms", 1e3 * pct(open_t, (size_t)n, 0.5));
	put("first_req", mean(f_req, (size_t)n));
	put("first_bytes", mean(f_b, (size_t)n));
	put("first_p50_ms", 1e3 * pct(f_t, (size_t)n, 0.5));
	put("first_p99_ms", 1e3 * pct(f_t, (size_t)n, 0.99));
	put("cold_req", mean(c_req, (size_t)n));
	put("cold_req_max", maxof(c_req, (size_t)n));
	put("cold_bytes", mean(c_b, (size_t)n));
	put("cold_p50_ms", 1e3 * pct(c_t, (size_t)n, 0.5));
	put("cold_p99_ms", 1e3 * pct(c_t, (size_t)n, 0.99));
	put("cold_zero", cold_zero);
	if (m != M_DOWNLOAD)
		put("cold_miss", mean(c_miss, (size_t)n));
	put("shopen_req", mean(f_req, (size_t)n) - mean(c_req, (size_t)n));
	put("shopen_bytes", mean(f_b, (size_t)n) - mean(c_b, (size_t)n));
	put("shopen_ms", 1e3 * (pct(f_t, (size_t)n, 0.5) -
				pct(c_t, (size_t)n, 0.5)));
	if (no > 0) {
		put("ovf_req", mean(o_req, no));
		put("ovf_req_max", maxof(o_req, no));
		put("ovf_range_max", maxof(o_rng, no));
		put("ovf_bytes", mean(o_b, no));
		if (m != M_DOWNLOAD)
			put("ovf_miss", mean(o_miss, no));
		put("ovf_p50_ms", 1e3 * pct(o_t, no, 0.5));
		put("ovf_p99_ms", 1e3 * pct(o_t, no, 0.99));
	}
	free(open_t);
	free(open_req);
	free(open_b);
	free(f_t);
	free(f_req);
	free(f_b);
	free(c_t);
	free(c_req);
	free(c_b);
	free(c_miss);
	free(o_miss);
	free(o_t);
	free(o_req);
	free(o_b);
	free(o_rng);
}

/* ---- warm phase, shared by every mode --------------------------------- */

struct hot {
	long n;
	long *idx;
	char (*key)[KEYLEN];
	size_t *klen;
};

static void hot_init(const struct cfg *c, struct hot *h)
{
	uint64_t seed = 7;

	h->n = c->hot < c->nkeys ? c->hot : c->nkeys;
	h->idx = calloc((size_t)h->n, sizeof(*h->idx));
	h->key = calloc((size_t)h->n, sizeof(*h->key));
	h->klen = calloc((size_t)h->n, sizeof(*h->klen));
	if (!h->idx || !h->key || !h->klen) {
		fprintf(stderr, "bench_lookup: out of memory\n");
		exit(1);
	}
	for (long i = 0; i < h->n; i++) {
		h->idx[i] = rand_small(&seed, c->nkeys);
		h->klen[i] = key_text(h->idx[i], h->key[i]);
	}
}

static void hot_free(struct hot *h)
{
	free(h->idx);
	free(h->key);
	free(h->klen);
}

/* One lookup of hot key j by some backend; returns 0 when the value is
 * right. */
typedef int (*lookup_fn)(void *ctx, const struct hot *h, long j);

struct thr {
	lookup_fn fn;
	void *ctx;
	const struct hot *h;
	uint64_t seed;
	atomic_int *stop;
	pthread_barrier_t *start;
	uint64_t count;
	uint64_t bad;
};

static void *thr_main(void *arg)
{
	struct thr *t = arg;

	pthread_barrier_wait(t->start);
	while (!atomic_load_explicit(t->stop, memory_order_relaxed)) {
		long j = (long)(splitmix(&t->seed) % (uint64_t)t->h->n);

		if (t->fn(t->ctx, t->h, j) != 0)
			t->bad++;
		t->count++;
	}
	return NULL;
}

/* Lookups per second from `nthreads` threads over secs seconds. Each
 * thread gets its own ctx from ctxs[i]. */
static double throughput(lookup_fn fn, void **ctxs, const struct hot *h,
			 int nthreads, double secs, long *errors)
{
	pthread_t tid[8];
	struct thr t[8];
	pthread_barrier_t start;
	atomic_int stop;
	struct timespec ts = {(time_t)secs,
			      (long)((secs - (double)(time_t)secs) * 1e9)};
	double t0, el;
	uint64_t total = 0;

	atomic_init(&stop, 0);
	pthread_barrier_init(&start, NULL, (unsigned)nthreads + 1);
	for (int i = 0; i < nthreads; i++) {
		t[i] = (struct thr){fn, ctxs[i], h, 1000 + (uint64_t)i, &stop,
				    &start, 0, 0};
		if (pthread_create(&tid[i], NULL, thr_main, &t[i]) != 0) {
			fprintf(stderr, "bench_lookup: pthread_create\n");
			exit(1);
		}
	}
	pthread_barrier_wait(&start);
	t0 = now_s();
	nanosleep(&ts, NULL);
	atomic_store(&stop, 1);
	for (int i = 0; i < nthreads; i++) {
		pthread_join(tid[i], NULL);
		total += t[i].count;
		*errors += (long)t[i].bad;
	}
	el = now_s() - t0;
	pthread_barrier_destroy(&start);
	return (double)total / el;
}

/* Per-lookup latency percentiles (µs) and throughput from 1 and 2
 * threads; ctxs holds two contexts. */
static void warm_figures(lookup_fn fn, void **ctxs, const struct hot *h,
			 const struct cfg *c, long *errors)
{
	double *lat = calloc(LAT_SAMPLES, sizeof(double));
	uint64_t seed = 99;

	if (!lat) {
		fprintf(stderr, "bench_lookup: out of memory\n");
		exit(1);
	}
	for (long i = 0; i < LAT_SAMPLES; i++) {
		long j = (long)(splitmix(&seed) % (uint64_t)h->n);
		double t0 = now_s();

		if (fn(ctxs[0], h, j) != 0)
			(*errors)++;
		lat[i] = (now_s() - t0) * 1e6;
	}
	put("warm_p50_us", pct(lat, LAT_SAMPLES, 0.5));
	put("warm_p99_us", pct(lat, LAT_SAMPLES, 0.99));
	free(lat);
	put("warm_1t", throughput(fn, ctxs, h, 1, c->warm_secs, errors));
	put("warm_2t", throughput(fn, ctxs, h, 2, c->warm_secs, errors));
}

static int lib_lookup(void *ctx, const struct hot *h, long j)
{
	struct sf_reader *r = ctx;
	struct sf_key key = sf_key_text(h->key[j], h->klen[j]);
	void *v = NULL;
	size_t len = 0;
	int rc = sf_get(r, &key, &v, &len, NULL, 0);

	/* Only the length is checked here: a full compare would dominate a
	 * cached lookup. Values are checked fully during the warm-up. */
	if (rc == 0 && len != value_len(h->idx[j]))
		rc = -1;
	sf_free(v);
	return rc;
}

static void lib_warm(const struct cfg *c, enum mode m, long *errors)
{
	char *cache = make_tmpdir(c, "cache");
	struct sf_options o;
	struct sf_reader *r = NULL;
	struct sf_stats s0, s1;
	struct hot h;
	void *ctxs[2];
	double t0;
	int rc;

	hot_init(c, &h);
	lib_options(c, m, cache, &o);
	rc = sf_reader_open(&r, c->s3_prefix, &o, errbuf, sizeof(errbuf));
	if (rc != 0)
		die("sf_reader_open", rc);

	/* Warm-up: every hot key once, in batches (shards in parallel). */
	t0 = now_s();
	for (long i = 0; i < h.n; i += 256) {
		size_t nb = (size_t)(h.n - i < 256 ? h.n - i : 256);
		struct sf_key keys[256];
		struct sf_result res[256];

		for (size_t j = 0; j < nb; j++)
			keys[j] = sf_key_text(h.key[i + (long)j],
					      h.klen[i + (long)j]);
		rc = sf_multi_get(r, keys, nb, res, errbuf, sizeof(errbuf));
		if (rc != 0)
			die("sf_multi_get", rc);
		for (size_t j = 0; j < nb; j++) {
			if (res[j].status != 0 ||
			    !value_ok(h.idx[i + (long)j], res[j].value,
				      res[j].len))
				(*errors)++;
			sf_free(res[j].value);
		}
	}
	put("warmup_s", now_s() - t0);

	sf_reader_stats(r, &s0);
	ctxs[0] = ctxs[1] = r;
	warm_figures(lib_lookup, ctxs, &h, c, errors);
	sf_reader_stats(r, &s1);
	put("warm_req", stats_delta(&s0, &s1).req);

	sf_reader_close(r);
	rmrf(cache);
	free(cache);
	hot_free(&h);
}

/* ---- SQLite baseline -------------------------------------------------- */

struct sql {
	struct sf_snapshot *snap; /* of the local snapshot, for routing */
	uint32_t n;
	sqlite3 **db;
	sqlite3_stmt **st;
};

static char *shard_path(struct sf_snapshot *s, uint32_t id)
{
	struct sf_shard_info si;
	const char *u;
	char *p = NULL;

	if (sf_snapshot_shard(s, id, &si) != 0 || si.empty || !si.db_url)
		return NULL;
	u = si.db_url;
	if (!strncmp(u, "file://", 7))
		u += 7;
	if (asprintf(&p, "file:%s/shard.db?immutable=1", u) < 0)
		return NULL;
	return p;
}

static int sql_open_one(struct sf_snapshot *s, uint32_t id, sqlite3 **db,
			sqlite3_stmt **st)
{
	char *p = shard_path(s, id);
	int rc;

	*db = NULL;
	*st = NULL;
	if (!p)
		return 0; /* empty shard */
	rc = sqlite3_open_v2(p, db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI |
				    SQLITE_OPEN_NOMUTEX, NULL);
	free(p);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(*db, "SELECT v FROM kv WHERE k = ?", -1,
					st, NULL);
	if (rc != SQLITE_OK) {
		fprintf(stderr, "bench_lookup: sqlite open: %s\n",
			*db ? sqlite3_errmsg(*db) : "?");
		exit(1);
	}
	return 0;
}

static void sql_close_one(sqlite3 *db, sqlite3_stmt *st)
{
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* SELECT on an open statement; the value is copied out (as sf_get does). */
static int sql_get(sqlite3_stmt *st, const char *k, size_t n, long idx,
		   int full_check)
{
	int rc = -1;

	if (!st)
		return -1;
	sqlite3_bind_blob(st, 1, k, (int)n, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		const void *v = sqlite3_column_blob(st, 0);
		size_t len = (size_t)sqlite3_column_bytes(st, 0);
		void *copy = malloc(len ? len : 1);

		if (copy) {
			memcpy(copy, v, len);
			rc = full_check ? !value_ok(idx, copy, len)
					: len != value_len(idx);
			free(copy);
		}
	}
	sqlite3_reset(st);
	return rc;
}

static uint32_t sql_route(struct sf_snapshot *s, const char *k, size_t n)
{
	struct sf_key key = sf_key_text(k, n);
	uint32_t db = 0;
	int rc = sf_snapshot_route(s, &key, &db, errbuf, sizeof(errbuf));

	if (rc != 0)
		die("route", rc);
	return db;
}

static int sql_lookup(void *ctx, const struct hot *h, long j)
{
	struct sql *q = ctx;
	uint32_t db = sql_route(q->snap, h->key[j], h->klen[j]);

	return sql_get(q->st[db], h->key[j], h->klen[j], h->idx[j], 0);
}

static void sql_conns(struct sql *q, struct sf_snapshot *s)
{
	struct sf_snapshot_info si;

	sf_snapshot_info(s, &si);
	q->snap = s;
	q->n = si.num_dbs;
	q->db = calloc(q->n, sizeof(*q->db));
	q->st = calloc(q->n, sizeof(*q->st));
	if (!q->db || !q->st) {
		fprintf(stderr, "bench_lookup: out of memory\n");
		exit(1);
	}
	for (uint32_t i = 0; i < q->n; i++)
		sql_open_one(s, i, &q->db[i], &q->st[i]);
}

static void sql_conns_free(struct sql *q)
{
	for (uint32_t i = 0; i < q->n; i++)
		sql_close_one(q->db[i], q->st[i]);
	free(q->db);
	free(q->st);
}

static void run_sqlite(const struct cfg *c, long *errors)
{
	struct sf_options o;
	struct sf_reader *r = NULL;
	struct sf_snapshot *s;
	struct sql q[2];
	struct hot h;
	void *ctxs[2];
	long n = c->cold;
	double *f_t = calloc((size_t)n, sizeof(double));
	double *c_t = calloc((size_t)n, sizeof(double));
	uint64_t seed = 42;
	int rc;

	sf_options_init(&o);
	rc = sf_reader_open(&r, c->local_prefix, &o, errbuf, sizeof(errbuf));
	if (rc != 0)
		die("sf_reader_open (local)", rc);
	s = sf_reader_acquire(r);
	if (!f_t || !c_t) {
		fprintf(stderr, "bench_lookup: out of memory\n");
		exit(1);
	}

	/* "first lookup": open the shard file, prepare, look up, close;
	 * "cold": another key on the open connection. The files are in the
	 * OS page cache (they were just written): this is the local floor. */
	for (long i = 0; i < n; i++) {
		char k[KEYLEN];
		long a = rand_small(&seed, c->nkeys), b;
		size_t an = key_text(a, k);
		uint32_t db = sql_route(s, k, an);
		sqlite3 *conn;
		sqlite3_stmt *st;
		double t0 = now_s();

		sql_open_one(s, db, &conn, &st);
		if (sql_get(st, k, an, a, 1) != 0)
			(*errors)++;
		f_t[i] = now_s() - t0;
		do {
			b = rand_small(&seed, c->nkeys);
		} while (b == a || sql_route(s, k, key_text(b, k)) != db);
		t0 = now_s();
		if (sql_get(st, k, key_text(b, k), b, 1) != 0)
			(*errors)++;
		c_t[i] = now_s() - t0;
		sql_close_one(conn, st);
	}
	put("samples", (double)n);
	put("first_p50_ms", 1e3 * pct(f_t, (size_t)n, 0.5));
	put("first_p99_ms", 1e3 * pct(f_t, (size_t)n, 0.99));
	put("cold_p50_ms", 1e3 * pct(c_t, (size_t)n, 0.5));
	put("cold_p99_ms", 1e3 * pct(c_t, (size_t)n, 0.99));
	put("shopen_ms", 1e3 * (pct(f_t, (size_t)n, 0.5) -
				pct(c_t, (size_t)n, 0.5)));
	free(f_t);
	free(c_t);

	/* Warm: one connection per shard per thread, prepared statements. */
	hot_init(c, &h);
	sql_conns(&q[0], s);
	sql_conns(&q[1], s);
	for (long j = 0; j < h.n; j++) {
		uint32_t db = sql_route(s, h.key[j], h.klen[j]);

		if (sql_get(q[0].st[db], h.key[j], h.klen[j], h.idx[j], 1))
			(*errors)++;
	}
	ctxs[0] = &q[0];
	ctxs[1] = &q[1];
	warm_figures(sql_lookup, ctxs, &h, c, errors);
	sql_conns_free(&q[0]);
	sql_conns_free(&q[1]);
	hot_free(&h);
	sf_snapshot_release(s);
	sf_reader_close(r);
}

/* ---- plain file baseline ---------------------------------------------- */

static int file_lookup(void *ctx, const struct hot *h, long j)
{
	const char *path = ctx;
	char buf[128];
	int fd = open(path, O_RDONLY);
	ssize_t n;

	(void)h;
	(void)j;
	if (fd < 0)
		return -1;
	n = pread(fd, buf, sizeof(buf), 0);
	close(fd);
	return n == 100 ? 0 : -1;
}

static void run_file(const struct cfg *c, long *errors)
{
	char *path = NULL;
	uint8_t data[100];
	struct hot h;
	void *ctxs[2];
	int fd;

	if (asprintf(&path, "%s/plain-100b", c->workdir) < 0)
		exit(1);
	memset(data, 'x', sizeof(data));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, data, sizeof(data)) != (ssize_t)sizeof(data)) {
		perror("bench_lookup: plain file");
		exit(1);
	}
	close(fd);
	hot_init(c, &h);
	ctxs[0] = ctxs[1] = path;
	warm_figures(file_lookup, ctxs, &h, c, errors);
	hot_free(&h);
	unlink(path);
	free(path);
}

static void run_child(const struct cfg *c, enum mode m)
{
	long errors = 0;

	switch (m) {
	case M_RANGE_SC:
	case M_RANGE:
	case M_DOWNLOAD:
		lib_cold(c, m, &errors);
		lib_warm(c, m, &errors);
		break;
	case M_SQLITE:
		run_sqlite(c, &errors);
		break;
	case M_FILE:
		run_file(c, &errors);
		break;
	default:
		break;
	}
	put("errors", (double)errors);
	put("rss_mib", peak_rss_mib());
	fflush(stdout);
}

/* ---- parent: build, spawn children, print ----------------------------- */

static void build_one(const struct cfg *c, const char *prefix, int s3)
{
	struct sf_options o;
	struct sf_build_options bo;
	struct sf_builder *b = NULL;
	uint8_t *val = malloc(16384);
	char k[KEYLEN];
	double t0 = now_s();
	int rc;

	sf_options_init(&o);
	if (s3) {
		o.endpoint_url = c->endpoint;
		o.region = "us-east-1";
		o.access_key_id = "bench";
		o.secret_access_key = "bench";
		o.addressing = SF_ADDR_PATH;
	}
	sf_build_options_init(&bo);
	bo.num_dbs = (uint32_t)c->shards;
	bo.key_encoding = SF_ENC_UTF8;
	bo.emit_sidecar = 1;
	bo.key_col = "key";
	bo.tmp_dir = c->workdir;
	if (!val)
		exit(1);
	rc = sf_builder_open(&b, prefix, &o, &bo, errbuf, sizeof(errbuf));
	if (rc != 0)
		die("sf_builder_open", rc);
	for (long i = 0; i < c->nkeys; i++) {
		struct sf_key key = sf_key_text(k, key_text(i, k));

		value_fill(i, val);
		rc = sf_builder_add(b, &key, val, value_len(i), errbuf,
				    sizeof(errbuf));
		if (rc != 0)
			die("sf_builder_add", rc);
	}
	rc = sf_builder_publish(b, NULL, errbuf, sizeof(errbuf));
	if (rc != 0)
		die("sf_builder_publish", rc);
	sf_builder_free(b);
	free(val);
	fprintf(stderr, "bench_lookup: built %s in %.1f s\n", prefix,
		now_s() - t0);
}

static void snapshot_facts(const struct cfg *c)
{
	struct sf_options o;
	struct sf_reader *r = NULL;
	struct sf_snapshot *s;
	struct sf_snapshot_info si;
	int rc;

	sf_options_init(&o);
	rc = sf_reader_open(&r, c->local_prefix, &o, errbuf, sizeof(errbuf));
	if (rc != 0)
		die("sf_reader_open (local)", rc);
	s = sf_reader_acquire(r);
	sf_snapshot_info(s, &si);
	printf("snapshot: %" PRIu64 " rows, %u shards (%u non-empty), "
	       "%.1f MiB of shard files, sidecars: %s\n",
	       si.total_rows, si.num_dbs, si.num_nonempty,
	       (double)si.total_bytes / 1048576.0,
	       si.has_sidecars ? "yes" : "no");
	sf_snapshot_release(s);
	sf_reader_close(r);
}

struct result {
	int ran;
	int n;
	char name[MAX_METRICS][32];
	double v[MAX_METRICS];
};

static int get_metric(const struct result *res, const char *name, double *v)
{
	if (!res->ran)
		return 0;
	for (int i = 0; i < res->n; i++)
		if (!strcmp(res->name[i], name)) {
			*v = res->v[i];
			return 1;
		}
	return 0;
}

static pid_t spawn(char *const argv[], int *out_fd)
{
	int p[2];
	pid_t pid;

	if (pipe(p) < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execv(argv[0], argv);
		perror("bench_lookup: exec");
		_exit(127);
	}
	close(p[1]);
	*out_fd = p[0];
	return pid;
}

static void child_args(const struct cfg *c, enum mode m, char **argv,
		       char (*num)[32])
{
	int a = 0;

	argv[a++] = "/proc/self/exe";
	argv[a++] = "--child";
	argv[a++] = (char *)mode_names[m];
	argv[a++] = "--endpoint";
	argv[a++] = (char *)c->endpoint;
	argv[a++] = "--read-endpoint";
	argv[a++] = (char *)c->read_endpoint;
	argv[a++] = "--bucket";
	argv[a++] = (char *)c->bucket;
	argv[a++] = "--workdir";
	argv[a++] = (char *)c->workdir;
	snprintf(num[0], 32, "%ld", c->nkeys);
	argv[a++] = "--keys";
	argv[a++] = num[0];
	snprintf(num[1], 32, "%ld", c->cold);
	argv[a++] = "--cold";
	argv[a++] = num[1];
	snprintf(num[2], 32, "%ld", c->hot);
	argv[a++] = "--hot";
	argv[a++] = num[2];
	snprintf(num[3], 32, "%g", c->warm_secs);
	argv[a++] = "--warm-secs";
	argv[a++] = num[3];
	argv[a] = NULL;
}

static void run_mode(const struct cfg *c, enum mode m, struct result *res)
{
	char *argv[32];
	char num[4][32];
	char line[256];
	int fd, status;
	pid_t pid;
	FILE *f;

	child_args(c, m, argv, num);
	fprintf(stderr, "bench_lookup: running %s ...\n", mode_names[m]);
	fflush(stdout);
	pid = spawn(argv, &fd);
	if (pid < 0) {
		perror("bench_lookup: spawn");
		return;
	}
	f = fdopen(fd, "r");
	while (f && fgets(line, sizeof(line), f)) {
		char name[32];
		double v;

		if (sscanf(line, "%31s %lf", name, &v) == 2 &&
		    res->n < MAX_METRICS) {
			snprintf(res->name[res->n], sizeof(res->name[0]), "%s",
				 name);
			res->v[res->n++] = v;
		}
	}
	if (f)
		fclose(f);
	waitpid(pid, &status, 0);
	res->ran = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (!res->ran)
		fprintf(stderr, "bench_lookup: mode %s failed (status %d)\n",
			mode_names[m], status);
}

/* One table row: a label and a metric (with `prec` decimals) per mode. */
static void row(const struct result *res, const char *label,
		const char *metric, int prec, double scale)
{
	char cell[32];

	printf("%-44s", label);
	for (int m = 0; m < N_MODES; m++) {
		double v;

		if (get_metric(&res[m], metric, &v))
			snprintf(cell, sizeof(cell), "%.*f", prec, v * scale);
		else
			snprintf(cell, sizeof(cell), "-");
		printf(" %11s", cell);
	}
	printf("\n");
}

static void print_table(const struct cfg *c, const struct result *res)
{
	double v, w;

	printf("\nPoint lookups, %ld keys in %ld shards, per-request delay "
	       "%ld ms%s\n", c->nkeys, c->shards, c->delay_ms,
	       c->delay_ms ? " (delay_proxy)" : " (direct to moto)");
	printf("%-44s", "");
	for (int m = 0; m < N_MODES; m++)
		printf(" %11s", mode_names[m]);
	printf("\n");
	row(res, "cold samples (fresh readers)", "samples", 0, 1);
	printf("-- reader open (_CURRENT + manifest)\n");
	row(res, "  requests", "open_req", 1, 1);
	row(res, "  KiB", "open_bytes", 1, 1.0 / 1024);
	row(res, "  p50 ms", "open_ms", 2, 1);
	printf("-- shard open (first lookup minus cold lookup)\n");
	row(res, "  requests", "shopen_req", 2, 1);
	row(res, "  KiB", "shopen_bytes", 1, 1.0 / 1024);
	row(res, "  p50 ms", "shopen_ms", 2, 1);
	printf("-- first lookup in a fresh shard (open + lookup)\n");
	row(res, "  requests", "first_req", 2, 1);
	row(res, "  KiB", "first_bytes", 1, 1.0 / 1024);
	row(res, "  p50 ms", "first_p50_ms", 3, 1);
	row(res, "  p99 ms", "first_p99_ms", 3, 1);
	printf("-- cold point lookup (shard open, pages not cached)\n");
	row(res, "  requests (mean)", "cold_req", 2, 1);
	row(res, "  requests (max)", "cold_req_max", 0, 1);
	row(res, "  samples served with 0 requests", "cold_zero", 0, 1);
	row(res, "  page-cache misses (mean)", "cold_miss", 2, 1);
	row(res, "  KiB", "cold_bytes", 1, 1.0 / 1024);
	row(res, "  p50 ms", "cold_p50_ms", 3, 1);
	row(res, "  p99 ms", "cold_p99_ms", 3, 1);
	printf("-- cold lookup of a 9-13 KiB value (overflow chain)\n");
	row(res, "  requests (mean)", "ovf_req", 2, 1);
	row(res, "  requests (max)", "ovf_req_max", 0, 1);
	row(res, "  ranged GETs (max)", "ovf_range_max", 0, 1);
	row(res, "  page-cache misses (mean)", "ovf_miss", 2, 1);
	row(res, "  KiB", "ovf_bytes", 1, 1.0 / 1024);
	row(res, "  p50 ms", "ovf_p50_ms", 3, 1);
	row(res, "  p99 ms", "ovf_p99_ms", 3, 1);
	printf("-- warm lookups (hot set of %ld keys, all cached)\n", c->hot);
	row(res, "  warm-up of the hot set, s", "warmup_s", 2, 1);
	row(res, "  p50 us", "warm_p50_us", 2, 1);
	row(res, "  p99 us", "warm_p99_us", 2, 1);
	row(res, "  lookups/s, 1 thread", "warm_1t", 0, 1);
	row(res, "  lookups/s, 2 threads", "warm_2t", 0, 1);
	row(res, "  requests during the warm phase", "warm_req", 0, 1);
	printf("--\n");
	row(res, "retries + hedged (all cold samples)", "cold_extra", 0, 1);
	row(res, "peak RSS MiB (per child process)", "rss_mib", 1, 1);
	row(res, "wrong values / errors", "errors", 0, 1);

	printf("\nrequests = GET + ranged GET + HEAD + LIST (sf_reader_stats "
	       "deltas); KiB = body bytes received.\n"
	       "sqlite/file read local files already in the OS page cache; "
	       "sqlite 'shard open' = sqlite3_open_v2 + prepare.\n"
	       "file = open + pread 100 bytes + close of one local file (the "
	       "floor of any per-key file read).\n");
	printf("\nTargets (compare, not asserted):\n");
	if (get_metric(&res[M_RANGE_SC], "shopen_req", &v))
		printf("  sidecar shard open = 1 request:             %.2f\n",
		       v);
	if (get_metric(&res[M_RANGE_SC], "cold_req", &v) &&
	    get_metric(&res[M_RANGE_SC], "cold_req_max", &w))
		printf("  cold small lookup = 1 more ranged GET:      %.2f "
		       "(max %.0f)\n", v, w);
	if (get_metric(&res[M_RANGE_SC], "ovf_req_max", &v))
		printf("  overflow-chain lookup <= 2 round trips:     max %.0f "
		       "requests\n", v);
	if (get_metric(&res[M_RANGE_SC], "warm_1t", &v))
		printf("  warm >= 200,000 lookups/s per core:         %.0f/s "
		       "(1 thread)\n", v);
}

/*
 * --lists DIR: the name lists bench_mount.sh reads. DIR/hot.list holds
 * --hot random small-value keys; DIR/neighbours.list holds, for each hot
 * key, the next small-value key of the same shard (routing through the
 * snapshot's manifest), which is not hot itself: in stored order it is
 * the hot key's successor, so it almost always sits on the same B-tree
 * leaf, which a daemon that read the hot key has cached.
 */
static void write_lists(const struct cfg *c)
{
	struct sf_options o;
	struct sf_reader *r = NULL;
	char path[1024], k[KEYLEN];
	uint8_t *is_hot = calloc((size_t)c->nkeys, 1);
	long *order = NULL, nhot = c->hot < c->nkeys / 2 ? c->hot : c->nkeys / 2;
	uint64_t seed = 3;
	FILE *fh, *fn;
	int rc;

	order = calloc((size_t)nhot, sizeof(*order));
	if (!is_hot || !order)
		exit(1);
	lib_options(c, M_RANGE, NULL, &o);
	rc = sf_reader_open(&r, c->s3_prefix, &o, errbuf, sizeof(errbuf));
	if (rc != 0)
		die("sf_reader_open", rc);
	for (long n = 0; n < nhot;) {
		long i = rand_small(&seed, c->nkeys);

		if (!is_hot[i]) {
			is_hot[i] = 1;
			order[n++] = i;
		}
	}
	snprintf(path, sizeof(path), "%s/hot.list", c->lists);
	fh = fopen(path, "w");
	snprintf(path, sizeof(path), "%s/neighbours.list", c->lists);
	fn = fopen(path, "w");
	if (!fh || !fn) {
		perror("bench_lookup: lists");
		exit(1);
	}
	for (long n = 0; n < nhot; n++) {
		long i = order[n];
		uint32_t db = route(r, k, key_text(i, k));

		fprintf(fh, "%s\n", k);
		for (long j = i + 1; j < c->nkeys; j++) {
			if (route(r, k, key_text(j, k)) != db)
				continue;
			if (!is_big(j) && !is_hot[j])
				fprintf(fn, "%s\n", k);
			break;
		}
	}
	fclose(fh);
	fclose(fn);
	sf_reader_close(r);
	free(order);
	free(is_hot);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_lookup --endpoint URL [--bucket B] [--keys N] "
		"[--shards N]\n"
		"       [--delay-ms N] [--cold N] [--hot N] [--warm-secs S] "
		"[--workdir DIR]\n"
		"       [--modes range+sc,range,download,sqlite,file]\n"
		"       bench_lookup --endpoint URL --lists DIR [--bucket B] "
		"[--keys N] [--hot N]\n");
	exit(2);
}

static int parse_modes(const char *s, int *modes)
{
	char *copy = strdup(s), *save = NULL, *tok;
	int ok = copy != NULL;

	memset(modes, 0, N_MODES * sizeof(int));
	for (tok = ok ? strtok_r(copy, ",", &save) : NULL; tok;
	     tok = strtok_r(NULL, ",", &save)) {
		int found = 0;

		for (int m = 0; m < N_MODES; m++)
			if (!strcmp(tok, mode_names[m]))
				modes[m] = found = 1;
		if (!found)
			ok = 0;
	}
	free(copy);
	return ok ? 0 : -1;
}

static pid_t start_proxy(const struct cfg *c, char *endpoint, size_t cap)
{
	const char *port = strrchr(c->endpoint, ':');
	char up[64], delay[32], line[64];
	char *argv[] = {BENCH_PROXY, "--upstream", up, "--delay-ms", delay,
			NULL};
	int fd;
	pid_t pid;
	ssize_t n;

	if (!port || strncmp(c->endpoint, "http://127.0.0.1:", 17) != 0) {
		fprintf(stderr, "bench_lookup: --delay-ms needs an endpoint "
				"http://127.0.0.1:PORT\n");
		exit(2);
	}
	snprintf(up, sizeof(up), "127.0.0.1:%ld", atol(port + 1));
	snprintf(delay, sizeof(delay), "%ld", c->delay_ms);
	pid = spawn(argv, &fd);
	n = pid < 0 ? -1 : read(fd, line, sizeof(line) - 1);
	if (n <= 0) {
		fprintf(stderr, "bench_lookup: could not start %s\n",
			BENCH_PROXY);
		exit(1);
	}
	line[n] = 0;
	close(fd);
	snprintf(endpoint, cap, "http://127.0.0.1:%ld", atol(line));
	return pid;
}

int main(int argc, char **argv)
{
	struct cfg c = {
		.bucket = "bench", .nkeys = 300000, .shards = 8, .cold = 50,
		.hot = 1000, .warm_secs = 1.0,
	};
	static struct result res[N_MODES];
	const char *child = NULL;
	char proxy_ep[128];
	pid_t proxy = -1;

	for (int m = 0; m < N_MODES; m++)
		c.modes[m] = 1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--help"))
			usage();
		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--endpoint"))
			c.endpoint = v;
		else if (!strcmp(a, "--read-endpoint"))
			c.read_endpoint = v;
		else if (!strcmp(a, "--bucket"))
			c.bucket = v;
		else if (!strcmp(a, "--workdir"))
			c.workdir = v;
		else if (!strcmp(a, "--keys"))
			c.nkeys = atol(v);
		else if (!strcmp(a, "--shards"))
			c.shards = atol(v);
		else if (!strcmp(a, "--delay-ms"))
			c.delay_ms = atol(v);
		else if (!strcmp(a, "--cold"))
			c.cold = atol(v);
		else if (!strcmp(a, "--hot"))
			c.hot = atol(v);
		else if (!strcmp(a, "--warm-secs"))
			c.warm_secs = atof(v);
		else if (!strcmp(a, "--child"))
			child = v;
		else if (!strcmp(a, "--lists"))
			c.lists = v;
		else if (!strcmp(a, "--modes")) {
			if (parse_modes(v, c.modes) < 0)
				usage();
		} else
			usage();
	}
	if (!c.endpoint || c.nkeys < 200 || c.shards < 1 || c.cold < 1 ||
	    c.hot < 1 || c.warm_secs <= 0 || c.warm_secs > 60 ||
	    c.delay_ms < 0)
		usage();
	if (!c.workdir)
		c.workdir = "/tmp/sf-bench";
	if (!c.lists)
		mkdir(c.workdir, 0755);
	snprintf(c.s3_prefix, sizeof(c.s3_prefix), "s3://%s/lookup", c.bucket);
	snprintf(c.local_prefix, sizeof(c.local_prefix), "%s/local-snapshot",
		 c.workdir);
	if (!c.read_endpoint)
		c.read_endpoint = c.endpoint;

	if (c.lists) {
		write_lists(&c);
		return 0;
	}
	if (child) {
		for (int m = 0; m < N_MODES; m++)
			if (!strcmp(child, mode_names[m])) {
				run_child(&c, (enum mode)m);
				return 0;
			}
		usage();
	}

	signal(SIGPIPE, SIG_IGN);
	rmrf(c.local_prefix);
	build_one(&c, c.local_prefix, 0);
	build_one(&c, c.s3_prefix, 1);
	snapshot_facts(&c);
	fflush(stdout);
	if (c.delay_ms > 0) {
		proxy = start_proxy(&c, proxy_ep, sizeof(proxy_ep));
		c.read_endpoint = proxy_ep;
	}
	for (int m = 0; m < N_MODES; m++)
		if (c.modes[m])
			run_mode(&c, (enum mode)m, &res[m]);
	if (proxy > 0) {
		kill(proxy, SIGTERM);
		waitpid(proxy, NULL, 0);
	}
	print_table(&c, res);
	rmrf(c.local_prefix);
	return 0;
}
