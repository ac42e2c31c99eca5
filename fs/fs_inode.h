/*
 * fs_inode.h -- the mount's state: views (pinned snapshots), the inode
 * table, and the options the daemon runs with. Shared by fs_main.c (setup,
 * refresh thread), fs_ops.c (the FUSE operations), fs_inode.c (tables) and
 * fs_files.c (rendering of the JSON files).
 *
 * Contract: fs/ uses only the public API (shardyfs.h), libfuse3 and uthash.
 *
 * The model. A *view* is one pinned snapshot: the reader's current one, or
 * an older manifest opened for history/. An *inode* (struct fs_node) stands
 * for one thing in one view -- (view, key), (view, shard), ... -- so its
 * content and attributes never change and the kernel may cache them for a
 * day. A refresh installs a new current view, then (from the refresh
 * thread) invalidates the names the kernel may cache for the old one: each
 * name recorded for its live inodes under the stable directories, then the
 * top-level names keys, shards, snapshot and history, which drops every
 * unused name below them (negative ones too). New lookups get new inodes
 * from the new view; files already open keep their old inode and so their
 * old snapshot. A view is freed (its snapshot released) when its last
 * inode is forgotten by the kernel.
 *
 * Locking: fs->mu protects the tables, every view's refs/inflight, every
 * node's nlookup and data/cached fields, the value-cache byte count and the
 * refresh status. It is never held across a lookup in the snapshot, a
 * manifest open, or a call into libfuse that writes to /dev/fuse.
 */
#ifndef SF_FS_INODE_H
#define SF_FS_INODE_H

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <uthash.h>

#include "shardyfs.h"

/* Stable inode numbers (never forgotten). */
#define FS_INO_ROOT 1     /* == FUSE_ROOT_ID */
#define FS_INO_KEYS 2     /* keys/ of the current view */
#define FS_INO_SHARDS 3   /* shards/ of the current view */
#define FS_INO_HISTORY 4  /* history/ */
#define FS_INO_FIRST 16   /* first number handed to a dynamic node */

/* Kernel cache lifetime of immutable names and attributes (seconds). */
#define FS_TTL_LONG 86400.0

enum fs_kind {
	FS_ROOT,
	FS_KEYS,        /* keys/ (view NULL: the current view) */
	FS_SHARDS,      /* shards/ (view NULL: the current view) */
	FS_HISTORY,     /* history/ */
	FS_SHARD,       /* shards/db=NNNNN/ */
	FS_SHARD_KEYS,  /* shards/db=NNNNN/keys/ */
	FS_HIST,        /* history/<TS>_run_id=<RUN>/ */
	FS_KEY,         /* a value */
	FS_SNAPSHOT,    /* snapshot (JSON, per view) */
	FS_SHARD_INFO,  /* shards/db=NNNNN/info (JSON, rendered per lookup) */
	FS_HEALTH,      /* health (JSON, rendered per lookup) */
	FS_STATS,       /* stats (JSON, rendered per lookup) */
};

/* The directory kinds come first in enum fs_kind. */
static inline int fs_kind_is_dir(enum fs_kind k)
{
	return k <= FS_HIST;
}

struct fs_view {
	struct sf_snapshot *snap;      /* one reference, owned */
	struct sf_snapshot_info info;  /* strings borrowed from snap */
	char *ref;                     /* manifest ref (history views), owned */
	unsigned long refs;            /* protected by fs->mu */
	unsigned long inflight;        /* lookups resolving in it; fs->mu */
	int history;                   /* opened for history/ */
	struct fs_view *next;          /* fs->hist_views; fs->mu */
};

/* A name under which the kernel may cache a node (see fs_node_note_name). */
struct fs_name {
	struct fs_name *next;
	fuse_ino_t parent;
	char name[];
};

struct fs_node {
	fuse_ino_t ino;
	uint64_t nlookup;              /* protected by fs->mu */
	enum fs_kind kind;
	struct fs_view *view;          /* one ref; NULL for stable nodes */
	uint32_t db;                   /* shard: its id; key: the shard it routes to */
	uint8_t *key;                  /* stored key bytes (FS_KEY), owned */
	size_t klen;
	char *data;                    /* content or NULL (see cache_value); fs->mu */
	uint64_t size;                 /* file size (content length) */
	int cached;                    /* data counts against the value budget */
	double mtime;
	struct fs_name *names;         /* names under stable dirs; fs->mu */
	char *id;                      /* identity for dedup, or NULL; owned */
	size_t idlen;
	unsigned busy;                 /* handlers holding it; fs->mu */
	int gone;                      /* forgotten while busy; fs->mu */
	UT_hash_handle hh;             /* fs->by_ino */
	UT_hash_handle hid;            /* fs->by_id */
};

struct fs_cfg {
	char *source;
	char *mountpoint;
	int foreground;
	int debug;
	int list_keys;
	int allow_other;
	int no_sign_request;
	uid_t uid;
	gid_t gid;
	mode_t umask;
	double refresh_s;              /* polling interval; 0 = off */
	double staleness_s;
	uint64_t cache_bytes;          /* 0 = library default */
	uint64_t value_cache;          /* value bytes kept in the daemon */
	enum sf_access_mode access;
	enum sf_log_level log_level;
	char *endpoint, *region, *profile, *cache_dir;
};

struct fs {
	struct fs_cfg cfg;
	struct sf_reader *reader;
	struct fuse_session *se;
	int no_open;                   /* kernel does opens without us */
	double start_time;
	int use_syslog;

