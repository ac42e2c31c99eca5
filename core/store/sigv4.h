/*
 * sigv4.h -- AWS Signature Version 4, written from the AWS documentation
 * with OpenSSL's SHA-256 and HMAC. Pure functions (no I/O, no clock), so
 * that unit tests pin them to known vectors.
 *
 * The caller builds the request pieces: the canonical URI (already
 * percent-encoded with sigv4_uri_encode(), as it is sent), the canonical
 * query string, and the headers to sign with lower-case names. This module
 * sorts the headers, trims their values, builds the canonical request and
 * the string to sign, and derives the signing key.
 *
 * Secrets: the secret key is only fed to HMAC; the Authorization value
 * returned contains the access key id and the signature, never the secret.
 */
#ifndef SF_SIGV4_H
#define SF_SIGV4_H

#include <stddef.h>
#include <stdint.h>

#define SIGV4_MAX_HEADERS 16
#define SIGV4_EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct sigv4_header {
	const char *name;  /* lower case, e.g. "x-amz-date" */
	const char *value; /* trimmed and space-collapsed by the signer */
};

struct sigv4_req {
	const char *method;       /* "GET" */
	const char *canon_uri;    /* "/bucket/a%20b" (encoded once) */
	const char *canon_query;  /* "list-type=2&prefix=a%2Fb" or "" */
	const struct sigv4_header *headers;
	size_t n_headers;         /* at most SIGV4_MAX_HEADERS */
	const char *payload_hash; /* hex SHA-256 or "UNSIGNED-PAYLOAD" */
	const char *amz_date;     /* "20150830T123600Z" */
	const char *region;       /* "us-east-1" */
	const char *service;      /* "s3" */
	const char *access_key_id;
	const char *secret_key;
};

/*
 * Percent-encodes s as SigV4 wants: every byte except A-Z a-z 0-9 - _ . ~
 * becomes %XX (upper-case hex); '/' is kept when keep_slash. Returns a
 * malloc'd string (caller frees) or NULL on ENOMEM.
 */
char *sigv4_uri_encode(const char *s, size_t len, int keep_slash);

/* Hex SHA-256 of data into out[65]. */
void sigv4_sha256_hex(const void *data, size_t len, char out[65]);

/*
 * The canonical request (malloc'd, caller frees; NULL on ENOMEM or too
 * many headers). Exposed for tests.
 */
char *sigv4_canonical_request(const struct sigv4_req *r);

/*
 * Builds the Authorization header value ("AWS4-HMAC-SHA256 Credential=...,
 * SignedHeaders=..., Signature=...") into out. Returns 0, or -1 when out
 * is too small or on ENOMEM. If sig_hex is non-NULL it receives the bare
 * signature (65 bytes).
 */
int sigv4_authorization(const struct sigv4_req *r, char *out, size_t outlen,
			char *sig_hex);

/* Formats t (seconds since the epoch, UTC) as "YYYYMMDDTHHMMSSZ" into
 * out[17]. */
void sigv4_amz_date(int64_t t, char out[17]);

#endif
