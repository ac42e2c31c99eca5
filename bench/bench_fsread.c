/*
 * bench_fsread.c -- the file-reading half of bench_mount.sh: times
 * open + read-to-EOF + close of named files in a directory, so that a
 * FUSE mount and a tmpfs copy of the same bytes are measured by the same
 * code (a shell loop would measure fork, not the filesystem).
 *
 *   bench_fsread [--label TEXT] [--threads T] [--secs S] DIR LIST
 *       random names from LIST (one per line) for S seconds from T threads
 *       (after a 20000-op latency pass on one thread): prints one line
 *       with ops/s, p50 and p99 latency.
 *   bench_fsread --once [--label TEXT] DIR LIST
 *       one pass over LIST in order on one thread, each name opened once:
 *       for names the kernel has not cached yet.
 *   bench_fsread --copy-to OUTDIR DIR LIST
 *       copies DIR/name to OUTDIR/name for every name (makes the tmpfs
 *       twin of the mounted files).
 *
 * Exit status 1 when any open/read failed (after printing the figures).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LAT_OPS 20000
#define MAX_THREADS 8

struct names {
	size_t n;
	char **v;
};

static const char *dir;
static struct names names;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void load_names(const char *list)
{
	FILE *f = fopen(list, "r");
	char line[4096];
	size_t cap = 0;

	if (!f) {
		perror(list);
		exit(2);
	}
	while (fgets(line, sizeof(line), f)) {
		size_t l = strcspn(line, "\r\n");

		line[l] = 0;
		if (l == 0)
			continue;
		if (names.n == cap) {
			cap = cap ? 2 * cap : 1024;
			names.v = realloc(names.v, cap * sizeof(*names.v));
			if (!names.v)
				exit(2);
		}
		if (asprintf(&names.v[names.n++], "%s/%s", dir, line) < 0)
			exit(2);
	}
	fclose(f);
	if (names.n == 0) {
		fprintf(stderr, "bench_fsread: %s: no names\n", list);
		exit(2);
	}
}

/* open + read to EOF + close; returns bytes read or -1. */
static long read_one(const char *path)
{
	char buf[65536];
	long total = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -1;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		total += n;
	close(fd);
	return n < 0 ? -1 : total;
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double pct(double *v, size_t n, double q)
{
	size_t k = (size_t)(q * (double)(n - 1) + 0.5);

	return v[k < n ? k : n - 1];
}

struct thr {
	uint64_t seed;
	atomic_int *stop;
	pthread_barrier_t *start;
	uint64_t ops, errors;
};

static void *thr_main(void *arg)
{
	struct thr *t = arg;

	pthread_barrier_wait(t->start);
	while (!atomic_load_explicit(t->stop, memory_order_relaxed)) {
		size_t j = (size_t)(splitmix(&t->seed) % names.n);

		if (read_one(names.v[j]) < 0)
			t->errors++;
		t->ops++;
	}
	return NULL;
}

static double run_threads(int nthreads, double secs, uint64_t *errors)
{
	pthread_t tid[MAX_THREADS];
	struct thr t[MAX_THREADS];
	pthread_barrier_t start;
	atomic_int stop;
	struct timespec ts = {(time_t)secs,
			      (long)((secs - (double)(time_t)secs) * 1e9)};
	uint64_t ops = 0;
	double t0;

	atomic_init(&stop, 0);
	pthread_barrier_init(&start, NULL, (unsigned)nthreads + 1);
	for (int i = 0; i < nthreads; i++) {
		t[i] = (struct thr){11 + (uint64_t)i, &stop, &start, 0, 0};
		if (pthread_create(&tid[i], NULL, thr_main, &t[i]) != 0)
			exit(2);
	}
	pthread_barrier_wait(&start);
	t0 = now_s();
	nanosleep(&ts, NULL);
	atomic_store(&stop, 1);
	for (int i = 0; i < nthreads; i++) {
		pthread_join(tid[i], NULL);
		ops += t[i].ops;
		*errors += t[i].errors;
	}
	t0 = now_s() - t0;
	pthread_barrier_destroy(&start);
	return (double)ops / t0;
}

static int copy_to(const char *outdir, const char *list_dir)
{
	int bad = 0;

	for (size_t i = 0; i < names.n; i++) {
		const char *base = names.v[i] + strlen(list_dir) + 1;
		char buf[65536];
		char *out = NULL;
		ssize_t n;
		int in = open(names.v[i], O_RDONLY), fd;

		if (asprintf(&out, "%s/%s", outdir, base) < 0)
			exit(2);
		fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (in < 0 || fd < 0) {
			fprintf(stderr, "bench_fsread: copy %s: %s\n", base,
				strerror(errno));
			bad = 1;
		}
		while (in >= 0 && fd >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
			if (write(fd, buf, (size_t)n) != n)
				bad = 1;
		if (in >= 0)
			close(in);
		if (fd >= 0)
			close(fd);
		free(out);
	}
	return bad;
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_fsread [--label T] [--threads N] "
			"[--secs S] [--once] [--copy-to OUTDIR] DIR LIST\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *label = "", *copy = NULL;
	int threads = 1, once = 0, i;
	double secs = 1.0;
	uint64_t errors = 0;
	double *lat;
	size_t nlat;

	for (i = 1; i < argc && !strncmp(argv[i], "--", 2); i++) {
		if (!strcmp(argv[i], "--once")) {
			once = 1;
		} else if (i + 1 >= argc) {
			usage();
		} else if (!strcmp(argv[i], "--label")) {
			label = argv[++i];
		} else if (!strcmp(argv[i], "--threads")) {
			threads = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--secs")) {
			secs = atof(argv[++i]);
		} else if (!strcmp(argv[i], "--copy-to")) {
			copy = argv[++i];
		} else {
			usage();
		}
	}
	if (argc - i != 2 || threads < 1 || threads > MAX_THREADS ||
	    secs <= 0 || secs > 60)
		usage();
	dir = argv[i];
	load_names(argv[i + 1]);
	if (copy)
		return copy_to(copy, dir);

	nlat = once ? names.n : LAT_OPS;
	lat = calloc(nlat, sizeof(double));
	if (!lat)
		return 2;
	{
		uint64_t seed = 5;
		double t0 = now_s(), el;

		for (size_t k = 0; k < nlat; k++) {
			size_t j = once ? k : (size_t)(splitmix(&seed) % names.n);
			double t = now_s();

			if (read_one(names.v[j]) < 0)
				errors++;
			lat[k] = (now_s() - t) * 1e6;
		}
		el = now_s() - t0;
		qsort(lat, nlat, sizeof(double), cmp_double);
		printf("%-48s p50 %8.2f us  p99 %8.2f us", label,
		       pct(lat, nlat, 0.5), pct(lat, nlat, 0.99));
		if (once)
			printf("  %10.0f ops/s (1 thread, %zu names)",
			       (double)nlat / el, nlat);
	}
	free(lat);
	if (!once) {
		double r1 = run_threads(1, secs, &errors);

		printf("  %10.0f ops/s (1 thread)", r1);
		if (threads > 1)
			printf("  %10.0f ops/s (%d threads)",
			       run_threads(threads, secs, &errors), threads);
	}
	if (errors)
		printf("  ERRORS %llu", (unsigned long long)errors);
	printf("\n");
	fflush(stdout);
	return errors ? 1 : 0;
}
