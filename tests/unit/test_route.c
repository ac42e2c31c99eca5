/*
 * test_route.c -- the key functions of the public header against FORMAT.md
 * sections 4 (routing hash test vectors) and 5 (key encodings), plus
 * sf_key_from_text() edge cases. Every FORMAT.md vector is one parameter.
 *
 * Parameters hold no pointers (fixed arrays only): Criterion copies them
 * into the forked test process.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <xxhash.h>

#include "manifest.h"
#include "shardyfs.h"

TestSuite(route, .timeout = 30);

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex) / 2;

	cr_assert_leq(n, cap);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		cr_assert_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
	return n;
}

static void tohex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
	out[2 * n] = '\0';
}

/* ---- FORMAT.md 4: hash vectors ------------------------------------- */

struct hash_vec {
	enum sf_key_type type;
	int64_t ival;        /* SF_KEY_INT */
	char canon_hex[40];  /* canonical bytes; the key data for TEXT/BYTES */
	uint64_t hash;
	unsigned mod8, mod16, mod5;
};

ParameterizedTestParameters(route, format_md_hash_vectors)
{
	static struct hash_vec v[] = {
		{SF_KEY_INT, 0, "0000000000000000", 14374147212387527897ull, 1, 9, 2},
		{SF_KEY_INT, 1, "0100000000000000", 3439722301264460078ull, 6, 14, 3},
		{SF_KEY_INT, 42, "2a00000000000000", 15395265915043915720ull, 0, 8, 0},
		{SF_KEY_INT, -1, "ffffffffffffffff", 5841669975847748627ull, 3, 3, 2},
		{SF_KEY_INT, 123456789, "15cd5b0700000000", 2817400364357085909ull, 5, 5, 4},
		{SF_KEY_INT, INT64_MAX, "ffffffffffffff7f", 11687913294787043142ull, 6, 6, 2},
		{SF_KEY_TEXT, 0, "757365722d313233", 18179754908829843001ull, 1, 9, 1},
		{SF_KEY_TEXT, 0, "", 3244421341483603138ull, 2, 2, 3},
		{SF_KEY_TEXT, 0, "68c3a96c6c6f2f77c3b6726c64", 14384788483631502034ull, 2, 2, 4},
		{SF_KEY_BYTES, 0, "00ff", 12221366661834116083ull, 3, 3, 3},
	};
	return cr_make_param_array(struct hash_vec, v, sizeof(v) / sizeof(v[0]));
}

ParameterizedTest(struct hash_vec *v, route, format_md_hash_vectors)
{
	uint8_t canon[32];
	size_t n = unhex(v->canon_hex, canon, sizeof(canon));
	struct sf_key k;
	uint64_t h;

	if (v->type == SF_KEY_INT)
		k = sf_key_int(v->ival);
	else if (v->type == SF_KEY_TEXT)
		k = sf_key_text((const char *)canon, n);
	else
		k = sf_key_bytes(canon, n);

	/* The table is self-consistent: xxh3_64 of the canonical bytes. */
	cr_assert_eq(XXH3_64bits(canon, n), v->hash, "table row %s", v->canon_hex);
	h = sf_key_hash(&k);
	cr_assert_eq(h, v->hash, "hash of %s: got %" PRIu64, v->canon_hex, h);
	cr_assert_eq(h % 8, v->mod8);
	cr_assert_eq(h % 16, v->mod16);
	cr_assert_eq(h % 5, v->mod5);
}

Test(route, text_literal_hashes_as_its_utf8_bytes)
{
	const char *s = "h\xc3\xa9llo/w\xc3\xb6rld"; /* héllo/wörld */
	struct sf_key k = sf_key_text(s, strlen(s));

	cr_assert_eq(sf_key_hash(&k), 14384788483631502034ull);
}

Test(route, integer_hash_depends_on_type_not_encoding)
{
	/* 42 hashes as 2a00.. (little-endian), whatever it is stored as. */
	struct sf_key a = sf_key_uint(42), b = sf_key_int(42);
	uint8_t le[8] = {0x2a};
	struct sf_key c = sf_key_bytes(le, 8);

	cr_assert_eq(sf_key_hash(&a), 15395265915043915720ull);
	cr_assert_eq(sf_key_hash(&b), sf_key_hash(&a));
	cr_assert_eq(sf_key_hash(&c), sf_key_hash(&a));
}

Test(route, empty_bytes_without_data_hash_like_empty_text)
{
	struct sf_key k = sf_key_bytes(NULL, 0);

	cr_assert_eq(sf_key_hash(&k), 3244421341483603138ull);
}

