/*
 * test_pcache.c -- the shared page cache (vfs/pcache.c) on its own:
 * single-flight (a reader of a page already claimed waits for that one
 * fetch and gets its bytes or its error), the hard budget (never
 * exceeded; a claim that does not fit waits for a landing; prefetch is
 * shed first) and eviction; spans that also claim the pages before the
 * one asked for; the report of a first hit on a prefetched page. The order
 * of events is forced by holding a claim open, never by sleeping.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>

#include "pcache.h"
#include "shardyfs.h"
#include "sfvfs.h"

TestSuite(pcache, .timeout = 60);

#define PS 512

struct reader {
	struct pcache *pc;
	uint32_t pgno;
	int rc;
	uint8_t buf[PS];
	char err[128];
	struct pcache_run run;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;

	r->rc = pcache_get(r->pc, 1, r->pgno, PS, 0, PS, r->buf, 1, &r->run,
			   r->err, sizeof(r->err));
	return NULL;
}

/* Blocks until the cache counts `n` misses (the reader is waiting). */
static void wait_misses(struct pcache *pc, uint64_t n)
{
	struct sfv_stats s;

	for (;;) {
		pcache_stats(pc, &s);
		if (s.cache_misses >= n)
			return;
		sched_yield();
	}
}

Test(pcache, a_second_reader_waits_for_the_one_fetch)
{
	struct pcache *pc = NULL;
	struct pcache_run run;
	struct reader r = {0};
	struct sfv_stats s;
	pthread_t th;
	uint8_t dst[PS];

	cr_assert_eq(pcache_new(&pc, 16 * PS), 0);
	cr_assert_eq(pcache_get(pc, 1, 5, PS, 0, PS, dst, 1, &run, NULL, 0),
		     PC_CLAIMED);
	r.pc = pc;
	r.pgno = 5;
	cr_assert_eq(pthread_create(&th, NULL, reader_main, &r), 0);
	wait_misses(pc, 2); /* the reader found page 5 in flight */
	memset(run.buf, 0xab, PS);
	pcache_complete(pc, &run, 0, PS, NULL);
	pthread_join(th, NULL);
	cr_assert_eq(r.rc, PC_HIT);
	cr_assert_eq(r.buf[0], 0xab);
	cr_assert_eq(r.buf[PS - 1], 0xab);
	pcache_stats(pc, &s);
	cr_assert_eq(s.fetches, 1, "one fetch for two readers");
	cr_assert_eq(s.cache_bytes, PS);
	cr_assert_eq(s.inflight_fetches, 0);
	pcache_free(pc);
}

Test(pcache, a_failed_fetch_fails_its_waiters_too)
{
	struct pcache *pc = NULL;
	struct pcache_run run;
	struct reader r = {0};
	struct sfv_stats s;
	pthread_t th;
	uint8_t dst[PS];

	cr_assert_eq(pcache_new(&pc, 16 * PS), 0);
	cr_assert_eq(pcache_get(pc, 1, 9, PS, 0, PS, dst, 4, &run, NULL, 0),
		     PC_CLAIMED);
	cr_assert_eq(run.count, 4, "adjacent absent pages join the run");
	r.pc = pc;
	r.pgno = 11; /* inside the run */
	cr_assert_eq(pthread_create(&th, NULL, reader_main, &r), 0);
	wait_misses(pc, 2);
	pcache_complete(pc, &run, SF_EHTTP_412, 0, "object changed");
	pthread_join(th, NULL);
	cr_assert_eq(r.rc, SF_EHTTP_412);
	cr_assert(strstr(r.err, "object changed"));
	pcache_stats(pc, &s);
	cr_assert_eq(s.cache_bytes, 0, "the reservation is returned");
	cr_assert_eq(s.fetches, 0);
	pcache_free(pc);
}

Test(pcache, a_failed_prefetch_lets_the_reader_fetch_itself)
{
	struct pcache *pc = NULL;
	struct pcache_run run;
	struct reader r = {0};
	pthread_t th;

	cr_assert_eq(pcache_new(&pc, 16 * PS), 0);
	cr_assert_eq(pcache_claim_prefetch(pc, 1, 3, 2, PS, &run), PC_CLAIMED);
	r.pc = pc;
	r.pgno = 4;
	cr_assert_eq(pthread_create(&th, NULL, reader_main, &r), 0);
	wait_misses(pc, 1);
	pcache_complete(pc, &run, SF_ENET, 0, "reset");
	pthread_join(th, NULL);
	cr_assert_eq(r.rc, PC_CLAIMED, "%s", r.err);
	cr_assert_eq(r.run.first, 4);
	pcache_complete(pc, &r.run, 0, PS, NULL);
	pcache_free(pc);
}

