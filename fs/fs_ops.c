/*
 * fs_ops.c -- the FUSE low-level operations of the shardyfs mount.
 *
 * The tree (every name below is a directory unless it says otherwise):
 *
 *   /                     keys, shards, snapshot (file), health (file),
 *                         stats (file), history
 *   keys/NAME             file: the value of the key NAME (fs_names.h);
 *                         listed only with -o list_keys
 *   shards/db=NNNNN/      one per shard of the snapshot, empty ones too;
 *                         size = db_bytes, mtime = snapshot creation
 *   shards/db=NNNNN/info  file: the shard's JSON
 *   shards/db=NNNNN/keys/ the shard's keys, listed in stored order
 *   history/<TS>_run_id=<RUN>/  one per published manifest, newest first,
 *                         holding keys/, shards/ and snapshot of that run
 *
 * Shaped like libfuse's passthrough_ll: each fs_do_*() returns 0 or
 * -errno and its fs_*() wrapper replies exactly once. Lookups do the work:
 * a key lookup fetches the value (the size must be exact in stat) and keeps
 * it in the inode, so the kernel can then serve stat and read from its own
 * caches for a day (inodes are immutable, see fs_inode.h). Reads never need
 * a file handle, which is what allows zero-message opens
 * (FUSE_CAP_NO_OPEN_SUPPORT): the first open of a file answers ENOSYS and
 * the kernel stops sending opens altogether.
 *
 * Lookups under the stable directories (/, keys/, shards/) resolve in the
 * current view and hold an in-flight mark on it until their reply is sent;
 * the refresh thread (fs_main.c) waits for those marks before invalidating
 * names, so no stale name can be cached after a refresh.
 *
 * Everything that would modify the tree answers EROFS; the mount is also
 * made read-only at the VFS level (-o ro).
 */
#include "fs_inode.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fs_names.h"

_Static_assert(sizeof(fuse_ino_t) >= sizeof(uint64_t),
	       "inode numbers are 64-bit counters");

#define ERRLEN 640   /* store errors name URLs; keep the cause */

static struct fs *fs_data(fuse_req_t req)
{
	return (struct fs *)fuse_req_userdata(req);
}

int fs_errno(int code)
{
	switch (code) {
	case SF_NOTFOUND:
	case SF_EKEY:
		return ENOENT;
	case SF_ENOMEM:
		return ENOMEM;
	default:
		return EIO;
	}
}

static int is_dynamic(enum fs_kind k)
{
	return k == FS_HEALTH || k == FS_STATS || k == FS_SHARD_INFO;
}

static double ttl_of(const struct fs_node *n)
{
	return is_dynamic(n->kind) ? 0.0 : FS_TTL_LONG;
}

static void fill_entry(struct fs *fs, const struct fs_node *n,
		       struct fuse_entry_param *e)
{
	e->ino = n->ino;
	e->generation = 0;
	fs_node_stat(fs, n, &e->attr);
	e->attr_timeout = ttl_of(n);
	e->entry_timeout = ttl_of(n);
}

static struct fs_node *node_new(enum fs_kind kind, struct fs_view *v,
				uint32_t db, double mtime)
{
	struct fs_node *n = calloc(1, sizeof(*n));

	if (n) {
		n->kind = kind;
		n->view = v;
		n->db = db;
		n->mtime = mtime;
	}
	return n;
}

/* Adds a node (dedup'd unless dynamic) and fills the entry. */
static int add_entry(struct fs *fs, struct fs_node *n,
		     struct fuse_entry_param *e)
{
	if (!n)
		return -ENOMEM;
	n = fs_node_add(fs, n, !is_dynamic(n->kind));
	if (!n)
		return -ENOMEM;
	fill_entry(fs, n, e);
	return 0;
}

static int stable_entry(struct fs *fs, fuse_ino_t ino,
			struct fuse_entry_param *e)
{
	struct fs_node *n = fs_node_get(fs, ino);

