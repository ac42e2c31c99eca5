/*
 * store.c -- the object-store front door: store_open()/store_close(), the
 * dispatch of every store_* call to the backend of its URL's scheme
 * (file.c, s3.c, http.c through struct store_ops), the request counters,
 * and the URL helpers of store.h.
 *
 * Dispatch is per URL, not per store: a store opened on file:///x will
 * still serve s3://b/k (creating its S3 state on first use). That keeps
 * callers simple when a manifest names objects elsewhere.
 *
 * Counters are C11 atomics so store_stats() never takes a lock. The only
 * lock, st->mu, guards the lazy creation of the curl pool and the S3
 * context (no network I/O happens under it).
 *
 * The hedging estimator lives here too (see store_impl.h): a lock-free
 * ring of recent small-GET latencies and a token bucket. The p90 is taken
 * from a copy of the ring (64 values, insertion sort) per hedgeable
 * request; a torn read only mixes in a slightly older sample.
 */
#include "store_impl.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- URL helpers ------------------------------------------------------ */

int store_url_has_scheme(const char *url, const char *scheme)
{
	size_t n = strlen(scheme);

	return url && strncasecmp(url, scheme, n) == 0 &&
	       strncmp(url + n, "://", 3) == 0;
}

const char *store_url_scheme(const char *url)
{
	const char *p;

	if (!url || !*url)
		return NULL;
	if (store_url_has_scheme(url, "file"))
		return "file";
	if (store_url_has_scheme(url, "s3"))
		return "s3";
	if (store_url_has_scheme(url, "http"))
		return "http";
	if (store_url_has_scheme(url, "https"))
		return "https";
	/* Anything else with a scheme is unsupported; a plain path is file. */
	p = strstr(url, "://");
	if (p) {
		const char *q;
		for (q = url; q < p; q++)
			if (!isalnum((unsigned char)*q) && *q != '+' &&
			    *q != '-' && *q != '.')
				return "file"; /* "./a://b" is a path */
		return NULL;
	}
	return "file";
}

char *store_url_join(const char *base, const char *rel)
{
	size_t bl, rl;
	char *out;

	if (!base)
		base = "";
	if (!rel)
		rel = "";
	bl = strlen(base);
	if (bl == 8 && strncasecmp(base, "file:///", 8) == 0)
		bl = 7; /* the root: "file://" + "/" + rel */
	while (bl > 0 && base[bl - 1] == '/') {
		/* keep the "//" of "s3://" or "file:///" intact */
		if (bl >= 3 && base[bl - 2] == '/' && base[bl - 3] == ':')
			break;
		if (bl >= 3 && base[bl - 2] == ':')
			break;
		bl--;
	}
	while (*rel == '/')
		rel++;
	rl = strlen(rel);
	out = malloc(bl + 1 + rl + 1);
	if (!out)
		return NULL;
	memcpy(out, base, bl);
	if (bl == 0 || base[bl - 1] != '/' || (bl == 7 && out[6] == '/' &&
					       out[5] == '/' && out[4] == ':' &&
					       strncasecmp(out, "file", 4) == 0))
		out[bl++] = '/';
	memcpy(out + bl, rel, rl);
	out[bl + rl] = '\0';
	return out;
}

char *store_url_normalize(const char *prefix)
{
	const char *sch;
	char *out = NULL;
	size_t n, min;

	if (!prefix || !*prefix)
		return NULL;
	sch = store_url_scheme(prefix);
	if (sch && strcmp(sch, "file") == 0 && !strstr(prefix, "://")) {
		/* plain path */
		if (prefix[0] == '/') {
			if (asprintf(&out, "file://%s", prefix) < 0)
				return NULL;
		} else {
			char cwd[4096];
			const char *p = prefix;

			if (!getcwd(cwd, sizeof(cwd)))
				return NULL;
			while (p[0] == '.' && p[1] == '/') {
				p += 2;
				while (*p == '/')
					p++;
			}
			if (strcmp(p, ".") == 0)
				p = "";
			if (asprintf(&out, "file://%s%s%s", cwd,
				     strcmp(cwd, "/") == 0 ? "" : "/", p) < 0)
				return NULL;
		}
	} else {
		out = strdup(prefix);
		if (!out)
			return NULL;
		if (sch) {
			/* lower-case the scheme */
			char *c;
			for (c = out; *c && *c != ':'; c++)
				*c = (char)tolower((unsigned char)*c);
		}
	}
	/* Strip trailing slashes, but never into the "scheme://" part or the
	 * root of file:///. */
	n = strlen(out);
	{
		const char *s = strstr(out, "://");
		min = s ? (size_t)(s - out) + 3 : 0;
		if (s && strncmp(out, "file://", 7) == 0)
			min = 8; /* "file:///" */
	}
	while (n > min && out[n - 1] == '/')
		out[--n] = '\0';
	return out;
}

