#!/usr/bin/env bash
# run.sh [SECONDS] -- builds the libFuzzer targets with clang (ASan+UBSan,
# coverage on every library) and runs each for SECONDS (default 60) from a
# scratch copy of its corpus. Interesting new inputs are left in
# build-fuzz/corpus/NAME; copy the ones worth keeping (and any crash-*
# reproducer) into tests/fuzz/corpus/NAME so the ordinary test suite
# replays them.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-60}
CC=clang cmake -S . -B build-fuzz -DSF_FUZZ=ON -DSF_SANITIZE=address,undefined \
	-DSF_BENCH=OFF >/dev/null
targets=$(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$//')
# shellcheck disable=SC2086
cmake --build build-fuzz -j"${JOBS:-2}" --target $targets
for t in $targets; do
	mkdir -p "build-fuzz/corpus/$t"
	cp -n tests/fuzz/corpus/"$t"/* "build-fuzz/corpus/$t/" 2>/dev/null || true
	dict=()
	[ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
	echo "== $t ($secs s)"
	"build-fuzz/tests/$t" -max_total_time="$secs" -max_len=1048576 \
		"${dict[@]}" "build-fuzz/corpus/$t" 2>&1 | grep -E 'DONE|ERROR|SUMMARY' || true
done
