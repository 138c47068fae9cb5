# shellcheck shell=bash
# Azurite (the Azure Storage emulator, from npm) for the azure backend's tests.
#
# Sourced by scripts/test.sh. Defines:
#   azurite_install  install Azurite into the cache (once; later calls are instant)
#   azurite_start    start its blob service on 127.0.0.1, wait until it answers,
#                    and export the STOWAGE_AZURE_* variables the azure tests read
#   azurite_stop     stop the server started by azurite_start and remove its data
#
# Settings (environment): STOWAGE_CACHE (default ~/.cache/stowage-emulators),
# STOWAGE_AZURITE_PORT (default 10000, or the next free port above it).
#
# Azurite keeps its data in a temporary folder (--location) rather than in
# memory, so multi-GiB cases do not grow the server's memory.

# shellcheck source=scripts/emulator-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../emulator-lib.sh" || return 1

AZURITE_VERSION=3.37.0
# The emulator's well-known development account (public, documented by Azure).
AZURITE_ACCOUNT=devstoreaccount1
AZURITE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

azurite_dir() {
	echo "${STOWAGE_CACHE:-$HOME/.cache/stowage-emulators}/azurite-$AZURITE_VERSION"
}

azurite_install() {
	local dir
	dir=$(azurite_dir)
	if [ -x "$dir/node_modules/.bin/azurite-blob" ]; then
		return 0
	fi
	stowage_need npm nodejs npm || return 1
	echo "azurite: installing azurite@$AZURITE_VERSION into $dir" >&2
	mkdir -p "$dir" || return 1
	npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION" >&2 || return 1
	[ -x "$dir/node_modules/.bin/azurite-blob" ]
}

# azurite_answers URL: true when the blob service answers HTTP at URL.
azurite_answers() {
	[ "$(emu_http_code "$1?comp=list")" != 000 ]
}

azurite_start() {
	local dir port data url
	dir=$(azurite_dir)
	port=$(emu_free_port azurite "${STOWAGE_AZURITE_PORT:-10000}") || return 1
	azurite_install || return 1
	data=$(mktemp -d "${TMPDIR:-/tmp}/stowage-azurite.XXXXXX") || return 1
	url="http://127.0.0.1:$port/$AZURITE_ACCOUNT"
	# Run from the scratch folder: Azurite writes its debug and state files
	# into the working directory.
	(
		cd "$data" || exit 1
		exec "$dir/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$port" \
			--location "$data" --skipApiVersionCheck --loose --disableTelemetry --silent \
			>"$data/azurite.log" 2>&1
	) &
	AZURITE_PID=$!
	AZURITE_DATA=$data
	if ! emu_wait azurite "$AZURITE_PID" "$data/azurite.log" azurite_answers "$url"; then
		azurite_stop
		return 1
	fi
	export STOWAGE_AZURE_SERVICEURL="$url"
	export STOWAGE_AZURE_ACCOUNTNAME="$AZURITE_ACCOUNT"
	export STOWAGE_AZURE_ACCOUNTKEY="$AZURITE_KEY"
	export STOWAGE_AZURE_CONTAINER="${STOWAGE_AZURE_CONTAINER:-stowage-test}"
	echo "azurite: blob service ready at $url (pid $AZURITE_PID, data $data)" >&2
}

azurite_stop() {
	emu_kill "${AZURITE_PID:-}" "${AZURITE_DATA:-}"
	AZURITE_PID= AZURITE_DATA=
}
