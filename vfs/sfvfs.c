/*
 * sfvfs.c -- a read-only SQLite VFS whose files are remote objects read
 * page by page with ranged GETs (issue 3, FORMAT.md sections 6-7).
 *
 * SQLite asks for bytes; this file turns each xRead into pages and finds
 * every page in the first of three places that has it:
 *
 *   1. the shard's sidecar (FORMAT.md 7): schema and interior pages,
 *      pinned for the life of the sfv_db, never evicted;
 *   2. the shared page cache (pcache.c), under a hard byte budget;
 *   3. the store: one ranged GET for the missing page and the missing pages
 *      right after it that the same read needs (or the whole overflow chain
 *      when the page is a chain head), claimed in the cache first so that
 *      concurrent readers of those pages wait for that one fetch.
 *
 * Identity. Every ranged GET is pinned with If-Match to one ETag, and the
 * size and ETag the response reports are checked again, so one sfv_db
 * never mixes two versions of an object: when the object changes, the read
 * fails with SF_EHTTP_412 and the sfv_db stays failed (callers reopen).
 * Without a sidecar the first ranged GET (the first 64 KiB, at open) gives
 * page size, size and ETag. With a sidecar, its db_tag is the pin and the
 * first ranged GET (usually the first leaf) confirms it. If that GET says
 * the object is not the one db_tag names (a copied snapshot, a file://
 * store that synthesises ETags), the sidecar is declined: every page it
 * has already served is fetched from the live object and compared outside
 * its unallocated gap; if all are identical nothing wrong was served and
 * the sfv_db re-pins to the live ETag and goes on without the sidecar,
 * otherwise it fails with SF_EHTTP_412. No HEAD request is ever made.
 *
 * Overflow chains. SQLite reads the whole payload of every cell its binary
 * search compares, so a lookup may need the chains of its leaf's
 * neighbouring cells as well as its own. With a sidecar (whose chain table
 * lists every chain): the GET of a leaf also takes the whole chains right
 * before and after it (where a builder inserting in key order puts the
 * chains of that leaf's cells), and a read of any other chain head fetches
 * the chain's contiguous pages in the same GET and its other runs in
 * parallel (prefetch.c); nothing is fetched for cells SQLite never
 * compares. So a cold lookup is one ranged GET, two round trips at most.
 * Without a sidecar, the chains the cells of every fetched B-tree page
 * point to are noted (head and length, guessed contiguous from the
 * payload size), so a read of a noted head fetches its chain in one GET.
 *
 * Readahead. Full leaf reads that walk a file in ascending order (a key
 * listing) start a readahead window that doubles up to 32 pages; only
 * reads that went to the store (or hit an earlier readahead) move it, so
 * warm reads never cause requests.
 *
 * Errors. SQLite only sees SQLITE_IOERR_*; the SF_E* cause and message are
 * kept per thread for sfv_last_error(). to_sqlite() is the one mapping.
 *
 * Omissions. The VFS is read-only and immutable: writes, truncation and
 * sync fail with SQLITE_READONLY, locks are no-ops, journals and WAL files
 * never exist (xAccess says so), temporary files SQLite needs for sorting
 * are delegated to the default VFS, and so are time, sleep and randomness.
 * No shared memory, no mmap (io methods version 1).
 *
 * Layout: constants and objects; VFS prototypes; the io-methods and VFS
 * tables; the methods in table order; sfvfs_register(); then the read path
 * and the public sfv_* functions.
 */
#include "sfvfs.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "pcache.h"
#include "prefetch.h"
#include "sfvfs_int.h"
#include "sidecar.h"
#include "store.h"

#define SFV_VFS_NAME "shardyfs"
#define SFV_NAME_PREFIX "/sfv/"
#define SFV_FIRST_READ 65536u              /* bytes of the open-time GET */
#define SFV_SIDECAR_MAX (288ull << 20)     /* cap of the sidecar GET */
#define SFV_SIDECAR_MAX_BODY (256ull << 20)
#define SFV_DEFAULT_DEADLINE_MS 30000
#define SFV_RA_START 4                     /* readahead window, pages */
#define SFV_RA_MAX 32
#define SFV_ADJ_MAX 16                     /* adjacent chain pages a side */
#define SFV_HINT_BITS 11                   /* chain hint table: 2048 slots */
#define SFV_PF_QUEUE 256
#define SFV_ETAG_MAX 136

enum { SC_NONE, SC_UNCONFIRMED, SC_CONFIRMED, SC_DROPPED };

struct sfv_cache {
	struct pcache *pc;
	struct prefetch *pf;                 /* NULL: no prefetch */
	_Atomic uint64_t sidecar_hits, pinned_bytes;
};

struct sfv_db {
	uint64_t id;                         /* cache key, VFS file name */
	struct store *st;
	struct sfv_cache *cache;
	char *url;
	uint32_t ps, usable;                 /* page size, usable bytes */
	long deadline_ms;
	_Atomic uint64_t size;
	_Atomic(const char *) etag;          /* etag_open or etag_live */
	char etag_open[SFV_ETAG_MAX];        /* set before any reader runs */
	char etag_live[SFV_ETAG_MAX];        /* written once, then published */
	struct sidecar *sc;                  /* immutable; freed at the end */
	_Atomic int sc_state;
	_Atomic(uint8_t) *sc_served;         /* sidecar pages already served */
	_Atomic uint64_t *hints;             /* chain hints, or NULL */
	_Atomic int dead;                    /* 0 or the SF_E* it failed with */
	/*
	 * db->mu protects pf_pending, refs, closing and dead_msg, and
	 * serialises the sidecar decline. Never held across network I/O,
	 * except by the decline itself (which runs once per sfv_db).
	 */
	pthread_mutex_t mu;
	pthread_cond_t cv;                   /* pf_pending reached 0 */
	int pf_pending, refs, closing;
	char dead_msg[256];
	struct sfv_db *reg_next;             /* protected by reg_mu */
};

/* One open main-database file of a connection. */
struct sfv_file {
	sqlite3_file base;                   /* first: SQLite casts to it */
	struct sfv_db *db;
	uint32_t seq_last, seq_run, ra_next, ra_win; /* readahead state */
};

/* A background fetch of a run of pages. */
struct sfv_pf_item {
	struct prefetch_item base;
	struct sfv_db *db;
	uint32_t first, count;
};

/* Registry of open databases, so xOpen can find one by name. */
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct sfv_db *reg_head;              /* protected by reg_mu */
static _Atomic uint64_t next_db_id = 1;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;
static int reg_rc;
static sqlite3_vfs *ORIGVFS;

static _Thread_local int tl_code;
static _Thread_local char tl_msg[256];

static int db_read(struct sfv_db *db, struct sfv_file *f, uint64_t off,
		   size_t len, uint8_t *buf, size_t *got, char *err,
		   size_t errlen);
static void db_release(struct sfv_db *db);
static void note_chains(struct sfv_db *db, const uint8_t *buf, uint32_t first,
			uint32_t count);

/* ---- VFS prototypes ---------------------------------------------------- */

