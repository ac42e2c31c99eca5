/*
 * http.c -- the libcurl engine shared by s3.c, and the plain http(s)://
 * backend (unsigned GET, ranged GET and HEAD; LIST and PUT are
 * SF_EUNSUPPORTED there).
 *
 * Connections. A store owns one struct http_pool: a mutex-protected stack
 * of idle slots, each an easy handle plus the multi handle that runs it
 * (and a second easy handle for hedges). The multi owns the slot's
 * connection cache, so keep-alive connections survive between requests
 * (curl_easy_reset keeps them). A request takes a slot (or creates one),
 * runs, and gives the slot back. DNS and TLS session caches are shared by
 * all handles of the pool through a CURLSH. pool->mu is held only to
 * push/pop slots, never across a transfer.
 *
 * Hedging. A small ranged GET with http_req.hedge that is still running
 * after store_hedge_delay_ms() gets a twin on a fresh connection of the
 * same multi; the first conclusive answer wins (run_attempt). At most one
 * hedge per request, and only while the store's hedge budget allows.
 *
 * One request (http_exec). Each attempt:
 *   1. builds the header list (Range, If-Match, Content-Type, then the
 *      caller's prepare hook, which signs);
 *   2. performs the transfer with a per-attempt timeout that never runs
 *      past the request's deadline (long streaming transfers use a stall
 *      timeout instead of a total one);
 *   3. classifies the outcome: 2xx is success; 403/401, 404, 412, 416 and
 *      other 4xx are final; 5xx, 429, 408, S3's 400 RequestTimeout and
 *      transport failures (connect, reset, timeout, empty reply) retry.
 * Between attempts it sleeps a full-jitter backoff, random in
 * [0, min(cap, base * 2^n)), or the server's Retry-After when longer. It
 * stops at max_attempts (last error) or when the next attempt could not
 * start within retry_budget_ms / the deadline (SF_ETIMEDOUT).
 *
 * Bodies. The write callback knows the status of the response it is
 * receiving: error bodies go to a small capped buffer (to read S3's
 * <Code>), success bodies to the sink. A server that ignores Range and
 * answers 200 is handled by skipping to the offset and stopping the
 * transfer once the caller's buffer is full. A retried download into an
 * fd is rewound (lseek + ftruncate) to where it started.
 */
#include "http.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HTTP_POOL_MAX 64
#define HTTP_ERRBODY_MAX 2048
#define HTTP_MEM_CHUNK (64 * 1024)
#define HTTP_HEDGE_MAX (1024 * 1024) /* largest ranged GET that may hedge */

/* ---- global init and the handle pool ----------------------------------- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_rc;

static void global_init_once(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

int http_global_init(void)
{
	pthread_once(&global_once, global_init_once);
	return global_rc;
}

/* One pooled connection slot: the easy handle of the request, a second
 * easy handle for a hedge (created on first use), and the multi handle
 * that drives them and owns their connection cache. */
struct http_conn {
	CURL *h;
	CURL *h2;
	CURLM *m;
};