	pthread_mutex_t mu;
	pthread_cond_t cond;           /* inflight drops to 0, refresh done */
	struct fs_node *by_ino;        /* fs->mu */
	struct fs_node *by_id;         /* fs->mu */
	uint64_t next_ino;             /* fs->mu */
	struct fs_view *current;       /* fs->mu; holds one ref */
	struct fs_view *hist_views;    /* fs->mu; no ref of their own */
	uint64_t cached_bytes;         /* fs->mu */
	uint64_t nodes;                /* fs->mu */

	/* Refresh status; fs->mu. */
	uint64_t refresh_count;
	char last_refresh[256];

	/* Counters of the fs layer (atomic adds). */
	uint64_t n_lookups, n_negative, n_errors, n_reads, n_refetch;

	int wake_fd[2];                /* SIGHUP / stop -> refresh thread */
	volatile int stopping;
};

/* Allocation in the daemon: out of memory is fatal only at setup time;
 * request paths reply ENOMEM instead. */

/* ---- logging (fs_main.c) ---------------------------------------------- */
void fs_log(struct fs *fs, enum sf_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- views (fs_inode.c) ----------------------------------------------- */

/* Wraps a snapshot reference (taken over) into a view with refs = 1.
 * Returns NULL on ENOMEM (the reference is then released). */
struct fs_view *fs_view_new(struct sf_snapshot *snap);
/* Current view with a reference and an in-flight mark: pair with
 * fs_view_leave() once the reply has been sent. */
struct fs_view *fs_view_enter(struct fs *fs);
void fs_view_leave(struct fs *fs, struct fs_view *v);
/* Current view with a reference (no in-flight mark). */
struct fs_view *fs_view_current(struct fs *fs);
void fs_view_ref(struct fs *fs, struct fs_view *v);
void fs_view_unref(struct fs *fs, struct fs_view *v);
/* History view for a manifest ref, opened on first use; a new reference. */
int fs_view_history(struct fs *fs, const char *ref, struct fs_view **out,
		    char *err, size_t errlen);

/* ---- nodes (fs_inode.c) ----------------------------------------------- */

int fs_tables_init(struct fs *fs);
/* Frees every node and view (at unmount; no request in flight). */
void fs_tables_free(struct fs *fs);

/*
 * Inserts a node built by the caller (kind, view, db, key, data, size,
 * mtime; the node and its key/data become owned by the table) and counts
 * one kernel lookup. With `dedup`, a node of the same identity already in
 * the table is reused instead (its nlookup is incremented and `n` is freed).
 * The node takes its own reference on n->view. Returns the node in the
 * table (valid until forgotten) or NULL on ENOMEM (`n` is freed).
 */
struct fs_node *fs_node_add(struct fs *fs, struct fs_node *n, int dedup);
/* The node of that identity, if the table has one, with one more kernel
 * lookup counted; NULL otherwise. */
struct fs_node *fs_node_reuse(struct fs *fs, enum fs_kind kind,
			      struct fs_view *v, uint32_t db,
			      const uint8_t *key, size_t klen);
/* Node for an inode number the kernel knows, or NULL. Valid until the
 * request's reply is sent: the kernel may forget the inode as soon as it
 * has the reply (see fs_node_hold). */
struct fs_node *fs_node_get(struct fs *fs, fuse_ino_t ino);
/*
 * Like fs_node_get, but the node (its data and view included) stays valid
 * past the reply, until fs_node_put(): for handlers that reply from the
 * node's memory or touch it after replying (reads). A node forgotten
 * meanwhile is freed by the last fs_node_put().
 */
struct fs_node *fs_node_hold(struct fs *fs, fuse_ino_t ino);
void fs_node_put(struct fs *fs, struct fs_node *n);
/* The kernel forgot `nlookup` lookups of ino. */
void fs_node_forget(struct fs *fs, fuse_ino_t ino, uint64_t nlookup);
/* Stores a value (from sf_snapshot_get) in a key node (held, see
 * fs_node_hold) if the value budget allows and the node is not forgotten;
 * takes `data` (sf_free'd if not stored or if another thread stored one
 * first). Key node data is always library memory (sf_free); the data
 * of every other node is malloc'd. */
void fs_node_cache_value(struct fs *fs, struct fs_node *n, char *data);

/*
 * Records that the kernel is about to cache `name` in directory `parent`
 * for inode `ino` (called before the lookup reply, so the node cannot be
 * forgotten meanwhile). Only names in the stable directories (/, keys/,
 * shards/) are recorded: they are the ones a refresh must invalidate one by
 * one, because the kernel re-attaches a stable directory's surviving
 * (in-use) children when the directory is looked up again.
 */
void fs_node_note_name(struct fs *fs, fuse_ino_t ino, fuse_ino_t parent,
		       const char *name);
/* Copies out every name recorded for nodes of view v: *out is an array of
 * *n malloc'd fs_name entries (free each and the array). */
int fs_view_names(struct fs *fs, struct fs_view *v, struct fs_name ***out,
		  size_t *n);

/* stat of a node. */
void fs_node_stat(struct fs *fs, const struct fs_node *n, struct stat *st);

/* ---- rendering (fs_files.c) ------------------------------------------- */

/* Each returns malloc'd NUL-terminated JSON (with a trailing newline) or
 * NULL on ENOMEM; *len gets its length. */
char *fs_render_snapshot(struct fs *fs, struct fs_view *v, size_t *len);
char *fs_render_shard(struct fs *fs, struct fs_view *v, uint32_t db,
		      size_t *len);
char *fs_render_health(struct fs *fs, size_t *len);
char *fs_render_stats(struct fs *fs, size_t *len);

/* ---- operations (fs_ops.c) -------------------------------------------- */

extern const struct fuse_lowlevel_ops fs_ops;
/* Maps a library code to an errno for a reply (one place for the rule:
 * not found and "not a key" are ENOENT, ENOMEM stays, the rest is EIO). */
int fs_errno(int code);

#endif
