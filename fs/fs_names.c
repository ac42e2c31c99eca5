/*
 * fs_names.c -- key <-> file name codec of the shardyfs mount.
 *
 * A key is known to the mount by the name it has in keys/: lookups decode a
 * name into the stored key bytes, listings encode stored bytes into names.
 * The mapping is stated in fs_names.h; here are the reasons behind it.
 *
 * Integer keys are named by their canonical decimal only, so that a key has
 * exactly one name and the kernel never holds two dentries for one value.
 * Text and bytes keys are percent-encoded, escaping just enough to make
 * every key a legal, printable name: '/' and NUL cannot occur in a name,
 * '%' is the escape itself, control bytes and broken UTF-8 would garble a
 * terminal. Everything else, including valid multi-byte UTF-8, stays as it
 * is so that `ls keys/` shows keys the way a person wrote them. The decoder
 * accepts any escaped byte and either hex case, so scripts can escape
 * everything without knowing the rules above.
 *
 * Two names need a rule of their own: "." and ".." are directory entries of
 * every directory, so the keys "." and ".." are escaped; and a file cannot
 * have an empty name, so the empty key is named "%", the one name that is
 * otherwise an invalid escape.
 *
 * The module has no FUSE dependency and does no I/O; the unit test and the
 * fuzz target fs_names link it alone.
 */
#include "fs_names.h"

#include <string.h>

static const char hexdig[] = "0123456789ABCDEF";

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Length of the well-formed UTF-8 sequence (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF) at p[0..n), or 0 if there is none.
 */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
	uint8_t c = p[0];
	uint8_t lo = 0x80, hi = 0xbf;
	size_t len;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return len;
}

static int must_escape(uint8_t c)
{
	return c == '%' || c == '/' || c < 0x20 || c == 0x7f;
}

/* Appends the bytes of a text/bytes key, escaped; 0 or SF_ETOOBIG. */
static int encode_bytes(const uint8_t *key, size_t klen, char *name,
			size_t cap, size_t *namelen)
{
	size_t lim = cap - 1 < FS_NAMES_MAX ? cap - 1 : FS_NAMES_MAX;
	size_t o = 0;
	int dots = (klen == 1 && key[0] == '.') ||
		   (klen == 2 && key[0] == '.' && key[1] == '.');

	if (klen == 0) {
		if (lim < 1)
			return SF_ETOOBIG;
		name[o++] = '%';
		goto out;
	}
	for (size_t i = 0; i < klen;) {
		uint8_t c = key[i];
		size_t seq = c >= 0x80 ? utf8_seq(key + i, klen - i) : 1;

		if (dots || must_escape(c) || seq == 0) {
			if (lim - o < 3)
				return SF_ETOOBIG;
			name[o++] = '%';
			name[o++] = hexdig[c >> 4];
			name[o++] = hexdig[c & 15];
			i++;
			continue;
		}
		if (lim - o < seq)
			return SF_ETOOBIG;
		memcpy(name + o, key + i, seq);
		o += seq;
		i += seq;
	}
out:
	name[o] = 0;
	if (namelen)
		*namelen = o;
	return 0;
}

static int encode_int(uint64_t v, char *name, size_t cap, size_t *namelen)
{
	char tmp[24];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	if (cap < n + 1)
		return SF_ETOOBIG;
	for (size_t i = 0; i < n; i++)
		name[i] = tmp[n - 1 - i];
	name[n] = 0;
	if (namelen)
		*namelen = n;
	return 0;
}

static size_t int_width(enum sf_key_encoding enc)
{
	return enc == SF_ENC_U64BE ? 8 : 4;
}