struct http_pool {
	pthread_mutex_t mu;
	struct http_conn *idle[HTTP_POOL_MAX]; /* protected by mu */
	int n_idle;                            /* protected by mu */
	CURLSH *share;
	pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
};

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access acc,
		       void *ctx)
{
	struct http_pool *p = ctx;

	if (data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&p->share_mu[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ctx)
{
	struct http_pool *p = ctx;

	if (data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&p->share_mu[data]);
}

int http_pool_new(struct store *st, struct http_pool **out, char *err,
		  size_t errlen)
{
	struct http_pool *p;
	int i;

	*out = NULL;
	if (http_global_init() != 0)
		return sf_errf(err, errlen, SF_ENET, "curl_global_init failed");
	p = calloc(1, sizeof(*p));
	if (!p)
		return sf_errf(err, errlen, SF_ENOMEM, "out of memory");
	pthread_mutex_init(&p->mu, NULL);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&p->share_mu[i], NULL);
	p->share = curl_share_init();
	if (p->share) {
		curl_share_setopt(p->share, CURLSHOPT_LOCKFUNC, share_lock);
		curl_share_setopt(p->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
		curl_share_setopt(p->share, CURLSHOPT_USERDATA, p);
		curl_share_setopt(p->share, CURLSHOPT_SHARE,
				  CURL_LOCK_DATA_DNS);
		curl_share_setopt(p->share, CURLSHOPT_SHARE,
				  CURL_LOCK_DATA_SSL_SESSION);
	}
	*out = p;
	return 0;
}

/* Frees a slot (its handles are not in the multi any more). */
static void conn_free(struct http_conn *c)
{
	if (!c)
		return;
	if (c->h)
		curl_easy_cleanup(c->h);
	if (c->h2)
		curl_easy_cleanup(c->h2);
	if (c->m)
		curl_multi_cleanup(c->m);
	free(c);
}

void http_pool_free(struct http_pool *p)
{
	int i;

	if (!p)
		return;
	for (i = 0; i < p->n_idle; i++)
		conn_free(p->idle[i]);
	if (p->share)
		curl_share_cleanup(p->share);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&p->share_mu[i]);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

/* Takes an idle slot or creates one; NULL on ENOMEM. The caller owns it
 * until pool_give(). */
static struct http_conn *pool_take(struct http_pool *p)
{
	struct http_conn *c = NULL;

	pthread_mutex_lock(&p->mu);
	if (p->n_idle > 0)
		c = p->idle[--p->n_idle];
	pthread_mutex_unlock(&p->mu);
	if (c) {
		curl_easy_reset(c->h);
		if (c->h2)
			curl_easy_reset(c->h2);
		return c;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->h = curl_easy_init();
	c->m = curl_multi_init();
	if (!c->h || !c->m) {
		conn_free(c);
		return NULL;
	}
	return c;
}

static void pool_give(struct http_pool *p, struct http_conn *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&p->mu);
	if (p->n_idle < HTTP_POOL_MAX) {
		p->idle[p->n_idle++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&p->mu);
	conn_free(c);
}

/* ---- small helpers -------------------------------------------------------- */

void http_req_init(struct http_req *rq)
{
	memset(rq, 0, sizeof(*rq));
	rq->method = "GET";
	rq->body_fd = -1;
	rq->fd = -1;
	rq->ctr = STORE_CTR_GET;
}

void http_resp_free(struct http_resp *rs)
{
	free(rs->data);
	rs->data = NULL;
}

void http_redact(const char *url, char *out, size_t outlen)
{
	const char *q = strchr(url, '?');

	if (q)
		snprintf(out, outlen, "%.*s?...", (int)(q - url), url);
	else
		snprintf(out, outlen, "%s", url);
}

static double mono_ms(void)
{
	return sf_now_mono() * 1000.0;
}

static void sleep_ms(double ms)
{
	struct timespec ts;

	if (ms <= 0)
		return;
	ts.tv_sec = (time_t)(ms / 1000.0);
	ts.tv_nsec = (long)((ms - (double)ts.tv_sec * 1000.0) * 1e6);
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* A per-thread xorshift64* generator for backoff jitter. */
static uint64_t jitter_rand(void)
{
	static _Thread_local uint64_t s;
	uint64_t x;

	if (!s) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		s = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
		    (uint64_t)(uintptr_t)&x ^ 0x9E3779B97F4A7C15ull;
	}
	x = s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

/* ---- one attempt ---------------------------------------------------------- */

struct xfer {
	const struct http_req *rq;
	struct http_resp *rs;
	CURL *h;
	struct store *st;
	uint8_t *buf;         /* HTTP_SINK_BUF target (rq->buf or a hedge's) */
	long status;          /* status of the response being received */
	size_t cap;           /* MEM capacity */
	uint64_t skip;        /* bytes to drop (200 to a ranged GET) */
	int done_early;       /* stopped on purpose once the buffer was full */
	int too_big;
	int write_errno;
	char errbody[HTTP_ERRBODY_MAX + 1];
	size_t errbody_len;
	uint64_t body_in;     /* success body bytes received */
	uint64_t up_off;      /* upload position */
	long retry_after_ms;  /* Retry-After of this response, -1 if none */
};

static int hdr_is(const char *line, size_t n, const char *name, size_t *vo)
{
	size_t nl = strlen(name);

	if (n <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return 0;
	nl++;
	while (nl < n && (line[nl] == ' ' || line[nl] == '\t'))
		nl++;
	*vo = nl;
	return 1;
}

/* Copies a header value without trailing CR/LF/space into out. */
static void hdr_value(const char *v, size_t n, char *out, size_t outlen)
{
	while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' ||
			 v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, v, n);
	out[n] = '\0';
}

static int parse_u64(const char *s, const char **end, uint64_t *out)
{
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return -1;
	while (*s >= '0' && *s <= '9') {
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
		s++;
	}
	*end = s;
	*out = v;
	return 0;
}

/* "bytes a-b/total" or "bytes * /total" (no space) or "bytes a-b/ *". */
static void parse_content_range(const char *v, struct http_resp *rs)
{
	const char *p;
	uint64_t a = 0, b = 0, t = UINT64_MAX;

	if (strncasecmp(v, "bytes ", 6) != 0)
		return;
	p = v + 6;
	if (*p == '*') {
		p++;
	} else {
		if (parse_u64(p, &p, &a) || *p != '-')
			return;
		p++;
		if (parse_u64(p, &p, &b) || b < a)
			return;
	}
	if (*p != '/')
		return;
	p++;
	if (*p != '*' && (parse_u64(p, &p, &t) || *p))
		return;
	rs->has_crange = 1;
	rs->cr_start = a;
	rs->cr_end = b;
	rs->cr_total = t;
}

/* Retry-After: delay-seconds or an HTTP date; capped at an hour. */
static long parse_retry_after(const char *v)
{
	uint64_t s;
	const char *e;
	time_t t, now;

	if (parse_u64(v, &e, &s) == 0 && !*e)
		return s > 3600 ? 3600000L : (long)s * 1000;
	t = curl_getdate(v, NULL);
	if (t <= 0)
		return -1;
	now = time(NULL);
	if (t <= now)
		return 0;
	return t - now > 3600 ? 3600000L : (long)(t - now) * 1000;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	struct http_resp *rs = x->rs;
	size_t n = size * nmemb, vo;
	char v[256];

	if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		/* a new response (after 100-continue or a redirect) */
		rs->etag[0] = '\0';
		rs->mtime = 0;
		rs->content_length = -1;
		rs->has_crange = 0;
		x->retry_after_ms = -1;
		return n;
	}
	if (hdr_is(line, n, "etag", &vo)) {
		hdr_value(line + vo, n - vo, rs->etag, sizeof(rs->etag));
	} else if (hdr_is(line, n, "content-length", &vo)) {
		uint64_t cl;
		const char *e;
		hdr_value(line + vo, n - vo, v, sizeof(v));
		if (parse_u64(v, &e, &cl) == 0 && !*e && cl <= INT64_MAX)
			rs->content_length = (int64_t)cl;
	} else if (hdr_is(line, n, "content-range", &vo)) {
		hdr_value(line + vo, n - vo, v, sizeof(v));
		parse_content_range(v, rs);
	} else if (hdr_is(line, n, "last-modified", &vo)) {
		time_t t;
		hdr_value(line + vo, n - vo, v, sizeof(v));
		t = curl_getdate(v, NULL);
		if (t > 0)
			rs->mtime = (int64_t)t;
	} else if (hdr_is(line, n, "retry-after", &vo)) {
		hdr_value(line + vo, n - vo, v, sizeof(v));
		x->retry_after_ms = parse_retry_after(v);
	}
	return n;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	const struct http_req *rq = x->rq;
	struct http_resp *rs = x->rs;
	size_t n = size * nmemb, take;

	if (x->status == 0) {
		long code = 0;
		curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
		x->status = code;
		if (code == 200 && rq->has_range)
			x->skip = rq->range_off;
	}
	if (x->status < 200 || x->status >= 300) {
		take = HTTP_ERRBODY_MAX - x->errbody_len;
		if (take > n)
			take = n;
		memcpy(x->errbody + x->errbody_len, data, take);
		x->errbody_len += take;
		x->errbody[x->errbody_len] = '\0';
		return n;
	}
	x->body_in += n;
	store_count_bytes_in(x->st, rq->ctr, n);
	switch (rq->sink) {
	case HTTP_SINK_NONE:
		return n;
	case HTTP_SINK_MEM:
		if (rs->len + n > rq->max_bytes) {
			x->too_big = 1;
			return 0;
		}
		if (rs->len + n + 1 > x->cap) {
			size_t cap = x->cap ? x->cap : HTTP_MEM_CHUNK;
			uint8_t *d;
			while (cap < rs->len + n + 1)
				cap *= 2;
			if (cap > rq->max_bytes + 1)
				cap = rq->max_bytes + 1;
			d = realloc(rs->data, cap);
			if (!d) {
				x->write_errno = ENOMEM;
				return 0;
			}
			rs->data = d;
			x->cap = cap;
		}
		memcpy(rs->data + rs->len, data, n);
		rs->len += n;
		rs->data[rs->len] = '\0';
		return n;
	case HTTP_SINK_BUF: {
		size_t off = 0;
		if (x->skip > 0) {
			off = x->skip < n ? (size_t)x->skip : n;
			x->skip -= off;
		}
		take = n - off;
		if (take > rq->buf_len - rs->len)
			take = rq->buf_len - rs->len;
		memcpy(x->buf + rs->len, data + off, take);
		rs->len += take;
		if (rs->len == rq->buf_len && off + take < n) {
			/* more than we asked for: stop the transfer here */
			x->done_early = 1;
			return 0;
		}
		return n;
	}
	case HTTP_SINK_FD: {
		int e;
		if (rq->max_bytes && rs->fd_bytes + n > rq->max_bytes) {
			x->too_big = 1;
			return 0;
		}
		e = write_all(rq->fd, data, n);
		if (e) {
			x->write_errno = e;
			return 0;
		}
		rs->fd_bytes += n;
		return n;
	}
	}
	return 0;
}

static size_t on_upload(char *buf, size_t size, size_t nitems, void *ud)
{
	struct xfer *x = ud;
	const struct http_req *rq = x->rq;
	size_t want = size * nitems;
	uint64_t total = rq->body_fd >= 0 ? rq->body_fd_len : rq->body_len;
	ssize_t r;

	if (x->up_off >= total)
		return 0;
	if (want > total - x->up_off)
		want = (size_t)(total - x->up_off);
	if (rq->body_fd < 0) {
		memcpy(buf, (const uint8_t *)rq->body + x->up_off, want);
		x->up_off += want;
		return want;
	}
	do {
		r = pread(rq->body_fd, buf, want,
			  (off_t)(rq->body_fd_off + x->up_off));
	} while (r < 0 && errno == EINTR);
	if (r <= 0) {
		x->write_errno = r < 0 ? errno : EIO; /* file shrank */
		return CURL_READFUNC_ABORT;
	}
	x->up_off += (uint64_t)r;
	return (size_t)r;
}

/* Reads <Code>...</Code> from an S3 XML error body. */
static void error_code(const char *body, char *out, size_t outlen)
{
	const char *a = strstr(body, "<Code>"), *b;
	size_t n;

	out[0] = '\0';
	if (!a)
		return;
	a += 6;
	b = strstr(a, "</Code>");
	if (!b)
		return;
	n = (size_t)(b - a);
	if (n >= outlen)
		n = outlen - 1;
	for (size_t i = 0; i < n; i++) {
		char c = a[i];
		out[i] = (c >= 0x20 && c < 0x7f) ? c : '?';
	}
	out[n] = '\0';
}

static int transient_curl(CURLcode c)
{
	switch (c) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_WEIRD_SERVER_REPLY:
		return 1;
	default:
		return 0;
	}
}

static int status_code(long status)
{
	switch (status) {
	case 401:
	case 403:
		return SF_EHTTP_403;
	case 404:
		return SF_EHTTP_404;
	case 412:
		return SF_EHTTP_412;
	case 416:
		return SF_EHTTP_416;
	default:
		return SF_EHTTP;
	}
}

static int transient_status(long status, const char *code)
{
	if (status >= 500 || status == 429 || status == 408)
		return 1;
	return status == 400 && strcmp(code, "RequestTimeout") == 0;
}

/* Outcome of one attempt. */
struct attempt {
	int rc;         /* 0 or SF_E* */
	int retryable;
	long retry_after_ms;
	char msg[512];
};

static void attempt_fail(struct attempt *a, int rc, int retryable,
			 const char *fmt, ...) SF_PRINTF(4, 5);

static void attempt_fail(struct attempt *a, int rc, int retryable,
			 const char *fmt, ...)
{
	va_list ap;

	a->rc = rc;
	a->retryable = retryable;
	va_start(ap, fmt);
	vsnprintf(a->msg, sizeof(a->msg), fmt, ap);
	va_end(ap);
}

/* Builds the header list of rq (Range, If-Match, Content-Type, then the
 * signer's). On failure fails a and returns -1 (*hdrs freed). */
static int build_headers(const struct http_req *rq, struct curl_slist **hdrs,
			 struct attempt *a)
{
	struct curl_slist *l = NULL, *t;
	char line[256];
	int rc;

	*hdrs = NULL;
	l = curl_slist_append(l, "Expect:");
	if (!l)
		goto nomem;
	if (rq->has_range) {
		snprintf(line, sizeof(line), "Range: bytes=%" PRIu64 "-%" PRIu64,
			 rq->range_off, rq->range_off + rq->buf_len - 1);
		t = curl_slist_append(l, line);
		if (!t)
			goto nomem;
	}
	if (rq->if_match && *rq->if_match) {
		if (strpbrk(rq->if_match, "\r\n")) {
			attempt_fail(a, SF_EINVAL, 0, "%s: bad If-Match value",
				     rq->what);
			goto fail;
		}
		snprintf(line, sizeof(line), "If-Match: %s", rq->if_match);
		t = curl_slist_append(l, line);
		if (!t)
			goto nomem;
	}
	if (rq->content_type && *rq->content_type) {
		if (strpbrk(rq->content_type, "\r\n")) {
			attempt_fail(a, SF_EINVAL, 0, "%s: bad content type",
				     rq->what);
			goto fail;
		}
		snprintf(line, sizeof(line), "Content-Type: %s",
			 rq->content_type);
		t = curl_slist_append(l, line);
		if (!t)
			goto nomem;
	}
	if (rq->prepare) {
		char perr[256] = "";
		rc = rq->prepare(rq->prepare_ctx, &l, perr, sizeof(perr));
		if (rc) {
			attempt_fail(a, rc, 0, "%s", perr);
			goto fail;
		}
	}
	*hdrs = l;
	return 0;
nomem:
	attempt_fail(a, SF_ENOMEM, 0, "%s: out of memory", rq->what);
fail:
	curl_slist_free_all(l);
	return -1;
}

/*
 * One transfer of an attempt: the request itself, or its hedge. An
 * attempt has one leg, or two when the first was slow (see run_attempt).
 */
struct leg {
	CURL *h;
	struct xfer x;
	struct http_resp *rs; /* the caller's for the first leg, else &own */
	struct http_resp own;
	uint8_t *hbuf;        /* the hedge's private body buffer */
	char cerr[CURL_ERROR_SIZE];
	double t0;            /* when it started (ms) */
	double t1;            /* when it ended (ms) */
	int added, done;
	CURLcode cc;
	struct attempt a;
};

/* Sets every option of a leg's easy handle. */
static void setup_handle(struct store *st, struct http_pool *pool,
			 const struct http_req *rq, struct leg *l,
			 struct curl_slist *hdrs, long timeout_ms, int fresh)
{
	CURL *h = l->h;

	curl_easy_setopt(h, CURLOPT_URL, rq->url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, l->cerr);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &l->x);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &l->x);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			 st->conf.connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (fresh)
		curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
	if (pool->share)
		curl_easy_setopt(h, CURLOPT_SHARE, pool->share);
	if (rq->streaming) {
		long s = st->conf.request_timeout_ms / 1000;
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, s > 0 ? s : 1L);
		if (timeout_ms > 0 && rq->deadline_ms > 0)
			curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	} else {
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	}
	if (rq->follow_redirects) {
		curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
		curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	}
	if (strcmp(rq->method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(rq->method, "PUT") == 0) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_upload);
		curl_easy_setopt(h, CURLOPT_READDATA, &l->x);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)(rq->body_fd >= 0 ?
					      rq->body_fd_len : rq->body_len));
	} else if (strcmp(rq->method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_upload);
		curl_easy_setopt(h, CURLOPT_READDATA, &l->x);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)(rq->body_fd >= 0 ?
					      rq->body_fd_len : rq->body_len));
	} else if (strcmp(rq->method, "GET") != 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
	}
}

