/*
 * sffs.h -- entry points of the shardyfs FUSE mount, called by the CLI
 * dispatcher (core/cli/main.c).
 *
 * Contract: the mount is a thin adapter over the public API (shardyfs.h)
 * and the libfuse3 low-level API. Both functions exist only in builds with
 * libfuse3 (the CLI target then has SF_HAVE_FUSE=1); without it, the fs/
 * sources (but fs_names.c) are not compiled and the CLI must not reference
 * them.
 */
#ifndef SF_SFFS_H
#define SF_SFFS_H

/*
 * `shardyfs mount SOURCE MOUNTPOINT [-f] [-d] [-o opt[,opt...]]`.
 * argv[0] is "mount". Opens the snapshot, mounts it read-only and serves
 * until unmounted (fusermount3 -u / umount) or signalled (SIGINT, SIGTERM;
 * SIGHUP refreshes). Daemonizes unless -f/-d: the calling process then
 * returns only once the mount is up (0) or has failed (1, error on stderr).
 * Returns the process exit status (0, 1 on failure, 2 on a usage error).
 */
int sffs_main(int argc, char **argv);

/*
 * `shardyfs refresh MOUNTPOINT`: asks the daemon serving MOUNTPOINT to
 * re-read _CURRENT now and waits (up to 60 s) for the outcome, which it
 * prints. argv[0] is "refresh". Mechanism: the daemon answers the xattrs
 * user.shardyfs.pid and user.shardyfs.refresh_count on the mount root; this
 * sends SIGHUP to that pid and waits for the count to grow, then prints
 * user.shardyfs.last_refresh. Returns 0 when the refresh succeeded (changed
 * or not), 1 when it failed or the daemon did not answer, 2 on usage.
 */
int sffs_refresh_main(int argc, char **argv);

#endif