	if (!n)
		return -EIO;
	fill_entry(fs, n, e);
	return 0;
}

/* A file whose content is rendered now (JSON). */
static int rendered_entry(struct fs *fs, enum fs_kind kind, struct fs_view *v,
			  uint32_t db, struct fuse_entry_param *e)
{
	struct fs_node *n;
	size_t len = 0;
	char *data = NULL;

	if (kind == FS_SNAPSHOT) {
		n = fs_node_reuse(fs, kind, v, 0, NULL, 0);
		if (n) {
			fill_entry(fs, n, e);
			return 0;
		}
	}
	switch (kind) {
	case FS_SNAPSHOT:
		data = fs_render_snapshot(fs, v, &len);
		break;
	case FS_SHARD_INFO:
		data = fs_render_shard(fs, v, db, &len);
		break;
	case FS_HEALTH:
		data = fs_render_health(fs, &len);
		break;
	case FS_STATS:
		data = fs_render_stats(fs, &len);
		break;
	default:
		return -EIO;
	}
	if (!data)
		return -ENOMEM;
	n = node_new(kind, v, db,
		     kind == FS_SNAPSHOT ? v->info.created_at_epoch
					 : (double)time(NULL));
	if (!n) {
		free(data);
		return -ENOMEM;
	}
	n->data = data;
	n->size = len;
	return add_entry(fs, n, e);
}

/* keys/NAME or shards/db=N/keys/NAME (only_db >= 0) in view v. */
static int lookup_key(struct fs *fs, struct fs_view *v, const char *name,
		      long only_db, struct fuse_entry_param *e)
{
	enum sf_key_encoding enc = v->info.key_encoding;
	uint8_t kb[FS_NAMES_BUFSZ];
	char hex[2 * 64 + 1];
	char err[ERRLEN] = "";
	struct fs_node *n;
	struct sf_key key;
	void *val = NULL;
	size_t kl = 0, vlen = 0, nl = strlen(name);
	uint32_t db = 0;
	int rc;

	if (nl > FS_NAMES_MAX ||
	    fs_names_decode(enc, name, nl, kb, sizeof(kb), &kl) != 0 ||
	    fs_names_key(enc, kb, kl, &key) != 0)
		return -ENOENT;
	rc = sf_snapshot_route(v->snap, &key, &db, err, sizeof(err));
	if (rc == SF_NOTFOUND || rc == SF_EKEY)
		return -ENOENT;
	if (rc < 0)
		goto fail;
	if (only_db >= 0 && db != (uint32_t)only_db)
		return -ENOENT;

	n = fs_node_reuse(fs, FS_KEY, v, 0, kb, kl);
	if (n) {
		fill_entry(fs, n, e);
		return 0;
	}
	rc = sf_snapshot_get(v->snap, &key, &val, &vlen, err, sizeof(err));
	if (rc == SF_NOTFOUND || rc == SF_EKEY)
		return -ENOENT;
	if (rc < 0)
		goto fail;

	n = node_new(FS_KEY, v, db, v->info.created_at_epoch);
	if (n)
		n->key = malloc(kl ? kl : 1);
	if (!n || !n->key) {
		free(n);
		sf_free(val);
		return -ENOMEM;
	}
	memcpy(n->key, kb, kl);
	n->klen = kl;
	n->data = val;
	n->size = vlen;
	return add_entry(fs, n, e);

fail:
	fs_names_hex(kb, kl < 64 ? kl : 64, hex);
	fs_log(fs, SF_LOG_ERROR, "lookup of key %s%s (generation %llu): %s",
	       hex, kl > 64 ? "..." : "",
	       (unsigned long long)v->info.generation,
	       err[0] ? err : sf_strerror(rc));
	__atomic_add_fetch(&fs->n_errors, 1, __ATOMIC_RELAXED);
	return -fs_errno(rc);
}