static int sfvClose(sqlite3_file *pFile);
static int sfvRead(sqlite3_file *pFile, void *zBuf, int iAmt,
		   sqlite3_int64 iOfst);
static int sfvWrite(sqlite3_file *pFile, const void *zBuf, int iAmt,
		    sqlite3_int64 iOfst);
static int sfvTruncate(sqlite3_file *pFile, sqlite3_int64 size);
static int sfvSync(sqlite3_file *pFile, int flags);
static int sfvFileSize(sqlite3_file *pFile, sqlite3_int64 *pSize);
static int sfvLock(sqlite3_file *pFile, int eLock);
static int sfvUnlock(sqlite3_file *pFile, int eLock);
static int sfvCheckReservedLock(sqlite3_file *pFile, int *pResOut);
static int sfvFileControl(sqlite3_file *pFile, int op, void *pArg);
static int sfvSectorSize(sqlite3_file *pFile);
static int sfvDeviceCharacteristics(sqlite3_file *pFile);

static int sfvOpen(sqlite3_vfs *pVfs, const char *zName, sqlite3_file *pFile,
		   int flags, int *pOutFlags);
static int sfvDelete(sqlite3_vfs *pVfs, const char *zName, int syncDir);
static int sfvAccess(sqlite3_vfs *pVfs, const char *zName, int flags,
		     int *pResOut);
static int sfvFullPathname(sqlite3_vfs *pVfs, const char *zName, int nOut,
			   char *zOut);
static void *sfvDlOpen(sqlite3_vfs *pVfs, const char *zFilename);
static void sfvDlError(sqlite3_vfs *pVfs, int nByte, char *zErrMsg);
static void (*sfvDlSym(sqlite3_vfs *pVfs, void *p, const char *zSym))(void);
static void sfvDlClose(sqlite3_vfs *pVfs, void *pHandle);
static int sfvRandomness(sqlite3_vfs *pVfs, int nByte, char *zOut);
static int sfvSleep(sqlite3_vfs *pVfs, int nMicro);
static int sfvCurrentTime(sqlite3_vfs *pVfs, double *pTimeOut);
static int sfvGetLastError(sqlite3_vfs *pVfs, int a, char *b);
static int sfvCurrentTimeInt64(sqlite3_vfs *pVfs, sqlite3_int64 *p);

/* ---- tables ------------------------------------------------------------ */

static const sqlite3_io_methods sfv_io_methods = {
	1,                            /* iVersion */
	sfvClose,                     /* xClose */
	sfvRead,                      /* xRead */
	sfvWrite,                     /* xWrite */
	sfvTruncate,                  /* xTruncate */
	sfvSync,                      /* xSync */
	sfvFileSize,                  /* xFileSize */
	sfvLock,                      /* xLock */
	sfvUnlock,                    /* xUnlock */
	sfvCheckReservedLock,         /* xCheckReservedLock */
	sfvFileControl,               /* xFileControl */
	sfvSectorSize,                /* xSectorSize */
	sfvDeviceCharacteristics,     /* xDeviceCharacteristics */
	NULL,                         /* xShmMap */
	NULL,                         /* xShmLock */
	NULL,                         /* xShmBarrier */
	NULL,                         /* xShmUnmap */
	NULL,                         /* xFetch */
	NULL,                         /* xUnfetch */
};

static sqlite3_vfs sfv_vfs = {
	2,                            /* iVersion */
	0,                            /* szOsFile (set at registration) */
	1024,                         /* mxPathname */
	NULL,                         /* pNext */
	SFV_VFS_NAME,                 /* zName */
	NULL,                         /* pAppData */
	sfvOpen,                      /* xOpen */
	sfvDelete,                    /* xDelete */
	sfvAccess,                    /* xAccess */
	sfvFullPathname,              /* xFullPathname */
	sfvDlOpen,                    /* xDlOpen */
	sfvDlError,                   /* xDlError */
	sfvDlSym,                     /* xDlSym */
	sfvDlClose,                   /* xDlClose */
	sfvRandomness,                /* xRandomness */
	sfvSleep,                     /* xSleep */
	sfvCurrentTime,               /* xCurrentTime */
	sfvGetLastError,              /* xGetLastError */
	sfvCurrentTimeInt64,          /* xCurrentTimeInt64 */
	NULL,                         /* xSetSystemCall */
	NULL,                         /* xGetSystemCall */
	NULL,                         /* xNextSystemCall */
};

/* ---- errors ------------------------------------------------------------ */

static void set_error(int code, const char *msg)
{
	tl_code = code;
	snprintf(tl_msg, sizeof(tl_msg), "%s", msg && *msg ? msg :
		 sf_strerror(code));
}

/* The one mapping of SF_E* codes to SQLite result codes. */
static int to_sqlite(int rc)
{
	if (rc == 0)
		return SQLITE_OK;
	if (rc == SF_ENOMEM)
		return SQLITE_IOERR_NOMEM;
	return SQLITE_IOERR_READ;
}

int sfv_last_error(char *err, size_t errlen)
{
	if (err && errlen)
		snprintf(err, errlen, "%s", tl_code ? tl_msg : "");
	return tl_code;
}

void sfv_clear_error(void)
{
	tl_code = 0;
	tl_msg[0] = '\0';
}

/* ---- io methods -------------------------------------------------------- */

static int sfvClose(sqlite3_file *pFile)
{
	struct sfv_file *f = (struct sfv_file *)pFile;

	if (f->db)
		db_release(f->db);
	f->db = NULL;
	return SQLITE_OK;
}

static int sfvRead(sqlite3_file *pFile, void *zBuf, int iAmt,
		   sqlite3_int64 iOfst)
{
	struct sfv_file *f = (struct sfv_file *)pFile;
	char err[256] = "";
	size_t got = 0;
	int rc;

	if (iAmt < 0 || iOfst < 0)
		return SQLITE_IOERR_READ;
	rc = db_read(f->db, f, (uint64_t)iOfst, (size_t)iAmt, zBuf, &got,
		     err, sizeof(err));
	if (rc) {
		set_error(rc, err);
		return to_sqlite(rc);
	}
	if (got < (size_t)iAmt)
		return SQLITE_IOERR_SHORT_READ; /* db_read zero-filled */
	return SQLITE_OK;
}

static int sfvWrite(sqlite3_file *pFile, const void *zBuf, int iAmt,
		    sqlite3_int64 iOfst)
{
	return SQLITE_READONLY;
}

static int sfvTruncate(sqlite3_file *pFile, sqlite3_int64 size)
{
	return SQLITE_READONLY;
}

static int sfvSync(sqlite3_file *pFile, int flags)
{
	return SQLITE_READONLY;
}

static int sfvFileSize(sqlite3_file *pFile, sqlite3_int64 *pSize)
{
	struct sfv_file *f = (struct sfv_file *)pFile;

	*pSize = (sqlite3_int64)atomic_load(&f->db->size);
	return SQLITE_OK;
}

static int sfvLock(sqlite3_file *pFile, int eLock)
{
	return SQLITE_OK;
}

static int sfvUnlock(sqlite3_file *pFile, int eLock)
{
	return SQLITE_OK;
}

