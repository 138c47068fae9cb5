# shellcheck shell=bash
# versitygw (a second S3 implementation, over a POSIX folder) for the s3
# backend's tests: it catches assumptions that hold for MinIO only.
#
# Sourced by scripts/test.sh. Defines:
#   versitygw_install  build versitygw into the cache (once, ~1 min cold)
#   versitygw_start    start it on 127.0.0.1 with its data in a fresh
#                      temporary folder, wait until it answers, and export the
#                      STOWAGE_S3_VERSITYGW_* variables the s3 tests read
#   versitygw_stop     stop the server started by versitygw_start and remove
#                      its data
#
# The server's PID is in VERSITYGW_PID. The bucket is not created here: the
# tests create it with the SDK. Object metadata goes to sidecar files
# (--sidecar) rather than extended attributes: ext4 limits xattrs to one
# block, and the metadata of an upload with more than 1000 parts is larger
# ("No space left on device").
#
# Settings (environment): STOWAGE_CACHE (default ~/.cache/stowage-emulators),
# STOWAGE_VERSITYGW_PORT (default 7070).

VERSITYGW_VERSION=v1.8.0
VERSITYGW_ACCESS=stowageadmin
VERSITYGW_SECRET=stowageadmin-secret

versitygw_dir() {
	echo "${STOWAGE_CACHE:-$HOME/.cache/stowage-emulators}/versitygw-$VERSITYGW_VERSION"
}

versitygw_install() {
	local dir
	dir=$(versitygw_dir)
	if [ -x "$dir/versitygw" ]; then
		return 0
	fi
	echo "versitygw: building github.com/versity/versitygw@$VERSITYGW_VERSION into $dir" >&2
	mkdir -p "$dir" || return 1
	(cd "${TMPDIR:-/tmp}" && GOBIN="$dir" GOFLAGS=-mod=mod go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION") >&2 || return 1
	[ -x "$dir/versitygw" ]
}

# versitygw_answers URL: true when anything answers HTTP at URL (it has no
# health endpoint).
versitygw_answers() {
	if command -v curl >/dev/null 2>&1; then
		local code
		code=$(curl -s -o /dev/null -w '%{http_code}' "$1" 2>/dev/null)
		[ -n "$code" ] && [ "$code" != "000" ]
	else
		local hostport=${1#http://}
		hostport=${hostport%%/*}
		(exec 3<>"/dev/tcp/${hostport%:*}/${hostport#*:}") 2>/dev/null
	fi
}

# versitygw_free_port PORT: PORT, or the next port above it that nothing
# listens on (checked with bash's /dev/tcp): a server already on the port (another test run) must
# not be mistaken for ours.
versitygw_free_port() {
	local p=$1 i
	for i in $(seq 0 50); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$((p + i))") 2>/dev/null; then
			echo $((p + i))
			return 0
		fi
	done
	echo "versitygw: no free port in $p..$((p + 50))" >&2
	return 1
}

versitygw_start() {
	local dir port data url i
	dir=$(versitygw_dir)
	port=$(versitygw_free_port "${STOWAGE_VERSITYGW_PORT:-7070}") || return 1
	versitygw_install || return 1
	data=$(mktemp -d "${TMPDIR:-/tmp}/stowage-versitygw.XXXXXX") || return 1
	mkdir -p "$data/data" "$data/meta" || return 1
	url="http://127.0.0.1:$port"
	ROOT_ACCESS_KEY=$VERSITYGW_ACCESS ROOT_SECRET_KEY=$VERSITYGW_SECRET \
		"$dir/versitygw" --port "127.0.0.1:$port" --quiet posix --sidecar "$data/meta" "$data/data" \
		>"$data/versitygw.log" 2>&1 &
	VERSITYGW_PID=$!
	VERSITYGW_DATA=$data
	for i in $(seq 1 300); do
		if versitygw_answers "$url/"; then
			break
		fi
		if ! kill -0 "$VERSITYGW_PID" 2>/dev/null; then
			echo "versitygw: server exited; log:" >&2
			cat "$data/versitygw.log" >&2
			return 1
		fi
		sleep 0.2
	done
	if ! versitygw_answers "$url/"; then
		echo "versitygw: no answer from $url after 60s; log:" >&2
		cat "$data/versitygw.log" >&2
		versitygw_stop
		return 1
	fi
	export STOWAGE_S3_VERSITYGW_ENDPOINT="$url"
	export STOWAGE_S3_VERSITYGW_REGION=us-east-1
	export STOWAGE_S3_VERSITYGW_ACCESSKEY=$VERSITYGW_ACCESS
	export STOWAGE_S3_VERSITYGW_SECRETKEY=$VERSITYGW_SECRET
	export STOWAGE_S3_VERSITYGW_BUCKET="${STOWAGE_S3_VERSITYGW_BUCKET:-stowage-test}"
	echo "versitygw: ready at $url (pid $VERSITYGW_PID, data $data)" >&2
}

versitygw_stop() {
	if [ -n "${VERSITYGW_PID:-}" ]; then
		kill "$VERSITYGW_PID" 2>/dev/null
		wait "$VERSITYGW_PID" 2>/dev/null
		VERSITYGW_PID=
	fi
	if [ -n "${VERSITYGW_DATA:-}" ]; then
		rm -rf "$VERSITYGW_DATA"
		VERSITYGW_DATA=
	fi
}