/* Prepares a leg (its xfer and response) before its handle is set up. */
static void leg_init(struct leg *l, struct store *st,
		     const struct http_req *rq, struct http_resp *rs,
		     uint8_t *buf, CURL *h)
{
	memset(&l->x, 0, sizeof(l->x));
	l->rs = rs ? rs : &l->own;
	http_resp_free(l->rs);
	memset(l->rs, 0, sizeof(*l->rs));
	l->rs->content_length = -1;
	l->x.rq = rq;
	l->x.rs = l->rs;
	l->x.st = st;
	l->x.h = h;
	l->x.buf = buf;
	l->x.retry_after_ms = -1;
	l->h = h;
	l->cerr[0] = '\0';
	l->added = l->done = 0;
	l->cc = CURLE_OK;
	memset(&l->a, 0, sizeof(l->a));
	l->a.retry_after_ms = -1;
}

/* Classifies a finished leg into l->a. */
static void classify(struct store *st, const struct http_req *rq,
		     struct leg *l)
{
	struct xfer *x = &l->x;
	struct http_resp *rs = l->rs;
	struct attempt *a = &l->a;
	CURLcode cc = l->cc;

	curl_easy_getinfo(l->h, CURLINFO_RESPONSE_CODE, &rs->status);
	a->retry_after_ms = x->retry_after_ms;
	if (x->too_big) {
		attempt_fail(a, SF_ETOOBIG, 0,
			     "%s is larger than the %zu bytes allowed",
			     rq->what, rq->max_bytes);
		return;
	}
	if (x->write_errno) {
		attempt_fail(a, x->write_errno == ENOMEM ? SF_ENOMEM : SF_EIO,
			     0, "%s: local I/O: %s", rq->what,
			     strerror(x->write_errno));
		return;
	}
	if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && x->done_early)) {
		int tmo = cc == CURLE_OPERATION_TIMEDOUT;
		attempt_fail(a, tmo ? SF_ETIMEDOUT : SF_ENET,
			     transient_curl(cc), "%s %s: %s", rq->method,
			     rq->what,
			     l->cerr[0] ? l->cerr : curl_easy_strerror(cc));
		return;
	}
	if (rs->status < 200 || rs->status >= 300) {
		error_code(x->errbody, rs->code, sizeof(rs->code));
		attempt_fail(a, status_code(rs->status),
			     transient_status(rs->status, rs->code),
			     "%s %s: HTTP %ld%s%s%s", rq->method, rq->what,
			     rs->status, rs->code[0] ? " (" : "", rs->code,
			     rs->code[0] ? ")" : "");
		return;
	}
	if (rq->has_range && rs->status == 206 &&
	    (!rs->has_crange || rs->cr_start != rq->range_off)) {
		attempt_fail(a, SF_EHTTP, 0,
			     "%s: 206 with an unexpected Content-Range",
			     rq->what);
		return;
	}
	if (rq->has_range && rs->status == 200 &&
	    rs->len < rq->buf_len && x->skip > 0) {
		/* the whole object was shorter than the offset */
		attempt_fail(a, SF_EHTTP_416, 0,
			     "%s: range at %" PRIu64 " starts past the end",
			     rq->what, rq->range_off);
		return;
	}
	if (!rq->has_range && rq->sink != HTTP_SINK_NONE &&
	    rs->content_length >= 0 &&
	    x->body_in != (uint64_t)rs->content_length) {
		attempt_fail(a, SF_ENET, 1, "%s: short body (%" PRIu64
			     " of %" PRId64 " bytes)", rq->what, x->body_in,
			     rs->content_length);
		return;
	}
	if (strcmp(rq->method, "PUT") == 0 || strcmp(rq->method, "POST") == 0)
		store_count(st, STORE_CTR_BYTES_OUT, x->up_off);
	a->rc = 0;
}

