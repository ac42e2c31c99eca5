/*
 * shard.c -- opening a shard database in download or range mode, the
 * per-shard pool of sqlite3 connections, point lookups and key iteration.
 *
 * Download mode (FORMAT.md 8): the whole shard.db is fetched once into the
 * cache directory under a name derived from db_url + checkpoint_id, so a
 * copy is reused across processes and runs exactly when its identity
 * matches. Several processes may share the directory: a per-entry lock
 * file (flock) serialises the download, the body goes to a temp file that
 * is checked (size from the manifest, SQLite magic) and atomically renamed
 * into place, so a reader never sees a partial copy.
 *
 * Range mode: the VFS (vfs/sfvfs.h) serves pages by ranged GETs; the
 * shard only opens it and borrows connections.
 *
 * Connections: sqlite3 connections are single-threaded (NOMUTEX), so each
 * lookup borrows one from a small free list and returns it; the prepared
 * point-lookup statement lives with the connection. The pool grows to the
 * number of threads that ever used the shard concurrently.
 */
#include "shard.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "sfvfs.h"
#include "store.h"

struct conn {
	sqlite3 *db;
	sqlite3_stmt *get;
	struct conn *next;
};

struct shard {
	uint32_t db_id;
	char *db_url;     /* shard directory URL, for messages */
	char *local_path; /* download mode */
	struct sfv_db *vdb; /* range mode */
	int downloaded;     /* this open fetched the whole shard.db */
	pthread_mutex_t mu;
	struct conn *free_conns; /* protected by mu */
};

struct shard_iter {
	struct shard *sh;
	struct conn *c;
	sqlite3_stmt *st;
};

/* ---- helpers ---------------------------------------------------------- */

