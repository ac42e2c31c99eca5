/*
 * test_names.c -- unit tests of the key <-> file name codec (fs/fs_names.c):
 * the fixed rules of fs_names.h, a round-trip property over random byte
 * strings, and every key of the shardyfusion fixtures.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "fs_names.h"
#include "sf_test.h"

TestSuite(names, .timeout = 60);

static void expect_name(enum sf_key_encoding enc, const void *key, size_t klen,
			const char *want)
{
	char name[FS_NAMES_BUFSZ];
	size_t nl = 0;
	int rc = fs_names_encode(enc, key, klen, name, sizeof(name), &nl);

	cr_assert_eq(rc, 0, "encode rc %d for %s", rc, want);
	cr_assert_str_eq(name, want);
	cr_assert_eq(nl, strlen(want));
}

static void expect_key(enum sf_key_encoding enc, const char *name,
		       const void *want, size_t wantlen)
{
	uint8_t key[FS_NAMES_BUFSZ];
	size_t kl = 99;
	int rc = fs_names_decode(enc, name, strlen(name), key, sizeof(key), &kl);

	cr_assert_eq(rc, 0, "decode rc %d for '%s'", rc, name);
	cr_assert_eq(kl, wantlen, "'%s' decodes to %zu bytes", name, kl);
	cr_assert(memcmp(key, want, wantlen) == 0, "'%s' bytes differ", name);
}

static void expect_not_key(enum sf_key_encoding enc, const char *name,
			   size_t len)
{
	uint8_t key[64];
	size_t kl = 0;
	int rc = fs_names_decode(enc, name, len, key, sizeof(key), &kl);

	cr_assert_eq(rc, SF_EKEY, "'%.*s' should not be a key (rc %d)",
		     (int)len, name, rc);
}

Test(names, escapes_slash_percent_and_nul)
{
	expect_name(SF_ENC_UTF8, "a/b", 3, "a%2Fb");
	expect_name(SF_ENC_UTF8, "50%", 3, "50%25");
	expect_name(SF_ENC_RAW, "\0x\0", 3, "%00x%00");
	expect_name(SF_ENC_RAW, "\x01\x1f\x7f ", 4, "%01%1F%7F ");
	expect_key(SF_ENC_UTF8, "a%2Fb", "a/b", 3);
	expect_key(SF_ENC_RAW, "%00x%00", "\0x\0", 3);
}

Test(names, keeps_valid_utf8_and_escapes_broken_utf8)
{
	expect_name(SF_ENC_UTF8, "h\xc3\xa9llo", 6, "h\xc3\xa9llo");
	expect_name(SF_ENC_UTF8, "\xf0\x9f\x94\x91", 4, "\xf0\x9f\x94\x91");
	/* lone continuation byte, truncated sequence, overlong '/', surrogate */
	expect_name(SF_ENC_RAW, "\x80", 1, "%80");
	expect_name(SF_ENC_RAW, "\xc3", 1, "%C3");
	expect_name(SF_ENC_RAW, "\xc0\xaf", 2, "%C0%AF");
	expect_name(SF_ENC_RAW, "\xed\xa0\x80", 3, "%ED%A0%80");
	expect_name(SF_ENC_RAW, "\xff\xfe", 2, "%FF%FE");
	expect_name(SF_ENC_RAW, "\xf4\x90\x80\x80", 4, "%F4%90%80%80");
}

Test(names, names_the_empty_key_with_a_lone_percent)
{
	expect_name(SF_ENC_UTF8, "", 0, "%");
	expect_name(SF_ENC_RAW, "", 0, "%");
	expect_key(SF_ENC_UTF8, "%", "", 0);
	expect_key(SF_ENC_RAW, "%", "", 0);
}

Test(names, escapes_the_dot_keys_but_not_leading_dots)
{
	expect_name(SF_ENC_UTF8, ".", 1, "%2E");
	expect_name(SF_ENC_UTF8, "..", 2, "%2E%2E");
	expect_name(SF_ENC_UTF8, ".dot", 4, ".dot");
	expect_name(SF_ENC_UTF8, "...", 3, "...");
	expect_key(SF_ENC_UTF8, "%2E", ".", 1);
	expect_key(SF_ENC_UTF8, "%2e.", "..", 2);
	expect_not_key(SF_ENC_UTF8, ".", 1);
	expect_not_key(SF_ENC_UTF8, "..", 2);
	expect_not_key(SF_ENC_RAW, "..", 2);
}

Test(names, decodes_any_escape_in_either_case)
{
	expect_key(SF_ENC_UTF8, "%61%62c", "abc", 3);
	expect_key(SF_ENC_UTF8, "%2f%2F", "//", 2);
	expect_key(SF_ENC_RAW, "%fF%Ff", "\xff\xff", 2);
	expect_key(SF_ENC_UTF8, "%25", "%", 1);
}