Test(pcache, the_budget_is_never_exceeded_and_claims_wait_for_room)
{
	struct pcache *pc = NULL;
	struct pcache_run a, b, c;
	struct reader r = {0};
	struct sfv_stats s;
	pthread_t th;
	uint8_t dst[PS];

	cr_assert_eq(pcache_new(&pc, 3 * PS), 0);
	cr_assert_eq(pcache_get(pc, 1, 1, PS, 0, PS, dst, 8, &a, NULL, 0),
		     PC_CLAIMED);
	cr_assert_eq(a.count, 3, "a run shrinks to what fits");
	pcache_stats(pc, &s);
	cr_assert_eq(s.cache_bytes, 3 * PS);
	cr_assert_eq(s.inflight_bytes, 3 * PS);
	/* no room for prefetch while everything is in flight */
	cr_assert_eq(pcache_claim_prefetch(pc, 1, 50, 1, PS, &c), PC_SHED);
	r.pc = pc;
	r.pgno = 20;
	cr_assert_eq(pthread_create(&th, NULL, reader_main, &r), 0);
	wait_misses(pc, 2);
	pcache_stats(pc, &s);
	cr_assert_leq(s.cache_bytes, 3 * PS);
	pcache_complete(pc, &a, 0, 3 * PS, NULL);
	pthread_join(th, NULL);
	cr_assert_eq(r.rc, PC_CLAIMED, "room was made by evicting");
	pcache_stats(pc, &s);
	cr_assert_leq(s.cache_bytes, 3 * PS);
	pcache_complete(pc, &r.run, 0, PS, NULL);
	/* a page larger than the whole budget is never cached */
	cr_assert_eq(pcache_get(pc, 2, 1, 4 * PS, 0, 10, dst, 1, &b, NULL, 0),
		     PC_NOROOM);
	pcache_stats(pc, &s);
	cr_assert_leq(s.cache_bytes, 3 * PS);
	cr_assert_eq(s.prefetch_shed, 1);
	pcache_free(pc);
}

Test(pcache, lru_keeps_recent_pages_and_counts_wasted_prefetch)
{
	struct pcache *pc = NULL;
	struct pcache_run run;
	struct sfv_stats s;
	uint8_t dst[PS];
	uint32_t p;

	cr_assert_eq(pcache_new(&pc, 4 * PS), 0);
	cr_assert_eq(pcache_claim_prefetch(pc, 7, 100, 1, PS, &run), PC_CLAIMED);
	pcache_complete(pc, &run, 0, PS, NULL);
	for (p = 1; p <= 3; p++) {
		cr_assert_eq(pcache_get(pc, 7, p, PS, 0, PS, dst, 1, &run, NULL,
					0), PC_CLAIMED);
		memset(run.buf, (int)p, PS);
		pcache_complete(pc, &run, 0, PS, NULL);
	}
	/* touch page 1, then add two more: 100 (unused prefetch) and 2 go */
	cr_assert_eq(pcache_get(pc, 7, 1, PS, 0, PS, dst, 1, &run, NULL, 0),
		     PC_HIT);
	for (p = 4; p <= 5; p++) {
		cr_assert_eq(pcache_get(pc, 7, p, PS, 0, PS, dst, 1, &run, NULL,
					0), PC_CLAIMED);
		pcache_complete(pc, &run, 0, PS, NULL);
	}
	cr_assert_eq(pcache_get(pc, 7, 1, PS, 10, 5, dst, 1, &run, NULL, 0),
		     PC_HIT);
	cr_assert_eq(dst[0], 1);
	cr_assert_eq(pcache_get(pc, 7, 3, PS, 0, PS, dst, 1, &run, NULL, 0),
		     PC_HIT);
	pcache_stats(pc, &s);
	cr_assert_eq(s.prefetch_wasted, 1);
	cr_assert_eq(s.cache_bytes, 4 * PS);
	cr_assert_eq(pcache_get(pc, 7, 2, PS, 0, PS, dst, 1, &run, NULL, 0),
		     PC_CLAIMED, "page 2 was the least recent");
	pcache_complete(pc, &run, SF_EIO, 0, "x");
	pcache_drop_db(pc, 7);
	pcache_stats(pc, &s);
	cr_assert_eq(s.cache_bytes, 0);
	pcache_free(pc);
}