/* A small ranged GET into a buffer: its latency feeds the hedge delay,
 * and with rq->hedge it may be hedged. */
static int small_range(const struct http_req *rq)
{
	return rq->has_range && rq->sink == HTTP_SINK_BUF &&
	       strcmp(rq->method, "GET") == 0 && rq->buf_len <= HTTP_HEDGE_MAX;
}

static int hedgeable(const struct http_req *rq)
{
	return rq->hedge && small_range(rq);
}

/* Starts the hedge leg on a fresh connection. 0, or -1 (no hedge). */
static int start_hedge(struct store *st, struct http_pool *pool,
		       struct http_conn *c, const struct http_req *rq,
		       struct leg *l, struct curl_slist *hdrs, long left_ms)
{
	uint8_t *buf;

	if (!c->h2) {
		c->h2 = curl_easy_init();
		if (!c->h2)
			return -1;
	}
	buf = malloc(rq->buf_len);
	if (!buf)
		return -1;
	memset(l, 0, sizeof(*l));
	leg_init(l, st, rq, NULL, buf, c->h2);
	l->hbuf = buf;
	setup_handle(st, pool, rq, l, hdrs, left_ms > 0 ? left_ms : 1, 1);
	if (curl_multi_add_handle(c->m, c->h2) != CURLM_OK) {
		free(buf);
		l->hbuf = NULL;
		return -1;
	}
	l->added = 1;
	l->t0 = mono_ms();
	return 0;
}

