/*
 * fs_names.h -- the key <-> file name codec of the shardyfs mount.
 *
 * Contract: this module knows key encodings and file names, nothing else. It
 * has no FUSE dependency (it is the static library sffs_names so that tests
 * and fuzzers can link it without libfuse) and does no I/O.
 *
 * The mapping (documented for users in fs/README-mount.md):
 *
 *   u64be, u32be  the canonical decimal form of the integer: digits only,
 *                 no sign, no leading zero (except "0" itself), in range for
 *                 the encoding. Anything else is not a key.
 *   utf8, raw     the key's bytes, percent-encoded. The encoder escapes
 *                 '%' (%25), '/' (%2F), NUL (%00) and every other control
 *                 byte (0x01-0x1f, 0x7f), and every byte >= 0x80 that is not
 *                 part of a well-formed UTF-8 sequence, always as '%' and two
 *                 upper-case hex digits. Valid UTF-8 (accents, emoji) stays
 *                 as it is. The keys "." and ".." are written "%2E" and
 *                 "%2E%2E". The empty key is the lone name "%".
 *                 The decoder is lenient: any byte may be escaped, hex digits
 *                 may be of either case, and every byte other than '%' stands
 *                 for itself. A '%' not followed by two hex digits (other than
 *                 the lone "%"), the empty name, "." and ".." are not keys.
 *
 * So decode(encode(k)) == k for every key whose name fits in FS_NAMES_MAX
 * bytes; longer names are reachable only through the CLI.
 *
 * All functions are pure and thread-safe.
 */
#ifndef SF_FS_NAMES_H
#define SF_FS_NAMES_H

#include <stddef.h>
#include <stdint.h>

#include "shardyfs.h"

/* Longest file name a directory entry can have (Linux NAME_MAX). */
#define FS_NAMES_MAX 255

/* Capacity that is always enough for fs_names_encode() (name + NUL). */
#define FS_NAMES_BUFSZ (FS_NAMES_MAX + 1)

/*
 * Writes the file name of the key stored as `key`/`klen` (the bytes of the
 * shard's kv.k column) under encoding `enc` into `name` (capacity `cap`,
 * NUL-terminated) and sets *namelen (optional) to its length.
 * Returns 0; SF_ETOOBIG when the name would exceed FS_NAMES_MAX bytes or not
 * fit `cap` (nothing useful is written); SF_EKEY when the bytes cannot be a
 * key of `enc` (an integer key that is not 8 / 4 bytes long); SF_EINVAL for
 * an unknown encoding.
 */
int fs_names_encode(enum sf_key_encoding enc, const uint8_t *key, size_t klen,
		    char *name, size_t cap, size_t *namelen);

/*
 * Decodes the file name `name` (namelen bytes, need not be NUL-terminated)
 * into the stored bytes of the key it names under `enc`: written to `key`
 * (capacity `cap`; namelen bytes, or 8 for integer encodings, are always
 * enough) with the length in *klen.
 * Returns 0; SF_EKEY when the name is not a key (see above); SF_ETOOBIG when
 * `cap` is too small; SF_EINVAL for an unknown encoding.
 */
int fs_names_decode(enum sf_key_encoding enc, const char *name, size_t namelen,
		    uint8_t *key, size_t cap, size_t *klen);

/*
 * Builds the typed key for stored bytes: SF_KEY_INT for u64be/u32be (the
 * big-endian value), SF_KEY_TEXT for utf8 and SF_KEY_BYTES for raw, whose
 * data aliases `stored` (which must outlive *out).
 * Returns 0, or SF_EKEY for an integer key of the wrong length.
 */
int fs_names_key(enum sf_key_encoding enc, const uint8_t *stored, size_t n,
		 struct sf_key *out);

/* Writes the lower-case hex of n bytes into out (2n + 1 bytes, NUL-ended). */
void fs_names_hex(const uint8_t *b, size_t n, char *out);

#endif
