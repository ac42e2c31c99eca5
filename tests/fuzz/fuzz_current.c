/*
 * fuzz_current.c -- fuzz target for the small text parsers of the
 * snapshot model (core/manifest.c, core/route.c), all fed bytes from an
 * untrusted store or user:
 *   - current_parse(): the whole input as a `_CURRENT` object; on success
 *     every field is a NUL-terminated string and format_version >= 1, and
 *     manifest_ref is rebased as a reader would;
 *   - parse_iso8601(): the input as a timestamp (and updated_at);
 *   - sf_key_from_text() for each encoding, then sf_key_encode() of the
 *     result: integers must round-trip through their decimal text.
 * Inputs are capped at SF_CURRENT_MAX_BYTES + 1 KiB. Any violation aborts.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT (SF_CURRENT_MAX_BYTES + 1024)

static void check_keys(const uint8_t *data, size_t size)
{
	for (int e = SF_ENC_U64BE; e <= SF_ENC_RAW; e++) {
		struct sf_key k;
		uint8_t buf[8];
		size_t n;
		char err[256], dec[32];
		int rc = sf_key_from_text(e, (const char *)data, size, &k, err,
					  sizeof(err));

		if (rc != 0) {
			if (rc != SF_EKEY || e == SF_ENC_UTF8 || e == SF_ENC_RAW)
				abort();
			continue;
		}
		if (e == SF_ENC_UTF8 || e == SF_ENC_RAW) {
			if (k.len != size || (size && k.data != data))
				abort();
			(void)sf_key_hash(&k);
			continue;
		}
		/* An accepted integer is the input without '+' and leading
		 * zeros, and it encodes. */
		snprintf(dec, sizeof(dec), "%" PRIu64, k.u);
		{
			size_t i = data[0] == '+';
			while (i + 1 < size && data[i] == '0')
				i++;
			if (size - i != strlen(dec) ||
			    memcmp(data + i, dec, size - i) != 0)
				abort();
		}
		if (sf_key_encode(e, &k, buf, sizeof(buf), &n, err,
				  sizeof(err)) != 0)
			abort();
		if (n != (e == SF_ENC_U64BE ? 8u : 4u))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sf_current c;
	char err[256], *text;
	double t;
	int rc;

	if (size > MAX_INPUT)
		return 0;
	err[0] = '\0';
	rc = current_parse(data, size, &c, err, sizeof(err));
	if (rc == 0) {
		char *r;
		if (!c.manifest_ref || !*c.manifest_ref || !c.run_id ||
		    !c.updated_at || !c.manifest_content_type ||
		    c.format_version < 1)
			abort();
		(void)parse_iso8601(c.updated_at, &t);
		r = url_rebase(c.manifest_ref, "s3://bucket/prefix", "/local");
		if (!r)
			abort();
		free(r);
		current_clear(&c);
	} else if (rc != SF_ECURRENT || !err[0] || strchr(err, '\n') ||
		   c.manifest_ref) {
		abort();
	}

	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	rc = parse_iso8601(text, &t);
	if (rc != 0 && rc != SF_EINVAL)
		abort();
	free(text);

	if (size <= 64)
		check_keys(data, size);
	return 0;
}
