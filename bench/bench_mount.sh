#!/usr/bin/env bash
# bench_mount.sh -- open+read+close through a mounted snapshot, against the
# same bytes in tmpfs (the limit), and lookups that the daemon serves from
# its warm library cache while the kernel has never seen (or has dropped)
# the names.
#
#   bench_mount.sh --endpoint URL --bucket BUCKET --cli SHARDYFS
#                  --fsread BENCH_FSREAD --lookup BENCH_LOOKUP
#                  [--keys N] [--hot N] [--secs S]
#                  [--workdir DIR] [--access auto|range|download]
#                  [--no-drop-caches]
#
# The snapshot s3://BUCKET/lookup must be the one bench_lookup builds (keys
# "user-%07d", 1% big values at index % 100 == 7, which are left out).
# The mount is `shardyfs mount PREFIX DIR -f -o access=MODE` in the
# background, otherwise with the daemon's defaults, straight to the endpoint (no delay proxy: every
# figure here except the first pass is served without the network).
#
# Methods (printed with the figures):
#   hot           names opened before: the kernel answers from its dentry,
#                 attribute and page caches (the mount's TTLs are a day);
#                 the daemon should see no lookups or reads.
#   neighbours    for every hot key, the next small-value key of the same
#                 shard, never opened through the mount: a fresh name for
#                 the kernel (one FUSE LOOKUP each), whose B-tree leaf the
#                 library almost always fetched already for the hot key
#                 (range mode), or whose shard it downloaded (download).
#   drop_caches   `echo 2 > /proc/sys/vm/drop_caches` drops every unused
#                 dentry and inode (machine-wide, and root only), so the
#                 kernel forgets the hot names and their pages; the daemon
#                 still holds the library's cache. Then one pass over the
#                 hot names. Skipped with --no-drop-caches or when the file
#                 is not writable.
# For each pass the daemon's own counters (the mount's `stats` file) give
# FUSE lookups and library requests during it, so the reader can check that
# the pass measured what it says (lookups = names, requests = 0).
set -euo pipefail

endpoint='' bucket=bench cli='' fsread='' lookup=''
keys=300000 hot=2000 secs=1 workdir='' drop=1 access=auto
while [ $# -gt 0 ]; do
	case "$1" in
	--endpoint) endpoint=$2; shift 2 ;;
	--bucket) bucket=$2; shift 2 ;;
	--lookup) lookup=$2; shift 2 ;;
	--cli) cli=$2; shift 2 ;;
	--fsread) fsread=$2; shift 2 ;;
	--keys) keys=$2; shift 2 ;;
	--hot) hot=$2; shift 2 ;;
	--secs) secs=$2; shift 2 ;;
	--workdir) workdir=$2; shift 2 ;;
	--access) access=$2; shift 2 ;;
	--no-drop-caches) drop=0; shift ;;
	*) echo "bench_mount.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
if [ -z "$endpoint" ] || [ -z "$cli" ] || [ -z "$fsread" ] || [ -z "$lookup" ]; then
	echo "usage: bench_mount.sh --endpoint URL --cli SHARDYFS --fsread BENCH_FSREAD --lookup BENCH_LOOKUP [...]" >&2
	exit 2
fi
prefix=s3://$bucket/lookup
if ! "$cli" --help 2>&1 | grep -q '^  mount'; then
	echo "bench_mount.sh: $cli has no 'mount' command (built without libfuse3?): skipped"
	exit 0
fi
if [ ! -e /dev/fuse ]; then
	echo "bench_mount.sh: no /dev/fuse: skipped"
	exit 0
fi

own_workdir=0
if [ -z "$workdir" ]; then
	workdir=$(mktemp -d /tmp/sf-bench-mount.XXXXXX)
	own_workdir=1