/* ---- FORMAT.md 5: stored encodings --------------------------------- */

struct enc_vec {
	enum sf_key_encoding enc;
	enum sf_key_type type;
	int negative;
	uint64_t u;
	char data_hex[24]; /* TEXT/BYTES data */
	int rc;
	char out_hex[24];
};

ParameterizedTestParameters(route, format_md_encodings)
{
	static struct enc_vec v[] = {
		{SF_ENC_U64BE, SF_KEY_INT, 0, 42, "", 0, "000000000000002a"},
		{SF_ENC_U64BE, SF_KEY_INT, 0, 0, "", 0, "0000000000000000"},
		{SF_ENC_U64BE, SF_KEY_INT, 0, 1ull << 62, "", 0, "4000000000000000"},
		{SF_ENC_U64BE, SF_KEY_INT, 0, UINT64_MAX, "", 0, "ffffffffffffffff"},
		{SF_ENC_U64BE, SF_KEY_INT, 1, (uint64_t)-1, "", SF_EKEY, ""},
		{SF_ENC_U64BE, SF_KEY_TEXT, 0, 0, "3432", SF_EKEY, ""},
		{SF_ENC_U64BE, SF_KEY_BYTES, 0, 0, "00", SF_EKEY, ""},
		{SF_ENC_U32BE, SF_KEY_INT, 0, 42, "", 0, "0000002a"},
		{SF_ENC_U32BE, SF_KEY_INT, 0, 4294967295ull, "", 0, "ffffffff"},
		{SF_ENC_U32BE, SF_KEY_INT, 0, 4294967296ull, "", SF_EKEY, ""},
		{SF_ENC_U32BE, SF_KEY_INT, 1, (uint64_t)-5, "", SF_EKEY, ""},
		{SF_ENC_U32BE, SF_KEY_TEXT, 0, 0, "31", SF_EKEY, ""},
		{SF_ENC_UTF8, SF_KEY_TEXT, 0, 0, "68c3a96c6c6f", 0, "68c3a96c6c6f"},
		{SF_ENC_UTF8, SF_KEY_TEXT, 0, 0, "", 0, ""},
		{SF_ENC_UTF8, SF_KEY_BYTES, 0, 0, "00ff", 0, "00ff"},
		{SF_ENC_UTF8, SF_KEY_INT, 0, 42, "", SF_EKEY, ""},
		{SF_ENC_RAW, SF_KEY_BYTES, 0, 0, "00ff00", 0, "00ff00"},
		{SF_ENC_RAW, SF_KEY_TEXT, 0, 0, "6869", 0, "6869"},
		{SF_ENC_RAW, SF_KEY_INT, 0, 1, "", SF_EKEY, ""},
	};
	return cr_make_param_array(struct enc_vec, v, sizeof(v) / sizeof(v[0]));
}

ParameterizedTest(struct enc_vec *v, route, format_md_encodings)
{
	uint8_t data[16], out[16];
	size_t n = unhex(v->data_hex, data, sizeof(data)), outlen = 99;
	char err[256] = "", hex[40];
	struct sf_key k = {v->type, v->negative, v->u, data, n, NULL};
	int rc;

	rc = sf_key_encode(v->enc, &k, out, sizeof(out), &outlen, err,
			   sizeof(err));
	cr_assert_eq(rc, v->rc, "%s/%s: rc %d (%s)", sf_encoding_name(v->enc),
		     v->data_hex, rc, err);
	if (rc == 0) {
		tohex(out, outlen, hex);
		cr_assert_str_eq(hex, v->out_hex);
	} else {
		cr_assert_neq(err[0], '\0', "an error must say why");
		cr_assert_not_null(strstr(err, sf_encoding_name(v->enc)),
				   "message names the encoding: %s", err);
	}
}

Test(route, encode_reports_needed_size_for_small_buffers)
{
	uint8_t out[4];
	size_t outlen = 0;
	struct sf_key k = sf_key_uint(7);
	struct sf_key t = sf_key_text("hello", 5);

	cr_assert_eq(sf_key_encode(SF_ENC_U64BE, &k, out, sizeof(out), &outlen,
				   NULL, 0), SF_EINVAL);
	cr_assert_eq(outlen, 8);
	cr_assert_eq(sf_key_encode(SF_ENC_U32BE, &k, out, sizeof(out), &outlen,
				   NULL, 0), 0);
	cr_assert_eq(outlen, 4);
	cr_assert_eq(sf_key_encode(SF_ENC_UTF8, &t, out, sizeof(out), &outlen,
				   NULL, 0), SF_EINVAL);
	cr_assert_eq(outlen, 5);
}

