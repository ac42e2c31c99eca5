/*
 * route.c -- keys: encoding names, text -> key parsing, the stored form of
 * a key (FORMAT.md 5) and the routing hash (FORMAT.md 4).
 *
 * Two byte forms of a key exist and must never be confused:
 *
 *   - the canonical bytes, hashed for routing, depend on the key's TYPE
 *     only: an integer is 8 bytes little-endian two's complement, text is
 *     its UTF-8 bytes, bytes are themselves;
 *   - the stored bytes (the shard's kv.k) depend on the snapshot's
 *     key_encoding: u64be/u32be are big-endian unsigned, utf8/raw pass the
 *     bytes through.
 *
 * So the integer 42 hashes as 2a00000000000000 but is stored as
 * 000000000000002a under u64be.
 *
 * shardyfusion hashes integers only in [-2^63, 2^63-1] (it raises for
 * larger ones). sf_key_hash() cannot fail, so it hashes the 64-bit pattern;
 * manifest_route() is what refuses an unsigned key >= 2^63 (SF_EKEY), as
 * shardyfusion does: no writer can have stored such a key. Such keys still
 * encode fine under u64be (sf_key_encode()).
 *
 * Nothing here allocates; text keys alias the caller's memory.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <xxhash.h>

#include "err.h"
#include "manifest.h"

static const char *const enc_names[] = {
	[SF_ENC_U64BE] = "u64be",
	[SF_ENC_U32BE] = "u32be",
	[SF_ENC_UTF8] = "utf8",
	[SF_ENC_RAW] = "raw",
};

const char *sf_encoding_name(enum sf_key_encoding enc)
{
	if ((unsigned)enc >= sizeof(enc_names) / sizeof(enc_names[0]))
		return "?";
	return enc_names[enc];
}

int sf_encoding_parse(const char *name, enum sf_key_encoding *out)
{
	if (!name || !out)
		return SF_EINVAL;
	for (size_t i = 0; i < sizeof(enc_names) / sizeof(enc_names[0]); i++) {
		if (strcmp(name, enc_names[i]) == 0) {
			*out = (enum sf_key_encoding)i;
			return 0;
		}
	}
	return SF_EINVAL;
}

/* Quotes at most 40 bytes of user text into an error message, replacing
 * control bytes so that the message stays on one line. */
