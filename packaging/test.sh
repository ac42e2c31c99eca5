#!/usr/bin/env bash
# test.sh -- the whole test suite: installs dependencies (packaging/deps.sh;
# SF_SKIP_DEPS=1 skips that), builds with AddressSanitizer +
# UndefinedBehaviorSanitizer and warnings as errors, runs every ctest label
# (unit, integration against moto on 127.0.0.1, fuse on real mounts, fuzz
# corpus replays), then a ThreadSanitizer build of the threaded parts.
# Exit status is non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${SF_SKIP_DEPS:-0}" = 1 ] || bash packaging/deps.sh
jobs=${JOBS:-2}
build=${BUILD_DIR:-build-test}

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DSF_SANITIZE=address,undefined -DSF_WERROR=ON >/dev/null
cmake --build "$build" -j"$jobs"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
(cd "$build" && ctest --output-on-failure -j"$jobs" --timeout 1200)

# ThreadSanitizer over the threaded parts: the stress programs (plain
# executables; Criterion's runner itself does not start under TSan).
if [ "${SF_SKIP_TSAN:-0}" != 1 ]; then
	tbuild="$build-tsan"
	cmake -S . -B "$tbuild" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DSF_SANITIZE=thread -DSF_WERROR=ON -DSF_BENCH=OFF >/dev/null
	cmake --build "$tbuild" -j"$jobs" --target stress_reader
	export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
	(cd "$tbuild" && ctest --output-on-failure -L stress)
fi
