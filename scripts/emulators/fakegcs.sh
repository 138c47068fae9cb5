# shellcheck shell=bash
# fake-gcs-server (a Google Cloud Storage emulator, from the Go module proxy)
# for the gcs backend's tests.
#
# Sourced by scripts/test.sh. Defines:
#   fakegcs_install  install fake-gcs-server into the cache (once; later calls
#                    are instant)
#   fakegcs_start    start it on 127.0.0.1, wait until it answers its health
#                    check, create the test bucket, and export the
#                    STOWAGE_GCS_* variables the gcs tests read
#   fakegcs_stop     stop the server started by fakegcs_start and remove its data
#
# Settings (environment): STOWAGE_CACHE (default ~/.cache/stowage-emulators),
# STOWAGE_FAKEGCS_PORT (default 4443, or the next free port above it),
# STOWAGE_GCS_BUCKET (default
# stowage-test).
#
# The server keeps objects in memory, except with
# STOWAGE_FAKEGCS_BACKEND=filesystem: then in a temporary folder (-backend
# filesystem), so the server's memory does not grow with the blob (the gcs
# tests run the 5 GiB composite case only then). The filesystem backend can not store the object names
# "d/." and "d/.." (the conformance case DotNames fails there): an emulator
# gap, not a backend one.
# -public-host must equal the host:port the client uses, or reads of objects
# answer "object doesn't exist".

# shellcheck source=scripts/emulator-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../emulator-lib.sh" || return 1

FAKEGCS_VERSION=v1.56.1

fakegcs_dir() {
	echo "${STOWAGE_CACHE:-$HOME/.cache/stowage-emulators}/fake-gcs-server-$FAKEGCS_VERSION"
}

fakegcs_install() {
	local dir
	dir=$(fakegcs_dir)
	if [ -x "$dir/fake-gcs-server" ]; then
		return 0
	fi
	echo "fakegcs: installing fake-gcs-server@$FAKEGCS_VERSION into $dir" >&2
	mkdir -p "$dir" || return 1
	# Build outside any module so the project's go.mod is not consulted.
	(cd "${TMPDIR:-/tmp}" && GOBIN="$dir" go install "github.com/fsouza/fake-gcs-server@$FAKEGCS_VERSION") >&2 || return 1
	[ -x "$dir/fake-gcs-server" ]
}

# fakegcs_healthy URL: true when the server's health check answers 200.
fakegcs_healthy() {
	[ "$(emu_http_code "$1/_internal/healthcheck")" = 200 ]
}

fakegcs_start() {
	local dir port data host url code bucket backend
	dir=$(fakegcs_dir)
	port=$(emu_free_port fakegcs "${STOWAGE_FAKEGCS_PORT:-4443}") || return 1
	bucket=${STOWAGE_GCS_BUCKET:-stowage-test}
	fakegcs_install || return 1
	host="127.0.0.1:$port"
	url="http://$host"
	data=$(mktemp -d "${TMPDIR:-/tmp}/stowage-fakegcs.XXXXXX") || return 1
	backend=${STOWAGE_FAKEGCS_BACKEND:-memory}
	"$dir/fake-gcs-server" -scheme http -host 127.0.0.1 -port "$port" \
		-public-host "$host" -external-url "$url" \
		-backend "$backend" -filesystem-root "$data/root" -log-level warn \
		>"$data/fakegcs.log" 2>&1 &
	FAKEGCS_PID=$!
	FAKEGCS_DATA=$data
	if ! emu_wait fakegcs "$FAKEGCS_PID" "$data/fakegcs.log" fakegcs_healthy "$url"; then
		fakegcs_stop
		return 1
	fi
	code=$(emu_http_code "$url/storage/v1/b?project=stowage" -X POST -H 'Content-Type: application/json' \
		--data "{\"name\":\"$bucket\"}")
	case "$code" in
	200 | 409) ;;
	*)
		echo "fakegcs: creating bucket $bucket answered $code; log:" >&2
		cat "$data/fakegcs.log" >&2
		fakegcs_stop
		return 1
		;;
	esac
	export STOWAGE_GCS_ENDPOINT="$url"
	export STOWAGE_GCS_BUCKET="$bucket"
	echo "fakegcs: ready at $url, bucket $bucket (pid $FAKEGCS_PID, data $data)" >&2
}

fakegcs_stop() {
	emu_kill "${FAKEGCS_PID:-}" "${FAKEGCS_DATA:-}"
	FAKEGCS_PID= FAKEGCS_DATA=
}