/* "db=NNNNN" exactly as listed (no aliases); -1 when not a shard name. */
static long parse_db(const struct fs_view *v, const char *name)
{
	char canon[32];
	unsigned long db;
	char *end;

	if (strncmp(name, "db=", 3) != 0 || name[3] < '0' || name[3] > '9')
		return -1;
	errno = 0;
	db = strtoul(name + 3, &end, 10);
	if (errno || *end || db >= v->info.num_dbs)
		return -1;
	snprintf(canon, sizeof(canon), "db=%05lu", db);
	return strcmp(canon, name) == 0 ? (long)db : -1;
}

/* The directory name of a history entry (escaped like a raw key). */
static int history_name(const struct sf_history_entry *h, char *out,
			size_t cap)
{
	char raw[512];
	int n = snprintf(raw, sizeof(raw), "%s_run_id=%s",
			 h->timestamp ? h->timestamp : "",
			 h->run_id ? h->run_id : "");

	if (n < 0 || (size_t)n >= sizeof(raw))
		return SF_ETOOBIG;
	return fs_names_encode(SF_ENC_RAW, (const uint8_t *)raw, (size_t)n,
			       out, cap, NULL);
}

static int lookup_history(struct fs *fs, const char *name,
			  struct fuse_entry_param *e)
{
	struct sf_history_entry *h = NULL;
	struct fs_view *v = NULL;
	char err[ERRLEN] = "";
	const char *ref = NULL;
	size_t n = 0;
	int rc;

	e->entry_timeout = 1.0;       /* for a negative answer */
	rc = sf_history(fs->reader, &h, &n, err, sizeof(err));
	if (rc < 0) {
		fs_log(fs, SF_LOG_ERROR, "listing history: %s", err);
		return -fs_errno(rc);
	}
	for (size_t i = 0; i < n && !ref; i++) {
		char nm[FS_NAMES_BUFSZ];

		if (history_name(&h[i], nm, sizeof(nm)) == 0 &&
		    strcmp(nm, name) == 0)
			ref = h[i].manifest_ref;
	}
	if (!ref) {
		rc = -ENOENT;
		goto out;
	}
	rc = fs_view_history(fs, ref, &v, err, sizeof(err));
	if (rc < 0) {
		fs_log(fs, SF_LOG_ERROR, "opening history/%s: %s", name, err);
		rc = -fs_errno(rc);
		goto out;
	}
	rc = add_entry(fs, node_new(FS_HIST, v, 0, v->info.created_at_epoch),
		       e);
	fs_view_unref(fs, v);   /* the node holds its own reference */
out:
	sf_history_free(h, n);
	return rc;
}

static int fs_do_lookup(struct fs *fs, struct fs_node *p, const char *name,
			struct fuse_entry_param *e, struct fs_view **entered)
{
	struct fs_view *v = p->view;
	long db;

	/* Names under the stable directories resolve in the current view. */
	if (!v && (p->kind == FS_ROOT || p->kind == FS_KEYS ||
		   p->kind == FS_SHARDS)) {
		v = fs_view_enter(fs);
		*entered = v;
	}