static int sfvCheckReservedLock(sqlite3_file *pFile, int *pResOut)
{
	*pResOut = 0;
	return SQLITE_OK;
}

static int sfvFileControl(sqlite3_file *pFile, int op, void *pArg)
{
	if (op == SQLITE_FCNTL_VFSNAME) {
		*(char **)pArg = sqlite3_mprintf("%s", SFV_VFS_NAME);
		return SQLITE_OK;
	}
	return SQLITE_NOTFOUND;
}

static int sfvSectorSize(sqlite3_file *pFile)
{
	return 512;
}

static int sfvDeviceCharacteristics(sqlite3_file *pFile)
{
	return SQLITE_IOCAP_IMMUTABLE;
}

/* ---- VFS methods ------------------------------------------------------- */

/* Main databases are ours ("/sfv/<id>"); temporary files SQLite needs
 * for sorting go to the default VFS; anything else does not exist. */
static int sfvOpen(sqlite3_vfs *pVfs, const char *zName, sqlite3_file *pFile,
		   int flags, int *pOutFlags)
{
	struct sfv_file *f = (struct sfv_file *)pFile;
	struct sfv_db *db;
	unsigned long long id;
	char *end = NULL;

	memset(f, 0, sizeof(*f));
	if (!(flags & SQLITE_OPEN_MAIN_DB)) {
		if (!zName || (flags & SQLITE_OPEN_DELETEONCLOSE))
			return ORIGVFS->xOpen(ORIGVFS, zName, pFile, flags,
					      pOutFlags);
		return SQLITE_CANTOPEN;
	}
	if (!zName || strncmp(zName, SFV_NAME_PREFIX,
			      strlen(SFV_NAME_PREFIX)) != 0)
		return SQLITE_CANTOPEN;
	id = strtoull(zName + strlen(SFV_NAME_PREFIX), &end, 10);
	if (!end || *end)
		return SQLITE_CANTOPEN;
	pthread_mutex_lock(&reg_mu);
	for (db = reg_head; db; db = db->reg_next)
		if (db->id == id)
			break;
	if (db) {
		pthread_mutex_lock(&db->mu);
		db->refs++;
		pthread_mutex_unlock(&db->mu);
	}
	pthread_mutex_unlock(&reg_mu);
	if (!db)
		return SQLITE_CANTOPEN;
	f->db = db;
	f->base.pMethods = &sfv_io_methods;
	if (pOutFlags)
		*pOutFlags = SQLITE_OPEN_READONLY | SQLITE_OPEN_MAIN_DB;
	return SQLITE_OK;
}

static int sfvDelete(sqlite3_vfs *pVfs, const char *zName, int syncDir)
{
	return SQLITE_IOERR_DELETE;
}

/* Nothing but the databases exists here: no journal, no WAL. */
static int sfvAccess(sqlite3_vfs *pVfs, const char *zName, int flags,
		     int *pResOut)
{
	*pResOut = 0;
	return SQLITE_OK;
}

static int sfvFullPathname(sqlite3_vfs *pVfs, const char *zName, int nOut,
			   char *zOut)
{
	sqlite3_snprintf(nOut, zOut, "%s", zName);
	return SQLITE_OK;
}

static void *sfvDlOpen(sqlite3_vfs *pVfs, const char *zFilename)
{
	return NULL;
}

static void sfvDlError(sqlite3_vfs *pVfs, int nByte, char *zErrMsg)
{
	sqlite3_snprintf(nByte, zErrMsg, "extensions are not supported");
}

static void (*sfvDlSym(sqlite3_vfs *pVfs, void *p, const char *zSym))(void)
{
	return NULL;
}

static void sfvDlClose(sqlite3_vfs *pVfs, void *pHandle)
{
}

static int sfvRandomness(sqlite3_vfs *pVfs, int nByte, char *zOut)
{
	return ORIGVFS->xRandomness(ORIGVFS, nByte, zOut);
}

static int sfvSleep(sqlite3_vfs *pVfs, int nMicro)
{
	return ORIGVFS->xSleep(ORIGVFS, nMicro);
}

static int sfvCurrentTime(sqlite3_vfs *pVfs, double *pTimeOut)
{
	return ORIGVFS->xCurrentTime(ORIGVFS, pTimeOut);
}

static int sfvGetLastError(sqlite3_vfs *pVfs, int a, char *b)
{
	return ORIGVFS->xGetLastError ? ORIGVFS->xGetLastError(ORIGVFS, a, b)
				      : 0;
}

static int sfvCurrentTimeInt64(sqlite3_vfs *pVfs, sqlite3_int64 *p)
{
	if (ORIGVFS->iVersion >= 2 && ORIGVFS->xCurrentTimeInt64)
		return ORIGVFS->xCurrentTimeInt64(ORIGVFS, p);
	{
		double t = 0;
		int rc = ORIGVFS->xCurrentTime(ORIGVFS, &t);

		*p = (sqlite3_int64)(t * 86400000.0);
		return rc;
	}
}

/* ---- registration ------------------------------------------------------ */

/*
 * SQLite's memory statistics take one process-wide mutex on every
 * allocation, and a lookup that compares an overflowing cell allocates its
 * whole payload: with them on, two threads doing warm lookups barely beat
 * one. Only possible before SQLite is initialised (later it is
 * SQLITE_MISUSE, harmlessly ignored).
 */
