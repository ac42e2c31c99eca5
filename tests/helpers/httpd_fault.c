/*
 * httpd_fault.c -- the fault-injecting test HTTP server (see httpd_fault.h).
 *
 * One acceptor thread polls the listening socket; every connection gets a
 * detached thread that serves requests in a keep-alive loop. Faults are
 * counters under h->mu, consumed by the request that sees them (in the
 * order reset, status, delay; a stall is consumed independently). Every sleep is a timed wait on h->cv so
 * httpd_fault_stop() can interrupt it; stop also shuts down every open
 * connection and waits until all connection threads have left.
 *
 * The parser is deliberately small: request line, headers up to 16 KiB,
 * an optional Content-Length body that is read and dropped. Only GET and
 * HEAD are served; anything else is 405.
 */
#include "httpd_fault.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HF_HDR_MAX (16 * 1024)
#define HF_MAX_CONNS 256

struct httpd_fault {
	int lfd;
	int port;
	char url[64];
	char *root;
	pthread_t acceptor;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* everything below is protected by mu */
	int stopping;
	int active;                  /* connection threads alive */
	int conns[HF_MAX_CONNS];     /* open connection fds (-1 = free) */
	int fail_n, fail_status, fail_retry_after;
	int reset_n;
	int delay_n, delay_ms;
	int stall_n, stall_ms;
	int latency_ms;
	int ignore_range;
	unsigned requests, range_requests, if_match_requests, connections;
};

struct conn_arg {
	struct httpd_fault *h;
	int fd;
	int slot;
};

/* Waits ms on h->cv; returns early when stopping. Called with h->mu held. */
static void wait_ms_locked(struct httpd_fault *h, int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	while (!h->stopping &&
	       pthread_cond_timedwait(&h->cv, &h->mu, &ts) != ETIMEDOUT)
		;
}

static int send_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 206: return "Partial Content";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 412: return "Precondition Failed";
	case 416: return "Range Not Satisfiable";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Status";
	}
}

static int send_simple(int fd, int status, const char *extra, int head)
{
	char body[256], hdr[1024];
	int bl, hl;

	bl = snprintf(body, sizeof(body),
		      "<Error><Code>%s</Code><Message>%d</Message></Error>",
		      status == 503 ? "SlowDown" :
		      status == 403 ? "AccessDenied" :
		      status == 404 ? "NoSuchKey" :
		      status == 412 ? "PreconditionFailed" :
		      status == 416 ? "InvalidRange" : "InternalError", status);
	hl = snprintf(hdr, sizeof(hdr),
		      "HTTP/1.1 %d %s\r\nContent-Type: application/xml\r\n"
		      "Content-Length: %d\r\n%s\r\n", status, reason(status),
		      bl, extra ? extra : "");
	if (send_all(fd, hdr, (size_t)hl))
		return -1;
	return head ? 0 : send_all(fd, body, (size_t)bl);
}

static int hexv(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 32);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes the path of a request target into out; -1 if unsafe. */
static int decode_path(const char *t, size_t tl, char *out, size_t outlen)
{
	size_t i, o = 0;

	for (i = 0; i < tl && t[i] != '?'; i++) {
		char c = t[i];
		if (c == '%' && i + 2 < tl && hexv(t[i + 1]) >= 0 &&
		    hexv(t[i + 2]) >= 0) {
			c = (char)(hexv(t[i + 1]) * 16 + hexv(t[i + 2]));
			i += 2;
		}
		if (c == '\0' || o + 1 >= outlen)
			return -1;
		out[o++] = c;
	}
	out[o] = '\0';
	if (out[0] != '/' || strstr(out, "/../") ||
	    (o >= 3 && strcmp(out + o - 3, "/..") == 0))
		return -1;
	return 0;
}

/* Parses "bytes=a-b", "bytes=a-" or "bytes=-n" against size. Returns 1
 * with [*a, *b] for a satisfiable range, 0 to ignore, -1 for 416. */