	switch (p->kind) {
	case FS_ROOT:
		if (!strcmp(name, "keys"))
			return stable_entry(fs, FS_INO_KEYS, e);
		if (!strcmp(name, "shards"))
			return stable_entry(fs, FS_INO_SHARDS, e);
		if (!strcmp(name, "history"))
			return stable_entry(fs, FS_INO_HISTORY, e);
		if (!strcmp(name, "snapshot"))
			return rendered_entry(fs, FS_SNAPSHOT, v, 0, e);
		if (!strcmp(name, "health"))
			return rendered_entry(fs, FS_HEALTH, NULL, 0, e);
		if (!strcmp(name, "stats"))
			return rendered_entry(fs, FS_STATS, NULL, 0, e);
		return -ENOENT;
	case FS_HIST:
		if (!strcmp(name, "keys"))
			return add_entry(fs, node_new(FS_KEYS, v, 0,
				v->info.created_at_epoch), e);
		if (!strcmp(name, "shards"))
			return add_entry(fs, node_new(FS_SHARDS, v, 0,
				v->info.created_at_epoch), e);
		if (!strcmp(name, "snapshot"))
			return rendered_entry(fs, FS_SNAPSHOT, v, 0, e);
		return -ENOENT;
	case FS_KEYS:
		return lookup_key(fs, v, name, -1, e);
	case FS_SHARD_KEYS:
		return lookup_key(fs, v, name, (long)p->db, e);
	case FS_SHARDS: {
		struct sf_shard_info si;
		struct fs_node *n;

		db = parse_db(v, name);
		if (db < 0 || sf_snapshot_shard(v->snap, (uint32_t)db, &si))
			return -ENOENT;
		n = node_new(FS_SHARD, v, (uint32_t)db,
			     v->info.created_at_epoch);
		if (n)
			n->size = si.db_bytes;
		return add_entry(fs, n, e);
	}
	case FS_SHARD:
		if (!strcmp(name, "info"))
			return rendered_entry(fs, FS_SHARD_INFO, v, p->db, e);
		if (!strcmp(name, "keys"))
			return add_entry(fs, node_new(FS_SHARD_KEYS, v, p->db,
				v->info.created_at_epoch), e);
		return -ENOENT;
	case FS_HISTORY:
		return lookup_history(fs, name, e);
	default:
		return -ENOTDIR;
	}
}

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fs_data(req);
	struct fs_node *p = fs_node_get(fs, parent);
	struct fs_view *entered = NULL;
	struct fuse_entry_param e;
	int rc;

	__atomic_add_fetch(&fs->n_lookups, 1, __ATOMIC_RELAXED);
	memset(&e, 0, sizeof(e));
	e.entry_timeout = FS_TTL_LONG;  /* negative answers: until a refresh */
	rc = p ? fs_do_lookup(fs, p, name, &e, &entered) : -ESTALE;
	if (rc == 0) {
		fs_node_note_name(fs, e.ino, parent, name);
		fuse_reply_entry(req, &e);
	} else if (rc == -ENOENT) {
		__atomic_add_fetch(&fs->n_negative, 1, __ATOMIC_RELAXED);
		e.ino = 0;
		e.attr_timeout = 0;
		fuse_reply_entry(req, &e);
	} else {
		fuse_reply_err(req, -rc);
	}
	if (entered)
		fs_view_leave(fs, entered);
}

static void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fs_node_forget(fs_data(req), ino, nlookup);
	fuse_reply_none(req);
}

static void fs_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	struct fs *fs = fs_data(req);

	for (size_t i = 0; i < count; i++)
		fs_node_forget(fs, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fs *fs = fs_data(req);
	struct fs_node *n = fs_node_get(fs, ino);
	struct stat st;

	(void)fi;
	if (!n) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	fs_node_stat(fs, n, &st);
	fuse_reply_attr(req, &st, ttl_of(n));
}

/* ---- files ------------------------------------------------------------- */

static void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_data(req);
	struct fs_node *n = fs_node_get(fs, ino);

	if (!n) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	if (fs_kind_is_dir(n->kind)) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (fs->no_open) {
		/* Zero-message opens from now on (KEEP_CACHE implied). */
		fuse_reply_err(req, ENOSYS);
		return;
	}
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

/* Fetches a key node's value again (it was over the value budget). */
static int refetch(struct fs *fs, struct fs_node *n, void **val)
{
	enum sf_key_encoding enc = n->view->info.key_encoding;
	char err[ERRLEN] = "";
	struct sf_key key;
	size_t vlen = 0;
	int rc;

	__atomic_add_fetch(&fs->n_refetch, 1, __ATOMIC_RELAXED);
	if (fs_names_key(enc, n->key, n->klen, &key) != 0)
		return -EIO;
	rc = sf_snapshot_get(n->view->snap, &key, val, &vlen, err, sizeof(err));
	if (rc == 0 && vlen != n->size) {
		sf_free(*val);
		*val = NULL;
		snprintf(err, sizeof(err), "value changed size (%zu, was %llu)",
			 vlen, (unsigned long long)n->size);
		rc = SF_ECORRUPT;
	}
	if (rc != 0) {
		/* A key that was found cannot vanish from an immutable
		 * snapshot: not found here is an error too. */
		fs_log(fs, SF_LOG_ERROR, "reading inode %llu again: %s",
		       (unsigned long long)n->ino,
		       err[0] ? err : sf_strerror(rc));
		__atomic_add_fetch(&fs->n_errors, 1, __ATOMIC_RELAXED);
		return rc == SF_ENOMEM ? -ENOMEM : -EIO;
	}
	return 0;
}

