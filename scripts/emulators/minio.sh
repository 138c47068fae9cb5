# shellcheck shell=bash
# MinIO (the reference S3 server, built from the Go module proxy) for the s3
# backend's tests.
#
# Sourced by scripts/test.sh. Defines:
#   minio_install  build MinIO into the cache (once, ~4 min cold; later calls
#                  are instant)
#   minio_start    start it on 127.0.0.1 with its data in a fresh temporary
#                  folder, wait until it is ready, and export the
#                  STOWAGE_S3_MINIO_* variables the s3 tests read
#   minio_stop     stop the server started by minio_start and remove its data
#
# The server's PID is in MINIO_PID. The bucket is not created here: the tests
# create it with the SDK. MinIO is AGPL: it runs as a separate process and is
# never imported.
#
# Settings (environment): STOWAGE_CACHE (default ~/.cache/stowage-emulators),
# STOWAGE_MINIO_PORT (default 9000; the console gets the next port; when
# either is taken, the next free pair above is used).

# shellcheck source=scripts/emulator-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../emulator-lib.sh" || return 1

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
MINIO_USER=minioadmin
MINIO_PASSWORD=minioadmin

minio_dir() {
	echo "${STOWAGE_CACHE:-$HOME/.cache/stowage-emulators}/minio-$MINIO_VERSION"
}

minio_install() {
	local dir
	dir=$(minio_dir)
	if [ -x "$dir/minio" ]; then
		return 0
	fi
	echo "minio: building github.com/minio/minio@$MINIO_VERSION into $dir (a few minutes)" >&2
	mkdir -p "$dir" || return 1
	# Outside any module, so the project's go.mod is left alone.
	(cd "${TMPDIR:-/tmp}" && GOBIN="$dir" GOFLAGS=-mod=mod go install "github.com/minio/minio@$MINIO_VERSION") >&2 || return 1
	[ -x "$dir/minio" ]
}

# minio_ready URL: true when MinIO's readiness endpoint answers 200.
minio_ready() {
	[ "$(emu_http_code "$1/minio/health/ready")" = 200 ]
}

minio_start() {
	local dir port data url
	dir=$(minio_dir)
	port=$(emu_free_port minio "${STOWAGE_MINIO_PORT:-9000}" 2) || return 1
	minio_install || return 1
	data=$(mktemp -d "${TMPDIR:-/tmp}/stowage-minio.XXXXXX") || return 1
	url="http://127.0.0.1:$port"
	# MinIO moves deleted objects to a trash folder that it empties every
	# 5 minutes by default; the multi-GiB cases write and delete tens of GiB
	# in that time, so empty it every few seconds.
	MINIO_ROOT_USER=$MINIO_USER MINIO_ROOT_PASSWORD=$MINIO_PASSWORD MINIO_BROWSER=off \
		MINIO_UPDATE=off MINIO_CI_CD=1 MINIO_API_DELETE_CLEANUP_INTERVAL=5s \
		"$dir/minio" server "$data/data" --address "127.0.0.1:$port" \
		--console-address "127.0.0.1:$((port + 1))" --quiet >"$data/minio.log" 2>&1 &
	MINIO_PID=$!
	MINIO_DATA=$data
	if ! emu_wait minio "$MINIO_PID" "$data/minio.log" minio_ready "$url"; then
		minio_stop
		return 1
	fi
	export STOWAGE_S3_MINIO_ENDPOINT="$url"
	export STOWAGE_S3_MINIO_REGION=us-east-1
	export STOWAGE_S3_MINIO_ACCESSKEY=$MINIO_USER
	export STOWAGE_S3_MINIO_SECRETKEY=$MINIO_PASSWORD
	export STOWAGE_S3_MINIO_BUCKET="${STOWAGE_S3_MINIO_BUCKET:-stowage-test}"
	echo "minio: ready at $url (pid $MINIO_PID, data $data)" >&2
}

minio_stop() {
	emu_kill "${MINIO_PID:-}" "${MINIO_DATA:-}"
	MINIO_PID= MINIO_DATA=
}
