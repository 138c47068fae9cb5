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
# STOWAGE_MINIO_PORT (default 9000; the console gets the next port).

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

# minio_ready URL: true when URL answers HTTP 200.
minio_ready() {
	local code
	if command -v curl >/dev/null 2>&1; then
		code=$(curl -s -o /dev/null -w '%{http_code}' "$1" 2>/dev/null)
		[ "$code" = "200" ]
	else
		# No curl: a bare HTTP request over bash's /dev/tcp.
		local hostport=${1#http://}
		hostport=${hostport%%/*}
		local path=/${1#http://*/}
		exec 3<>"/dev/tcp/${hostport%:*}/${hostport#*:}" 2>/dev/null || return 1
		printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$path" "$hostport" >&3
		local line
		read -r line <&3
		exec 3<&- 3>&-
		case "$line" in *" 200 "*) return 0 ;; esac
		return 1
	fi
}

# minio_free_port PORT: PORT, or the next even step above it, such that
# nothing listens on it nor on the port after it (the console), checked with
# bash's /dev/tcp: a server already there (another test run) must not be
# mistaken for ours.
minio_free_port() {
	local p=$1 i
	for i in $(seq 0 2 50); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$((p + i))") 2>/dev/null &&
			! (exec 3<>"/dev/tcp/127.0.0.1/$((p + i + 1))") 2>/dev/null; then
			echo $((p + i))
			return 0
		fi
	done
	echo "minio: no free port in $p..$((p + 51))" >&2
	return 1
}

minio_start() {
	local dir port data url i
	dir=$(minio_dir)
	port=$(minio_free_port "${STOWAGE_MINIO_PORT:-9000}") || return 1
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
	for i in $(seq 1 300); do
		if minio_ready "$url/minio/health/ready"; then
			break
		fi
		if ! kill -0 "$MINIO_PID" 2>/dev/null; then
			echo "minio: server exited; log:" >&2
			cat "$data/minio.log" >&2
			return 1
		fi
		sleep 0.2
	done
	if ! minio_ready "$url/minio/health/ready"; then
		echo "minio: not ready at $url after 60s; log:" >&2
		cat "$data/minio.log" >&2
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
	if [ -n "${MINIO_PID:-}" ]; then
		kill "$MINIO_PID" 2>/dev/null
		wait "$MINIO_PID" 2>/dev/null
		MINIO_PID=
	fi
	if [ -n "${MINIO_DATA:-}" ]; then
		rm -rf "$MINIO_DATA"
		MINIO_DATA=
	fi
}