/*
 * Replies from the node's memory, so the node is held (fs_node_hold) until
 * after the reply: the kernel may forget the inode as soon as it has the
 * data, and a FORGET handled on another thread must not free it under us.
 */
static void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fs *fs = fs_data(req);
	struct fs_node *n = fs_node_hold(fs, ino);
	const char *data;
	void *val = NULL;
	size_t len;
	int rc;

	(void)fi;
	__atomic_add_fetch(&fs->n_reads, 1, __ATOMIC_RELAXED);
	if (!n) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	if (fs_kind_is_dir(n->kind)) {
		fuse_reply_err(req, EISDIR);
		goto out;
	}
	if (off < 0 || (uint64_t)off >= n->size) {
		fuse_reply_buf(req, NULL, 0);
		goto out;
	}
	len = n->size - (uint64_t)off < size ? (size_t)(n->size - (uint64_t)off)
					      : size;
	pthread_mutex_lock(&fs->mu);
	data = n->data;   /* once set, freed only when the node is freed */
	pthread_mutex_unlock(&fs->mu);
	if (data) {
		fuse_reply_buf(req, data + off, len);
		goto out;
	}
	if (n->kind != FS_KEY) {
		fuse_reply_err(req, EIO);
		goto out;
	}
	rc = refetch(fs, n, &val);
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		goto out;
	}
	fuse_reply_buf(req, (const char *)val + off, len);
	fs_node_cache_value(fs, n, val);
out:
	fs_node_put(fs, n);
}

static void fs_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

/* ---- directories ------------------------------------------------------- */

struct fs_dir {
	enum fs_kind kind;
	struct fs_view *view;          /* one ref; NULL for / and history/ */
	uint32_t db;
	off_t pos;                     /* number of the next entry */
	int have;                      /* name/mode hold entry `pos` */
	char name[FS_NAMES_BUFSZ];
	mode_t mode;
	struct sf_iter *it;            /* key listings */
	uint32_t it_db;
	int it_done;
	struct sf_history_entry *hist; /* history/ listing */
	size_t nhist;                  /* entries with a name, listed first */
	size_t nhist_all;              /* for sf_history_free() */
};

static void dir_reset(struct fs_dir *d)
{
	sf_iter_close(d->it);
	d->it = NULL;
	d->it_db = d->kind == FS_SHARD_KEYS ? d->db : 0;
	d->it_done = 0;
	d->pos = 0;
	d->have = 0;
}

static int dir_set(struct fs_dir *d, const char *name, int dir)
{
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->mode = dir ? S_IFDIR : S_IFREG;
	return 1;
}