static void setup_once(void)
{
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static pthread_once_t setup_ctl = PTHREAD_ONCE_INIT;

void sfv_sqlite_setup(void)
{
	pthread_once(&setup_ctl, setup_once);
}

static void register_once(void)
{
	sfv_sqlite_setup();
	ORIGVFS = sqlite3_vfs_find(NULL);
	if (!ORIGVFS) {
		reg_rc = SQLITE_ERROR;
		return;
	}
	sfv_vfs.szOsFile = (int)sizeof(struct sfv_file);
	if (ORIGVFS->szOsFile > sfv_vfs.szOsFile)
		sfv_vfs.szOsFile = ORIGVFS->szOsFile; /* delegated temp files */
	reg_rc = sqlite3_vfs_register(&sfv_vfs, 0);
}

/* Registers the VFS (not as the default) on first use. */
static int sfvfs_register(char *err, size_t errlen)
{
	pthread_once(&reg_once, register_once);
	if (reg_rc != SQLITE_OK)
		return sf_errf(err, errlen, SF_EIO,
			       "cannot register the %s SQLite VFS: %s",
			       SFV_VFS_NAME, sqlite3_errstr(reg_rc));
	return 0;
}

/* ---- the read path ----------------------------------------------------- */

static uint32_t get_be16(const uint8_t *p)
{
	return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static int dead_error(struct sfv_db *db, char *err, size_t errlen)
{
	int code = atomic_load(&db->dead);

	pthread_mutex_lock(&db->mu);
	sf_errf(err, errlen, code, "%s", db->dead_msg);
	pthread_mutex_unlock(&db->mu);
	return code;
}

/* Marks the database failed for good (the first cause wins). */
static void db_kill(struct sfv_db *db, int code, const char *msg)
{
	int zero = 0;

	pthread_mutex_lock(&db->mu);
	if (atomic_compare_exchange_strong(&db->dead, &zero, code)) {
		snprintf(db->dead_msg, sizeof(db->dead_msg), "%s", msg);
		sf_log(SF_LOG_WARN, "sfvfs: %s", msg);
	}
	pthread_mutex_unlock(&db->mu);
}

static int sc_usable(struct sfv_db *db)
{
	int s = db->sc ? atomic_load(&db->sc_state) : SC_NONE;

	return s == SC_UNCONFIRMED || s == SC_CONFIRMED;
}

/*
 * The first ranged GET said the object is not the one the sidecar's db_tag
 * names (tag_used was the pin). Declines the sidecar; if every page it has
 * served equals the live object's page outside the unallocated gap,
 * re-pins to the live object and returns 0 (the caller retries).
 */
static int sidecar_decline(struct sfv_db *db, const char *tag_used, char *err,
			   size_t errlen)
{
	struct store_range_opts ro = {0};
	struct store_info info;
	uint8_t *live = NULL, *mine = NULL;
	uint32_t i, n, checked = 0;
	size_t got = 0;
	int rc, state;

	pthread_mutex_lock(&db->mu);
	if (atomic_load(&db->dead)) {
		pthread_mutex_unlock(&db->mu);
		return SF_EHTTP_412;
	}
	state = db->sc ? atomic_load(&db->sc_state) : SC_NONE;
	if (state != SC_UNCONFIRMED) {
		/* someone else re-pinned already: retry with the new pin */
		rc = strcmp(atomic_load(&db->etag), tag_used) != 0 ?
			     0 : SF_EHTTP_412;
		pthread_mutex_unlock(&db->mu);
		return rc;
	}
	atomic_store(&db->sc_state, SC_DROPPED);
	live = malloc(db->ps);
	mine = malloc(db->ps);
	if (!live || !mine) {
		rc = sf_errf(err, errlen, SF_ENOMEM, "out of memory");
		goto out;
	}
	ro.deadline_ms = db->deadline_ms;
	memset(&info, 0, sizeof(info));
	rc = store_get_range(db->st, db->url, 0, db->ps, &ro, live, &got,
			     &info, err, errlen);
	if (rc)
		goto out;
	if (got < 100 || memcmp(live, "SQLite format 3", 16) != 0 ||
	    (get_be16(live + 16) == 1 ? 65536 : get_be16(live + 16)) !=
		    db->ps) {
		rc = sf_errf(err, errlen, SF_EHTTP_412,
			     "%s changed: its header no longer matches",
			     db->url);
		goto out;
	}
	n = sidecar_npages(db->sc);
	for (i = 0; i < n; i++) {
		uint32_t pgno = sidecar_pgno(db->sc, i), at, gl;

		if (!atomic_load(&db->sc_served[i]))
			continue;
		if (pgno != 1) {
			struct store_info pi;

			ro.if_match = info.etag[0] ? info.etag : NULL;
			memset(&pi, 0, sizeof(pi));
			rc = store_get_range(db->st, db->url,
					     (uint64_t)(pgno - 1) * db->ps,
					     db->ps, &ro, live, &got, &pi, err,
					     errlen);
			if (rc)
				goto out;
		}
		if (got < db->ps) {
			rc = sf_errf(err, errlen, SF_EHTTP_412,
				     "%s changed: page %u is missing", db->url,
				     pgno);
			goto out;
		}
		sidecar_read(db->sc, i, 0, db->ps, mine);
		sidecar_gap(db->sc, i, &at, &gl);
		if (memcmp(live, mine, at) != 0 ||
		    memcmp(live + at + gl, mine + at + gl,
			   db->ps - at - gl) != 0) {
			rc = sf_errf(err, errlen, SF_EHTTP_412,
				     "%s is not the object its sidecar "
				     "describes (db_tag %s, live ETag %s): "
				     "page %u differs", db->url, tag_used,
				     info.etag, pgno);
			goto out;
		}
		checked++;
	}
	snprintf(db->etag_live, sizeof(db->etag_live), "%s", info.etag);
	if (info.size)
		atomic_store(&db->size, info.size);
	atomic_store(&db->etag, (const char *)db->etag_live);
	sf_log(SF_LOG_WARN, "sfvfs: sidecar of %s declined: db_tag %s != live "
	       "ETag %s (the %u pages it served are identical)", db->url,
	       tag_used, info.etag, checked);
	rc = 0;
out:
	pthread_mutex_unlock(&db->mu);
	free(live);
	free(mine);
	return rc;
}

/*
 * One ranged GET of [off, off+len), pinned to the database's ETag; checks
 * the identity the response reports. A mismatch declines an unconfirmed
 * sidecar (and retries once) or fails the database for good.
 */
static int db_fetch(struct sfv_db *db, uint64_t off, size_t len,
		    uint8_t *dst, size_t *got, char *err, size_t errlen)
{
	int attempt, rc;

	for (attempt = 0;; attempt++) {
		struct store_range_opts ro = {0};
		struct store_info info;
		char tag[SFV_ETAG_MAX], msg[256] = "";
		uint64_t size;

		if (atomic_load(&db->dead))
			return dead_error(db, err, errlen);
		snprintf(tag, sizeof(tag), "%s", atomic_load(&db->etag));
		size = atomic_load(&db->size);
		ro.if_match = tag[0] ? tag : NULL;
		ro.deadline_ms = db->deadline_ms;
		ro.hedge = 1;
		memset(&info, 0, sizeof(info));
		*got = 0;
		sf_log(SF_LOG_DEBUG, "sfvfs: GET pages %llu-%llu of %s",
		       (unsigned long long)(off / db->ps + 1),
		       (unsigned long long)((off + len - 1) / db->ps + 1),
		       db->url);
		rc = store_get_range(db->st, db->url, off, len, &ro, dst, got,
				     &info, msg, sizeof(msg));
		if (rc == 0 && ((tag[0] && info.etag[0] &&
				 strcmp(info.etag, tag) != 0) ||
				(info.size && info.size != size)))
			rc = sf_errf(msg, sizeof(msg), SF_EHTTP_412,
				     "%s changed: ETag %s, %llu bytes (pinned "
				     "%s, %llu bytes)", db->url, info.etag,
				     (unsigned long long)info.size, tag,
				     (unsigned long long)size);
		if (rc == 0 && *got < len && off + *got < size)
			rc = sf_errf(msg, sizeof(msg), SF_EIO,
				     "%s: short body (%zu of %zu bytes at "
				     "%llu)", db->url, *got, len,
				     (unsigned long long)off);
		if (rc == 0) {
			int exp = SC_UNCONFIRMED;

			if (db->sc && atomic_compare_exchange_strong(
					      &db->sc_state, &exp,
					      SC_CONFIRMED))
				sf_log(SF_LOG_DEBUG, "sfvfs: sidecar of %s "
				       "confirmed (%s)", db->url, tag);
			return 0;
		}
		if (rc != SF_EHTTP_412) {
			sf_errf(err, errlen, rc, "%s", msg);
			return rc;
		}
		if (attempt == 0 && db->sc &&
		    sidecar_decline(db, tag, err, errlen) == 0)
			continue;
		db_kill(db, SF_EHTTP_412, msg);
		return dead_error(db, err, errlen);
	}
}

/* Background fetch of pages [first, first+count) not yet cached. */
static void pf_run(struct prefetch_item *it)
{
	struct sfv_pf_item *pi = (struct sfv_pf_item *)it;
	struct sfv_db *db = pi->db;
	struct pcache *pc = db->cache->pc;
	uint32_t pos = pi->first, end = pi->first + pi->count;

	while (pos < end) {
		struct pcache_run run;
		uint64_t off, size = atomic_load(&db->size);
		size_t len, got = 0;
		int r;

		r = pcache_claim_prefetch(pc, db->id, pos, end - pos, db->ps,
					  &run);
		if (r != PC_CLAIMED)
			return;
		off = (uint64_t)(run.first - 1) * db->ps;
		len = (size_t)run.count * db->ps;
		if (off >= size) {
			pcache_complete(pc, &run, SF_EHTTP_416, 0,
					"past the end");
			return;
		}
		if (off + len > size)
			len = (size_t)(size - off);
		it->rc = db_fetch(db, off, len, run.buf, &got, it->err,
				  sizeof(it->err));
		if (it->rc == 0)
			note_chains(db, run.buf, run.first,
				    (uint32_t)(got / db->ps));
		pcache_complete(pc, &run, it->rc, got, it->err);
		if (it->rc)
			return;
		pos = run.first + run.count;
	}
}

static void pf_done(struct prefetch_item *it)
{
	struct sfv_pf_item *pi = (struct sfv_pf_item *)it;
	struct sfv_db *db = pi->db;

	if (it->rc && it->rc != SF_ECLOSED)
		sf_log(SF_LOG_DEBUG, "sfvfs: prefetch of pages %u-%u of %s: %s",
		       pi->first, pi->first + pi->count - 1, db->url, it->err);
	pthread_mutex_lock(&db->mu);
	if (--db->pf_pending == 0)
		pthread_cond_broadcast(&db->cv);
	pthread_mutex_unlock(&db->mu);
	free(pi);
}

/* Hands [first, first+count) to the workers, or runs it inline when there
 * are none and `inline_ok`. A prefetch that cannot be queued is shed. */
static void prefetch_pages(struct sfv_db *db, uint32_t first, uint32_t count,
			   int inline_ok)
{
	struct sfv_pf_item *pi;

	if (count == 0)
		return;
	if (!db->cache->pf && !inline_ok)
		return;
	pi = calloc(1, sizeof(*pi));
	if (!pi) {
		pcache_count_prefetch(db->cache->pc, 1);
		return;
	}
	pi->base.owner = db;
	pi->base.run = pf_run;
	pi->base.done = pf_done;
	pi->db = db;
	pi->first = first;
	pi->count = count > PCACHE_MAX_RUN ? PCACHE_MAX_RUN : count;
	pthread_mutex_lock(&db->mu);
	if (db->closing) {
		pthread_mutex_unlock(&db->mu);
		free(pi);
		return;
	}
	db->pf_pending++;
	pthread_mutex_unlock(&db->mu);
	pcache_count_prefetch(db->cache->pc, 0);
	if (!db->cache->pf) {
		pf_run(&pi->base);
		pf_done(&pi->base);
		return;
	}
	if (prefetch_submit(db->cache->pf, &pi->base) != 0) {
		pcache_count_prefetch(db->cache->pc, 1);
		pi->base.rc = SF_ECLOSED;
		pf_done(&pi->base);
	}
}

/*
 * Chain hints (no sidecar): the overflow chains that the cells of every
 * B-tree page fetched so far point to, as head -> page count (guessed
 * contiguous from the payload size), in a small lossy table. When SQLite
 * then reads a hinted head, the guessed chain comes in one GET. A wrong
 * guess only costs bytes: SQLite follows the real next-page pointers and
 * any page not fetched is read on demand.
 */
static uint32_t hint_slot(uint32_t head)
{
	return (head * 0x9E3779B1u) >> (32 - SFV_HINT_BITS);
}

static void note_chains(struct sfv_db *db, const uint8_t *buf, uint32_t first,
			uint32_t count)
{
	uint32_t heads[64], lens[64], i, k, n;

	if (!db->hints || sc_usable(db))
		return;
	for (i = 0; i < count; i++) {
		n = sidecar_page_chains(buf + (size_t)i * db->ps, first + i,
					db->ps, db->usable, heads, lens, 64);
		for (k = 0; k < n; k++)
			atomic_store_explicit(&db->hints[hint_slot(heads[k])],
					      (uint64_t)heads[k] << 32 | lens[k],
					      memory_order_relaxed);
	}
}

/* The hinted length of a chain starting at pgno (0: no hint). */
static uint32_t chain_hint(struct sfv_db *db, uint32_t pgno)
{
	uint64_t v;

	if (!db->hints)
		return 0;
	v = atomic_load_explicit(&db->hints[hint_slot(pgno)],
				 memory_order_relaxed);
	return (uint32_t)(v >> 32) == pgno ? (uint32_t)v : 0;
}

/* Whether a full page is a B-tree leaf (index or table). */
static int is_leaf(const uint8_t *page, uint32_t pgno)
{
	uint8_t t = page[pgno == 1 ? 100 : 0];

	return t == 10 || t == 13;
}

/*
 * Sequential readahead, fed with every full leaf page a connection reads
 * (leaves only: a leaf followed by its own overflow pages is not a scan).
 * Three leaves in ascending order, each at most 8 pages past the one
 * before, start a window that doubles up to SFV_RA_MAX pages. `fresh` says
 * the page came from the store or from an earlier readahead: a connection
 * that re-reads pages already cached (a new connection warming its own
 * SQLite cache) never issues requests.
 */
static void readahead(struct sfv_db *db, struct sfv_file *f, uint32_t pgno,
		      uint32_t last, int fresh)
{
	uint32_t n;

	if (pgno > f->seq_last && pgno <= f->seq_last + 8) {
		f->seq_run++;
	} else {
		f->seq_run = 0;
		f->ra_win = 0;
		f->ra_next = 0;
	}
	f->seq_last = pgno;
	if (f->seq_run < 2 || !db->cache->pf || !fresh)
		return;
	if (f->ra_next <= pgno) {
		f->ra_next = pgno + 1;
		if (!f->ra_win)
			f->ra_win = SFV_RA_START;
	}
	if (f->ra_next - pgno > f->ra_win / 2 + 1 || f->ra_next > last)
		return;
	n = f->ra_win;
	if (f->ra_next + n - 1 > last)
		n = last - f->ra_next + 1;
	prefetch_pages(db, f->ra_next, n, 0);
	f->ra_next += n;
	f->ra_win = f->ra_win * 2 > SFV_RA_MAX ? SFV_RA_MAX : f->ra_win * 2;
}

static int contiguous(const uint32_t *cp, uint32_t cn)
{
	uint32_t k;

	for (k = 1; k < cn; k++)
		if (cp[k] != cp[0] + k)
			return 0;
	return 1;
}

/*
 * With a sidecar, a page it does not hold (a leaf) is about to be fetched.
 * A builder that inserts in key order leaves the overflow chains of a
 * leaf's cells right before or right after the leaf, so whole contiguous
 * chains (known from the sidecar's chain table, not stored in it) that
 * touch pgno on either side ride in the same GET, up to SFV_ADJ_MAX pages
 * a side: the leaf plus whatever chains its binary search or its value
 * need then cost one request. *before and *after get the page counts.
 */
static void adjacent_chains(struct sfv_db *db, uint32_t pgno, uint32_t last,
			    uint32_t *before, uint32_t *after)
{
	const uint32_t *cp;
	uint32_t cn, head, n, p;

	*before = 0;
	*after = 0;
	for (p = pgno; p > 1; p = head) {
		if (sidecar_chain_ending(db->sc, p - 1, &head, &n) != 0 ||
		    *before + n > SFV_ADJ_MAX || head >= p ||
		    sidecar_find(db->sc, p - 1) >= 0)
			break;
		*before += n;
	}
	for (p = pgno + 1; p <= last; p += cn) {
		if (sidecar_chain(db->sc, p, &cp, &cn) != 0 ||
		    *after + cn > SFV_ADJ_MAX || !contiguous(cp, cn) ||
		    p + (cn - 1) > last || p + (cn - 1) < p ||
		    sidecar_find(db->sc, p) >= 0)
			break;
		*after += cn;
	}
}

/*
 * Reads bytes [poff, poff+len) of page pgno into dst: from the sidecar,
 * the cache, or one (single-flight) ranged GET. Overflow chains are
 * fetched when SQLite reads their head: the whole chain at once (its
 * contiguous pages in the demand GET, its other runs in parallel).
 */
static int read_page(struct sfv_db *db, struct sfv_file *f, uint32_t pgno,
		     uint32_t poff, uint32_t len, uint8_t *dst, char *err,
		     size_t errlen)
{
	struct pcache *pc = db->cache->pc;
	uint64_t size = atomic_load(&db->size);
	uint32_t last = (uint32_t)((size + db->ps - 1) / db->ps);
	uint32_t maxc = 1, before = 0, rest_first = 0, rest_n = 0, j;
	const uint32_t *cp = NULL;
	uint32_t cn = 0;
	int rc, fresh = 0, with_sc = 0;

	if (db->sc && sc_usable(db)) {
		long i = sidecar_find(db->sc, pgno);

		with_sc = 1;
		if (i >= 0) {
			if (atomic_load(&db->sc_state) == SC_UNCONFIRMED) {
				atomic_store(&db->sc_served[i], 1);
				/* re-check: a decline may have started */
			}
			if (sc_usable(db)) {
				sidecar_read(db->sc, (uint32_t)i, poff, len, dst);
				atomic_fetch_add_explicit(
					&db->cache->sidecar_hits, 1,
					memory_order_relaxed);
				return 0;
			}
		} else if (sidecar_chain(db->sc, pgno, &cp, &cn) == 0) {
			/* an overflow chain head: its contiguous pages in
			 * this GET, its other runs in the background */
			while (maxc < cn && maxc < PCACHE_MAX_RUN &&
			       cp[maxc] == pgno + maxc)
				maxc++;
		} else if (pgno <= last) {
			uint32_t after;

			adjacent_chains(db, pgno, last, &before, &after);
			maxc = 1 + after;
		}
	} else {
		uint32_t n = chain_hint(db, pgno);

		if (n > 1)
			maxc = n > PCACHE_MAX_RUN ? PCACHE_MAX_RUN : n;
	}
	for (j = maxc; j < cn;) {
		uint32_t k = 1;

		while (j + k < cn && k < PCACHE_MAX_RUN && cp[j + k] == cp[j] + k)
			k++;
		if (db->cache->pf) {
			prefetch_pages(db, cp[j], k, 0);
		} else if (!rest_n) {
			rest_first = j; /* fetched inline after this page */
			rest_n = cn - j;
		}
		j += k;
	}
	if (pgno + maxc - 1 > last)
		maxc = pgno <= last ? last - pgno + 1 : 1;

	for (;;) {
		struct pcache_run run;
		uint64_t off;
		size_t flen, got = 0, at;

		rc = pcache_get_span(pc, db->id, pgno, db->ps, poff, len, dst,
				     before, maxc, &run, &fresh, err, errlen);
		if (rc == PC_HIT) {
			rc = 0;
			break;
		}
		fresh = 1;
		if (rc == PC_NOROOM) {
			/* a page bigger than the whole budget: uncached */
			rc = db_fetch(db, (uint64_t)(pgno - 1) * db->ps + poff,
				      len, dst, &got, err, errlen);
			if (rc == 0 && got < len)
				memset(dst + got, 0, len - got);
			break;
		}
		if (rc < 0)
			break;
		off = (uint64_t)(run.first - 1) * db->ps;
		flen = (size_t)run.count * db->ps;
		at = (size_t)(pgno - run.first) * db->ps;
		if (off + flen > size)
			flen = off < size ? (size_t)(size - off) : 0;
		rc = flen ? db_fetch(db, off, flen, run.buf, &got, err, errlen)
			  : 0;
		if (rc == 0) {
			if (got < at + poff + len)
				memset(run.buf + got, 0,
				       (size_t)run.count * db->ps - got);
			memcpy(dst, run.buf + at + poff, len);
			if (!with_sc)
				note_chains(db, run.buf, run.first,
					    (uint32_t)(got / db->ps));
		}
		pcache_complete(pc, &run, rc, got, err);
		break;
	}
	if (rc == 0 && f && poff == 0 && len == db->ps && !cn &&
	    is_leaf(dst, pgno))
		readahead(db, f, pgno, last, fresh);
	if (rc == 0 && rest_n) {
		/* no workers: fetch the rest of the chain now, coalesced */
		for (j = rest_first; j < cn;) {
			uint32_t k = 1;

			while (j + k < cn && k < PCACHE_MAX_RUN &&
			       cp[j + k] == cp[j] + k)
				k++;
			prefetch_pages(db, cp[j], k, 1);
			j += k;
		}
	}
	return rc;
}

static int db_read(struct sfv_db *db, struct sfv_file *f, uint64_t off,
		   size_t len, uint8_t *buf, size_t *got, char *err,
		   size_t errlen)
{
	uint64_t size = atomic_load(&db->size), pos, end;
	int rc;

	*got = 0;
	if (atomic_load(&db->dead))
		return dead_error(db, err, errlen);
	end = off + len;
	if (end < off)
		return sf_errf(err, errlen, SF_EINVAL, "read past 2^64");
	if (end > size)
		end = off < size ? size : off;
	for (pos = off; pos < end;) {
		uint64_t pg = pos / db->ps;
		uint32_t poff = (uint32_t)(pos % db->ps);
		uint32_t n = db->ps - poff;

		if (n > end - pos)
			n = (uint32_t)(end - pos);
		if (pg + 1 > UINT32_MAX)
			return sf_errf(err, errlen, SF_EINVAL,
				       "offset %llu past the last page",
				       (unsigned long long)pos);
		rc = read_page(db, f, (uint32_t)pg + 1, poff, n,
			       buf + (pos - off), err, errlen);
		if (rc)
			return rc;
		pos += n;
	}
	*got = (size_t)(end - off);
	if (*got < len)
		memset(buf + *got, 0, len - *got);
	return 0;
}

int sfv_db_read(struct sfv_db *db, uint64_t off, size_t len, void *buf,
		size_t *got, char *err, size_t errlen)
{
	return db_read(db, NULL, off, len, buf, got, err, errlen);
}

/* ---- caches ------------------------------------------------------------ */

int sfv_cache_new(struct sfv_cache **out, uint64_t budget_bytes,
		  int prefetch_threads, char *err, size_t errlen)
{
	struct sfv_cache *c;
	int rc;

	if (!out || prefetch_threads < 0 || prefetch_threads > 64)
		return sf_errf(err, errlen, SF_EINVAL,
			       "sfv_cache_new: bad argument");
	c = calloc(1, sizeof(*c));
	if (!c)
		return sf_errf(err, errlen, SF_ENOMEM, "out of memory");
	rc = pcache_new(&c->pc, budget_bytes ? budget_bytes
					     : SFV_DEFAULT_BUDGET);
	if (!rc && prefetch_threads > 0)
		rc = prefetch_new(&c->pf, prefetch_threads, SFV_PF_QUEUE);
	if (rc) {
		sfv_cache_free(c);
		return sf_errf(err, errlen, rc, "cannot create the page cache");
	}
	*out = c;
	return 0;
}

void sfv_cache_free(struct sfv_cache *c)
{
	struct sfv_stats s;

	if (!c)
		return;
	sfv_cache_stats(c, &s);
	sf_log(SF_LOG_DEBUG, "sfvfs: cache closed: %llu hits, %llu misses, "
	       "%llu sidecar hits, %llu fetches (%llu bytes), prefetch "
	       "%llu issued / %llu hits / %llu wasted / %llu shed",
	       (unsigned long long)s.cache_hits,
	       (unsigned long long)s.cache_misses,
	       (unsigned long long)s.sidecar_hits,
	       (unsigned long long)s.fetches,
	       (unsigned long long)s.fetched_bytes,
	       (unsigned long long)s.prefetch_issued,
	       (unsigned long long)s.prefetch_hits,
	       (unsigned long long)s.prefetch_wasted,
	       (unsigned long long)s.prefetch_shed);
	prefetch_free(c->pf);
	pcache_free(c->pc);
	free(c);
}

void sfv_cache_stats(struct sfv_cache *c, struct sfv_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!c || !c->pc) /* c->pc is NULL only while sfv_cache_new unwinds */
		return;
	pcache_stats(c->pc, out);
	out->sidecar_hits = atomic_load(&c->sidecar_hits);
	out->pinned_bytes = atomic_load(&c->pinned_bytes);
}

/* ---- databases --------------------------------------------------------- */

static void db_free(struct sfv_db *db)
{
	if (db->sc)
		atomic_fetch_sub(&db->cache->pinned_bytes,
				 (uint64_t)sidecar_mem(db->sc));
	sidecar_free(db->sc);
	free((void *)db->sc_served);
	free((void *)db->hints);
	free(db->url);
	pthread_mutex_destroy(&db->mu);
	pthread_cond_destroy(&db->cv);
	free(db);
}

static void db_release(struct sfv_db *db)
{
	int last;

	pthread_mutex_lock(&db->mu);
	last = --db->refs == 0;
	pthread_mutex_unlock(&db->mu);
	if (last)
		db_free(db);
}

/* Fetches and validates the sidecar; on any failure logs and returns
 * without one (a sidecar only ever saves requests). */
static void open_sidecar(struct sfv_db *db, const char *url)
{
	struct sidecar_check chk = {0};
	uint8_t *buf = NULL;
	size_t len = 0;
	char err[256] = "";
	int rc;

	rc = store_get(db->st, url, SFV_SIDECAR_MAX, &buf, &len, NULL, err,
		       sizeof(err));
	if (rc) {
		sf_log(rc == SF_EHTTP_404 ? SF_LOG_DEBUG : SF_LOG_WARN,
		       "sfvfs: no sidecar for %s: %s", db->url, err);
		return;
	}
	chk.max_body = SFV_SIDECAR_MAX_BODY;
	rc = sidecar_parse(&db->sc, buf, len, &chk, err, sizeof(err));
	free(buf);
	if (rc) {
		sf_log(SF_LOG_WARN, "sfvfs: ignoring the sidecar %s: %s", url,
		       err);
		db->sc = NULL;
		return;
	}
	db->sc_served = calloc(sidecar_npages(db->sc) + 1, 1);
	if (!db->sc_served) {
		sidecar_free(db->sc);
		db->sc = NULL;
		return;
	}
	atomic_fetch_add(&db->cache->pinned_bytes,
			 (uint64_t)sidecar_mem(db->sc));
	db->ps = sidecar_page_size(db->sc);
	db->usable = db->ps;
	if (sidecar_find(db->sc, 1) >= 0) {
		uint8_t r;

		sidecar_read(db->sc, (uint32_t)sidecar_find(db->sc, 1), 20, 1,
			     &r);
		db->usable = db->ps - r;
	}
	snprintf(db->etag_open, sizeof(db->etag_open), "%s",
		 sidecar_db_tag(db->sc));
	atomic_store(&db->sc_state, SC_UNCONFIRMED);
}

static void drop_sidecar(struct sfv_db *db, const char *why)
{
	sf_log(SF_LOG_WARN, "sfvfs: ignoring the sidecar of %s: %s", db->url,
	       why);
	atomic_fetch_sub(&db->cache->pinned_bytes,
			 (uint64_t)sidecar_mem(db->sc));
	sidecar_free(db->sc);
	db->sc = NULL;
	free((void *)db->sc_served);
	db->sc_served = NULL;
	atomic_store(&db->sc_state, SC_NONE);
}

/* The size a sidecar's page 1 states (0 when its header field is stale). */
static uint64_t sidecar_db_size(struct sfv_db *db)
{
	uint8_t h[100];
	long i = sidecar_find(db->sc, 1);
	uint32_t npages;

	if (i < 0)
		return 0;
	sidecar_read(db->sc, (uint32_t)i, 0, sizeof(h), h);
	npages = get_be32(h + 28);
	if (memcmp(h, "SQLite format 3", 16) != 0 || npages == 0 ||
	    memcmp(h + 24, h + 92, 4) != 0)
		return 0;
	return (uint64_t)npages * db->ps;
}

/*
 * The first ranged GET of shard.db: page size, size and ETag (and the
 * first pages, into the cache). With a sidecar, its binding is checked
 * here since nothing has been served yet.
 */
static int first_read(struct sfv_db *db, uint64_t size_hint, char *err,
		      size_t errlen)
{
	struct store_range_opts ro = {0};
	struct store_info info;
	uint8_t *buf = malloc(SFV_FIRST_READ);
	size_t got = 0;
	uint32_t ps, k;
	int rc;

	if (!buf)
		return sf_errf(err, errlen, SF_ENOMEM, "out of memory");
	ro.deadline_ms = db->deadline_ms;
	ro.hedge = 1;
	memset(&info, 0, sizeof(info));
	rc = store_get_range(db->st, db->url, 0, SFV_FIRST_READ, &ro, buf,
			     &got, &info, err, errlen);
	if (rc)
		goto out;
	if (got < 100 || memcmp(buf, "SQLite format 3", 16) != 0) {
		rc = sf_errf(err, errlen, SF_ECORRUPT,
			     "%s is not a SQLite database", db->url);
		goto out;
	}
	ps = get_be16(buf + 16);
	if (ps == 1)
		ps = 65536;
	if (ps < 512 || ps > 65536 || (ps & (ps - 1))) {
		rc = sf_errf(err, errlen, SF_ECORRUPT,
			     "%s: bad page size %u in its header", db->url, ps);
		goto out;
	}
	if (info.size)
		atomic_store(&db->size, info.size);
	else if (got < SFV_FIRST_READ)
		atomic_store(&db->size, got);
	else
		atomic_store(&db->size, size_hint);
	if (!atomic_load(&db->size)) {
		rc = sf_errf(err, errlen, SF_EHTTP,
			     "%s: the store did not say how large it is",
			     db->url);
		goto out;
	}
	if (db->sc) {
		if (sidecar_page_size(db->sc) != ps)
			drop_sidecar(db, "its page_size differs from the "
				     "database header");
		else if (strcmp(sidecar_db_tag(db->sc), info.etag) != 0)
			drop_sidecar(db, "its db_tag is not the live ETag");
		else
			atomic_store(&db->sc_state, SC_CONFIRMED);
	}
	db->ps = ps;
	db->usable = ps - buf[20];
	snprintf(db->etag_open, sizeof(db->etag_open), "%s", info.etag);
	k = (uint32_t)(got / ps);
	if (k > PCACHE_MAX_RUN)
		k = PCACHE_MAX_RUN;
	note_chains(db, buf, 1, k);
	if (k > 0) {
		uint8_t *shrunk = realloc(buf, (size_t)k * ps);

		if (shrunk)
			buf = shrunk;
		pcache_insert(db->cache->pc, db->id, 1, k, ps, buf,
			      (size_t)k * ps);
		buf = NULL;
	}
out:
	free(buf);
	return rc;
}

int sfv_db_open(struct sfv_db **out, const struct sfv_open_spec *spec,
		char *err, size_t errlen)
{
	struct sfv_db *db = NULL;
	int rc;

	if (!out || !spec || !spec->store || !spec->cache || !spec->db_url)
		return sf_errf(err, errlen, SF_EINVAL,
			       "sfv_db_open: bad argument");
	db = calloc(1, sizeof(*db));
	if (!db)
		return sf_errf(err, errlen, SF_ENOMEM, "out of memory");
	pthread_mutex_init(&db->mu, NULL);
	pthread_cond_init(&db->cv, NULL);
	db->refs = 1;
	db->id = atomic_fetch_add(&next_db_id, 1);
	db->st = spec->store;
	db->cache = spec->cache;
	db->deadline_ms = spec->deadline_ms > 0 ? spec->deadline_ms
						: SFV_DEFAULT_DEADLINE_MS;
	atomic_store(&db->etag, (const char *)db->etag_open);
	db->url = strdup(spec->db_url);
	db->hints = calloc((size_t)1 << SFV_HINT_BITS, sizeof(*db->hints));
	if (!db->url || !db->hints) {
		rc = sf_errf(err, errlen, SF_ENOMEM, "out of memory");
		goto out;
	}
	if (spec->sidecar_url)
		open_sidecar(db, spec->sidecar_url);
	if (db->sc) {
		uint64_t sz = sidecar_db_size(db);

		if (!sz)
			sz = spec->size_hint;
		atomic_store(&db->size, sz);
	}
	if (!db->sc || !atomic_load(&db->size) || sidecar_find(db->sc, 1) < 0) {
		rc = first_read(db, spec->size_hint, err, errlen);
		if (rc)
			goto out;
	}
	pthread_mutex_lock(&reg_mu);
	db->reg_next = reg_head;
	reg_head = db;
	pthread_mutex_unlock(&reg_mu);
	*out = db;
	db = NULL;
	rc = 0;
out:
	if (db) {
		pcache_drop_db(spec->cache->pc, db->id);
		db_free(db);
	}
	return rc;
}

int sfv_db_connect(struct sfv_db *db, sqlite3 **out, char *err,
		   size_t errlen)
{
	sqlite3 *s = NULL;
	char uri[96];
	int rc;

	if (!db || !out)
		return sf_errf(err, errlen, SF_EINVAL,
			       "sfv_db_connect: bad argument");
	rc = sfvfs_register(err, errlen);
	if (rc)
		return rc;
	snprintf(uri, sizeof(uri), "file:%s%llu?immutable=1&mode=ro",
		 SFV_NAME_PREFIX, (unsigned long long)db->id);
	rc = sqlite3_open_v2(uri, &s, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI |
				      SQLITE_OPEN_NOMUTEX, SFV_VFS_NAME);
	if (rc != SQLITE_OK) {
		rc = sf_errf(err, errlen,
			     rc == SQLITE_NOMEM ? SF_ENOMEM : SF_EIO,
			     "cannot open %s through the VFS: %s", db->url,
			     s ? sqlite3_errmsg(s) : sqlite3_errstr(rc));
		sqlite3_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

void sfv_db_close(struct sfv_db *db)
{
	struct sfv_db **pp;

	if (!db)
		return;
	pthread_mutex_lock(&reg_mu);
	for (pp = &reg_head; *pp; pp = &(*pp)->reg_next)
		if (*pp == db) {
			*pp = db->reg_next;
			break;
		}
	pthread_mutex_unlock(&reg_mu);
	pthread_mutex_lock(&db->mu);
	db->closing = 1;
	pthread_mutex_unlock(&db->mu);
	if (db->cache->pf)
		prefetch_cancel(db->cache->pf, db);
	pthread_mutex_lock(&db->mu);
	while (db->pf_pending > 0)
		pthread_cond_wait(&db->cv, &db->mu);
	if (db->refs > 1)
		sf_log(SF_LOG_WARN, "sfvfs: %s closed with %d connection(s) "
		       "still open", db->url, db->refs - 1);
	pthread_mutex_unlock(&db->mu);
	pcache_drop_db(db->cache->pc, db->id);
	db_release(db);
}

const char *sfv_db_etag(const struct sfv_db *db)
{
	return atomic_load(&((struct sfv_db *)db)->etag);
}

int sfv_db_has_sidecar(const struct sfv_db *db)
{
	return sc_usable((struct sfv_db *)db);
}

uint64_t sfv_db_size(const struct sfv_db *db)
{
	return atomic_load(&((struct sfv_db *)db)->size);
}

uint32_t sfv_db_page_size(const struct sfv_db *db)
{
	return db->ps;
}