Test(names, rejects_malformed_escapes_and_impossible_names)
{
	const char *bad[] = {"%4", "a%", "%%", "%zz", "%g0", "%0g", "x%2",
			     "%%41", "%2Fa%"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		expect_not_key(SF_ENC_UTF8, bad[i], strlen(bad[i]));
		expect_not_key(SF_ENC_RAW, bad[i], strlen(bad[i]));
	}
	expect_not_key(SF_ENC_UTF8, "", 0);
	expect_not_key(SF_ENC_RAW, "a/b", 3);
	expect_not_key(SF_ENC_RAW, "a\0b", 3);
}

Test(names, names_integers_by_canonical_decimal)
{
	uint8_t k8[8] = {0, 0, 0, 1, 0, 0, 0, 0};
	uint8_t k4[4] = {0xff, 0xff, 0xff, 0xff};
	uint8_t max[8];

	memset(max, 0xff, 8);
	expect_name(SF_ENC_U64BE, k8, 8, "4294967296");
	expect_name(SF_ENC_U64BE, max, 8, "18446744073709551615");
	expect_name(SF_ENC_U32BE, k4, 4, "4294967295");
	expect_key(SF_ENC_U64BE, "4294967296", k8, 8);
	expect_key(SF_ENC_U64BE, "18446744073709551615", max, 8);
	expect_key(SF_ENC_U32BE, "4294967295", k4, 4);
	expect_key(SF_ENC_U64BE, "0", "\0\0\0\0\0\0\0\0", 8);
}

Test(names, rejects_non_canonical_or_out_of_range_integers)
{
	const char *bad[] = {"", "-1", "+1", "01", "00", " 1", "1 ", "1e3",
			     "abc", "0x10", "%31", "18446744073709551616",
			     "99999999999999999999", "123456789012345678901"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_not_key(SF_ENC_U64BE, bad[i], strlen(bad[i]));
	expect_not_key(SF_ENC_U32BE, "4294967296", 10);
	expect_not_key(SF_ENC_U32BE, "18446744073709551615", 20);
}

Test(names, refuses_integer_keys_of_the_wrong_width)
{
	char name[FS_NAMES_BUFSZ];

	cr_assert_eq(fs_names_encode(SF_ENC_U64BE, (const uint8_t *)"abcd", 4,
				     name, sizeof(name), NULL), SF_EKEY);
	cr_assert_eq(fs_names_encode(SF_ENC_U32BE, (const uint8_t *)"abcdefgh",
				     8, name, sizeof(name), NULL), SF_EKEY);
}

Test(names, reports_names_longer_than_name_max)
{
	uint8_t key[300];
	char name[1024];
	size_t nl;

	memset(key, 'a', sizeof(key));
	cr_assert_eq(fs_names_encode(SF_ENC_UTF8, key, 255, name, sizeof(name),
				     &nl), 0);
	cr_assert_eq(nl, 255);
	cr_assert_eq(fs_names_encode(SF_ENC_UTF8, key, 256, name, sizeof(name),
				     &nl), SF_ETOOBIG);
	/* 85 escaped bytes fit (255), 86 do not */
	memset(key, '/', sizeof(key));
	cr_assert_eq(fs_names_encode(SF_ENC_RAW, key, 85, name, sizeof(name),
				     &nl), 0);
	cr_assert_eq(nl, 255);
	cr_assert_eq(fs_names_encode(SF_ENC_RAW, key, 86, name, sizeof(name),
				     &nl), SF_ETOOBIG);
	/* a small caller buffer is honoured too */
	cr_assert_eq(fs_names_encode(SF_ENC_UTF8, key, 2, name, 4, &nl),
		     SF_ETOOBIG);
	cr_assert_eq(fs_names_encode(SF_ENC_U64BE, (const uint8_t *)"\0\0\0\0\0\0\0\x64",
				     8, name, 3, &nl), SF_ETOOBIG);
	cr_assert_eq(fs_names_encode(SF_ENC_U64BE, (const uint8_t *)"\0\0\0\0\0\0\0\x64",
				     8, name, 4, &nl), 0);
	cr_assert_str_eq(name, "100");
}

Test(names, decoding_reports_a_small_buffer)
{
	uint8_t key[2];
	size_t kl;

	cr_assert_eq(fs_names_decode(SF_ENC_UTF8, "abc", 3, key, sizeof(key),
				     &kl), SF_ETOOBIG);
	cr_assert_eq(fs_names_decode(SF_ENC_U64BE, "1", 1, key, sizeof(key),
				     &kl), SF_ETOOBIG);
}

/* xorshift64*: a fixed-seed generator so that a failure reproduces. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static void check_roundtrip(enum sf_key_encoding enc, const uint8_t *key,
			    size_t klen)
{
	char name[FS_NAMES_BUFSZ], name2[FS_NAMES_BUFSZ];
	uint8_t back[FS_NAMES_BUFSZ];
	size_t nl, bl, nl2;
	int rc = fs_names_encode(enc, key, klen, name, sizeof(name), &nl);

	if (rc == SF_ETOOBIG)
		return;
	cr_assert_eq(rc, 0);
	cr_assert_eq(strlen(name), nl, "a name never contains NUL");
	cr_assert_null(memchr(name, '/', nl), "a name never contains '/'");
	cr_assert(strcmp(name, ".") && strcmp(name, ".."));
	cr_assert_eq(fs_names_decode(enc, name, nl, back, sizeof(back), &bl), 0,
		     "'%s' does not decode", name);
	cr_assert_eq(bl, klen);
	cr_assert(memcmp(back, key, klen) == 0, "'%s' decodes wrongly", name);
	/* decoding is the inverse: encoding the decoded key is stable */
	cr_assert_eq(fs_names_encode(enc, back, bl, name2, sizeof(name2), &nl2),
		     0);
	cr_assert_str_eq(name, name2);
}

