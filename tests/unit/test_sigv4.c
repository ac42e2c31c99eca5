/*
 * test_sigv4.c -- AWS Signature V4 against fixed vectors: two published
 * by AWS (the test-suite "get-vanilla" request and the S3 GetObject-with-
 * Range example) and two computed independently with Python's hmac and
 * hashlib (a key with space, '%', '=' and unicode plus a session token and
 * a query string; a PUT with a real payload hash). Also the URI encoder,
 * header canonicalisation and the date format.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sigv4.h"

TestSuite(sigv4, .timeout = 30);

Test(sigv4, aws_test_suite_get_vanilla)
{
	struct sigv4_header h[] = {
		{"host", "example.amazonaws.com"},
		{"x-amz-date", "20150830T123600Z"},
	};
	struct sigv4_req r = {
		.method = "GET",
		.canon_uri = "/",
		.canon_query = "",
		.headers = h,
		.n_headers = 2,
		.payload_hash = SIGV4_EMPTY_SHA256,
		.amz_date = "20150830T123600Z",
		.region = "us-east-1",
		.service = "service",
		.access_key_id = "AKIDEXAMPLE",
		.secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
	};
	char auth[512], sig[65];

	cr_assert_eq(sigv4_authorization(&r, auth, sizeof(auth), sig), 0);
	cr_expect_str_eq(sig, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d"
			      "9b8aae1d763fbf31");
	cr_expect_str_eq(auth,
			 "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/"
			 "us-east-1/service/aws4_request, SignedHeaders=host;"
			 "x-amz-date, Signature=5fa00fa31553b73ebf1942676e8629"
			 "1e8372ff2a2260956d9b8aae1d763fbf31");
	cr_expect(strstr(auth, "wJalr") == NULL);
}

Test(sigv4, aws_s3_get_object_with_range_example)
{
	/* headers given out of order: the signer sorts them */
	struct sigv4_header h[] = {
		{"x-amz-date", "20130524T000000Z"},
		{"range", "bytes=0-9"},
		{"host", "examplebucket.s3.amazonaws.com"},
		{"x-amz-content-sha256", SIGV4_EMPTY_SHA256},
	};
	struct sigv4_req r = {
		.method = "GET",
		.canon_uri = "/test.txt",
		.canon_query = "",
		.headers = h,
		.n_headers = 4,
		.payload_hash = SIGV4_EMPTY_SHA256,
		.amz_date = "20130524T000000Z",
		.region = "us-east-1",
		.service = "s3",
		.access_key_id = "AKIAIOSFODNN7EXAMPLE",
		.secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
	};
	char auth[512], sig[65];

	cr_assert_eq(sigv4_authorization(&r, auth, sizeof(auth), sig), 0);
	cr_expect_str_eq(sig, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48d"
			      "d91039c6036bdb41");
	cr_expect(strstr(auth, "SignedHeaders=host;range;x-amz-content-sha256;"
			       "x-amz-date,") != NULL, "%s", auth);
}

Test(sigv4, odd_key_session_token_and_query)
{
	const char *key = "dir/a b%c=d/\xc3\xa9\xe2\x98\x83.db";
	char *ek = sigv4_uri_encode(key, strlen(key), 1), *uri = NULL;
	char *tok = sigv4_uri_encode("1/2+3=", 6, 0);
	char *pfx = sigv4_uri_encode("a b/", 4, 0);
	char query[256], sig[65], auth[512], *creq;
	struct sigv4_header h[] = {
		{"host", "127.0.0.1:9000"},
		{"x-amz-content-sha256", "UNSIGNED-PAYLOAD"},
		{"x-amz-date", "20240102T030405Z"},
		{"x-amz-security-token", "TOKEN/abc+="},
	};
	struct sigv4_req r = {
		.method = "GET",
		.headers = h,
		.n_headers = 4,
		.payload_hash = "UNSIGNED-PAYLOAD",
		.amz_date = "20240102T030405Z",
		.region = "eu-west-3",
		.service = "s3",
		.access_key_id = "AKID",
		.secret_key = "secret/KEY+x",
	};

	cr_assert_str_eq(ek, "dir/a%20b%25c%3Dd/%C3%A9%E2%98%83.db");
	cr_assert_str_eq(tok, "1%2F2%2B3%3D");
	cr_assert(asprintf(&uri, "/bkt/%s", ek) > 0);
	snprintf(query, sizeof(query),
		 "continuation-token=%s&list-type=2&prefix=%s", tok, pfx);
	r.canon_uri = uri;
	r.canon_query = query;
	creq = sigv4_canonical_request(&r);
	cr_assert_not_null(creq);
	cr_expect_str_eq(creq,
			 "GET\n/bkt/dir/a%20b%25c%3Dd/%C3%A9%E2%98%83.db\n"
			 "continuation-token=1%2F2%2B3%3D&list-type=2&prefix="
			 "a%20b%2F\nhost:127.0.0.1:9000\nx-amz-content-sha256:"
			 "UNSIGNED-PAYLOAD\nx-amz-date:20240102T030405Z\n"
			 "x-amz-security-token:TOKEN/abc+=\n\nhost;x-amz-"
			 "content-sha256;x-amz-date;x-amz-security-token\n"
			 "UNSIGNED-PAYLOAD");
	cr_assert_eq(sigv4_authorization(&r, auth, sizeof(auth), sig), 0);
	cr_expect_str_eq(sig, "7442a4d2bef21c64232324655bb7601e53c746104b7a922e"
			      "a9a1e5647cd2e189");
	/* a different token must change the signature */
	h[3].value = "TOKEN/abd+=";
	cr_assert_eq(sigv4_authorization(&r, auth, sizeof(auth), sig), 0);
	cr_expect_str_neq(sig, "7442a4d2bef21c64232324655bb7601e53c746104b7a92"
			       "2ea9a1e5647cd2e189");
	free(creq);
	free(ek);
	free(tok);
	free(pfx);
	free(uri);
}

