#!/usr/bin/env bash
# moto.sh start|stop BUILD_DIR -- the `moto` ctest fixture.
#
# start: launches moto_server on 127.0.0.1 on a free port with signature
# checking on (INITIAL_NO_AUTH_ACTION_COUNT lets the IAM setup through),
# creates an IAM user with an access key, and writes BUILD_DIR/moto.env:
#   SF_TEST_S3_ENDPOINT=http://127.0.0.1:PORT
#   SF_TEST_S3_KEY=...  SF_TEST_S3_SECRET=...  SF_TEST_S3_REGION=us-east-1
# stop: kills the server and removes moto.env.
# A missing moto_server is a hard failure: tests must not pass silently.
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?build dir}
env_file="$dir/moto.env"
pid_file="$dir/moto.pid"
log_file="$dir/moto.log"

case "$cmd" in
stop)
	if [ -f "$pid_file" ]; then
		kill "$(cat "$pid_file")" 2>/dev/null || true
		rm -f "$pid_file"
	fi
	rm -f "$env_file"
	exit 0
	;;
start) ;;
*) echo "usage: $0 start|stop BUILD_DIR" >&2; exit 2 ;;
esac

if [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null && [ -f "$env_file" ]; then
	exit 0 # already running (re-run of a single test)
fi
command -v moto_server >/dev/null || { echo "moto_server not found: install moto[server] (see packaging/deps.sh)" >&2; exit 1; }
command -v aws >/dev/null || { echo "aws CLI not found (see packaging/deps.sh)" >&2; exit 1; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
INITIAL_NO_AUTH_ACTION_COUNT=4 setsid moto_server -H 127.0.0.1 -p "$port" >"$log_file" 2>&1 &
echo $! >"$pid_file"
ep="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
	curl -s -o /dev/null "$ep" && break
	sleep 0.1
done
export AWS_ACCESS_KEY_ID=bootstrap AWS_SECRET_ACCESS_KEY=bootstrap AWS_DEFAULT_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN
aws --endpoint-url "$ep" iam create-user --user-name sft >/dev/null
aws --endpoint-url "$ep" iam put-user-policy --user-name sft --policy-name all \
	--policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}' >/dev/null
read -r key secret < <(aws --endpoint-url "$ep" iam create-access-key --user-name sft \
	--query 'AccessKey.[AccessKeyId,SecretAccessKey]' --output text)
cat >"$env_file.tmp" <<EOT
SF_TEST_S3_ENDPOINT=$ep
SF_TEST_S3_KEY=$key
SF_TEST_S3_SECRET=$secret
SF_TEST_S3_REGION=us-east-1
EOT
mv "$env_file.tmp" "$env_file"
echo "moto_server on $ep (pid $(cat "$pid_file"))"