const char *store_local_path(const char *url)
{
	const char *s = store_url_scheme(url);

	if (!s || strcmp(s, "file") != 0)
		return NULL;
	if (strncasecmp(url, "file://", 7) != 0)
		return url; /* a plain path */
	url += 7;
	if (strncasecmp(url, "localhost/", 10) == 0)
		url += 9;
	return url;
}

/* ---- errors ------------------------------------------------------------- */

int store_errno_code(int e)
{
	switch (e) {
	case ENOENT:
	case ENOTDIR:
		return SF_EHTTP_404;
	case EACCES:
	case EPERM:
		return SF_EHTTP_403;
	case ENOMEM:
		return SF_ENOMEM;
	case EFBIG:
		return SF_ETOOBIG;
	default:
		return SF_EIO;
	}
}

/* ---- open/close ----------------------------------------------------------- */

static int dup_opt(char **dst, const char *src)
{
	if (!src) {
		*dst = NULL;
		return 0;
	}
	*dst = strdup(src);
	return *dst ? 0 : SF_ENOMEM;
}

static void conf_free(struct store_conf *c)
{
	free(c->endpoint_url);
	free(c->region);
	free(c->profile);
	free(c->access_key_id);
	if (c->secret_access_key) {
		explicit_bzero(c->secret_access_key,
			       strlen(c->secret_access_key));
		free(c->secret_access_key);
	}
	if (c->session_token) {
		explicit_bzero(c->session_token, strlen(c->session_token));
		free(c->session_token);
	}
	memset(c, 0, sizeof(*c));
}

static long env_long(const char *name, long dflt)
{
	const char *v = getenv(name);
	char *end;
	long x;

	if (!v || !*v)
		return dflt;
	errno = 0;
	x = strtol(v, &end, 10);
	if (errno || *end || x < 0)
		return dflt;
	return x;
}