Test(sigv4, put_signs_the_payload_hash)
{
	char hash[65], sig[65], auth[512];
	struct sigv4_header h[] = {
		{"host", "s3.amazonaws.com"},
		{"x-amz-content-sha256", NULL},
		{"x-amz-date", "20240102T030405Z"},
	};
	struct sigv4_req r = {
		.method = "PUT",
		.canon_uri = "/bkt/k",
		.canon_query = "",
		.headers = h,
		.n_headers = 3,
		.amz_date = "20240102T030405Z",
		.region = "us-east-1",
		.service = "s3",
		.access_key_id = "AKID",
		.secret_key = "sk",
	};

	sigv4_sha256_hex("hello world", 11, hash);
	cr_expect_str_eq(hash, "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380"
			       "ee9088f7ace2efcde9");
	h[1].value = hash;
	r.payload_hash = hash;
	cr_assert_eq(sigv4_authorization(&r, auth, sizeof(auth), sig), 0);
	cr_expect_str_eq(sig, "15def247242b5baa9af2d422de460253977ee87f5e28a90a"
			      "83f9561dbbf012b4");
}

Test(sigv4, header_values_are_trimmed_and_collapsed)
{
	struct sigv4_header h[] = {
		{"x-amz-meta-a", "  one   two \t three  "},
		{"host", "h"},
	};
	struct sigv4_req r = {
		.method = "GET",
		.canon_uri = "",
		.headers = h,
		.n_headers = 2,
		.payload_hash = "UNSIGNED-PAYLOAD",
	};
	char *c = sigv4_canonical_request(&r);

	cr_assert_not_null(c);
	cr_expect_str_eq(c, "GET\n/\n\nhost:h\nx-amz-meta-a:one two three\n\n"
			    "host;x-amz-meta-a\nUNSIGNED-PAYLOAD");
	free(c);
}

Test(sigv4, rejects_bad_input_without_crashing)
{
	struct sigv4_header h[SIGV4_MAX_HEADERS + 1];
	struct sigv4_req r = {
		.method = "GET",
		.canon_uri = "/",
		.headers = h,
		.n_headers = SIGV4_MAX_HEADERS + 1,
		.payload_hash = "UNSIGNED-PAYLOAD",
		.amz_date = "20240102T030405Z",
		.region = "us-east-1",
		.service = "s3",
		.access_key_id = "AKID",
		.secret_key = "sk",
	};
	char auth[32], big[512];
	size_t i;

	for (i = 0; i < SIGV4_MAX_HEADERS + 1; i++)
		h[i] = (struct sigv4_header){"host", "h"};
	cr_expect_null(sigv4_canonical_request(&r));
	cr_expect_neq(sigv4_authorization(&r, auth, sizeof(auth), NULL), 0);
	r.n_headers = 1;
	/* too small an output buffer */
	cr_expect_neq(sigv4_authorization(&r, auth, sizeof(auth), NULL), 0);
	r.amz_date = "2024";
	cr_expect_neq(sigv4_authorization(&r, big, sizeof(big), NULL), 0);
}

Test(sigv4, amz_date_format)
{
	char d[17];

	sigv4_amz_date(1440938160, d);
	cr_expect_str_eq(d, "20150830T123600Z");
	sigv4_amz_date(0, d);
	cr_expect_str_eq(d, "19700101T000000Z");
}