/*
 * One attempt: the transfer runs on the slot's multi handle (the same
 * loop curl_easy_perform would run). For a hedgeable request that may
 * still hedge (*hedge_left), a second identical request starts on a
 * fresh connection once the first has run longer than the store's hedge
 * delay; the first leg to end with a success or a final error wins and
 * the other is cancelled (removing it from the multi closes its
 * connection). A leg that ends with a retryable error leaves the race to
 * the other. The hedge has its own body buffer, copied to the caller's
 * only when it wins, so the result is always one response's bytes.
 */
static void run_attempt(struct store *st, struct http_pool *pool,
			const struct http_req *rq, struct http_resp *rs,
			long timeout_ms, int *hedge_left, struct attempt *a)
{
	struct leg legs[2];
	struct curl_slist *hdrs = NULL;
	struct http_conn *c;
	double hedge_at = 0;
	int nlegs = 1, win = -1, i;

	memset(a, 0, sizeof(*a));
	a->retry_after_ms = -1;
	memset(legs, 0, sizeof(legs));
	http_resp_free(rs);
	memset(rs, 0, sizeof(*rs));
	rs->content_length = -1;

	c = pool_take(pool);
	if (!c) {
		attempt_fail(a, SF_ENOMEM, 0, "%s: curl_easy_init failed",
			     rq->what);
		return;
	}
	if (build_headers(rq, &hdrs, a) != 0)
		goto out;
	leg_init(&legs[0], st, rq, rs, rq->buf, c->h);
	setup_handle(st, pool, rq, &legs[0], hdrs, timeout_ms, 0);
	if (curl_multi_add_handle(c->m, c->h) != CURLM_OK) {
		attempt_fail(a, SF_ENOMEM, 0, "%s: curl_multi_add_handle "
			     "failed", rq->what);
		goto out;
	}
	legs[0].added = 1;
	legs[0].t0 = mono_ms();
	if (hedgeable(rq)) {
		store_hedge_credit(st);
		if (*hedge_left > 0)
			hedge_at = legs[0].t0 + (double)store_hedge_delay_ms(st);
	}

	for (;;) {
		CURLMcode mc;
		CURLMsg *msg;
		int running = 0, left, all_done, wait;
		double now;

		mc = curl_multi_perform(c->m, &running);
		if (mc != CURLM_OK) {
			attempt_fail(a, SF_ENET, 1, "%s %s: %s", rq->method,
				     rq->what, curl_multi_strerror(mc));
			goto out;
		}
		while ((msg = curl_multi_info_read(c->m, &left)) != NULL) {
			CURL *eh = msg->easy_handle;
			CURLcode res = msg->data.result;

			if (msg->msg != CURLMSG_DONE)
				continue;
			for (i = 0; i < nlegs; i++) {
				struct leg *l = &legs[i];
				if (l->h != eh || !l->added || l->done)
					continue;
				curl_multi_remove_handle(c->m, eh);
				l->added = 0;
				l->done = 1;
				l->cc = res;
				l->t1 = mono_ms();
				classify(st, rq, l);
			}
		}
		all_done = 1;
		for (i = 0; i < nlegs; i++) {
			if (!legs[i].done) {
				all_done = 0;
				continue;
			}
			if (win < 0 &&
			    (legs[i].a.rc == 0 || !legs[i].a.retryable))
				win = i;
		}
		if (win >= 0)
			break;
		if (all_done) {
			/* every leg failed and may be retried: report the
			 * one that ended last */
			win = nlegs == 2 && legs[1].t1 >= legs[0].t1 ? 1 : 0;
			break;
		}
		now = mono_ms();
		if (hedge_at > 0 && now >= hedge_at) {
			hedge_at = 0;
			if (!legs[0].done && store_hedge_take(st) &&
			    start_hedge(st, pool, c, rq, &legs[1], hdrs,
					timeout_ms - (long)(now - legs[0].t0))
			    == 0) {
				nlegs = 2;
				(*hedge_left)--;
				store_count(st, STORE_CTR_HEDGED, 1);
				sf_log(SF_LOG_DEBUG, "hedging %s after %.0f ms",
				       rq->what, now - legs[0].t0);
				continue;
			}
		}
		wait = 1000;
		if (hedge_at > 0) {
			double d = hedge_at - now;
			wait = d < 1 ? 1 : d < 1000 ? (int)d : 1000;
		}
		mc = curl_multi_poll(c->m, NULL, 0, wait, NULL);
		if (mc != CURLM_OK) {
			attempt_fail(a, SF_ENET, 1, "%s %s: %s", rq->method,
				     rq->what, curl_multi_strerror(mc));
			goto out;
		}
	}
	*a = legs[win].a;
	if (win == 1) {
		/* the hedge won: its bytes and headers become the answer */
		memcpy(rq->buf, legs[1].hbuf, legs[1].own.len);
		http_resp_free(rs);
		*rs = legs[1].own;
		memset(&legs[1].own, 0, sizeof(legs[1].own));
	}
	if (small_range(rq) && legs[win].rs->status >= 200)
		store_hedge_record(st, legs[win].t1 - legs[win].t0);
out:
	for (i = 0; i < nlegs; i++) {
		if (legs[i].added)
			curl_multi_remove_handle(c->m, legs[i].h);
		if (i > 0) {
			http_resp_free(&legs[i].own);
			free(legs[i].hbuf);
		}
	}
	curl_slist_free_all(hdrs);
	pool_give(pool, c);
}

