#!/usr/bin/env bash
# check_exports.sh LIB -- the shared library exports only the public sf_*
# API (everything else is built with -fvisibility=hidden).
set -euo pipefail
lib=${1:?libshardyfs.so}
bad=$(nm -D --defined-only "$lib" | awk '$2 ~ /[TDBRW]/ {print $3}' |
	grep -vE '^(sf_|_init$|_fini$|_edata$|_end$|__bss_start$)' || true)
if [ -n "$bad" ]; then
	echo "non-sf_ symbols exported from $lib:" >&2
	echo "$bad" >&2
	exit 1
fi
n=$(nm -D --defined-only "$lib" | grep -c ' T sf_')
echo "$lib exports $n sf_* functions and nothing else"
[ "$n" -gt 30 ]
