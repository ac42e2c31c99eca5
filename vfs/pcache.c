/*
 * pcache.c -- the shared LRU page cache with a hard byte budget and
 * single-flight misses (see pcache.h for the protocol).
 *
 * Design. A chained hash table maps (db id, page number) to an entry. An
 * entry is either resident (it points into a block: the buffer one fetch
 * filled, shared by the adjacent pages of that fetch) or loading (it points
 * to the flight that will fill it). Resident entries sit on one LRU list;
 * loading entries are never evicted. `used` counts every live block plus
 * every reservation in flight, and pcache_get() evicts from the LRU tail
 * (or waits for flights to land, or shrinks its run) before it reserves,
 * so used <= budget always holds.
 *
 * Single flight. The first reader to miss a page claims it (and the absent
 * pages right after it, up to the caller's run length), releases the lock
 * and fetches. Any other reader that finds one of those pages loading
 * sleeps on the cache's condition variable until that flight is done, then
 * reads the page like a hit, or gets the flight's error. A failed prefetch
 * flight is not an error for the demand reader: it simply claims the page
 * again.
 *
 * Pressure. Prefetch claims never wait and never take more than half the
 * budget in flight; when they do not fit they are shed (counted). Demand
 * claims evict, then shrink their run, then wait for flights to land. A
 * page larger than the whole budget is never cached (PC_NOROOM).
 *
 * Lock rule: c->mu protects everything in struct pcache; it is held only
 * for table/LRU work and page copies, never across I/O or malloc of a
 * fetch buffer.
 */
#include "pcache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

struct pc_block {
	uint8_t *buf;
	size_t bytes;
	uint32_t live; /* entries pointing into buf */
};

struct pc_flight {
	int done, rc, prefetch;
	unsigned refs; /* the owner + every waiter */
	char err[200];
};

struct pc_entry {
	uint64_t dbid;
	uint32_t pgno;
	uint8_t loading, prefetched;
	struct pc_entry *hnext;
	struct pc_entry *prev, *next; /* LRU, resident entries only */
	struct pc_block *blk;         /* resident */
	uint8_t *data;                /* resident: page bytes in blk */
	struct pc_flight *fl;         /* loading */
};

struct pcache {
	pthread_mutex_t mu;
	pthread_cond_t cond;          /* a flight landed or memory was freed */
	struct pc_entry **tab;        /* protected by mu */
	size_t nbuckets, nentries;
	struct pc_entry lru;          /* sentinel: next = most recent */
	uint64_t budget, used, inflight_bytes, inflight_pf_bytes;
	uint64_t inflight_fetches;
	uint64_t hits, misses, pf_issued, pf_hits, pf_wasted, pf_shed;
	uint64_t fetches, fetched_bytes;
};

static size_t hash_key(const struct pcache *pc, uint64_t dbid, uint32_t pgno)
{
	uint64_t h = dbid * 0x9E3779B97F4A7C15ull ^
		     (uint64_t)pgno * 0xC2B2AE3D27D4EB4Full;

	h ^= h >> 29;
	return (size_t)h & (pc->nbuckets - 1);
}

int pcache_new(struct pcache **out, uint64_t budget)
{
	struct pcache *pc = calloc(1, sizeof(*pc));

	if (!pc)
		return SF_ENOMEM;
	pc->nbuckets = 1024;
	pc->tab = calloc(pc->nbuckets, sizeof(*pc->tab));
	if (!pc->tab) {
		free(pc);
		return SF_ENOMEM;
	}
	pthread_mutex_init(&pc->mu, NULL);
	pthread_cond_init(&pc->cond, NULL);
	pc->lru.next = pc->lru.prev = &pc->lru;
	pc->budget = budget;
	*out = pc;
	return 0;
}

static void block_put(struct pcache *pc, struct pc_block *b)
{
	if (--b->live == 0) {
		pc->used -= b->bytes;
		free(b->buf);
		free(b);
	}
}

void pcache_free(struct pcache *pc)
{
	size_t i;

	if (!pc)
		return;
	for (i = 0; i < pc->nbuckets; i++) {
		struct pc_entry *e = pc->tab[i], *n;

		for (; e; e = n) {
			n = e->hnext;
			if (!e->loading)
				block_put(pc, e->blk);
			free(e);
		}
	}
	free(pc->tab);
	pthread_mutex_destroy(&pc->mu);
	pthread_cond_destroy(&pc->cond);
	free(pc);
}

