/*
 * fuzz_sidecar.c -- libFuzzer target for the FORMAT.md section 7 sidecar
 * parser (vfs/sidecar.c): the prefix, the zstd frame, every table of the
 * body and the page rebuild. An accepted sidecar is then read back the way
 * the VFS reads it (every page whole and in slices, every chain), and its
 * page size must be a power of two; nothing may crash, hang or read out of
 * bounds. Inputs are capped at 1 MiB and bodies at 4 MiB so each run stays
 * fast.
 *
 * An input starting with 'B' is a raw body instead: byte 1 picks the
 * page size, the rest is wrapped by sidecar_wrap() (so the zstd checksum
 * holds) and parsed, which takes mutations deep into the body rules.
 * Every input also feeds the cell scanner used for overflow prefetch
 * (sidecar_page_chains) as a raw page.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sidecar_check chk = {.max_body = 4u << 20};
	struct sidecar *sc = NULL;
	uint32_t heads[64], lens[64], i, ps;
	uint8_t *page;
	char err[256];

	if (size > (1u << 20))
		return 0;
	if (size >= 512) {
		/* the first 512.. bytes as a B-tree page */
		ps = 512;
		while (ps * 2 <= size && ps < 65536)
			ps *= 2;
		sidecar_page_chains(data, 2, ps, ps - (data[0] & 31), heads,
				    lens, 64);
		sidecar_page_chains(data, 1, ps, ps, heads, lens, 64);
	}
	if (size >= 2 && data[0] == 'B') {
		uint8_t *wrapped = NULL;
		size_t wlen = 0;
		int rc;

		if (sidecar_wrap(data + 2, size - 2, 512u << (data[1] % 8),
				 "\"t\"", &wrapped, &wlen, err,
				 sizeof(err)) != 0)
			return 0;
		rc = sidecar_parse(&sc, wrapped, wlen, &chk, err, sizeof(err));
		free(wrapped);
		if (rc != 0)
			return 0;
	} else if (sidecar_parse(&sc, data, size, &chk, err, sizeof(err)) !=
		   0) {
		return 0;
	}
	ps = sidecar_page_size(sc);
	if (ps < 512 || ps > 65536 || (ps & (ps - 1)))
		abort();
	page = malloc(ps);
	if (!page)
		abort();
	for (i = 0; i < sidecar_npages(sc); i++) {
		uint32_t pg = sidecar_pgno(sc, i), at, gl;
		const uint32_t *cp;
		uint32_t cn;

		if (sidecar_find(sc, pg) != (long)i)
			abort();
		sidecar_read(sc, i, 0, ps, page);
		sidecar_read(sc, i, ps / 3, ps / 2, page);
		sidecar_gap(sc, i, &at, &gl);
		if ((uint64_t)at + gl > ps)
			abort();
		sidecar_page_chains(page, pg, ps, ps, heads, lens, 64);
		if (sidecar_chain(sc, pg, &cp, &cn) == 0 && (cn == 0 ||
							     cp[0] != pg))
			abort();
	}
	/* tail lookups: any answer must name a contiguous chain ending there */
	for (i = 0; i < 64; i++) {
		uint32_t last = i < 32 ? i + 1 : (uint32_t)(size * 2654435761u + i),
			 head, n;
		const uint32_t *cp;
		uint32_t cn, k;

		if (sidecar_chain_ending(sc, last, &head, &n) != 0)
			continue;
		if (sidecar_chain(sc, head, &cp, &cn) != 0 || cn != n ||
		    head + (n - 1) != last)
			abort();
		for (k = 0; k < cn; k++)
			if (cp[k] != head + k)
				abort();
	}
	free(page);
	sidecar_free(sc);
	return 0;
}