static int mkdir_p(const char *dir)
{
	char buf[4096];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, dir, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* SQLite URI filenames need '%', '?' and '#' escaped. */
static char *uri_for_path(const char *path)
{
	size_t n = strlen(path);
	char *u = malloc(n * 3 + 32);
	char *o = u;

	if (!u)
		return NULL;
	o += sprintf(o, "file:");
	for (const char *p = path; *p; p++) {
		if (*p == '%' || *p == '?' || *p == '#')
			o += sprintf(o, "%%%02X", (unsigned char)*p);
		else
			*o++ = *p;
	}
	sprintf(o, "?immutable=1");
	return u;
}

/* Maps a failed SQLite call on a shard to an SF_E code + message. */
static int sqlite_fail(struct shard *sh, sqlite3 *db, int src, char *err,
		       size_t errlen)
{
	char vmsg[512] = "";
	int code = sh->vdb ? sfv_last_error(vmsg, sizeof(vmsg)) : 0;
	const char *smsg = db ? sqlite3_errmsg(db) : sqlite3_errstr(src);

	if (code != 0)
		return sf_errf(err, errlen, code, "shard db=%05u (%s): %s",
			       sh->db_id, sh->db_url, vmsg);
	switch (src & 0xff) {
	case SQLITE_NOMEM:
		code = SF_ENOMEM;
		break;
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
		code = SF_EIO;
		break;
	default:
		code = SF_ECORRUPT;
		break;
	}
	return sf_errf(err, errlen, code, "shard db=%05u (%s): %s", sh->db_id,
		       sh->db_url, smsg);
}

static void conn_free(struct conn *c)
{
	if (!c)
		return;
	sqlite3_finalize(c->get);
	sqlite3_close(c->db);
	free(c);
}

static int conn_new(struct shard *sh, struct conn **out, char *err,
		    size_t errlen)
{
	struct conn *c = calloc(1, sizeof(*c));
	char *uri = NULL;
	int rc, ret = 0;

	if (!c)
		return SF_ENOMEM;
	if (sh->vdb) {
		ret = sfv_db_connect(sh->vdb, &c->db, err, errlen);
		if (ret)
			goto out;
	} else {
		uri = uri_for_path(sh->local_path);
		if (!uri) {
			ret = SF_ENOMEM;
			goto out;
		}
		rc = sqlite3_open_v2(uri, &c->db,
				     SQLITE_OPEN_READONLY | SQLITE_OPEN_URI |
					     SQLITE_OPEN_NOMUTEX,
				     NULL);
		if (rc != SQLITE_OK) {
			ret = sqlite_fail(sh, c->db, rc, err, errlen);
			goto out;
		}
	}
	/* Hostile files: no trusted schema tricks, bounded work. */
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	sfv_clear_error();
	rc = sqlite3_prepare_v3(c->db, "SELECT v FROM kv WHERE k = ?1", -1,
				SQLITE_PREPARE_PERSISTENT, &c->get, NULL);
	if (rc != SQLITE_OK) {
		ret = sqlite_fail(sh, c->db, rc, err, errlen);
		if (ret == SF_ECORRUPT)
			sf_err_prefix(err, errlen, "not a shard database");
		goto out;
	}
out:
	free(uri);
	if (ret) {
		conn_free(c);
		c = NULL;
	}
	*out = c;
	return ret;
}

static int conn_take(struct shard *sh, struct conn **out, char *err,
		     size_t errlen)
{
	pthread_mutex_lock(&sh->mu);
	struct conn *c = sh->free_conns;
	if (c)
		sh->free_conns = c->next;
	pthread_mutex_unlock(&sh->mu);
	if (c) {
		*out = c;
		return 0;
	}
	return conn_new(sh, out, err, errlen);
}

static void conn_give(struct shard *sh, struct conn *c)
{
	pthread_mutex_lock(&sh->mu);
	c->next = sh->free_conns;
	sh->free_conns = c;
	pthread_mutex_unlock(&sh->mu);
}

/* ---- download mode ----------------------------------------------------- */

static int check_local_copy(const char *path, uint64_t want)
{
	struct stat st;
	char magic[16];
	int fd, ok = 0;

	if (stat(path, &st) != 0)
		return 0;
	if (want && (uint64_t)st.st_size != want)
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (pread(fd, magic, 16, 0) == 16 &&
	    memcmp(magic, "SQLite format 3", 16) == 0)
		ok = 1;
	close(fd);
	return ok;
}

/* Fetches shard.db into the cache at `path` unless another process did it
 * meanwhile; *fetched says whether this call downloaded it. */
static int download(const struct shard_spec *sp, const char *path,
		    int *fetched, char *err, size_t errlen)
{
	char *lockp = NULL, *tmpp = NULL, *url = NULL;
	int lockfd = -1, fd = -1, ret = 0;
	struct store_info info;

	if (asprintf(&lockp, "%s.lock", path) < 0 ||
	    asprintf(&tmpp, "%s.tmp.XXXXXX", path) < 0) {
		lockp = tmpp = NULL;
		ret = SF_ENOMEM;
		goto out;
	}
	url = store_url_join(sp->db_url, "shard.db");
	if (!url) {
		ret = SF_ENOMEM;
		goto out;
	}
	lockfd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (lockfd < 0 || flock(lockfd, LOCK_EX) != 0) {
		ret = sf_errf(err, errlen, SF_EIO, "cache lock %s: %s", lockp,
			      strerror(errno));
		goto out;
	}
	/* Someone else may have finished it while we waited. */
	if (check_local_copy(path, sp->db_bytes))
		goto out;
	fd = mkstemp(tmpp);
	if (fd < 0) {
		ret = sf_errf(err, errlen, SF_EIO, "cache temp file in %s: %s",
			      sp->cache_dir, strerror(errno));
		goto out;
	}
	memset(&info, 0, sizeof(info));
	/* The manifest says how big shard.db is: never accept more. */
	ret = store_get_to_fd(sp->store, url, fd, sp->db_bytes, NULL, &info,
			      err, errlen);
	if (ret) {
		sf_err_prefix(err, errlen, "shard db=%05u (%s)", sp->db_id,
			      sp->db_url);
		goto out;
	}
	if (fsync(fd) != 0) {
		ret = sf_errf(err, errlen, SF_EIO, "cache write: %s",
			      strerror(errno));
		goto out;
	}
	close(fd);
	fd = -1;
	if (!check_local_copy(tmpp, sp->db_bytes)) {
		struct stat st;
		long long got = stat(tmpp, &st) == 0 ? (long long)st.st_size : -1;
		ret = sf_errf(err, errlen, SF_ECORRUPT,
			      "shard db=%05u (%s): downloaded shard.db is not the "
			      "SQLite file the manifest describes (%lld bytes, "
			      "manifest says %llu)",
			      sp->db_id, sp->db_url, got,
			      (unsigned long long)sp->db_bytes);
		goto out;
	}
	*fetched = 1;
	if (rename(tmpp, path) != 0) {
		ret = sf_errf(err, errlen, SF_EIO, "cache rename %s: %s", path,
			      strerror(errno));
		goto out;
	}
	free(tmpp);
	tmpp = NULL;
out:
	if (fd >= 0)
		close(fd);
	if (tmpp)
		unlink(tmpp); /* harmless when mkstemp never ran */
	if (lockfd >= 0) {
		flock(lockfd, LOCK_UN);
		close(lockfd);
	}
	free(lockp);
	free(tmpp);
	free(url);
	return ret;
}

static int cache_path(const struct shard_spec *sp, char **out)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	char hex[2 * SHA256_DIGEST_LENGTH + 1];
	char *id = NULL;
	int n;

	n = asprintf(&id, "%s\n%s", sp->db_url,
		     sp->checkpoint_id ? sp->checkpoint_id : "");
	if (n < 0)
		return SF_ENOMEM;
	SHA256((const unsigned char *)id, (size_t)n, md);
	free(id);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
		sprintf(hex + 2 * i, "%02x", md[i]);
	if (asprintf(out, "%s/%s.db", sp->cache_dir, hex) < 0) {
		*out = NULL;
		return SF_ENOMEM;
	}
	return 0;
}

