/*
 * err.c -- sf_strerror(), error-detail formatting, the process log sink and
 * clocks. Everything here is tiny and dependency-free so that every other
 * module can use it.
 */
#include "err.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *sf_strerror(int code)
{
	switch (code) {
	case 0: return "success";
	case SF_NOTFOUND: return "not found";
	case SF_ENOMEM: return "out of memory";
	case SF_EINVAL: return "invalid argument";
	case SF_EIO: return "I/O error";
	case SF_ETIMEDOUT: return "timed out";
	case SF_EHTTP_403: return "access denied (HTTP 403)";
	case SF_EHTTP_404: return "object not found (HTTP 404)";
	case SF_EHTTP_412: return "object changed (HTTP 412)";
	case SF_EHTTP_416: return "range not satisfiable (HTTP 416)";
	case SF_EHTTP: return "unexpected HTTP status";
	case SF_ENET: return "network error";
	case SF_ENOSNAPSHOT: return "no snapshot published";
	case SF_ECURRENT: return "malformed _CURRENT";
	case SF_EMANIFEST: return "invalid manifest";
	case SF_EUNSUPPORTED: return "unsupported";
	case SF_EKEY: return "key does not fit the snapshot's encoding";
	case SF_ECORRUPT: return "corrupt data";
	case SF_ECLOSED: return "reader closed";
	case SF_EAUTH: return "no usable credentials";
	case SF_ETOOBIG: return "object too large";
	case SF_EURL: return "bad URL";
	default: return "unknown error";
	}
}

void sf_free(void *p)
{
	free(p);
}

void sf_scrub_userinfo(char *s)
{
	char *p = s;

	/* Every "scheme:" "//user:password@host" loses its userinfo:
	 * "scheme:" "//REDACTED@host". */
	while ((p = strstr(p, "://")) != NULL) {
		char *host = p + 3;
		size_t n = strcspn(host, "/?#@ \t\n\"'");
		if (host[n] == '@' && n > 0) {
			/* "REDACTED" is 8 bytes: only shrink in place. */
			const char *mark = n >= 8 ? "REDACTED" : "x";
			size_t m = strlen(mark);
			memmove(host + m, host + n, strlen(host + n) + 1);
			memcpy(host, mark, m);
		}
		p = host;
	}
}

int sf_errf(char *err, size_t errlen, int code, const char *fmt, ...)
{
	if (err && errlen > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
		sf_scrub_userinfo(err);
	}
	return code;
}

void sf_err_prefix(char *err, size_t errlen, const char *fmt, ...)
{
	char pre[512], old[1024];
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	snprintf(old, sizeof(old), "%s", err);
	snprintf(err, errlen, "%s: %s", pre, old);
	sf_scrub_userinfo(err);
}

/* The sink is read on every log call; a mutex keeps (fn, ctx) consistent. */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
/* Written under log_mu, read without it first so that filtered messages
 * (DEBUG on the fetch path) cost no lock. */
static _Atomic int log_level = SF_LOG_WARN;
static sf_log_fn log_fn;                            /* protected by log_mu */
static void *log_ctx;                               /* protected by log_mu */

void sf_log_set(enum sf_log_level level, sf_log_fn fn, void *ctx)
{
	pthread_mutex_lock(&log_mu);
	log_level = (int)level;
	log_fn = fn;
	log_ctx = ctx;
	pthread_mutex_unlock(&log_mu);
}

void sf_log(enum sf_log_level level, const char *fmt, ...)
{
	static const char *names[] = {"error", "warning", "info", "debug"};
	char msg[1024];
	sf_log_fn fn;
	void *ctx;
	va_list ap;

	if ((int)level > log_level)
		return;
	pthread_mutex_lock(&log_mu);
	fn = log_fn;
	ctx = log_ctx;
	pthread_mutex_unlock(&log_mu);

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sf_scrub_userinfo(msg);
	if (fn)
		fn(ctx, level, msg);
	else
		fprintf(stderr, "shardyfs: %s: %s\n",
			names[level <= SF_LOG_DEBUG ? level : SF_LOG_DEBUG], msg);
}

double sf_now_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double sf_now_wall(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