/* ---- the retry loop --------------------------------------------------- */

int http_exec(struct store *st, const struct http_req *rq,
	      struct http_resp *rs, char *err, size_t errlen)
{
	struct http_pool *pool;
	struct attempt a;
	double start = mono_ms(), budget_end, deadline_end = 0;
	off_t fd_start = -1;
	int attempt, rc, hedge_left = 1;

	memset(rs, 0, sizeof(*rs));
	rs->content_length = -1;
	rc = store_http_pool(st, &pool, err, errlen);
	if (rc)
		return rc;
	store_count(st, rq->ctr, 1);
	budget_end = start + (double)st->conf.retry_budget_ms;
	if (rq->deadline_ms > 0) {
		deadline_end = start + (double)rq->deadline_ms;
		if (deadline_end < budget_end)
			budget_end = deadline_end;
	}
	if (rq->sink == HTTP_SINK_FD)
		fd_start = lseek(rq->fd, 0, SEEK_CUR);

	for (attempt = 1;; attempt++) {
		long tmo = st->conf.request_timeout_ms;
		double now = mono_ms(), wait;

		if (deadline_end > 0) {
			double left = deadline_end - now;
			if (left < 1)
				left = 1;
			if (left < (double)tmo)
				tmo = (long)left;
		}
		run_attempt(st, pool, rq, rs, tmo, &hedge_left, &a);
		if (a.rc == 0)
			return 0;
		if (!a.retryable || attempt >= st->conf.max_attempts)
			break;
		if (rq->sink == HTTP_SINK_FD && rs->fd_bytes > 0) {
			/* rewind what this attempt wrote */
			if (fd_start < 0 ||
			    lseek(rq->fd, fd_start, SEEK_SET) != fd_start ||
			    ftruncate(rq->fd, fd_start) != 0)
				break;
		}
		/* full jitter: uniform in [0, min(cap, base * 2^(n-1))) */
		{
			double ceil_ms = (double)st->conf.backoff_base_ms;
			int i;
			for (i = 1; i < attempt && ceil_ms < 1e9; i++)
				ceil_ms *= 2;
			if (ceil_ms > (double)st->conf.backoff_cap_ms)
				ceil_ms = (double)st->conf.backoff_cap_ms;
			wait = ceil_ms > 0 ?
			       (double)(jitter_rand() % 1000000) / 1e6 * ceil_ms :
			       0;
		}
		if (a.retry_after_ms >= 0 && (double)a.retry_after_ms > wait)
			wait = (double)a.retry_after_ms;
		now = mono_ms();
		if (now + wait >= budget_end) {
			return sf_errf(err, errlen, SF_ETIMEDOUT,
				       "%s: gave up after %d attempt%s in %.0f ms "
				       "(retry budget): %s", rq->what, attempt,
				       attempt == 1 ? "" : "s", now - start,
				       a.msg);
		}
		sleep_ms(wait);
		store_count(st, STORE_CTR_RETRIES, 1);
		sf_log(SF_LOG_DEBUG, "retrying (%d): %s", attempt, a.msg);
	}
	if (attempt > 1 && a.retryable)
		return sf_errf(err, errlen, a.rc, "%s (after %d attempts)",
			       a.msg, attempt);
	return sf_errf(err, errlen, a.rc, "%s", a.msg);
}

