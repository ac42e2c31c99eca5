/*
 * http.h -- the shared libcurl engine behind s3.c and the http(s)://
 * backend: a pool of reused easy handles, one request executed with
 * retries (exponential backoff with full jitter, bounded by the store's
 * max_attempts and retry_budget_ms, Retry-After honoured), status mapping
 * to SF_E* codes, and response parsing (ETag, Content-Range, sizes).
 * Small ranged GETs may be hedged: when one runs much longer than the
 * store's recent latency, an identical request races it on a fresh
 * connection (see run_attempt() in http.c).
 *
 * What it never knows: S3 URLs, buckets or signatures. A signer plugs in
 * through http_req.prepare, called before every attempt so that each
 * attempt carries a fresh date and signature.
 */
#ifndef SF_STORE_HTTP_H
#define SF_STORE_HTTP_H

#include <curl/curl.h>

#include "store_impl.h"

enum http_sink {
	HTTP_SINK_NONE, /* discard the body (HEAD, PUT) */
	HTTP_SINK_MEM,  /* malloc'd buffer of at most max_bytes */
	HTTP_SINK_BUF,  /* caller buffer buf[0..buf_len) (ranged reads) */
	HTTP_SINK_FD,   /* write(2) into fd from its current offset */
};

struct http_req {
	const char *method; /* "GET", "HEAD", "PUT", "POST", "DELETE" */
	const char *url;    /* the URL as sent (already percent-encoded) */
	const char *what;   /* the URL as named in messages (no secrets) */
	enum store_ctr ctr; /* request counter to bump once */

	int has_range; /* send Range: bytes=range_off-(range_off+buf_len-1) */
	uint64_t range_off;
	const char *if_match;
	const char *content_type;

	/* Upload body for PUT/POST: a buffer, or body_fd_len bytes of
	 * body_fd read with pread from body_fd_off. */
	const void *body;
	size_t body_len;
	int body_fd; /* -1 if none */
	uint64_t body_fd_off;
	uint64_t body_fd_len;

	enum http_sink sink;
	size_t max_bytes; /* HTTP_SINK_MEM cap (SF_ETOOBIG beyond) */
	uint8_t *buf;     /* HTTP_SINK_BUF */
	size_t buf_len;
	int fd;           /* HTTP_SINK_FD */

	long deadline_ms; /* 0 = none beyond the retry budget */
	int streaming;    /* long transfer: stall timeout, not a total one */
	int follow_redirects;
	int hedge;        /* a slow small ranged GET may be hedged */

	/* Adds per-attempt headers (signature) to *hdrs. 0 or SF_E*. */
	int (*prepare)(void *ctx, struct curl_slist **hdrs, char *err,
		       size_t errlen);
	void *prepare_ctx;
};

struct http_resp {
	long status;
	uint8_t *data;      /* HTTP_SINK_MEM body (caller frees), NUL-terminated */
	size_t len;         /* MEM/BUF: body bytes kept */
	uint64_t fd_bytes;  /* FD: bytes written */
	char etag[136];
	int64_t mtime;
	int64_t content_length; /* -1 if absent */
	int has_crange;
	uint64_t cr_start, cr_end, cr_total; /* cr_total UINT64_MAX for '*' */
	char code[64];      /* S3 <Code> of an error body, or "" */
};

/*
 * Executes rq with retries. On 0 the status was 2xx and rs is filled (the
 * caller frees rs->data with http_resp_free()). Errors: SF_EHTTP_403/404/
 * 412/416, SF_EHTTP, SF_ENET, SF_ETIMEDOUT, SF_ETOOBIG, SF_EIO (fd write).
 * The message names rq->what and the status, never a header value.
 */
int http_exec(struct store *st, const struct http_req *rq,
	      struct http_resp *rs, char *err, size_t errlen);
void http_req_init(struct http_req *rq);
void http_resp_free(struct http_resp *rs);

/* Escapes the part of a URL before '?' for messages: the query may carry
 * a presigned signature. Writes into out. */
void http_redact(const char *url, char *out, size_t outlen);

/*
 * The read operations of a backend, written once for http(s):// and
 * s3://. Each sets up a request (method, counter, sink, range...) and
 * hands it to ex, the backend's way of sending one request to url: it
 * fills in rq->url, rq->what and any signer, then calls http_exec()
 * (or a wrapper of it) and leaves rs to be freed here. The semantics
 * are those of store_get(), store_get_range() (a zero len still checks
 * the object and the offset), store_get_to_fd() and store_head().
 */
typedef int (*http_exec_fn)(struct store *st, const char *url,
			    struct http_req *rq, struct http_resp *rs,
			    char *err, size_t errlen);
int http_op_get(struct store *st, const char *url, size_t max_bytes,
		uint8_t **data, size_t *len, struct store_info *info,
		http_exec_fn ex, char *err, size_t errlen);
int http_op_get_range(struct store *st, const char *url, uint64_t off,
		      size_t len, const struct store_range_opts *ro,
		      uint8_t *dst, size_t *got, struct store_info *info,
		      http_exec_fn ex, char *err, size_t errlen);
int http_op_get_to_fd(struct store *st, const char *url, int fd,
		      uint64_t max_bytes,
		      const char *if_match, struct store_info *info,
		      http_exec_fn ex, char *err, size_t errlen);
int http_op_head(struct store *st, const char *url, struct store_info *info,
		 http_exec_fn ex, char *err, size_t errlen);

/* curl_global_init() exactly once (thread-safe). */
int http_global_init(void);

#endif