/* Next key name of a key listing into d->name: 1, 0 at the end, or <0. */
static int dir_next_key(struct fs *fs, struct fs_dir *d)
{
	enum sf_key_encoding enc = d->view->info.key_encoding;
	char err[ERRLEN] = "";
	int rc;

	for (;;) {
		const uint8_t *k;
		size_t kl;
		uint64_t vlen;

		if (d->it_done)
			return 0;
		if (!d->it) {
			rc = sf_iter_open(d->view->snap, d->it_db, &d->it, err,
					  sizeof(err));
			if (rc < 0)
				goto fail;
		}
		rc = sf_iter_next(d->it, &k, &kl, &vlen, err, sizeof(err));
		if (rc == SF_NOTFOUND) {
			sf_iter_close(d->it);
			d->it = NULL;
			if (d->kind == FS_SHARD_KEYS ||
			    ++d->it_db >= d->view->info.num_dbs)
				d->it_done = 1;
			continue;
		}
		if (rc < 0)
			goto fail;
		/* Keys whose name would exceed NAME_MAX are reachable
		 * through the CLI only. */
		if (fs_names_encode(enc, k, kl, d->name, sizeof(d->name),
				    NULL) == 0) {
			d->mode = S_IFREG;
			return 1;
		}
	}
fail:
	fs_log(fs, SF_LOG_ERROR, "listing keys of shard %u: %s", d->it_db,
	       err[0] ? err : sf_strerror(rc));
	__atomic_add_fetch(&fs->n_errors, 1, __ATOMIC_RELAXED);
	return -fs_errno(rc);
}

/* Entry number d->pos into d->name/d->mode: 1, 0 at the end, or <0. */
static int dir_next(struct fs *fs, struct fs_dir *d)
{
	static const char *const root[] = {"keys", "shards", "snapshot",
					   "health", "stats", "history"};
	static const char *const hist[] = {"keys", "shards", "snapshot"};
	size_t i;

	if (d->pos == 0)
		return dir_set(d, ".", 1);
	if (d->pos == 1)
		return dir_set(d, "..", 1);
	i = (size_t)d->pos - 2;
	switch (d->kind) {
	case FS_ROOT:
		if (i >= 6)
			return 0;
		return dir_set(d, root[i], i < 2 || i == 5);
	case FS_HIST:
		if (i >= 3)
			return 0;
		return dir_set(d, hist[i], i < 2);
	case FS_SHARD:
		if (i >= 2)
			return 0;
		return dir_set(d, i == 0 ? "info" : "keys", i == 1);
	case FS_SHARDS: {
		char nm[32];

		if (i >= d->view->info.num_dbs)
			return 0;
		snprintf(nm, sizeof(nm), "db=%05zu", i);
		return dir_set(d, nm, 1);
	}
	case FS_HISTORY:
		if (i >= d->nhist)
			return 0;
		if (history_name(&d->hist[i], d->name, sizeof(d->name)) != 0)
			return -EIO;
		d->mode = S_IFDIR;
		return 1;
	case FS_KEYS:
		if (!fs->cfg.list_keys)
			return 0;
		return dir_next_key(fs, d);
	case FS_SHARD_KEYS:
		return dir_next_key(fs, d);
	default:
		return 0;
	}
}

static void fs_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fs *fs = fs_data(req);
	struct fs_node *n = fs_node_get(fs, ino);
	struct fs_dir *d;
	char err[ERRLEN] = "";
	int rc;

	if (!n) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	if (!fs_kind_is_dir(n->kind)) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	d->kind = n->kind;
	d->db = n->db;
	if (n->view) {
		d->view = n->view;
		fs_view_ref(fs, d->view);
	} else if (n->kind == FS_KEYS || n->kind == FS_SHARDS) {
		/* A listing is consistent: one view from open to close. */
		d->view = fs_view_current(fs);
	}
	if (n->kind == FS_HISTORY) {
		struct sf_history_entry *h = NULL;
		size_t cnt = 0, keep = 0;

		rc = sf_history(fs->reader, &h, &cnt, err, sizeof(err));
		if (rc < 0) {
			fs_log(fs, SF_LOG_ERROR, "listing history: %s", err);
			free(d);
			fuse_reply_err(req, fs_errno(rc));
			return;
		}
		/* Keep the entries that have a name (order preserved). */
		for (size_t i = 0; i < cnt; i++) {
			char nm[FS_NAMES_BUFSZ];

			if (history_name(&h[i], nm, sizeof(nm)) == 0) {
				struct sf_history_entry t = h[keep];

				h[keep] = h[i];
				h[i] = t;
				keep++;
			}
		}
		d->hist = h;
		d->nhist = keep;
		d->nhist_all = cnt;
	}
	dir_reset(d);
	fi->fh = (uint64_t)(uintptr_t)d;
	fuse_reply_open(req, fi);
}

