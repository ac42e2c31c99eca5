/*
 * sigv4.c -- AWS Signature Version 4 (see sigv4.h for the contract).
 *
 * The steps, as documented by AWS:
 *   1. canonical request = METHOD \n URI \n QUERY \n
 *      (name:value\n for each signed header, sorted by name) \n
 *      signed-header-names (joined by ';') \n payload-hash
 *   2. string to sign = "AWS4-HMAC-SHA256" \n amz-date \n
 *      date/region/service/aws4_request \n hex(sha256(canonical request))
 *   3. signing key = HMAC chain "AWS4"+secret -> date -> region ->
 *      service -> "aws4_request"
 *   4. signature = hex(HMAC(signing key, string to sign))
 * Header values are trimmed and inner runs of spaces collapsed to one.
 * Intermediate keys are wiped after use.
 */
#include "sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char hexd[] = "0123456789abcdef";

static void to_hex(const unsigned char *in, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hexd[in[i] >> 4];
		out[2 * i + 1] = hexd[in[i] & 15];
	}
	out[2 * n] = '\0';
}

void sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256(data, len, md);
	to_hex(md, sizeof(md), out);
}

char *sigv4_uri_encode(const char *s, size_t len, int keep_slash)
{
	static const char up[] = "0123456789ABCDEF";
	char *out = malloc(len * 3 + 1), *o;
	size_t i;

	if (!out)
		return NULL;
	o = out;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		    c == '.' || c == '~' || (c == '/' && keep_slash)) {
			*o++ = (char)c;
		} else {
			*o++ = '%';
			*o++ = up[c >> 4];
			*o++ = up[c & 15];
		}
	}
	*o = '\0';
	return out;
}

/* A growable string with a hard cap (requests are small). */
struct sbuf {
	char *p;
	size_t n, cap;
	int oom;
};

#define SBUF_MAX (1u << 20)

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;
		while (cap < b->n + n + 1)
			cap *= 2;
		if (cap > SBUF_MAX) {
			b->oom = 1;
			return;
		}
		p = realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/* Appends a header value trimmed, with runs of spaces collapsed. */
static void sb_trimmed(struct sbuf *b, const char *v)
{
	const char *e;
	int space = 0;

	while (*v == ' ' || *v == '\t')
		v++;
	e = v + strlen(v);
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	for (; v < e; v++) {
		if (*v == ' ' || *v == '\t') {
			space = 1;
			continue;
		}
		if (space)
			sb_add(b, " ", 1);
		space = 0;
		sb_add(b, v, 1);
	}
}

/* Header indices sorted by name (insertion sort; n <= 16). */
static int sorted_headers(const struct sigv4_req *r, size_t *idx)
{
	size_t i, j;

	if (r->n_headers > SIGV4_MAX_HEADERS)
		return -1;
	for (i = 0; i < r->n_headers; i++) {
		size_t k = i;
		idx[i] = i;
		for (j = i; j > 0; j--) {
			if (strcmp(r->headers[idx[j - 1]].name,
				   r->headers[k].name) <= 0)
				break;
			idx[j] = idx[j - 1];
			idx[j - 1] = k;
		}
	}
	return 0;
}

static void signed_names(const struct sigv4_req *r, const size_t *idx,
			 struct sbuf *b)
{
	size_t i;

	for (i = 0; i < r->n_headers; i++) {
		if (i)
			sb_add(b, ";", 1);
		sb_str(b, r->headers[idx[i]].name);
	}
}

char *sigv4_canonical_request(const struct sigv4_req *r)
{
	struct sbuf b = {0};
	size_t idx[SIGV4_MAX_HEADERS], i;

	if (sorted_headers(r, idx))
		return NULL;
	sb_str(&b, r->method);
	sb_add(&b, "\n", 1);
	sb_str(&b, r->canon_uri && *r->canon_uri ? r->canon_uri : "/");
	sb_add(&b, "\n", 1);
	sb_str(&b, r->canon_query ? r->canon_query : "");
	sb_add(&b, "\n", 1);
	for (i = 0; i < r->n_headers; i++) {
		sb_str(&b, r->headers[idx[i]].name);
		sb_add(&b, ":", 1);
		sb_trimmed(&b, r->headers[idx[i]].value);
		sb_add(&b, "\n", 1);
	}
	sb_add(&b, "\n", 1);
	signed_names(r, idx, &b);
	sb_add(&b, "\n", 1);
	sb_str(&b, r->payload_hash);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

static int hmac(const void *key, size_t klen, const void *msg, size_t mlen,
		unsigned char out[32])
{
	unsigned int n = 0;

	if (!HMAC(EVP_sha256(), key, (int)klen, msg, mlen, out, &n) ||
	    n != 32)
		return -1;
	return 0;
}

void sigv4_amz_date(int64_t t, char out[17])
{
	struct tm tm;
	time_t tt = (time_t)t;

	gmtime_r(&tt, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

int sigv4_authorization(const struct sigv4_req *r, char *out, size_t outlen,
			char *sig_hex)
{
	struct sbuf sts = {0}, names = {0};
	char *creq = NULL, date[9], chash[65], sig[65];
	unsigned char k[32], k2[32], md[32];
	size_t idx[SIGV4_MAX_HEADERS], sl = 0;
	char *kinit = NULL;
	int rc = -1, n;

	if (!r->amz_date || strlen(r->amz_date) != 16)
		return -1;
	memcpy(date, r->amz_date, 8);
	date[8] = '\0';
	creq = sigv4_canonical_request(r);
	if (!creq || sorted_headers(r, idx))
		goto out;
	sigv4_sha256_hex(creq, strlen(creq), chash);

	sb_str(&sts, "AWS4-HMAC-SHA256\n");
	sb_str(&sts, r->amz_date);
	sb_add(&sts, "\n", 1);
	sb_str(&sts, date);
	sb_add(&sts, "/", 1);
	sb_str(&sts, r->region);
	sb_add(&sts, "/", 1);
	sb_str(&sts, r->service);
	sb_str(&sts, "/aws4_request\n");
	sb_str(&sts, chash);
	signed_names(r, idx, &names);
	if (sts.oom || names.oom)
		goto out;

	sl = strlen(r->secret_key);
	kinit = malloc(sl + 5);
	if (!kinit)
		goto out;
	memcpy(kinit, "AWS4", 4);
	memcpy(kinit + 4, r->secret_key, sl + 1);
	if (hmac(kinit, sl + 4, date, 8, k) ||
	    hmac(k, 32, r->region, strlen(r->region), k2) ||
	    hmac(k2, 32, r->service, strlen(r->service), k) ||
	    hmac(k, 32, "aws4_request", 12, k2) ||
	    hmac(k2, 32, sts.p, sts.n, md))
		goto out;
	to_hex(md, 32, sig);
	n = snprintf(out, outlen,
		     "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, "
		     "SignedHeaders=%s, Signature=%s", r->access_key_id, date,
		     r->region, r->service, names.p, sig);
	if (n < 0 || (size_t)n >= outlen)
		goto out;
	if (sig_hex)
		memcpy(sig_hex, sig, 65);
	rc = 0;
out:
	if (kinit) {
		OPENSSL_cleanse(kinit, sl + 4);
		free(kinit);
	}
	OPENSSL_cleanse(k, sizeof(k));
	OPENSSL_cleanse(k2, sizeof(k2));
	free(creq);
	free(sts.p);
	free(names.p);
	return rc;
}
