/*
 * pcache.h -- the shared page cache of the range VFS: one LRU of pages of
 * every open remote database (keyed by database id and page number) under
 * one hard byte budget that also covers fetches in flight, with
 * single-flight misses.
 *
 * What this module knows: pages, bytes, threads. What it never knows: the
 * store, SQLite, sidecars: the caller fetches the bytes of a run it has
 * claimed and hands them back with pcache_complete().
 *
 * Protocol for a reader of page p:
 *   pcache_get()  -> PC_HIT: the slice was copied out;
 *                 -> PC_CLAIMED: run->buf (run->count pages from run->first)
 *                    is reserved for the caller, who fetches into it, copies
 *                    what it needs and calls pcache_complete() exactly once
 *                    (whatever happened); meanwhile every other reader of
 *                    those pages waits for that one fetch;
 *                 -> PC_NOROOM: a page is larger than the whole budget: the
 *                    caller reads it directly, uncached;
 *                 -> < 0: the fetch this reader waited for failed (its error
 *                    is in err).
 *   Prefetchers use pcache_claim_prefetch(), which never waits and is shed
 *   (PC_SHED) when the budget is tight.
 *
 * Memory: the bytes of resident pages plus those reserved for runs in
 * flight never exceed the budget. A run's pages share one allocation (a
 * block) that is freed when its last page is evicted, and stays counted
 * until then.
 *
 * Thread safety: every function is thread-safe. One mutex protects the
 * table, the LRU and the counters; it is never held across network I/O;
 * hits copy under it (a page copy is short).
 */
#ifndef SF_PCACHE_H
#define SF_PCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "sfvfs.h"

#define PCACHE_MAX_RUN 64 /* pages per claimed run */

enum {
	PC_HIT = 0,
	PC_CLAIMED = 1,
	PC_NOROOM = 2,
	PC_SHED = 3,
	PC_NOTHING = 4, /* prefetch: every page already resident/in flight */
};

struct pcache;
struct pc_flight;

/* A run claimed by a caller (filled by pcache_get/pcache_claim_prefetch). */
struct pcache_run {
	uint64_t dbid;
	uint32_t first, count, ps;
	uint8_t *buf;           /* count * ps bytes, fetch target */
	struct pc_flight *fl;
	int prefetch;
};

/* *out owned by the caller (pcache_free(), once nothing is in flight). */
int pcache_new(struct pcache **out, uint64_t budget);
void pcache_free(struct pcache *pc);

/*
 * Reads [off, off+len) of page (dbid, pgno) of size ps into dst, or claims
 * it (and up to max_count - 1 following absent pages) for the caller to
 * fetch, as described above. err (optional) gets the detail of a failed
 * wait.
 */
int pcache_get(struct pcache *pc, uint64_t dbid, uint32_t pgno, uint32_t ps,
	       uint32_t off, uint32_t len, void *dst, uint32_t max_count,
	       struct pcache_run *run, char *err, size_t errlen);

/*
 * pcache_get() whose claim may also take up to max_before absent pages
 * right before pgno (and max_count - 1 after it; PCACHE_MAX_RUN in all):
 * on PC_CLAIMED, run->first may be below pgno, and page pgno sits at
 * (pgno - run->first) * ps in run->buf. Before-pages are given up first
 * when the budget is tight. *pf_hit (optional) is set to 1 when the read
 * was the first to hit a prefetched page (left alone otherwise).
 */
int pcache_get_span(struct pcache *pc, uint64_t dbid, uint32_t pgno,
		    uint32_t ps, uint32_t off, uint32_t len, void *dst,
		    uint32_t max_before, uint32_t max_count,
		    struct pcache_run *run, int *pf_hit, char *err,
		    size_t errlen);

/* Claims the first absent page of [first, first+count) and the absent
 * pages right after it, for a background fetch. Never waits: returns
 * PC_CLAIMED, PC_NOTHING or PC_SHED. */
int pcache_claim_prefetch(struct pcache *pc, uint64_t dbid, uint32_t first,
			  uint32_t count, uint32_t ps, struct pcache_run *run);

/* Ends a claimed run: on rc == 0 the first `got` bytes of run->buf are the
 * pages (the rest is zero-filled) and they become resident; otherwise the
 * claim is dropped and waiters receive rc and err. Wakes every waiter. */
void pcache_complete(struct pcache *pc, struct pcache_run *run, int rc,
		     size_t got, const char *err);

/* Best effort: makes the `count` pages at buf (ownership taken) resident
 * as pages first.. of dbid when none of them is cached or in flight and
 * they fit without waiting; otherwise frees buf. buf must hold count * ps
 * bytes. Counted as one fetch of `got` bytes. */
void pcache_insert(struct pcache *pc, uint64_t dbid, uint32_t first,
		   uint32_t count, uint32_t ps, uint8_t *buf, size_t got);

/* Drops every resident page of dbid (at close). */
void pcache_drop_db(struct pcache *pc, uint64_t dbid);

/* Fills the cache counters of out (cache_*, prefetch_*, inflight_*,
 * fetches, fetched_bytes). */
void pcache_stats(struct pcache *pc, struct sfv_stats *out);

/* Counts a prefetch request handed to the workers (shed = 0) or dropped
 * before it was queued (shed = 1). Claims that find no room count as shed
 * by themselves. */
void pcache_count_prefetch(struct pcache *pc, int shed);

#endif