static void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct fs *fs = fs_data(req);
	struct fs_dir *d = (struct fs_dir *)(uintptr_t)fi->fh;
	char *buf = NULL;
	size_t used = 0;
	int rc = 0;

	(void)ino;
	buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (off != d->pos) {
		/* seekdir/rewinddir: replay the listing up to off. */
		dir_reset(d);
		while (d->pos < off) {
			rc = dir_next(fs, d);
			if (rc <= 0)
				break;
			d->pos++;
		}
		if (rc < 0)
			goto out;
		rc = 0;
	}
	for (;;) {
		struct stat st;
		size_t sz;

		if (!d->have) {
			rc = dir_next(fs, d);
			if (rc <= 0)
				break;
			d->have = 1;
		}
		memset(&st, 0, sizeof(st));
		st.st_ino = (ino_t)(FS_INO_FIRST + (uint64_t)d->pos);
		st.st_mode = d->mode;
		sz = fuse_add_direntry(req, buf + used, size - used, d->name,
				       &st, d->pos + 1);
		if (sz > size - used)
			break;
		used += sz;
		d->pos++;
		d->have = 0;
	}
out:
	if (rc < 0 && used == 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_buf(req, buf, used);
	free(buf);
}

static void fs_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct fs *fs = fs_data(req);
	struct fs_dir *d = (struct fs_dir *)(uintptr_t)fi->fh;

	(void)ino;
	if (d) {
		sf_iter_close(d->it);
		if (d->hist)
			sf_history_free(d->hist, d->nhist_all);
		if (d->view)
			fs_view_unref(fs, d->view);
		free(d);
	}
	fuse_reply_err(req, 0);
}

/* ---- extended attributes ----------------------------------------------- */

#define XA_PREFIX "user.shardyfs."

static const char root_xattrs[] = XA_PREFIX "pid\0" XA_PREFIX
	"refresh_count\0" XA_PREFIX "generation\0" XA_PREFIX "last_refresh";
static const char key_xattrs[] = XA_PREFIX "shard\0" XA_PREFIX
	"run_id\0" XA_PREFIX "key_hex";

static void reply_xattr_value(fuse_req_t req, const char *val, size_t len,
			      size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, val, len);
}

static void fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	struct fs *fs = fs_data(req);
	struct fs_node *n = fs_node_get(fs, ino);
	char small[512], *val = small;
	size_t len = 0;

	if (!n) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	if (strncmp(name, XA_PREFIX, strlen(XA_PREFIX)) != 0)
		goto nodata;
	name += strlen(XA_PREFIX);
	if (n->kind == FS_ROOT) {
		pthread_mutex_lock(&fs->mu);
		if (!strcmp(name, "pid"))
			len = (size_t)snprintf(small, sizeof(small), "%ld",
					       (long)getpid());
		else if (!strcmp(name, "refresh_count"))
			len = (size_t)snprintf(small, sizeof(small), "%llu",
				(unsigned long long)fs->refresh_count);
		else if (!strcmp(name, "generation"))
			len = (size_t)snprintf(small, sizeof(small), "%llu",
				(unsigned long long)fs->current->info.generation);
		else if (!strcmp(name, "last_refresh"))
			len = (size_t)snprintf(small, sizeof(small), "%s",
					       fs->last_refresh);
		pthread_mutex_unlock(&fs->mu);
		if (len == 0)
			goto nodata;
	} else if (n->kind == FS_KEY) {
		if (!strcmp(name, "shard")) {
			len = (size_t)snprintf(small, sizeof(small), "%u",
					       n->db);
		} else if (!strcmp(name, "run_id")) {
			const char *r = n->view->info.run_id;

			len = (size_t)snprintf(small, sizeof(small), "%s",
					       r ? r : "");
		} else if (!strcmp(name, "key_hex")) {
			val = malloc(2 * n->klen + 1);
			if (!val) {
				fuse_reply_err(req, ENOMEM);
				return;
			}
			fs_names_hex(n->key, n->klen, val);
			len = 2 * n->klen;
		} else {
			goto nodata;
		}
	} else {
		goto nodata;
	}
	if (len >= sizeof(small) && val == small)
		len = sizeof(small) - 1;
	reply_xattr_value(req, val, len, size);
	if (val != small)
		free(val);
	return;
