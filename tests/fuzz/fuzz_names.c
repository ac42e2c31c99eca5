/*
 * fuzz_names.c -- fuzz target for the key <-> file name codec
 * (fs/fs_names.c).
 *
 * The first input byte picks the key encoding; the rest is used twice:
 *   1. as stored key bytes: when it has a name, that name must be legal (no
 *      NUL, no '/', not "." or "..", at most FS_NAMES_MAX bytes) and must
 *      decode back to the same bytes;
 *   2. as a file name: when it decodes to a key, encoding that key and
 *      decoding the result must give the same key again.
 * Inputs are capped at 4 KiB. Any mismatch aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fs_names.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT 4096

static void check_key(enum sf_key_encoding enc, const uint8_t *key,
		      size_t klen)
{
	char name[FS_NAMES_BUFSZ];
	uint8_t back[FS_NAMES_BUFSZ];
	size_t nl = 0, bl = 0;

	if (fs_names_encode(enc, key, klen, name, sizeof(name), &nl) != 0)
		return;
	if (nl > FS_NAMES_MAX || nl == 0 || strlen(name) != nl ||
	    memchr(name, '/', nl) || !strcmp(name, ".") || !strcmp(name, ".."))
		abort();
	if (fs_names_decode(enc, name, nl, back, sizeof(back), &bl) != 0)
		abort();
	if (bl != klen || memcmp(back, key, klen) != 0)
		abort();
}

static void check_name(enum sf_key_encoding enc, const uint8_t *name,
		       size_t len)
{
	uint8_t *key = malloc(len + 8);
	uint8_t back[FS_NAMES_BUFSZ];
	char enc1[FS_NAMES_BUFSZ];
	size_t kl = 0, nl = 0, bl = 0;

	if (!key)
		return;
	if (fs_names_decode(enc, (const char *)name, len, key, len + 8, &kl) != 0)
		goto out;
	if (kl > len && enc != SF_ENC_U64BE && enc != SF_ENC_U32BE)
		abort();
	if (fs_names_encode(enc, key, kl, enc1, sizeof(enc1), &nl) != 0)
		goto out;
	if (fs_names_decode(enc, enc1, nl, back, sizeof(back), &bl) != 0)
		abort();
	if (bl != kl || memcmp(back, key, kl) != 0)
		abort();
out:
	free(key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum sf_key_encoding enc;

	if (size < 1 || size > MAX_INPUT)
		return 0;
	enc = (enum sf_key_encoding)(data[0] % 4);
	check_key(enc, data + 1, size - 1);
	check_name(enc, data + 1, size - 1);
	return 0;
}