int fs_names_encode(enum sf_key_encoding enc, const uint8_t *key, size_t klen,
		    char *name, size_t cap, size_t *namelen)
{
	uint64_t v = 0;

	if (!name || cap == 0)
		return SF_ETOOBIG;
	name[0] = 0;
	switch (enc) {
	case SF_ENC_U64BE:
	case SF_ENC_U32BE:
		if (klen != int_width(enc))
			return SF_EKEY;
		for (size_t i = 0; i < klen; i++)
			v = v << 8 | key[i];
		return encode_int(v, name, cap, namelen);
	case SF_ENC_UTF8:
	case SF_ENC_RAW:
		return encode_bytes(key, klen, name, cap, namelen);
	}
	return SF_EINVAL;
}

static int decode_int(enum sf_key_encoding enc, const char *name,
		      size_t namelen, uint8_t *key, size_t cap, size_t *klen)
{
	uint64_t v = 0, max = enc == SF_ENC_U64BE ? UINT64_MAX : UINT32_MAX;
	size_t w = int_width(enc);

	if (namelen == 0 || namelen > 20)
		return SF_EKEY;
	if (name[0] == '0' && namelen > 1)
		return SF_EKEY;
	for (size_t i = 0; i < namelen; i++) {
		unsigned d;

		if (name[i] < '0' || name[i] > '9')
			return SF_EKEY;
		d = (unsigned)(name[i] - '0');
		if (v > (max - d) / 10)
			return SF_EKEY;
		v = v * 10 + d;
	}
	if (cap < w)
		return SF_ETOOBIG;
	for (size_t i = 0; i < w; i++)
		key[w - 1 - i] = (uint8_t)(v >> (8 * i));
	*klen = w;
	return 0;
}

static int decode_bytes(const char *name, size_t namelen, uint8_t *key,
			size_t cap, size_t *klen)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t o = 0;

	if (namelen == 0)
		return SF_EKEY;
	if ((namelen == 1 && s[0] == '.') ||
	    (namelen == 2 && s[0] == '.' && s[1] == '.'))
		return SF_EKEY;
	if (namelen == 1 && s[0] == '%') {
		*klen = 0;
		return 0;
	}
	for (size_t i = 0; i < namelen; i++) {
		uint8_t c = s[i];

		if (c == 0 || c == '/')
			return SF_EKEY;
		if (c == '%') {
			int hi, lo;

			if (namelen - i < 3)
				return SF_EKEY;
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0)
				return SF_EKEY;
			c = (uint8_t)(hi << 4 | lo);
			i += 2;
		}
		if (o >= cap)
			return SF_ETOOBIG;
		key[o++] = c;
	}
	*klen = o;
	return 0;
}

int fs_names_decode(enum sf_key_encoding enc, const char *name, size_t namelen,
		    uint8_t *key, size_t cap, size_t *klen)
{
	if (!name || !key || !klen)
		return SF_EINVAL;
	switch (enc) {
	case SF_ENC_U64BE:
	case SF_ENC_U32BE:
		return decode_int(enc, name, namelen, key, cap, klen);
	case SF_ENC_UTF8:
	case SF_ENC_RAW:
		return decode_bytes(name, namelen, key, cap, klen);
	}
	return SF_EINVAL;
}

int fs_names_key(enum sf_key_encoding enc, const uint8_t *stored, size_t n,
		 struct sf_key *out)
{
	uint64_t v = 0;

	switch (enc) {
	case SF_ENC_U64BE:
	case SF_ENC_U32BE:
		if (n != int_width(enc))
			return SF_EKEY;
		for (size_t i = 0; i < n; i++)
			v = v << 8 | stored[i];
		*out = sf_key_uint(v);
		return 0;
	case SF_ENC_UTF8:
		*out = sf_key_text((const char *)stored, n);
		return 0;
	case SF_ENC_RAW:
		*out = sf_key_bytes(stored, n);
		return 0;
	}
	return SF_EINVAL;
}

void fs_names_hex(const uint8_t *b, size_t n, char *out)
{
	static const char lower[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = lower[b[i] >> 4];
		out[2 * i + 1] = lower[b[i] & 15];
	}
	out[2 * n] = 0;
}