nodata:
	fuse_reply_err(req, ENODATA);
}

static void fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs *fs = fs_data(req);
	struct fs_node *n = fs_node_get(fs, ino);

	if (!n) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	if (n->kind == FS_ROOT)
		reply_xattr_value(req, root_xattrs, sizeof(root_xattrs), size);
	else if (n->kind == FS_KEY)
		reply_xattr_value(req, key_xattrs, sizeof(key_xattrs), size);
	else
		reply_xattr_value(req, "", 0, size);
}

/* ---- the rest ---------------------------------------------------------- */

static void fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fs_data(req);
	struct fs_view *v = fs_view_current(fs);
	struct statvfs sv;

	(void)ino;
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_blocks = (fsblkcnt_t)((v->info.total_bytes + 4095) / 4096);
	sv.f_files = (fsfilcnt_t)v->info.total_rows;
	sv.f_namemax = FS_NAMES_MAX;
	sv.f_flag = ST_RDONLY;
	fs_view_unref(fs, v);
	fuse_reply_statfs(req, &sv);
}

static void fs_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fs *fs = userdata;

	/* Reads need no file handle: let the kernel skip OPEN entirely. */
	fs->no_open = (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT) != 0;
	/* Inodes are immutable: never drop cached pages on attr changes. */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	if (conn->capable & FUSE_CAP_EXPLICIT_INVAL_DATA)
		conn->want |= FUSE_CAP_EXPLICIT_INVAL_DATA;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	/* We implement readdir only; readdirplus would cost a lookup each. */
	conn->want &= ~(FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO);
	fs_log(fs, SF_LOG_INFO, "FUSE protocol %u.%u, zero-message opens %s",
	       conn->proto_major, conn->proto_minor,
	       fs->no_open ? "on" : "off");
}

static void fs_erofs(fuse_req_t req)
{
	fuse_reply_err(req, EROFS);
}

static void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	fs_erofs(req);
}

static void fs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	fs_erofs(req);
}

static void fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	fs_erofs(req);
}

static void fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fs_erofs(req);
}

static void fs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	fs_erofs(req);
}

static void fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	fs_erofs(req);
}

static void fs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	fs_erofs(req);
}

static void fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	fs_erofs(req);
}

static void fs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	fs_erofs(req);
}

static void fs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	fs_erofs(req);
}

static void fs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fs_erofs(req);
}

static void fs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode,
			 off_t offset, off_t length, struct fuse_file_info *fi)
{
	fs_erofs(req);
}

const struct fuse_lowlevel_ops fs_ops = {
	.init = fs_init,
	.lookup = fs_lookup,
	.forget = fs_forget,
	.forget_multi = fs_forget_multi,
	.getattr = fs_getattr,
	.setattr = fs_setattr,
	.mknod = fs_mknod,
	.mkdir = fs_mkdir,
	.unlink = fs_unlink,
	.rmdir = fs_unlink,
	.symlink = fs_symlink,
	.rename = fs_rename,
	.link = fs_link,
	.open = fs_open,
	.read = fs_read,
	.write = fs_write,
	.release = fs_release,
	.opendir = fs_opendir,
	.readdir = fs_readdir,
	.releasedir = fs_releasedir,
	.statfs = fs_statfs,
	.setxattr = fs_setxattr,
	.getxattr = fs_getxattr,
	.listxattr = fs_listxattr,
	.removexattr = fs_removexattr,
	.create = fs_create,
	.fallocate = fs_fallocate,
};