/* The local path of shard.db when the shard lives on file://, else NULL.
 * *dburl receives the URL it is borrowed from (caller frees). */
static const char *local_shard_path(const struct shard_spec *sp, char **dburl)
{
	*dburl = store_url_join(sp->db_url, "shard.db");
	return *dburl ? store_local_path(*dburl) : NULL;
}

/* ---- public ------------------------------------------------------------- */

int shard_open(struct shard **out, const struct shard_spec *sp, char *err,
	       size_t errlen)
{
	struct shard *sh = calloc(1, sizeof(*sh));
	struct conn *c = NULL;
	char *dburl = NULL, *scurl = NULL;
	const char *lpath;
	int ret = 0;

	*out = NULL;
	if (!sh)
		return SF_ENOMEM;
	pthread_mutex_init(&sh->mu, NULL);
	sh->db_id = sp->db_id;
	sh->db_url = strdup(sp->db_url);
	if (!sh->db_url) {
		ret = SF_ENOMEM;
		goto out;
	}
	if (sp->mode == SF_ACCESS_RANGE) {
		struct sfv_open_spec os;
		dburl = store_url_join(sp->db_url, "shard.db");
		if (sp->sidecar_name)
			scurl = store_url_join(sp->db_url, sp->sidecar_name);
		if (!dburl || (sp->sidecar_name && !scurl)) {
			ret = SF_ENOMEM;
			goto out;
		}
		memset(&os, 0, sizeof(os));
		os.store = sp->store;
		os.cache = sp->cache;
		os.db_url = dburl;
		os.sidecar_url = scurl;
		os.size_hint = sp->db_bytes;
		ret = sfv_db_open(&sh->vdb, &os, err, errlen);
		if (ret) {
			sf_err_prefix(err, errlen, "shard db=%05u (%s)",
				      sp->db_id, sp->db_url);
			goto out;
		}
	} else if ((lpath = local_shard_path(sp, &dburl)) != NULL) {
		/* file:// source: the shard is already a local file, so it
		 * is opened where it is (a copy would only double the disk
		 * and the page cache). Same checks as a downloaded copy. */
		if (!check_local_copy(lpath, sp->db_bytes)) {
			ret = sf_errf(err, errlen,
				      access(lpath, F_OK) == 0 ? SF_ECORRUPT
							      : SF_EHTTP_404,
				      "shard db=%05u (%s): shard.db is missing or is "
				      "not the SQLite file the manifest describes",
				      sp->db_id, sp->db_url);
			goto out;
		}
		sh->local_path = strdup(lpath);
		if (!sh->local_path) {
			ret = SF_ENOMEM;
			goto out;
		}
	} else {
		int e = mkdir_p(sp->cache_dir);
		if (e) {
			ret = sf_errf(err, errlen, SF_EIO,
				      "cache directory %s: %s", sp->cache_dir,
				      strerror(-e));
			goto out;
		}
		ret = cache_path(sp, &sh->local_path);
		if (ret)
			goto out;
		if (!check_local_copy(sh->local_path, sp->db_bytes)) {
			ret = download(sp, sh->local_path, &sh->downloaded,
				       err, errlen);
			if (ret)
				goto out;
		}
	}
	/* One connection up front: proves the file is a shard database. */
	ret = conn_new(sh, &c, err, errlen);
	if (ret)
		goto out;
	conn_give(sh, c);
out:
	free(dburl);
	free(scurl);
	if (ret) {
		shard_close(sh);
		sh = NULL;
	}
	*out = sh;
	return ret;
}