int store_open(struct store **out, const char *prefix_url,
	       const struct sf_options *opt, char *err, size_t errlen)
{
	struct store *st = NULL;
	struct store_conf *c;
	int rc = SF_ENOMEM;

	*out = NULL;
	if (!prefix_url || !store_url_scheme(prefix_url))
		return sf_errf(err, errlen, SF_EURL,
			       "unsupported store URL '%s'",
			       prefix_url ? prefix_url : "(null)");
	st = calloc(1, sizeof(*st));
	if (!st)
		return sf_errf(err, errlen, SF_ENOMEM, "out of memory");
	if (pthread_mutex_init(&st->mu, NULL) != 0) {
		free(st);
		return sf_errf(err, errlen, SF_ENOMEM, "mutex init failed");
	}
	c = &st->conf;
	st->prefix = store_url_normalize(prefix_url);
	if (!st->prefix)
		goto out;
	if (opt) {
		if (dup_opt(&c->endpoint_url, opt->endpoint_url) ||
		    dup_opt(&c->region, opt->region) ||
		    dup_opt(&c->profile, opt->profile) ||
		    dup_opt(&c->access_key_id, opt->access_key_id) ||
		    dup_opt(&c->secret_access_key, opt->secret_access_key) ||
		    dup_opt(&c->session_token, opt->session_token))
			goto out;
		c->no_sign_request = opt->no_sign_request;
		c->addressing = opt->addressing;
		c->connect_timeout_ms = opt->connect_timeout_ms;
		c->request_timeout_ms = opt->request_timeout_ms;
		c->max_attempts = opt->max_attempts;
		c->retry_budget_ms = opt->retry_budget_ms;
	}
	/* Empty strings mean "not set" as NULL does. */
	if (c->endpoint_url && !*c->endpoint_url) {
		free(c->endpoint_url);
		c->endpoint_url = NULL;
	}
	if (c->region && !*c->region) {
		free(c->region);
		c->region = NULL;
	}
	if (c->connect_timeout_ms <= 0)
		c->connect_timeout_ms = 3000;
	if (c->request_timeout_ms <= 0)
		c->request_timeout_ms = 30000;
	if (c->max_attempts <= 0)
		c->max_attempts = 5;
	if (c->retry_budget_ms <= 0)
		c->retry_budget_ms = 20000;
	/* Internal knobs (tests, benchmarks); not part of sf_options. */
	c->backoff_base_ms = env_long("SF_STORE_BACKOFF_BASE_MS", 100);
	c->backoff_cap_ms = env_long("SF_STORE_BACKOFF_CAP_MS", 5000);
	c->list_page_size = (int)env_long("SF_STORE_LIST_PAGE_SIZE", 0);
	c->list_max_pages = env_long("SF_STORE_LIST_MAX_PAGES",
				     STORE_LIST_MAX_PAGES);
	if (c->list_max_pages <= 0)
		c->list_max_pages = STORE_LIST_MAX_PAGES;
	c->hedge_floor_ms = env_long("SF_STORE_HEDGE_FLOOR_MS", 20);
	c->hedge_cold_ms = env_long("SF_STORE_HEDGE_COLD_MS", 250);
	c->hedge_factor = 3;
	c->mpu_threshold = (uint64_t)env_long("SF_STORE_MULTIPART_THRESHOLD",
					      64L * 1024 * 1024);
	c->mpu_part_size = (uint64_t)env_long("SF_STORE_MULTIPART_PART_SIZE",
					      16L * 1024 * 1024);
	if (c->mpu_part_size == 0)
		c->mpu_part_size = 16u * 1024 * 1024;
	atomic_store(&st->hedge_tokens,
		     (int64_t)STORE_HEDGE_COST * STORE_HEDGE_BURST);
	if (c->list_page_size > 1000)
		c->list_page_size = 1000;
	*out = st;
	return 0;
out:
	store_close(st);
	return sf_errf(err, errlen, rc, "out of memory");
}

void store_close(struct store *st)
{
	if (!st)
		return;
	if (st->s3)
		s3_ctx_free(st->s3);
	if (st->pool)
		http_pool_free(st->pool);
	conf_free(&st->conf);
	free(st->prefix);
	pthread_mutex_destroy(&st->mu);
	free(st);
}

void store_set_list_page_size(struct store *st, int n)
{
	if (n < 0)
		n = 0;
	if (n > 1000)
		n = 1000;
	st->conf.list_page_size = n;
}

void store_set_list_max_pages(struct store *st, long n)
{
	st->conf.list_max_pages = n > 0 ? n : STORE_LIST_MAX_PAGES;
}

void store_set_backoff(struct store *st, long base_ms, long cap_ms)
{
	st->conf.backoff_base_ms = base_ms < 0 ? 0 : base_ms;
	st->conf.backoff_cap_ms = cap_ms < 0 ? 0 : cap_ms;
}

void store_set_hedge(struct store *st, long floor_ms, long cold_ms)
{
	if (floor_ms > 0)
		st->conf.hedge_floor_ms = floor_ms;
	if (cold_ms > 0)
		st->conf.hedge_cold_ms = cold_ms;
}

void store_set_multipart(struct store *st, uint64_t threshold,
			 uint64_t part_size)
{
	if (threshold > 0)
		st->conf.mpu_threshold = threshold;
	if (part_size > 0)
		st->conf.mpu_part_size = part_size;
}

/* ---- hedging ------------------------------------------------------------ */

void store_hedge_record(struct store *st, double ms)
{
	uint64_t i = atomic_fetch_add(&st->lat_n, 1);
	double us = ms * 1000.0;

	if (us < 0)
		us = 0;
	if (us > 4e9)
		us = 4e9;
	atomic_store_explicit(&st->lat_us[i % STORE_LAT_RING], (uint32_t)us,
			      memory_order_relaxed);
}