Test(route, encoding_names_round_trip)
{
	enum sf_key_encoding e;

	for (int i = SF_ENC_U64BE; i <= SF_ENC_RAW; i++) {
		cr_assert_eq(sf_encoding_parse(sf_encoding_name(i), &e), 0);
		cr_assert_eq((int)e, i);
	}
	cr_assert_str_eq(sf_encoding_name(SF_ENC_U64BE), "u64be");
	cr_assert_str_eq(sf_encoding_name(SF_ENC_U32BE), "u32be");
	cr_assert_str_eq(sf_encoding_name(SF_ENC_UTF8), "utf8");
	cr_assert_str_eq(sf_encoding_name(SF_ENC_RAW), "raw");
	cr_assert_str_eq(sf_encoding_name((enum sf_key_encoding)99), "?");
	cr_assert_eq(sf_encoding_parse("U64BE", &e), SF_EINVAL);
	cr_assert_eq(sf_encoding_parse("utf-8", &e), SF_EINVAL);
	cr_assert_eq(sf_encoding_parse("", &e), SF_EINVAL);
	cr_assert_eq(sf_encoding_parse(NULL, &e), SF_EINVAL);
}

/* ---- sf_key_from_text ----------------------------------------------- */

struct text_vec {
	enum sf_key_encoding enc;
	char text[32];
	int len; /* -1: strlen(text) */
	int rc;
	uint64_t u;
};

ParameterizedTestParameters(route, key_from_text)
{
	static struct text_vec v[] = {
		{SF_ENC_U64BE, "0", -1, 0, 0},
		{SF_ENC_U64BE, "42", -1, 0, 42},
		{SF_ENC_U64BE, "+42", -1, 0, 42},
		{SF_ENC_U64BE, "00042", -1, 0, 42},
		{SF_ENC_U64BE, "4611686018427387904", -1, 0, 1ull << 62},
		{SF_ENC_U64BE, "18446744073709551615", -1, 0, UINT64_MAX},
		{SF_ENC_U64BE, "18446744073709551616", -1, SF_EKEY, 0},
		{SF_ENC_U64BE, "18446744073709551620", -1, SF_EKEY, 0},
		{SF_ENC_U64BE, "99999999999999999999", -1, SF_EKEY, 0},
		{SF_ENC_U64BE, "-1", -1, SF_EKEY, 0},
		{SF_ENC_U64BE, "-0", -1, SF_EKEY, 0},
		{SF_ENC_U64BE, "abc", -1, SF_EKEY, 0},
		{SF_ENC_U64BE, "", -1, SF_EKEY, 0},
		{SF_ENC_U64BE, "+", -1, SF_EKEY, 0},
		{SF_ENC_U64BE, "++1", -1, SF_EKEY, 0},
		{SF_ENC_U64BE, "+-1", -1, SF_EKEY, 0},
		{SF_ENC_U64BE, " 42", -1, SF_EKEY, 0},
		{SF_ENC_U64BE, "42 ", -1, SF_EKEY, 0},
		{SF_ENC_U64BE, "4 2", -1, SF_EKEY, 0},
		{SF_ENC_U64BE, "42\n", -1, SF_EKEY, 0},
		{SF_ENC_U64BE, "0x10", -1, SF_EKEY, 0},
		{SF_ENC_U64BE, "1e3", -1, SF_EKEY, 0},
		{SF_ENC_U64BE, "4.0", -1, SF_EKEY, 0},
		{SF_ENC_U64BE, "42\0" "1", 4, SF_EKEY, 0}, /* embedded NUL */
		{SF_ENC_U64BE, "421", 2, 0, 42},          /* len, not NUL */
		{SF_ENC_U32BE, "0", -1, 0, 0},
		{SF_ENC_U32BE, "4294967295", -1, 0, 4294967295ull},
		{SF_ENC_U32BE, "4294967296", -1, SF_EKEY, 0},
		{SF_ENC_U32BE, "1099511627776", -1, SF_EKEY, 0}, /* 2^40 */
		{SF_ENC_U32BE, "-7", -1, SF_EKEY, 0},
		{SF_ENC_U32BE, "seven", -1, SF_EKEY, 0},
	};
	return cr_make_param_array(struct text_vec, v, sizeof(v) / sizeof(v[0]));
}