void shard_close(struct shard *sh)
{
	if (!sh)
		return;
	while (sh->free_conns) {
		struct conn *c = sh->free_conns;
		sh->free_conns = c->next;
		conn_free(c);
	}
	if (sh->vdb)
		sfv_db_close(sh->vdb);
	pthread_mutex_destroy(&sh->mu);
	free(sh->local_path);
	free(sh->db_url);
	free(sh);
}

int shard_was_downloaded(const struct shard *sh)
{
	return sh->downloaded;
}

int shard_get(struct shard *sh, const uint8_t *k, size_t klen, void **value,
	      size_t *vlen, char *err, size_t errlen)
{
	struct conn *c = NULL;
	int ret, rc;

	*value = NULL;
	*vlen = 0;
	ret = conn_take(sh, &c, err, errlen);
	if (ret)
		return ret;
	if (sh->vdb)
		sfv_clear_error();
	/* A zero-length key must bind as an empty BLOB, never as NULL. */
	rc = sqlite3_bind_blob64(c->get, 1, klen ? (const void *)k : "",
				 (sqlite3_uint64)klen, SQLITE_STATIC);
	if (rc != SQLITE_OK) {
		ret = sqlite_fail(sh, c->db, rc, err, errlen);
		goto out;
	}
	rc = sqlite3_step(c->get);
	if (rc == SQLITE_DONE) {
		ret = SF_NOTFOUND;
	} else if (rc == SQLITE_ROW) {
		const void *v = sqlite3_column_blob(c->get, 0);
		int n = sqlite3_column_bytes(c->get, 0);
		if (sqlite3_column_type(c->get, 0) == SQLITE_NULL) {
			ret = sf_errf(err, errlen, SF_ECORRUPT,
				      "shard db=%05u (%s): NULL value",
				      sh->db_id, sh->db_url);
			goto out;
		}
		*value = malloc(n > 0 ? (size_t)n : 1);
		if (!*value) {
			ret = SF_ENOMEM;
			goto out;
		}
		if (n > 0)
			memcpy(*value, v, (size_t)n);
		*vlen = (size_t)n;
		ret = 0;
	} else {
		ret = sqlite_fail(sh, c->db, rc, err, errlen);
	}
out:
	sqlite3_reset(c->get);
	sqlite3_clear_bindings(c->get);
	conn_give(sh, c);
	return ret;
}

int shard_iter_open(struct shard *sh, struct shard_iter **out, char *err,
		    size_t errlen)
{
	struct shard_iter *it = calloc(1, sizeof(*it));
	int ret, rc;

	*out = NULL;
	if (!it)
		return SF_ENOMEM;
	it->sh = sh;
	ret = conn_take(sh, &it->c, err, errlen);
	if (ret)
		goto out;
	if (sh->vdb)
		sfv_clear_error();
	rc = sqlite3_prepare_v2(it->c->db,
				"SELECT k, length(v) FROM kv ORDER BY k", -1,
				&it->st, NULL);
	if (rc != SQLITE_OK)
		ret = sqlite_fail(sh, it->c->db, rc, err, errlen);
out:
	if (ret) {
		shard_iter_close(it);
		it = NULL;
	}
	*out = it;
	return ret;
}

int shard_iter_next(struct shard_iter *it, const uint8_t **k, size_t *klen,
		    uint64_t *vlen, char *err, size_t errlen)
{
	int rc;

	if (it->sh->vdb)
		sfv_clear_error();
	rc = sqlite3_step(it->st);
	if (rc == SQLITE_DONE)
		return SF_NOTFOUND;
	if (rc != SQLITE_ROW)
		return sqlite_fail(it->sh, it->c->db, rc, err, errlen);
	*k = sqlite3_column_blob(it->st, 0);
	*klen = (size_t)sqlite3_column_bytes(it->st, 0);
	if (!*k)
		*k = (const uint8_t *)"";
	*vlen = (uint64_t)sqlite3_column_int64(it->st, 1);
	return 0;
}

void shard_iter_close(struct shard_iter *it)
{
	if (!it)
		return;
	sqlite3_finalize(it->st);
	if (it->c)
		conn_give(it->sh, it->c);
	free(it);
}