static int parse_range(const char *v, uint64_t size, uint64_t *a, uint64_t *b)
{
	char *e;
	unsigned long long x, y;

	while (*v == ' ')
		v++;
	if (strncasecmp(v, "bytes=", 6) != 0 || strchr(v, ','))
		return 0;
	v += 6;
	if (*v == '-') {
		x = strtoull(v + 1, &e, 10);
		if (e == v + 1 || x == 0)
			return 0;
		if (size == 0)
			return -1;
		*a = x >= size ? 0 : size - x;
		*b = size - 1;
		return 1;
	}
	x = strtoull(v, &e, 10);
	if (e == v || *e != '-')
		return 0;
	v = e + 1;
	if (*v >= '0' && *v <= '9') {
		y = strtoull(v, &e, 10);
		if (y < x)
			return 0;
	} else {
		y = UINT64_MAX;
	}
	if (x >= size)
		return -1;
	*a = x;
	*b = y >= size ? size - 1 : y;
	return 1;
}

static int serve_file(struct httpd_fault *h, int fd, const char *path,
		      int head, const char *range, const char *if_match)
{
	char full[4096], etag[96], lm[64], hdr[1024], cr[128] = "";
	uint64_t size, a = 0, b = 0, n, off;
	struct stat sb;
	struct tm tm;
	int ffd, status = 200, ignore, rc = 0, hl;
	char *buf;

	if (snprintf(full, sizeof(full), "%s%s", h->root, path) >=
	    (int)sizeof(full))
		return send_simple(fd, 404, NULL, head);
	ffd = open(full, O_RDONLY | O_CLOEXEC);
	if (ffd < 0)
		return send_simple(fd, 404, NULL, head);
	if (fstat(ffd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(ffd);
		return send_simple(fd, 404, NULL, head);
	}
	size = (uint64_t)sb.st_size;
	snprintf(etag, sizeof(etag), "\"%" PRIx64 "-%" PRIx64 "\"", size,
		 (uint64_t)((uint64_t)sb.st_mtim.tv_sec * 1000000000u +
			    (uint64_t)sb.st_mtim.tv_nsec));
	gmtime_r(&sb.st_mtim.tv_sec, &tm);
	strftime(lm, sizeof(lm), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (if_match && strcmp(if_match, "*") != 0 &&
	    strcmp(if_match, etag) != 0) {
		close(ffd);
		return send_simple(fd, 412, NULL, head);
	}
	pthread_mutex_lock(&h->mu);
	ignore = h->ignore_range;
	pthread_mutex_unlock(&h->mu);
	a = 0;
	b = size ? size - 1 : 0;
	n = size;
	if (range && !ignore) {
		int r = parse_range(range, size, &a, &b);
		if (r < 0) {
			char extra[96];
			close(ffd);
			snprintf(extra, sizeof(extra),
				 "Content-Range: bytes */%" PRIu64 "\r\n", size);
			return send_simple(fd, 416, extra, head);
		}
		if (r > 0) {
			status = 206;
			n = b - a + 1;
			snprintf(cr, sizeof(cr),
				 "Content-Range: bytes %" PRIu64 "-%" PRIu64
				 "/%" PRIu64 "\r\n", a, b, size);
		}
	}
	hl = snprintf(hdr, sizeof(hdr),
		      "HTTP/1.1 %d %s\r\nContent-Length: %" PRIu64 "\r\n"
		      "ETag: %s\r\nLast-Modified: %s\r\nAccept-Ranges: bytes\r\n"
		      "Content-Type: application/octet-stream\r\n%s\r\n",
		      status, reason(status), n, etag, lm, cr);
	if (send_all(fd, hdr, (size_t)hl)) {
		close(ffd);
		return -1;
	}
	if (head || n == 0) {
		close(ffd);
		return 0;
	}
	buf = malloc(64 * 1024);
	if (!buf) {
		close(ffd);
		return -1;
	}
	for (off = a; off < a + n && rc == 0;) {
		size_t want = (size_t)(a + n - off);
		ssize_t r;
		if (want > 64 * 1024)
			want = 64 * 1024;
		r = pread(ffd, buf, want, (off_t)off);
		if (r <= 0) {
			rc = -1;
			break;
		}
		rc = send_all(fd, buf, (size_t)r);
		off += (uint64_t)r;
	}
	free(buf);
	close(ffd);
	return rc;
}

/* Finds a header value in the header block (case-insensitive name);
 * copies it into out. Returns 1 if present. */
static int get_header(const char *hdrs, const char *name, char *out,
		      size_t outlen)
{
	size_t nl = strlen(name);
	const char *p = hdrs;

	while ((p = strstr(p, "\r\n")) != NULL) {
		const char *e, *v;
		p += 2;
		if (strncasecmp(p, name, nl) != 0 || p[nl] != ':')
			continue;
		v = p + nl + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		e = strstr(v, "\r\n");
		if (!e)
			e = v + strlen(v);
		if ((size_t)(e - v) >= outlen)
			return 0;
		memcpy(out, v, (size_t)(e - v));
		out[e - v] = '\0';
		return 1;
	}
	return 0;
}

static void reset_conn(int fd)
{
	struct linger lg = {1, 0};

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

/* Serves one connection until close, error or stop. Returns when done;
 * the caller closes fd. */
static void serve_conn(struct httpd_fault *h, int fd)
{
	char *buf = malloc(HF_HDR_MAX + 1);
	size_t have = 0;

	if (!buf)
		return;
	for (;;) {
		char *end, method[16], target[4096], path[4096];
		char range[128], ifm[256], connhdr[64], cl[32];
		int head, has_range, has_ifm, close_after, status = 0, ra = -1;
		int do_reset = 0, delay = 0, latency, stall = 0;
		size_t used, body_len = 0;
		ssize_t r;

		buf[have] = '\0';
		while (!(end = strstr(buf, "\r\n\r\n"))) {
			if (have >= HF_HDR_MAX)
				goto out;
			r = recv(fd, buf + have, HF_HDR_MAX - have, 0);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				goto out;
			have += (size_t)r;
			buf[have] = '\0';
		}
		end[2] = '\0'; /* headers end with the last CRLF */
		used = (size_t)(end - buf) + 4;
		if (sscanf(buf, "%15s %4095s", method, target) != 2)
			goto out;
		head = strcmp(method, "HEAD") == 0;
		has_range = get_header(buf, "Range", range, sizeof(range));
		has_ifm = get_header(buf, "If-Match", ifm, sizeof(ifm));
		close_after = get_header(buf, "Connection", connhdr,
					 sizeof(connhdr)) &&
			      strcasecmp(connhdr, "close") == 0;
		if (get_header(buf, "Content-Length", cl, sizeof(cl)))
			body_len = (size_t)strtoull(cl, NULL, 10);
		/* drop the request (and any body) from the buffer */
		if (used > have)
			used = have;
		memmove(buf, buf + used, have - used);
		have -= used;
		while (body_len > 0) {
			size_t take = body_len < have ? body_len : have;
			memmove(buf, buf + take, have - take);
			have -= take;
			body_len -= take;
			if (body_len == 0)
				break;
			r = recv(fd, buf, HF_HDR_MAX, 0);
			if (r <= 0)
				goto out;
			have = (size_t)r;
		}

		pthread_mutex_lock(&h->mu);
		h->requests++;
		if (has_range)
			h->range_requests++;
		if (has_ifm)
			h->if_match_requests++;
		if (h->stall_n > 0) {
			h->stall_n--;
			stall = h->stall_ms;
		}
		if (h->reset_n > 0) {
			h->reset_n--;
			do_reset = 1;
		} else if (h->fail_n > 0) {
			h->fail_n--;
			status = h->fail_status;
			ra = h->fail_retry_after;
		} else if (h->delay_n > 0) {
			h->delay_n--;
			delay = h->delay_ms;
		}
		latency = h->latency_ms;
		if (stall + delay + latency > 0)
			wait_ms_locked(h, stall + delay + latency);
		if (h->stopping)
			do_reset = 1;
		pthread_mutex_unlock(&h->mu);

		if (do_reset) {
			reset_conn(fd);
			goto out;
		}
		if (status) {
			char extra[64] = "";
			if (ra >= 0)
				snprintf(extra, sizeof(extra),
					 "Retry-After: %d\r\n", ra);
			if (send_simple(fd, status, extra, head))
				goto out;
		} else if (strcmp(method, "GET") != 0 && !head) {
			if (send_simple(fd, 405, NULL, 0))
				goto out;
		} else if (decode_path(target, strlen(target), path,
				       sizeof(path)) != 0) {
			if (send_simple(fd, 403, NULL, head))
				goto out;
		} else if (serve_file(h, fd, path, head,
				      has_range ? range : NULL,
				      has_ifm ? ifm : NULL) != 0) {
			goto out;
		}
		if (close_after)
			goto out;
	}
out:
	free(buf);
}

static void *conn_main(void *arg)
{
	struct conn_arg *ca = arg;
	struct httpd_fault *h = ca->h;

	serve_conn(h, ca->fd);
	pthread_mutex_lock(&h->mu);
	h->conns[ca->slot] = -1;
	close(ca->fd);
	h->active--;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	free(ca);
	return NULL;
}

static void *accept_main(void *arg)
{
	struct httpd_fault *h = arg;

	for (;;) {
		struct pollfd pfd = {h->lfd, POLLIN, 0};
		struct conn_arg *ca;
		pthread_t t;
		int fd, slot, stop;

		pthread_mutex_lock(&h->mu);
		stop = h->stopping;
		pthread_mutex_unlock(&h->mu);
		if (stop)
			break;
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		fd = accept4(h->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		ca = malloc(sizeof(*ca));
		pthread_mutex_lock(&h->mu);
		for (slot = 0; slot < HF_MAX_CONNS; slot++)
			if (h->conns[slot] < 0)
				break;
		if (!ca || slot == HF_MAX_CONNS || h->stopping) {
			pthread_mutex_unlock(&h->mu);
			free(ca);
			close(fd);
			continue;
		}
		h->conns[slot] = fd;
		h->active++;
		h->connections++;
		pthread_mutex_unlock(&h->mu);
		ca->h = h;
		ca->fd = fd;
		ca->slot = slot;
		if (pthread_create(&t, NULL, conn_main, ca) != 0) {
			pthread_mutex_lock(&h->mu);
			h->conns[slot] = -1;
			h->active--;
			pthread_mutex_unlock(&h->mu);
			close(fd);
			free(ca);
			continue;
		}
		pthread_detach(t);
	}
	return NULL;
}

int httpd_fault_start(struct httpd_fault **out, const char *root)
{
	struct httpd_fault *h;
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int i, one = 1, e;

	*out = NULL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->root = strdup(root);
	if (!h->root) {
		free(h);
		return -ENOMEM;
	}
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	for (i = 0; i < HF_MAX_CONNS; i++)
		h->conns[i] = -1;
	h->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (h->lfd < 0)
		goto fail;
	setsockopt(h->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = 0;
	if (bind(h->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(h->lfd, 64) != 0 ||
	    getsockname(h->lfd, (struct sockaddr *)&sa, &sl) != 0)
		goto fail;
	h->port = ntohs(sa.sin_port);
	snprintf(h->url, sizeof(h->url), "http://127.0.0.1:%d", h->port);
	if (pthread_create(&h->acceptor, NULL, accept_main, h) != 0)
		goto fail;
	*out = h;
	return 0;
fail:
	e = errno ? errno : EIO;
	if (h->lfd >= 0)
		close(h->lfd);
	free(h->root);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cv);
	free(h);
	return -e;
}

void httpd_fault_stop(struct httpd_fault *h)
{
	int i;

	if (!h)
		return;
	pthread_mutex_lock(&h->mu);
	h->stopping = 1;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->acceptor, NULL);
	pthread_mutex_lock(&h->mu);
	for (i = 0; i < HF_MAX_CONNS; i++)
		if (h->conns[i] >= 0)
			shutdown(h->conns[i], SHUT_RDWR);
	while (h->active > 0)
		pthread_cond_wait(&h->cv, &h->mu);
	pthread_mutex_unlock(&h->mu);
	close(h->lfd);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cv);
	free(h->root);
	free(h);
}

int httpd_fault_port(const struct httpd_fault *h)
{
	return h->port;
}

const char *httpd_fault_url(const struct httpd_fault *h)
{
	return h->url;
}

void httpd_fault_fail_next(struct httpd_fault *h, int n, int status,
			   int retry_after_s)
{
	pthread_mutex_lock(&h->mu);
	h->fail_n = n;
	h->fail_status = status;
	h->fail_retry_after = retry_after_s;
	pthread_mutex_unlock(&h->mu);
}

void httpd_fault_reset_next(struct httpd_fault *h, int n)
{
	pthread_mutex_lock(&h->mu);
	h->reset_n = n;
	pthread_mutex_unlock(&h->mu);
}

void httpd_fault_delay_next(struct httpd_fault *h, int n, int delay_ms)
{
	pthread_mutex_lock(&h->mu);
	h->delay_n = n;
	h->delay_ms = delay_ms;
	pthread_mutex_unlock(&h->mu);
}

void httpd_fault_stall_next(struct httpd_fault *h, int n, int stall_ms)
{
	pthread_mutex_lock(&h->mu);
	h->stall_n = n;
	h->stall_ms = stall_ms;
	pthread_mutex_unlock(&h->mu);
}

void httpd_fault_set_latency(struct httpd_fault *h, int latency_ms)
{
	pthread_mutex_lock(&h->mu);
	h->latency_ms = latency_ms;
	pthread_mutex_unlock(&h->mu);
}

void httpd_fault_ignore_range(struct httpd_fault *h, int on)
{
	pthread_mutex_lock(&h->mu);
	h->ignore_range = on;
	pthread_mutex_unlock(&h->mu);
}

void httpd_fault_clear(struct httpd_fault *h)
{
	pthread_mutex_lock(&h->mu);
	h->fail_n = h->reset_n = h->delay_n = h->stall_n = 0;
	pthread_mutex_unlock(&h->mu);
}

unsigned httpd_fault_requests(const struct httpd_fault *h)
{
	struct httpd_fault *m = (struct httpd_fault *)h;
	unsigned n;

	pthread_mutex_lock(&m->mu);
	n = m->requests;
	pthread_mutex_unlock(&m->mu);
	return n;
}

unsigned httpd_fault_range_requests(const struct httpd_fault *h)
{
	struct httpd_fault *m = (struct httpd_fault *)h;
	unsigned n;

	pthread_mutex_lock(&m->mu);
	n = m->range_requests;
	pthread_mutex_unlock(&m->mu);
	return n;
}

unsigned httpd_fault_if_match_requests(const struct httpd_fault *h)
{
	struct httpd_fault *m = (struct httpd_fault *)h;
	unsigned n;

	pthread_mutex_lock(&m->mu);
	n = m->if_match_requests;
	pthread_mutex_unlock(&m->mu);
	return n;
}

unsigned httpd_fault_connections(const struct httpd_fault *h)
{
	struct httpd_fault *m = (struct httpd_fault *)h;
	unsigned n;

	pthread_mutex_lock(&m->mu);
	n = m->connections;
	pthread_mutex_unlock(&m->mu);
	return n;
}