ParameterizedTest(struct text_vec *v, route, key_from_text)
{
	size_t len = v->len < 0 ? strlen(v->text) : (size_t)v->len;
	struct sf_key k;
	char err[256] = "";
	int rc;

	memset(&k, 0xa5, sizeof(k));
	rc = sf_key_from_text(v->enc, v->text, len, &k, err, sizeof(err));
	cr_assert_eq(rc, v->rc, "\"%s\" as %s: rc %d (%s)", v->text,
		     sf_encoding_name(v->enc), rc, err);
	if (rc == 0) {
		cr_assert_eq(k.type, SF_KEY_INT);
		cr_assert_eq(k.negative, 0);
		cr_assert_eq(k.u, v->u);
	} else {
		cr_assert_not_null(strstr(err, sf_encoding_name(v->enc)),
				   "message names the encoding: %s", err);
		cr_assert_eq(strchr(err, '\n'), NULL, "one line: %s", err);
	}
}

Test(route, from_text_messages_are_clear)
{
	char err[256];
	struct sf_key k;

	cr_assert_eq(sf_key_from_text(SF_ENC_U64BE, "abc", 3, &k, err,
				      sizeof(err)), SF_EKEY);
	cr_assert_not_null(strstr(err, "\"abc\""), "%s", err);
	cr_assert_not_null(strstr(err, "not a decimal integer"), "%s", err);
	cr_assert_not_null(strstr(err, "u64be"), "%s", err);

	cr_assert_eq(sf_key_from_text(SF_ENC_U32BE, "1099511627776", 13, &k,
				      err, sizeof(err)), SF_EKEY);
	cr_assert_not_null(strstr(err, "out of range"), "%s", err);
	cr_assert_not_null(strstr(err, "u32be"), "%s", err);

	cr_assert_eq(sf_key_from_text(SF_ENC_U64BE, "-1", 2, &k, err,
				      sizeof(err)), SF_EKEY);
	cr_assert_not_null(strstr(err, "negative"), "%s", err);
}

Test(route, from_text_quotes_long_input_briefly)
{
	char text[300], err[512];
	struct sf_key k;

	memset(text, 'x', sizeof(text));
	cr_assert_eq(sf_key_from_text(SF_ENC_U64BE, text, sizeof(text), &k,
				      err, sizeof(err)), SF_EKEY);
	cr_assert_lt(strlen(err), 150, "%s", err);
	/* A tiny buffer is filled safely; NULL is allowed. */
	cr_assert_eq(sf_key_from_text(SF_ENC_U64BE, text, sizeof(text), &k,
				      err, 4), SF_EKEY);
	cr_assert_eq(strlen(err), 3);
	cr_assert_eq(sf_key_from_text(SF_ENC_U64BE, text, sizeof(text), &k,
				      NULL, 0), SF_EKEY);
}

Test(route, from_text_keeps_text_and_bytes_as_given)
{
	const char *s = "a\0b/\xff";
	struct sf_key k;

	cr_assert_eq(sf_key_from_text(SF_ENC_UTF8, s, 5, &k, NULL, 0), 0);
	cr_assert_eq(k.type, SF_KEY_TEXT);
	cr_assert_eq(k.data, s);
	cr_assert_eq(k.len, 5);
	cr_assert_eq(sf_key_from_text(SF_ENC_RAW, s, 5, &k, NULL, 0), 0);
	cr_assert_eq(k.type, SF_KEY_BYTES);
	cr_assert_eq(k.data, s);
	cr_assert_eq(k.len, 5);
	cr_assert_eq(sf_key_from_text(SF_ENC_UTF8, "", 0, &k, NULL, 0), 0);
	cr_assert_eq(k.len, 0);
	cr_assert_eq(sf_key_from_text((enum sf_key_encoding)9, "1", 1, &k,
				      NULL, 0), SF_EINVAL);
	cr_assert_eq(sf_key_from_text(SF_ENC_U64BE, "1", 1, NULL, NULL, 0),
		     SF_EINVAL);
}

Test(route, u64_extremes_encode_after_parsing)
{
	struct sf_key k;
	uint8_t out[8];
	size_t n;
	char hex[20];

	cr_assert_eq(sf_key_from_text(SF_ENC_U64BE, "18446744073709551615", 20,
				      &k, NULL, 0), 0);
	cr_assert_eq(sf_key_encode(SF_ENC_U64BE, &k, out, 8, &n, NULL, 0), 0);
	tohex(out, n, hex);
	cr_assert_str_eq(hex, "ffffffffffffffff");
	cr_assert_eq(sf_key_encode(SF_ENC_U32BE, &k, out, 8, &n, NULL, 0),
		     SF_EKEY);
}
