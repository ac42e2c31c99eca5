#!/usr/bin/env bash
# run.sh -- builds the tree for benchmarking (Release, no sanitizers, in
# build-bench/ at the top of the repository), starts a private moto S3
# server on a free port (signature checking off: any key works), then runs
# bench_lookup (library modes and local baselines) and bench_mount.sh
# (the FUSE mount), printing every figure. See bench/README.md.
#
#   bench/run.sh [--keys N] [--delay-ms N] [--cold N] [--hot N]
#                [--warm-secs S] [--no-mount] [--no-drop-caches]
#                [--build-dir DIR]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=$root/build-bench
keys=300000 delay=0 cold=50 hot=1000 warm=1 mount=1 drop=
while [ $# -gt 0 ]; do
	case "$1" in
	--keys) keys=$2; shift 2 ;;
	--delay-ms) delay=$2; shift 2 ;;
	--cold) cold=$2; shift 2 ;;
	--hot) hot=$2; shift 2 ;;
	--warm-secs) warm=$2; shift 2 ;;
	--no-mount) mount=0; shift ;;
	--no-drop-caches) drop=--no-drop-caches; shift ;;
	--build-dir) build=$2; shift 2 ;;
	-h|--help) sed -n '2,11p' "$0"; exit 0 ;;
	*) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done

echo "== building (Release, no sanitizers) in $build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSF_SANITIZE= \
	-DSF_WERROR=OFF -DSF_TESTS=OFF -DSF_BENCH=ON >/dev/null
cmake --build "$build" -j2 --target bench_lookup delay_proxy bench_fsread shardyfs \
	2>&1 | grep -E 'error|Error' || true
for t in bench/bench_lookup bench/delay_proxy bench/bench_fsread; do
	[ -x "$build/$t" ] || { echo "run.sh: $build/$t was not built" >&2; exit 1; }
done

command -v moto_server >/dev/null || { echo "run.sh: moto_server not found (pip install 'moto[server]')" >&2; exit 1; }
work=$(mktemp -d /tmp/sf-bench.XXXXXX)
moto_pid=
cleanup() {
	if [ -n "$moto_pid" ]; then
		kill "$moto_pid" 2>/dev/null || true
		wait "$moto_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
ep=http://127.0.0.1:$port
for _ in $(seq 1 100); do
	curl -s -o /dev/null "$ep" && break
	sleep 0.1
done
curl -sf -X PUT "$ep/bench" >/dev/null || { echo "run.sh: cannot create bucket on $ep" >&2; cat "$work/moto.log" >&2; exit 1; }
echo "== moto_server on $ep (pid $moto_pid), workdir $work"

t0=$(date +%s)
echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs; figures are noisy when the machine is busy)"
echo "== bench_lookup: $keys keys, 8 shards, delay ${delay} ms"
"$build/bench/bench_lookup" --endpoint "$ep" --bucket bench --workdir "$work" \
	--keys "$keys" --shards 8 --delay-ms "$delay" --cold "$cold" \
	--hot "$hot" --warm-secs "$warm"

if [ "$mount" = 1 ]; then
	for access in range download; do
		echo
		echo "== bench_mount (-o access=$access)"
		"$here/bench_mount.sh" --endpoint "$ep" --bucket bench \
			--cli "$build/shardyfs" --fsread "$build/bench/bench_fsread" \
			--lookup "$build/bench/bench_lookup" \
			--keys "$keys" --secs "$warm" --workdir "$work" \
			--access "$access" $drop ||
			echo "bench_mount.sh failed (status $?)"
	done
fi
echo
echo "== done in $(( $(date +%s) - t0 )) s; load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
