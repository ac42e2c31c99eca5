#!/usr/bin/env bash
# deps.sh -- installs every Debian package shardyfs needs to build, test,
# fuzz and mount, and checks for the S3 test server (moto_server).
# Idempotent; run as root (or with sudo available).
set -euo pipefail

pkgs=(build-essential cmake pkg-config clang libclang-rt-dev
      libfuse3-dev fuse3 libsqlite3-dev sqlite3 libcurl4-openssl-dev
      libssl-dev libxxhash-dev libzstd-dev zstd libcriterion-dev
      libjansson-dev uthash-dev attr curl python3 procps)

SUDO=
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi

missing=()
for p in "${pkgs[@]}"; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The S3 test server and the aws CLI (used to create its IAM test user).
if ! command -v moto_server >/dev/null 2>&1 || ! command -v aws >/dev/null 2>&1; then
	echo "deps: moto_server/aws not found, trying pip"
	python3 -m pip install --quiet 'moto[server]' awscli ||
		{ echo "deps: could not install moto[server]; integration tests need it" >&2; exit 1; }
fi
echo "deps: ok"