static struct pc_entry *find(struct pcache *pc, uint64_t dbid, uint32_t pgno)
{
	struct pc_entry *e = pc->tab[hash_key(pc, dbid, pgno)];

	for (; e; e = e->hnext)
		if (e->pgno == pgno && e->dbid == dbid)
			return e;
	return NULL;
}

static void lru_unlink(struct pc_entry *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
}

static void lru_push(struct pcache *pc, struct pc_entry *e)
{
	e->next = pc->lru.next;
	e->prev = &pc->lru;
	pc->lru.next->prev = e;
	pc->lru.next = e;
}

static void hash_unlink(struct pcache *pc, struct pc_entry *e)
{
	struct pc_entry **pp = &pc->tab[hash_key(pc, e->dbid, e->pgno)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	pc->nentries--;
}

/* Doubles the table when it gets crowded; keeps the old one on ENOMEM. */
static void maybe_grow(struct pcache *pc)
{
	size_t nb = pc->nbuckets * 2, i, old = pc->nbuckets;
	struct pc_entry **nt, **ot = pc->tab;

	if (pc->nentries < 2 * pc->nbuckets || nb > (1u << 26))
		return;
	nt = calloc(nb, sizeof(*nt));
	if (!nt)
		return;
	pc->tab = nt;
	pc->nbuckets = nb;
	for (i = 0; i < old; i++) {
		struct pc_entry *e = ot[i], *n;

		for (; e; e = n) {
			size_t h = hash_key(pc, e->dbid, e->pgno);

			n = e->hnext;
			e->hnext = nt[h];
			nt[h] = e;
		}
	}
	free(ot);
}

static void evict(struct pcache *pc, struct pc_entry *e)
{
	lru_unlink(e);
	hash_unlink(pc, e);
	if (e->prefetched)
		pc->pf_wasted++;
	block_put(pc, e->blk);
	free(e);
}

/* Evicts LRU pages until `need` more bytes fit. Returns whether they do. */
static int make_room(struct pcache *pc, uint64_t need)
{
	while (pc->used + need > pc->budget && pc->lru.prev != &pc->lru)
		evict(pc, pc->lru.prev);
	return pc->used + need <= pc->budget;
}

static void flight_put(struct pc_flight *fl)
{
	if (--fl->refs == 0)
		free(fl);
}

/* Creates loading entries for [first, first+count) (all absent) under one
 * new flight and reserves their bytes. */
static int claim(struct pcache *pc, uint64_t dbid, uint32_t first,
		 uint32_t count, uint32_t ps, int prefetch,
		 struct pcache_run *run)
{
	struct pc_flight *fl = calloc(1, sizeof(*fl));
	struct pc_entry *ents[PCACHE_MAX_RUN];
	uint32_t i;

	if (!fl)
		return SF_ENOMEM;
	for (i = 0; i < count; i++) {
		ents[i] = calloc(1, sizeof(struct pc_entry));
		if (!ents[i]) {
			while (i > 0)
				free(ents[--i]);
			free(fl);
			return SF_ENOMEM;
		}
	}
	fl->refs = 1;
	fl->prefetch = prefetch;
	for (i = 0; i < count; i++) {
		struct pc_entry *e = ents[i];
		size_t h = hash_key(pc, dbid, first + i);

		e->dbid = dbid;
		e->pgno = first + i;
		e->loading = 1;
		e->fl = fl;
		e->hnext = pc->tab[h];
		pc->tab[h] = e;
		pc->nentries++;
	}
	pc->used += (uint64_t)count * ps;
	pc->inflight_bytes += (uint64_t)count * ps;
	if (prefetch)
		pc->inflight_pf_bytes += (uint64_t)count * ps;
	pc->inflight_fetches++;
	maybe_grow(pc);
	run->dbid = dbid;
	run->first = first;
	run->count = count;
	run->ps = ps;
	run->fl = fl;
	run->prefetch = prefetch;
	run->buf = NULL;
	return 0;
}

/* Allocates the run's buffer outside the lock; on failure completes it. */
static int run_alloc(struct pcache *pc, struct pcache_run *run)
{
	run->buf = malloc((size_t)run->count * run->ps);
	if (!run->buf) {
		pcache_complete(pc, run, SF_ENOMEM, 0, "out of memory");
		return SF_ENOMEM;
	}
	return 0;
}

int pcache_get(struct pcache *pc, uint64_t dbid, uint32_t pgno, uint32_t ps,
	       uint32_t off, uint32_t len, void *dst, uint32_t max_count,
	       struct pcache_run *run, char *err, size_t errlen)
{
	return pcache_get_span(pc, dbid, pgno, ps, off, len, dst, 0, max_count,
			       run, NULL, err, errlen);
}

int pcache_get_span(struct pcache *pc, uint64_t dbid, uint32_t pgno,
		    uint32_t ps, uint32_t off, uint32_t len, void *dst,
		    uint32_t max_before, uint32_t max_count,
		    struct pcache_run *run, int *pf_hit, char *err,
		    size_t errlen)
{
	struct pc_entry *e;
	uint32_t count, before;
	int rc, counted = 0;

	if (max_count < 1)
		max_count = 1;
	if (max_count > PCACHE_MAX_RUN)
		max_count = PCACHE_MAX_RUN;
	if (max_before > PCACHE_MAX_RUN - max_count)
		max_before = PCACHE_MAX_RUN - max_count;
	if (pgno == 0)
		max_before = 0;
	else if (max_before > pgno - 1)
		max_before = pgno - 1;
	pthread_mutex_lock(&pc->mu);
again:
	e = find(pc, dbid, pgno);
	if (e && !e->loading) {
		memcpy(dst, e->data + off, len);
		if (e != pc->lru.next) {
			lru_unlink(e);
			lru_push(pc, e);
		}
		if (e->prefetched) {
			e->prefetched = 0;
			pc->pf_hits++;
			if (pf_hit)
				*pf_hit = 1;
		}
		if (!counted)
			pc->hits++;
		pthread_mutex_unlock(&pc->mu);
		return PC_HIT;
	}
	if (e) {
		struct pc_flight *fl = e->fl;
		int pf;

		if (!counted)
			pc->misses++; /* waiting for another fetch: a miss */
		counted = 1;
		fl->refs++;
		while (!fl->done)
			pthread_cond_wait(&pc->cond, &pc->mu);
		rc = fl->rc;
		pf = fl->prefetch;
		if (rc && !pf)
			sf_errf(err, errlen, rc, "%s", fl->err);
		flight_put(fl);
		if (rc && !pf) {
			/* the one fetch for this page failed: so does this
			 * read (the error travelled with the flight) */
			pthread_mutex_unlock(&pc->mu);
			return rc;
		}
		/* landed, or a prefetch failed: look again */
		goto again;
	}
	if (!counted)
		pc->misses++;
	counted = 1;
	if (ps > pc->budget) {
		pthread_mutex_unlock(&pc->mu);
		return PC_NOROOM;
	}
	count = 1;
	while (count < max_count && pgno + count > pgno &&
	       !find(pc, dbid, pgno + count))
		count++;
	before = 0;
	while (before < max_before && !find(pc, dbid, pgno - before - 1))
		before++;
	while (!make_room(pc, (uint64_t)(before + count) * ps)) {
		if (before > 0) {
			before--;
			continue;
		}
		if (count > 1) {
			count--;
			continue;
		}
		/* everything left is in flight: wait for a landing */
		pthread_cond_wait(&pc->cond, &pc->mu);
		goto again;
	}
	rc = claim(pc, dbid, pgno - before, before + count, ps, 0, run);
	pthread_mutex_unlock(&pc->mu);
	if (rc)
		return rc;
	rc = run_alloc(pc, run);
	return rc ? rc : PC_CLAIMED;
}

int pcache_claim_prefetch(struct pcache *pc, uint64_t dbid, uint32_t first,
			  uint32_t count, uint32_t ps, struct pcache_run *run)
{
	uint32_t i, n = 0;
	int rc = PC_NOTHING;

	if (count > PCACHE_MAX_RUN)
		count = PCACHE_MAX_RUN;
	pthread_mutex_lock(&pc->mu);
	for (i = 0; i < count && first + i >= first; i++)
		if (!find(pc, dbid, first + i))
			break;
	if (i == count || first + i < first)
		goto out;
	while (i + n < count && first + i + n >= first + i &&
	       !find(pc, dbid, first + i + n))
		n++;
	if (pc->inflight_pf_bytes + (uint64_t)n * ps > pc->budget / 2 ||
	    !make_room(pc, (uint64_t)n * ps)) {
		pc->pf_shed++;
		rc = PC_SHED;
		goto out;
	}
	if (claim(pc, dbid, first + i, n, ps, 1, run) != 0) {
		pc->pf_shed++;
		rc = PC_SHED;
		goto out;
	}
	rc = PC_CLAIMED;
out:
	pthread_mutex_unlock(&pc->mu);
	if (rc == PC_CLAIMED && run_alloc(pc, run) != 0)
		return PC_SHED;
	return rc;
}

void pcache_complete(struct pcache *pc, struct pcache_run *run, int rc,
		     size_t got, const char *err)
{
	size_t bytes = (size_t)run->count * run->ps;
	struct pc_block *b = NULL;
	uint32_t i;

	if (rc == 0) {
		b = calloc(1, sizeof(*b));
		if (!b) {
			rc = SF_ENOMEM;
			err = "out of memory";
		} else {
			if (got < bytes)
				memset(run->buf + got, 0, bytes - got);
			b->buf = run->buf;
			b->bytes = bytes;
		}
	}
	pthread_mutex_lock(&pc->mu);
	for (i = 0; i < run->count; i++) {
		struct pc_entry *e = find(pc, run->dbid, run->first + i);

		if (!e || !e->loading || e->fl != run->fl)
			continue; /* cannot happen: loading entries stay */
		if (rc == 0) {
			e->loading = 0;
			e->fl = NULL;
			e->blk = b;
			e->data = b->buf + (size_t)i * run->ps;
			e->prefetched = (uint8_t)run->prefetch;
			b->live++;
			lru_push(pc, e);
		} else {
			hash_unlink(pc, e);
			free(e);
		}
	}
	pc->inflight_bytes -= bytes;
	if (run->prefetch)
		pc->inflight_pf_bytes -= bytes;
	pc->inflight_fetches--;
	if (rc == 0) {
		pc->fetches++;
		pc->fetched_bytes += got;
		if (b->live == 0) { /* defensive: nothing referenced it */
			pc->used -= bytes;
			free(b->buf);
			free(b);
		}
	} else {
		pc->used -= bytes;
		free(run->buf);
	}
	run->fl->done = 1;
	run->fl->rc = rc;
	if (rc)
		snprintf(run->fl->err, sizeof(run->fl->err), "%s",
			 err ? err : "fetch failed");
	flight_put(run->fl);
	pthread_cond_broadcast(&pc->cond);
	pthread_mutex_unlock(&pc->mu);
	run->fl = NULL;
	run->buf = NULL;
}

void pcache_insert(struct pcache *pc, uint64_t dbid, uint32_t first,
		   uint32_t count, uint32_t ps, uint8_t *buf, size_t got)
{
	struct pcache_run run;
	uint32_t i;
	int ok = count > 0 && count <= PCACHE_MAX_RUN;

	pthread_mutex_lock(&pc->mu);
	for (i = 0; ok && i < count; i++)
		if (first + i < first || find(pc, dbid, first + i))
			ok = 0;
	if (ok)
		ok = make_room(pc, (uint64_t)count * ps) &&
		     claim(pc, dbid, first, count, ps, 0, &run) == 0;
	pthread_mutex_unlock(&pc->mu);
	if (!ok) {
		free(buf);
		return;
	}
	run.buf = buf;
	pcache_complete(pc, &run, 0, got, NULL);
}

void pcache_drop_db(struct pcache *pc, uint64_t dbid)
{
	struct pc_entry *e, *p;

	pthread_mutex_lock(&pc->mu);
	for (e = pc->lru.next; e != &pc->lru; e = p) {
		p = e->next;
		if (e->dbid == dbid)
			evict(pc, e);
	}
	pthread_cond_broadcast(&pc->cond);
	pthread_mutex_unlock(&pc->mu);
}

void pcache_count_prefetch(struct pcache *pc, int shed)
{
	pthread_mutex_lock(&pc->mu);
	if (shed)
		pc->pf_shed++;
	else
		pc->pf_issued++;
	pthread_mutex_unlock(&pc->mu);
}

void pcache_stats(struct pcache *pc, struct sfv_stats *out)
{
	pthread_mutex_lock(&pc->mu);
	out->cache_hits = pc->hits;
	out->cache_misses = pc->misses;
	out->cache_bytes = pc->used;
	out->cache_budget = pc->budget;
	out->prefetch_issued = pc->pf_issued;
	out->prefetch_hits = pc->pf_hits;
	out->prefetch_wasted = pc->pf_wasted;
	out->prefetch_shed = pc->pf_shed;
	out->inflight_fetches = pc->inflight_fetches;
	out->inflight_bytes = pc->inflight_bytes;
	out->fetches = pc->fetches;
	out->fetched_bytes = pc->fetched_bytes;
	pthread_mutex_unlock(&pc->mu);
}