static void quote_text(char *dst, size_t cap, const char *s, size_t n)
{
	size_t o = 0, lim = n > 40 ? 40 : n;

	if (cap == 0)
		return;
	for (size_t i = 0; i < lim && o + 1 < cap; i++) {
		unsigned char c = (unsigned char)s[i];
		dst[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (n > lim && o + 4 < cap) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
}

int sf_key_from_text(enum sf_key_encoding enc, const char *text, size_t len,
		     struct sf_key *out, char *err, size_t errlen)
{
	char shown[64];
	uint64_t max, v = 0;
	size_t i = 0;

	if (!out || (!text && len > 0))
		return sf_errf(err, errlen, SF_EINVAL, "no key text");
	switch (enc) {
	case SF_ENC_UTF8:
		*out = sf_key_text(text, len);
		return 0;
	case SF_ENC_RAW:
		*out = sf_key_bytes(text, len);
		return 0;
	case SF_ENC_U64BE:
		max = UINT64_MAX;
		break;
	case SF_ENC_U32BE:
		max = UINT32_MAX;
		break;
	default:
		return sf_errf(err, errlen, SF_EINVAL, "unknown key encoding %d",
			       (int)enc);
	}

	quote_text(shown, sizeof(shown), text ? text : "", len);
	if (len > 0 && text[0] == '-')
		return sf_errf(err, errlen, SF_EKEY,
			       "key \"%s\" is negative: %s keys are unsigned",
			       shown, sf_encoding_name(enc));
	if (len > 0 && text[0] == '+')
		i = 1;
	if (i == len)
		return sf_errf(err, errlen, SF_EKEY,
			       "key \"%s\" is not a decimal integer (key encoding %s)",
			       shown, sf_encoding_name(enc));
	for (; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c < '0' || c > '9')
			return sf_errf(err, errlen, SF_EKEY,
				       "key \"%s\" is not a decimal integer (key encoding %s)",
				       shown, sf_encoding_name(enc));
		if (v > (max - (c - '0')) / 10)
			return sf_errf(err, errlen, SF_EKEY,
				       "key \"%s\" is out of range for %s (max %" PRIu64 ")",
				       shown, sf_encoding_name(enc), max);
		v = v * 10 + (c - '0');
	}
	*out = sf_key_uint(v);
	return 0;
}

static const char *type_name(enum sf_key_type t)
{
	switch (t) {
	case SF_KEY_INT: return "an integer";
	case SF_KEY_TEXT: return "text";
	case SF_KEY_BYTES: return "bytes";
	default: return "an unknown type";
	}
}

int route_check_key(enum sf_key_encoding enc, const struct sf_key *key,
		    char *err, size_t errlen)
{
	if (!key)
		return sf_errf(err, errlen, SF_EINVAL, "no key");
	if (key->type != SF_KEY_INT && key->type != SF_KEY_TEXT &&
	    key->type != SF_KEY_BYTES)
		return sf_errf(err, errlen, SF_EKEY, "unknown key type %d",
			       (int)key->type);
	if (key->type != SF_KEY_INT && !key->data && key->len > 0)
		return sf_errf(err, errlen, SF_EINVAL, "key has no data");
	switch (enc) {
	case SF_ENC_U64BE:
	case SF_ENC_U32BE:
		if (key->type != SF_KEY_INT)
			return sf_errf(err, errlen, SF_EKEY,
				       "the snapshot's keys are integers (%s), not %s",
				       sf_encoding_name(enc),
				       type_name(key->type));
		if (key->negative)
			return sf_errf(err, errlen, SF_EKEY,
				       "key %" PRId64 " is negative: %s keys are unsigned",
				       (int64_t)key->u, sf_encoding_name(enc));
		if (enc == SF_ENC_U32BE && key->u > UINT32_MAX)
			return sf_errf(err, errlen, SF_EKEY,
				       "key %" PRIu64 " is out of range for u32be (max 4294967295)",
				       key->u);
		return 0;
	case SF_ENC_UTF8:
	case SF_ENC_RAW:
		if (key->type == SF_KEY_INT)
			return sf_errf(err, errlen, SF_EKEY,
				       "the snapshot's keys are %s (%s), not integers",
				       enc == SF_ENC_UTF8 ? "text" : "bytes",
				       sf_encoding_name(enc));
		return 0;
	default:
		return sf_errf(err, errlen, SF_EINVAL, "unknown key encoding %d",
			       (int)enc);
	}
}

int sf_key_encode(enum sf_key_encoding enc, const struct sf_key *key,
		  uint8_t *buf, size_t cap, size_t *outlen, char *err,
		  size_t errlen)
{
	size_t need;
	int rc;

	rc = route_check_key(enc, key, err, errlen);
	if (rc != 0)
		return rc;
	if (!outlen)
		return sf_errf(err, errlen, SF_EINVAL, "no output length");
	need = enc == SF_ENC_U64BE ? 8 : enc == SF_ENC_U32BE ? 4 : key->len;
	*outlen = need;
	if (need > cap || (need > 0 && !buf))
		return sf_errf(err, errlen, SF_EINVAL,
			       "key needs %zu bytes, buffer holds %zu", need, cap);
	if (enc == SF_ENC_U64BE || enc == SF_ENC_U32BE) {
		for (size_t i = 0; i < need; i++)
			buf[i] = (uint8_t)(key->u >> (8 * (need - 1 - i)));
	} else if (need > 0) {
		memcpy(buf, key->data, need);
	}
	return 0;
}

uint64_t sf_key_hash(const struct sf_key *key)
{
	uint8_t le[8];

	if (!key)
		return XXH3_64bits("", 0);
	if (key->type == SF_KEY_INT) {
		for (int i = 0; i < 8; i++)
			le[i] = (uint8_t)(key->u >> (8 * i));
		return XXH3_64bits(le, sizeof(le));
	}
	if (!key->data)
		return XXH3_64bits("", 0);
	return XXH3_64bits(key->data, key->len);
}
