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
# STOWAGE_VERSITYGW_PORT (default 7070, or the next free port above it).

# shellcheck source=scripts/emulator-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../emulator-lib.sh" || return 1

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
	[ "$(emu_http_code "$1")" != 000 ]
}

versitygw_start() {
	local dir port data url
	dir=$(versitygw_dir)
	port=$(emu_free_port versitygw "${STOWAGE_VERSITYGW_PORT:-7070}") || return 1
	versitygw_install || return 1
	data=$(mktemp -d "${TMPDIR:-/tmp}/stowage-versitygw.XXXXXX") || return 1
	mkdir -p "$data/data" "$data/meta" || return 1
	url="http://127.0.0.1:$port"
	ROOT_ACCESS_KEY=$VERSITYGW_ACCESS ROOT_SECRET_KEY=$VERSITYGW_SECRET \
		"$dir/versitygw" --port "127.0.0.1:$port" --quiet posix --sidecar "$data/meta" "$data/data" \
		>"$data/versitygw.log" 2>&1 &
	VERSITYGW_PID=$!
	VERSITYGW_DATA=$data
	if ! emu_wait versitygw "$VERSITYGW_PID" "$data/versitygw.log" versitygw_answers "$url/"; then
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
	emu_kill "${VERSITYGW_PID:-}" "${VERSITYGW_DATA:-}"
	VERSITYGW_PID= VERSITYGW_DATA=
}