/* ---- the http(s):// backend ------------------------------------------- */

/* Fills a store_info from a successful response. */
static void info_from(const struct http_resp *rs, uint64_t whole,
		      struct store_info *info)
{
	if (!info)
		return;
	snprintf(info->etag, sizeof(info->etag), "%s", rs->etag);
	info->mtime = rs->mtime;
	if (rs->status == 206 && rs->has_crange && rs->cr_total != UINT64_MAX)
		info->size = rs->cr_total;
	else if (rs->status != 206 && rs->content_length >= 0)
		info->size = (uint64_t)rs->content_length;
	else
		info->size = whole;
}

int http_op_get(struct store *st, const char *url, size_t max_bytes,
		uint8_t **data, size_t *len, struct store_info *info,
		http_exec_fn ex, char *err, size_t errlen)
{
	struct http_req rq;
	struct http_resp rs;
	int rc;

	http_req_init(&rq);
	rq.sink = HTTP_SINK_MEM;
	rq.max_bytes = max_bytes;
	rc = ex(st, url, &rq, &rs, err, errlen);
	if (rc == 0 && !rs.data && !(rs.data = calloc(1, 1)))
		rc = sf_errf(err, errlen, SF_ENOMEM, "out of memory");
	if (rc == 0) {
		info_from(&rs, rs.len, info);
		*data = rs.data;
		*len = rs.len;
		rs.data = NULL;
	}
	http_resp_free(&rs);
	return rc;
}

