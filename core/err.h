/*
 * err.h -- error-detail and logging helpers shared by every module of the
 * library (store, vfs, core). Codes are the SF_E* values of shardyfs.h.
 *
 * Contract: sf_errf() never logs; it only formats into the caller's buffer.
 * Messages must never contain secrets (keys, tokens, signatures).
 */
#ifndef SF_ERR_H
#define SF_ERR_H

#include <stdarg.h>
#include <stddef.h>

#include "shardyfs.h"

#if defined(__GNUC__)
#define SF_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SF_PRINTF(a, b)
#endif

/* Formats a message into err (if non-NULL and errlen > 0) and returns code,
 * so callers can write `return sf_errf(err, errlen, SF_EIO, "...")`. */
int sf_errf(char *err, size_t errlen, int code, const char *fmt, ...)
	SF_PRINTF(4, 5);

/* Prefixes an existing message in err with "prefix: " (truncating). */
void sf_err_prefix(char *err, size_t errlen, const char *fmt, ...)
	SF_PRINTF(3, 4);

/* Replaces the userinfo of every URL in s (user and password before '@'
 * in the authority) with "REDACTED" (or "x" when shorter), in place. sf_errf(), sf_err_prefix() and
 * sf_log() apply it to every message, so a URL with credentials can be
 * formatted anywhere without leaking them. */
void sf_scrub_userinfo(char *s);

/* Process-wide log sink used by modules that have no reader at hand.
 * sf_log_set() is called by sf_reader_open() with the reader's options; the
 * last call wins. Default: stderr at SF_LOG_WARN. Thread-safe. */
void sf_log_set(enum sf_log_level level, sf_log_fn fn, void *ctx);
void sf_log(enum sf_log_level level, const char *fmt, ...) SF_PRINTF(2, 3);

/* Monotonic and wall clocks. */
double sf_now_mono(void);  /* seconds */
double sf_now_wall(void);  /* seconds since the epoch */

#endif