long store_hedge_delay_ms(struct store *st)
{
	uint32_t v[STORE_LAT_RING];
	uint64_t n = atomic_load(&st->lat_n);
	long floor_ms = st->conf.hedge_floor_ms, d;
	size_t i, j, k;

	if (n < STORE_LAT_MIN)
		return floor_ms > st->conf.hedge_cold_ms ?
		       floor_ms : st->conf.hedge_cold_ms;
	k = n < STORE_LAT_RING ? (size_t)n : STORE_LAT_RING;
	for (i = 0; i < k; i++) {
		uint32_t x = atomic_load_explicit(&st->lat_us[i],
						  memory_order_relaxed);
		for (j = i; j > 0 && v[j - 1] > x; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
	/* the 90th percentile (nearest rank) */
	i = (k * 9 + 9) / 10;
	i = i > 0 ? i - 1 : 0;
	d = (long)(((uint64_t)v[i] * (uint64_t)st->conf.hedge_factor + 999) /
		   1000);
	return d > floor_ms ? d : floor_ms;
}

void store_hedge_credit(struct store *st)
{
	const int64_t cap = (int64_t)STORE_HEDGE_COST * STORE_HEDGE_BURST;
	int64_t t = atomic_load(&st->hedge_tokens);

	while (t < cap &&
	       !atomic_compare_exchange_weak(&st->hedge_tokens, &t, t + 1))
		;
}

int store_hedge_take(struct store *st)
{
	int64_t t = atomic_load(&st->hedge_tokens);

	while (t >= STORE_HEDGE_COST) {
		if (atomic_compare_exchange_weak(&st->hedge_tokens, &t,
						 t - STORE_HEDGE_COST))
			return 1;
	}
	return 0;
}

int store_http_pool(struct store *st, struct http_pool **out, char *err,
		    size_t errlen)
{
	int rc = 0;

	pthread_mutex_lock(&st->mu);
	if (!st->pool)
		rc = http_pool_new(st, &st->pool, err, errlen);
	*out = st->pool;
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_s3_ctx(struct store *st, struct s3_ctx **out, char *err,
		 size_t errlen)
{
	int rc = 0;

	pthread_mutex_lock(&st->mu);
	if (!st->s3)
		rc = s3_ctx_new(st, &st->s3, err, errlen);
	*out = st->s3;
	pthread_mutex_unlock(&st->mu);
	return rc;
}

/* ---- dispatch ------------------------------------------------------------ */

static const struct store_ops *ops_for(const char *url)
{
	const char *s = store_url_scheme(url);

	if (!s)
		return NULL;
	if (strcmp(s, "file") == 0)
		return &file_ops;
	if (strcmp(s, "s3") == 0)
		return &s3_ops;
	return &http_ops;
}

static int bad_url(struct store *st, const char *url, char *err, size_t errlen)
{
	store_count(st, STORE_CTR_FAILURES, 1);
	return sf_errf(err, errlen, SF_EURL, "unsupported URL '%s'",
		       url ? url : "(null)");
}

static int done(struct store *st, int rc)
{
	if (rc < 0)
		store_count(st, STORE_CTR_FAILURES, 1);
	return rc;
}

int store_get(struct store *st, const char *url, size_t max_bytes,
	      uint8_t **data, size_t *len, struct store_info *info, char *err,
	      size_t errlen)
{
	const struct store_ops *o = ops_for(url);

	*data = NULL;
	*len = 0;
	if (info)
		memset(info, 0, sizeof(*info));
	if (!o)
		return bad_url(st, url, err, errlen);
	return done(st, o->get(st, url, max_bytes, data, len, info, err,
			       errlen));
}

int store_get_range(struct store *st, const char *url, uint64_t off,
		    size_t len, const struct store_range_opts *ro,
		    uint8_t *dst, size_t *got, struct store_info *info,
		    char *err, size_t errlen)
{
	const struct store_ops *o = ops_for(url);

	*got = 0;
	if (info)
		memset(info, 0, sizeof(*info));
	if (!o)
		return bad_url(st, url, err, errlen);
	if (len > 0 && off + len < off)
		return done(st, sf_errf(err, errlen, SF_EINVAL,
					"range overflows: %s", url));
	return done(st, o->get_range(st, url, off, len, ro, dst, got, info,
				     err, errlen));
}

int store_get_to_fd(struct store *st, const char *url, int fd,
		    uint64_t max_bytes, const char *if_match,
		    struct store_info *info, char *err, size_t errlen)
{
	const struct store_ops *o = ops_for(url);

	if (info)
		memset(info, 0, sizeof(*info));
	if (!o)
		return bad_url(st, url, err, errlen);
	return done(st, o->get_to_fd(st, url, fd, max_bytes, if_match, info,
				     err, errlen));
}

int store_head(struct store *st, const char *url, struct store_info *info,
	       char *err, size_t errlen)
{
	const struct store_ops *o = ops_for(url);
	struct store_info tmp;

	if (!info)
		info = &tmp;
	memset(info, 0, sizeof(*info));
	if (!o)
		return bad_url(st, url, err, errlen);
	return done(st, o->head(st, url, info, err, errlen));
}

int store_list(struct store *st, const char *url_prefix,
	       const char *delimiter, store_list_cb cb, void *ctx, char *err,
	       size_t errlen)
{
	const struct store_ops *o = ops_for(url_prefix);

	if (!o)
		return bad_url(st, url_prefix, err, errlen);
	if (delimiter && !*delimiter)
		delimiter = NULL;
	return done(st, o->list(st, url_prefix, delimiter, cb, ctx, err,
				errlen));
}

int store_put(struct store *st, const char *url, const void *data,
	      size_t len, const char *content_type, struct store_info *info,
	      char *err, size_t errlen)
{
	const struct store_ops *o = ops_for(url);

	if (info)
		memset(info, 0, sizeof(*info));
	if (!o)
		return bad_url(st, url, err, errlen);
	if (!data && len > 0)
		return done(st, sf_errf(err, errlen, SF_EINVAL,
					"PUT %s: no data", url));
	return done(st, o->put(st, url, data, len, content_type, info, err,
			       errlen));
}

int store_put_file(struct store *st, const char *url, const char *path,
		   const char *content_type, struct store_info *info,
		   char *err, size_t errlen)
{
	const struct store_ops *o = ops_for(url);

	if (info)
		memset(info, 0, sizeof(*info));
	if (!o)
		return bad_url(st, url, err, errlen);
	return done(st, o->put_file(st, url, path, content_type, info, err,
				    errlen));
}

int store_create_bucket(struct store *st, const char *bucket, char *err,
			size_t errlen)
{
	if (!bucket || !*bucket)
		return sf_errf(err, errlen, SF_EINVAL, "empty bucket name");
	return done(st, s3_ops.create_bucket(st, bucket, err, errlen));
}

void store_count_bytes_in(struct store *st, enum store_ctr ctr, uint64_t n)
{
	store_count(st, STORE_CTR_BYTES_IN, n);
	store_count(st, ctr == STORE_CTR_GET     ? STORE_CTR_BYTES_GET
			: ctr == STORE_CTR_RANGE ? STORE_CTR_BYTES_RANGE
						 : STORE_CTR_BYTES_OTHER,
		    n);
}

void store_stats(struct store *st, struct store_stats *out)
{
	uint64_t v[STORE_NCTR];
	int i;

	for (i = 0; i < STORE_NCTR; i++)
		v[i] = atomic_load_explicit(&st->ctr[i], memory_order_relaxed);
	out->get_requests = v[STORE_CTR_GET];
	out->range_requests = v[STORE_CTR_RANGE];
	out->head_requests = v[STORE_CTR_HEAD];
	out->list_requests = v[STORE_CTR_LIST];
	out->put_requests = v[STORE_CTR_PUT];
	out->bytes_in = v[STORE_CTR_BYTES_IN];
	out->bytes_out = v[STORE_CTR_BYTES_OUT];
	out->retries = v[STORE_CTR_RETRIES];
	out->hedged = v[STORE_CTR_HEDGED];
	out->failures = v[STORE_CTR_FAILURES];
	out->bytes_get = v[STORE_CTR_BYTES_GET];
	out->bytes_range = v[STORE_CTR_BYTES_RANGE];
	out->bytes_other = v[STORE_CTR_BYTES_OTHER];
}