Test(names, round_trips_random_byte_strings)
{
	static const uint8_t alpha[] = {'%', '/', '.', 0, 'a', 'Z', 0x7f, 0x80,
					0xbf, 0xc3, 0xa9, 0xe2, 0x82, 0xac,
					0xf0, 0x9f, 0x94, 0x91, 0xff, ' '};
	uint64_t s = 0x5eed5eed12345678ULL;
	uint8_t key[200];

	for (int iter = 0; iter < 20000; iter++) {
		size_t klen = rnd(&s) % 120;
		int mode = (int)(rnd(&s) % 3);

		for (size_t i = 0; i < klen; i++) {
			uint64_t r = rnd(&s);
			key[i] = mode == 0 ? (uint8_t)r
					   : alpha[r % sizeof(alpha)];
		}
		check_roundtrip(SF_ENC_RAW, key, klen);
		check_roundtrip(SF_ENC_UTF8, key, klen);
		if (klen >= 8)
			check_roundtrip(SF_ENC_U64BE, key, 8);
		if (klen >= 4)
			check_roundtrip(SF_ENC_U32BE, key, 4);
	}
}

Test(names, maps_every_fixture_key_to_a_name_and_back)
{
	const char *fixtures[] = {"utf8", "raw", "u64", "sparse"};
	const enum sf_key_encoding encs[] = {SF_ENC_UTF8, SF_ENC_RAW,
					     SF_ENC_U64BE, SF_ENC_UTF8};

	for (size_t f = 0; f < 4; f++) {
		size_t n;
		struct sft_answer *a = sft_answers(fixtures[f], &n);

		cr_assert_gt(n, 0);
		for (size_t i = 0; i < n; i++) {
			char name[FS_NAMES_BUFSZ];
			uint8_t back[FS_NAMES_BUFSZ];
			size_t nl, bl;

			cr_assert_eq(fs_names_encode(encs[f], a[i].key,
						     a[i].klen, name,
						     sizeof(name), &nl), 0,
				     "%s key %s has no name", fixtures[f],
				     a[i].user_key);
			cr_assert_eq(fs_names_decode(encs[f], name, nl, back,
						     sizeof(back), &bl), 0);
			cr_assert_eq(bl, a[i].klen);
			cr_assert(memcmp(back, a[i].key, bl) == 0);
			if (encs[f] == SF_ENC_U64BE)
				cr_assert_str_eq(name, a[i].user_key);
		}
		sft_answers_free(a, n);
	}
}

Test(names, builds_typed_keys_from_stored_bytes)
{
	struct sf_key k;

	cr_assert_eq(fs_names_key(SF_ENC_U64BE,
				  (const uint8_t *)"\0\0\0\0\0\0\x01\x00", 8,
				  &k), 0);
	cr_assert_eq(k.type, SF_KEY_INT);
	cr_assert_eq(k.u, 256);
	cr_assert_eq(k.negative, 0);
	cr_assert_eq(fs_names_key(SF_ENC_U32BE, (const uint8_t *)"\0\0\x01\x00",
				  4, &k), 0);
	cr_assert_eq(k.u, 256);
	cr_assert_eq(fs_names_key(SF_ENC_U32BE, (const uint8_t *)"\0\x01\x00",
				  3, &k), SF_EKEY);
	cr_assert_eq(fs_names_key(SF_ENC_UTF8, (const uint8_t *)"ab", 2, &k), 0);
	cr_assert_eq(k.type, SF_KEY_TEXT);
	cr_assert_eq(k.len, 2);
	cr_assert_eq(fs_names_key(SF_ENC_RAW, (const uint8_t *)"ab", 2, &k), 0);
	cr_assert_eq(k.type, SF_KEY_BYTES);
}

Test(names, writes_lower_case_hex)
{
	char out[9];

	fs_names_hex((const uint8_t *)"\x00\xab\xff\x10", 4, out);
	cr_assert_str_eq(out, "00abff10");
	fs_names_hex((const uint8_t *)"", 0, out);
	cr_assert_str_eq(out, "");
}
