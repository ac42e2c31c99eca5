/*
 * httpd_fault.h -- a small threaded HTTP/1.1 server for tests: serves the
 * files under a directory on 127.0.0.1 (ephemeral port) with GET and HEAD,
 * keep-alive, Range (206, 416 with "bytes * /size"), ETag/If-Match (412)
 * and Last-Modified, and fails requests on demand:
 *   - the next N requests answer a status (500, 503, 429 with an optional
 *     Retry-After, 403, ...),
 *   - the next N requests have their connection reset (RST, no response),
 *   - the next N requests are delayed by some milliseconds,
 *   - the next N requests stall for some milliseconds before anything
 *     else happens to them (on top of any other fault they get),
 * plus a fixed latency for every request and a mode that ignores Range
 * (answers 200 with the whole body). Used by the store retry tests and the
 * VFS tests.
 *
 * ETags are "\"<size hex>-<mtime ns hex>\"", like the file:// backend.
 * Paths are percent-decoded; ".." segments are refused (403).
 * Thread-safe; every control may be changed while requests run.
 */
#ifndef SF_HTTPD_FAULT_H
#define SF_HTTPD_FAULT_H

struct httpd_fault;

/* Starts serving `root` (copied). Returns 0 or -errno; *out is owned by
 * the caller (httpd_fault_stop()). */
int httpd_fault_start(struct httpd_fault **out, const char *root);
/* Stops the server, closes every connection and frees it. */
void httpd_fault_stop(struct httpd_fault *h);

int httpd_fault_port(const struct httpd_fault *h);
/* "http://127.0.0.1:PORT" (borrowed, no trailing slash). */
const char *httpd_fault_url(const struct httpd_fault *h);

/* The next n requests answer `status` with a small body; retry_after_s >=
 * 0 adds "Retry-After: <s>". */
void httpd_fault_fail_next(struct httpd_fault *h, int n, int status,
			   int retry_after_s);
/* The next n requests get their connection reset without a response. */
void httpd_fault_reset_next(struct httpd_fault *h, int n);
/* The next n requests are answered after delay_ms. */
void httpd_fault_delay_next(struct httpd_fault *h, int n, int delay_ms);
/* The next n requests wait stall_ms first, then are served or faulted
 * as usual (a stalled request still consumes a reset/status/delay). */
void httpd_fault_stall_next(struct httpd_fault *h, int n, int stall_ms);
/* Every request waits latency_ms before its answer (0 = none). */
void httpd_fault_set_latency(struct httpd_fault *h, int latency_ms);
/* When on, Range headers are ignored (200 with the whole object). */
void httpd_fault_ignore_range(struct httpd_fault *h, int on);
/* Clears every pending fault. */
void httpd_fault_clear(struct httpd_fault *h);

/* Requests received so far (every request line counts, faulted or not),
 * and how many carried a Range header. */
unsigned httpd_fault_requests(const struct httpd_fault *h);
unsigned httpd_fault_range_requests(const struct httpd_fault *h);
/* Requests that carried If-Match, and connections accepted so far. */
unsigned httpd_fault_if_match_requests(const struct httpd_fault *h);
unsigned httpd_fault_connections(const struct httpd_fault *h);

#endif
