#!/usr/bin/env bash
# demo.sh -- installs dependencies, builds shardyfs, publishes a sample
# snapshot into a local directory (file://, no cloud needed), reads keys
# from it with the CLI, then mounts it and reads a key with cat.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
bash packaging/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSF_TESTS=OFF >/dev/null
cmake --build build -j"${JOBS:-2}" --target shardyfs >/dev/null
sf=$top/build/shardyfs

demo=$top/demo
rm -rf "$demo/snapshot" "$demo/cache"
mkdir -p "$demo/mnt"
# 10,000 users: key user-N, value a small JSON document.
awk 'BEGIN { for (i = 0; i < 10000; i++)
	printf "user-%d\t{\"id\": %d, \"name\": \"User %d\", \"plan\": \"%s\"}\n", i, i, i, (i % 3 ? "free" : "pro") }' \
	>"$demo/users.tsv"
prefix="file://$demo/snapshot"
export XDG_CACHE_HOME=$demo/cache

echo "== shardyfs build $prefix (4 shards, utf8 keys)"
"$sf" build "$prefix" --input "$demo/users.tsv" --num-dbs 4 --key-encoding utf8
echo "== shardyfs get $prefix user-123"
"$sf" get "$prefix" user-123; echo
echo "== shardyfs info"
"$sf" info "$prefix"
echo "== shardyfs route user-123"
"$sf" route "$prefix" user-123

if [ -e /dev/fuse ] && command -v fusermount3 >/dev/null; then
	mountpoint -q "$demo/mnt" && fusermount3 -u "$demo/mnt"
	echo "== shardyfs mount $prefix $demo/mnt"
	"$sf" mount "$prefix" "$demo/mnt"
	for _ in $(seq 50); do mountpoint -q "$demo/mnt" && break; sleep 0.1; done
	echo "== cat $demo/mnt/keys/user-123"
	cat "$demo/mnt/keys/user-123"; echo
	echo "== ls -l $demo/mnt/shards"
	ls -l "$demo/mnt/shards"
	fusermount3 -u "$demo/mnt"
else
	echo "(no /dev/fuse here: skipping the mount part of the demo)"
fi