/* Fills a claimed run with the byte (page number & 0xff) on each page. */
static void fill_run(struct pcache_run *run)
{
	uint32_t i;

	for (i = 0; i < run->count; i++)
		memset(run->buf + (size_t)i * PS, (int)((run->first + i) & 0xff),
		       PS);
}

Test(pcache, a_span_claims_absent_pages_on_both_sides)
{
	struct pcache *pc = NULL;
	struct pcache_run run;
	struct sfv_stats s;
	uint8_t dst[PS];
	uint32_t p;

	cr_assert_eq(pcache_new(&pc, 64 * PS), 0);
	/* page 7 is cached: a span around 10 stops right after it */
	cr_assert_eq(pcache_get(pc, 1, 7, PS, 0, PS, dst, 1, &run, NULL, 0),
		     PC_CLAIMED);
	fill_run(&run);
	pcache_complete(pc, &run, 0, PS, NULL);
	cr_assert_eq(pcache_get_span(pc, 1, 10, PS, 0, PS, dst, 5, 3, &run,
				     NULL, NULL, 0), PC_CLAIMED);
	cr_assert_eq(run.first, 8, "pages before 10, up to the cached 7");
	cr_assert_eq(run.count, 5, "8, 9, 10, 11, 12");
	fill_run(&run);
	pcache_complete(pc, &run, 0, (size_t)run.count * PS, NULL);
	for (p = 7; p <= 12; p++) {
		cr_assert_eq(pcache_get(pc, 1, p, PS, 0, PS, dst, 1, &run,
					NULL, 0), PC_HIT, "page %u", p);
		cr_assert_eq(dst[0], p & 0xff);
		cr_assert_eq(dst[PS - 1], p & 0xff);
	}
	/* never below page 1 */
	cr_assert_eq(pcache_get_span(pc, 1, 2, PS, 0, PS, dst, 40, 1, &run,
				     NULL, NULL, 0), PC_CLAIMED);
	cr_assert_eq(run.first, 1);
	cr_assert_eq(run.count, 2);
	pcache_complete(pc, &run, SF_EIO, 0, "dropped");
	pcache_stats(pc, &s);
	cr_assert_eq(s.inflight_fetches, 0);
	cr_assert_eq(s.cache_bytes, 6 * PS);
	pcache_free(pc);
}

Test(pcache, a_span_gives_up_its_before_pages_first_under_pressure)
{
	struct pcache *pc = NULL;
	struct pcache_run run, hold;
	uint8_t dst[PS];

	cr_assert_eq(pcache_new(&pc, 4 * PS), 0);
	/* 2 pages in flight: 2 left for the span of 3 + 3 */
	cr_assert_eq(pcache_get(pc, 1, 100, PS, 0, PS, dst, 2, &hold, NULL, 0),
		     PC_CLAIMED);
	cr_assert_eq(hold.count, 2);
	cr_assert_eq(pcache_get_span(pc, 1, 20, PS, 0, PS, dst, 3, 3, &run,
				     NULL, NULL, 0), PC_CLAIMED);
	cr_assert_eq(run.first, 20, "the before-pages went first");
	cr_assert_eq(run.count, 2);
	pcache_complete(pc, &run, SF_EIO, 0, "dropped");
	pcache_complete(pc, &hold, SF_EIO, 0, "dropped");
	pcache_free(pc);
}

Test(pcache, the_first_hit_on_a_prefetched_page_is_reported)
{
	struct pcache *pc = NULL;
	struct pcache_run run;
	uint8_t dst[PS];
	int pf = 0;

	cr_assert_eq(pcache_new(&pc, 16 * PS), 0);
	cr_assert_eq(pcache_claim_prefetch(pc, 1, 3, 2, PS, &run), PC_CLAIMED);
	fill_run(&run);
	pcache_complete(pc, &run, 0, 2 * PS, NULL);
	cr_assert_eq(pcache_get_span(pc, 1, 4, PS, 0, PS, dst, 0, 1, &run,
				     &pf, NULL, 0), PC_HIT);
	cr_assert_eq(pf, 1);
	cr_assert_eq(dst[0], 4);
	pf = 0;
	cr_assert_eq(pcache_get_span(pc, 1, 4, PS, 0, PS, dst, 0, 1, &run,
				     &pf, NULL, 0), PC_HIT);
	cr_assert_eq(pf, 0, "only the first hit consumes the mark");
	pcache_free(pc);
}