fi
mnt=$workdir/mnt
shm=$(mktemp -d /dev/shm/sf-bench.XXXXXX)
mkdir -p "$mnt"
daemon_pid=''

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	if mountpoint -q "$mnt" 2>/dev/null; then
		fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
	fi
	if [ -n "$daemon_pid" ]; then
		kill "$daemon_pid" 2>/dev/null || true
		wait "$daemon_pid" 2>/dev/null || true
	fi
	rm -rf "$shm"
	rmdir "$mnt" 2>/dev/null || true
	[ "$own_workdir" = 1 ] && rm -rf "$workdir"
	return 0
}
trap cleanup EXIT

AWS_ENDPOINT_URL=$endpoint AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench \
	AWS_REGION=us-east-1 "$cli" mount "$prefix" "$mnt" -f \
	-o "access=$access,cache_dir=$workdir/mount-cache" \
	>"$workdir/mount.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 1 300); do
	mountpoint -q "$mnt" && [ -e "$mnt/keys" ] && break
	if ! kill -0 "$daemon_pid" 2>/dev/null; then
		echo "bench_mount.sh: the mount failed:" >&2
		cat "$workdir/mount.log" >&2
		exit 1
	fi
	sleep 0.1
done
if ! mountpoint -q "$mnt"; then
	echo "bench_mount.sh: $mnt did not come up in 30 s" >&2
	cat "$workdir/mount.log" >&2
	exit 1
fi

# Hot names: random small-value keys; neighbours: for each hot key, its
# successor in the same shard (bench_lookup --lists routes them).
"$lookup" --endpoint "$endpoint" --bucket "$bucket" --keys "$keys" \
	--hot "$hot" --lists "$workdir"

# "lookups=A reads=B requests=C" from the daemon's stats file.
daemon_counts() {
	python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
req = sum(s.get(k, 0) for k in ("get_requests", "range_requests", "head_requests", "list_requests"))
f = s.get("fs", {})
print(f.get("lookups", 0), f.get("reads", 0), req)' "$mnt/stats"
}
# Runs a bench_fsread pass and prints the daemon's activity during it.
pass() {
	local before after rc=0
	before=$(daemon_counts)
	"$fsread" "$@" || rc=$?
	after=$(daemon_counts)
	python3 -c '
import sys
b = list(map(int, sys.argv[1].split())); a = list(map(int, sys.argv[2].split()))
print("%-48s daemon saw: %d FUSE lookups, %d reads, %d store requests" % ("", a[0]-b[0], a[1]-b[1], a[2]-b[2]))' "$before" "$after"
	return $rc
}

nhot=$(wc -l <"$workdir/hot.list")
nnb=$(wc -l <"$workdir/neighbours.list")
echo
echo "Mount: $prefix at $mnt (-o access=$access, no delay); $nhot hot keys, $nnb neighbours"
echo "tmpfs twin: $shm ($(stat -f -c %T /dev/shm))"
mode=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("access_mode","?"))' "$mnt/snapshot" 2>/dev/null || echo "?")
echo "snapshot access mode in the daemon: $mode"
echo
status=0
pass --once --label "first open of each hot name (all cold)" "$mnt/keys" "$workdir/hot.list" || status=1
"$fsread" --copy-to "$shm" "$mnt/keys" "$workdir/hot.list" || status=1
pass --threads 2 --secs "$secs" --label "hot names through the mount" "$mnt/keys" "$workdir/hot.list" || status=1
"$fsread" --threads 2 --secs "$secs" --label "same bytes in tmpfs (the limit)" "$shm" "$workdir/hot.list" || status=1
pass --once --label "neighbours (daemon warm, kernel never saw)" "$mnt/keys" "$workdir/neighbours.list" || status=1
if [ "$drop" = 1 ] && [ -w /proc/sys/vm/drop_caches ]; then
	for r in 1 2 3; do
		echo 2 >/proc/sys/vm/drop_caches
		pass --once --label "hot names after drop_caches #$r" "$mnt/keys" "$workdir/hot.list" || status=1
	done
else
	echo "drop_caches method skipped (--no-drop-caches or not root)"
fi
exit $status