int http_op_get_range(struct store *st, const char *url, uint64_t off,
		      size_t len, const struct store_range_opts *ro,
		      uint8_t *dst, size_t *got, struct store_info *info,
		      http_exec_fn ex, char *err, size_t errlen)
{
	struct http_req rq;
	struct http_resp rs;
	uint8_t one;
	int rc;

	http_req_init(&rq);
	rq.ctr = STORE_CTR_RANGE;
	rq.has_range = 1;
	rq.range_off = off;
	rq.if_match = ro ? ro->if_match : NULL;
	rq.deadline_ms = ro ? ro->deadline_ms : 0;
	rq.hedge = ro ? ro->hedge : 0;
	rq.sink = HTTP_SINK_BUF;
	/* a zero-length read still checks the object and the offset */
	rq.buf = len ? dst : &one;
	rq.buf_len = len ? len : 1;
	rc = ex(st, url, &rq, &rs, err, errlen);
	if (rc == 0) {
		*got = len ? rs.len : 0;
		info_from(&rs, 0, info);
	}
	http_resp_free(&rs);
	return rc;
}

int http_op_get_to_fd(struct store *st, const char *url, int fd,
		      uint64_t max_bytes, const char *if_match, struct store_info *info,
		      http_exec_fn ex, char *err, size_t errlen)
{
	struct http_req rq;
	struct http_resp rs;
	int rc;

	http_req_init(&rq);
	rq.if_match = if_match;
	rq.sink = HTTP_SINK_FD;
	rq.fd = fd;
	rq.max_bytes = (size_t)max_bytes; /* 0: no cap for the fd sink */
	rq.streaming = 1;
	rc = ex(st, url, &rq, &rs, err, errlen);
	if (rc == 0)
		info_from(&rs, rs.fd_bytes, info);
	http_resp_free(&rs);
	return rc;
}

int http_op_head(struct store *st, const char *url, struct store_info *info,
		 http_exec_fn ex, char *err, size_t errlen)
{
	struct http_req rq;
	struct http_resp rs;
	int rc;

	http_req_init(&rq);
	rq.method = "HEAD";
	rq.ctr = STORE_CTR_HEAD;
	rc = ex(st, url, &rq, &rs, err, errlen);
	if (rc == 0)
		info_from(&rs, 0, info);
	http_resp_free(&rs);
	return rc;
}

/* One unsigned request to url, following redirects (an http_exec_fn).
 * The query is redacted from messages: it may hold a presigned
 * signature. */
static int h_exec(struct store *st, const char *url, struct http_req *rq,
		  struct http_resp *rs, char *err, size_t errlen)
{
	char what[1024];
	int rc;

	http_redact(url, what, sizeof(what));
	rq->url = url;
	rq->what = what;
	rq->follow_redirects = 1;
	rc = http_exec(st, rq, rs, err, errlen);
	rq->what = NULL;
	return rc;
}

static int h_get(struct store *st, const char *url, size_t max_bytes,
		 uint8_t **data, size_t *len, struct store_info *info,
		 char *err, size_t errlen)
{
	return http_op_get(st, url, max_bytes, data, len, info, h_exec, err,
			   errlen);
}

static int h_get_range(struct store *st, const char *url, uint64_t off,
		       size_t len, const struct store_range_opts *ro,
		       uint8_t *dst, size_t *got, struct store_info *info,
		       char *err, size_t errlen)
{
	return http_op_get_range(st, url, off, len, ro, dst, got, info,
				 h_exec, err, errlen);
}

static int h_get_to_fd(struct store *st, const char *url, int fd,
		       uint64_t max_bytes,
		       const char *if_match, struct store_info *info,
		       char *err, size_t errlen)
{
	return http_op_get_to_fd(st, url, fd, max_bytes, if_match, info,
				 h_exec, err, errlen);
}

static int h_head(struct store *st, const char *url, struct store_info *info,
		  char *err, size_t errlen)
{
	return http_op_head(st, url, info, h_exec, err, errlen);
}

static int h_list(struct store *st, const char *url_prefix,
		  const char *delimiter, store_list_cb cb, void *ctx,
		  char *err, size_t errlen)
{
	return sf_errf(err, errlen, SF_EUNSUPPORTED,
		       "LIST is not available over plain http(s)");
}

static int h_put(struct store *st, const char *url, const void *data,
		 size_t len, const char *content_type,
		 struct store_info *info, char *err, size_t errlen)
{
	return sf_errf(err, errlen, SF_EUNSUPPORTED,
		       "PUT is not available over plain http(s)");
}

static int h_put_file(struct store *st, const char *url, const char *path,
		      const char *content_type, struct store_info *info,
		      char *err, size_t errlen)
{
	return sf_errf(err, errlen, SF_EUNSUPPORTED,
		       "PUT is not available over plain http(s)");
}

static int h_create_bucket(struct store *st, const char *bucket, char *err,
			   size_t errlen)
{
	return sf_errf(err, errlen, SF_EUNSUPPORTED,
		       "buckets exist only on s3://");
}

const struct store_ops http_ops = {
	.name = "http",
	.get = h_get,
	.get_range = h_get_range,
	.get_to_fd = h_get_to_fd,
	.head = h_head,
	.list = h_list,
	.put = h_put,
	.put_file = h_put_file,
	.create_bucket = h_create_bucket,
};
