#!/usr/bin/env bash
# The project's test command: ./scripts/test.sh (README; CI runs it through .ci/run).
#
# It installs and starts every test server, then runs, in order:
#   1. gofmt check (fails on any unformatted file)
#   2. go vet ./...
#   3. go test -race -short -count=1 ./...      (never the large cases: the race detector
#                                                 makes multi-GiB streams take hours)
#   4. go test -count=1 ./...                    (the full suite, without the large cases)
#   5. the large cases, when STOWAGE_LARGE is 1 (the default under CI=true): the
#      conformance suite's 5 GiB stream and 10 GiB mixed-append blob on the plain
#      harness of every backend whose test server can hold them (filesystem, s3 on
#      MinIO, azure, oss on osstest with its data on disk (TestConformanceV4); not
#      the decorated, versitygw or oss V1 harnesses: the default suite already runs
#      every case on those; not swift: about 35 minutes), the s3 backend's TestLarge
#      (more than 1000 parts, a multipart Move above 5 GiB), and Distribution's
#      5 GiB stream case through the registry/ adapter (filesystem, s3 on MinIO)
# Steps 2-4 run for the nested module registry/ (its own go.mod) as well.
# and prints a summary. It exits non-zero if any step, or any server, failed.
#
# Emulator contract (every scripts/emulators/<name>.sh follows it):
#   The file is sourced (never executed) and defines shell functions named after the file,
#   <name> being the file name without .sh, with '-' and '.' turned into '_':
#     <name>_install  install the server into ${STOWAGE_CACHE:-$HOME/.cache/stowage-emulators}
#                     (once; a later call with the cache warm returns at once)
#     <name>_start    start it on 127.0.0.1, wait until it is ready, and export the environment
#                     variables its backend's tests read (STOWAGE_<BACKEND>_*); return non-zero
#                     if it could not start
#     <name>_stop     (optional) stop what <name>_start started and remove its data
#   test.sh calls <name>_install and <name>_start for every file present, and <name>_stop on
#   exit (also on Ctrl-C). Functions return a status; they never call exit. Network is the Go
#   module proxy, Debian packages (apt-get, as root) and npm only; no Docker.
#   Helpers for emulator scripts: stowage_need COMMAND DEBIAN_PACKAGE... (here) installs the
#   packages with apt-get when COMMAND is missing; scripts/emulator-lib.sh (sourced by each
#   script) picks a free port, polls readiness and stops a server.
#
# Options (for local use): --no-emulators (start no server; backend tests then skip, or fail
# under CI=true), --short-only (skip steps 4 and 5).
set -uo pipefail
cd "$(dirname "$0")/.."

start_servers=1
full=1
for arg in "$@"; do
	case "$arg" in
	--no-emulators) start_servers=0 ;;
	--short-only) full=0 ;;
	-h | --help)
		sed -n '2,/^[^#]/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "test.sh: unknown option $arg (see --help)" >&2
		exit 2
		;;
	esac
done

large=${STOWAGE_LARGE:-}
if [ "${CI:-}" = "true" ] && [ -z "$large" ]; then
	large=1
fi
# Steps 3 and 4 run without the large cases; step 5 runs only them.
unset STOWAGE_LARGE

results=()
failed=0
record() { # record STATUS NAME SECONDS
	results+=("$(printf '%-4s %-44s %5ss' "$1" "$2" "$3")")
	if [ "$1" = FAIL ]; then
		failed=1
	fi
}

# step NAME COMMAND...: run a command, record PASS or FAIL with its time.
step() {
	local name=$1 t0 rc
	shift
	echo
	echo "==> $name"
	t0=$SECONDS
	"$@"
	rc=$?
	if [ $rc -eq 0 ]; then
		record PASS "$name" $((SECONDS - t0))
	else
		record FAIL "$name (exit $rc)" $((SECONDS - t0))
	fi
	return $rc
}

apt_updated=0
# stowage_need COMMAND PACKAGE...: install Debian packages when a command is missing.
stowage_need() {
	local cmd=$1
	shift
	command -v "$cmd" >/dev/null 2>&1 && return 0
	echo "test.sh: $cmd is missing; installing Debian package(s) $*" >&2
	local sudo=""
	if [ "$(id -u)" != 0 ]; then
		sudo=sudo
	fi
	# Servers install in parallel (install_all): one apt-get at a time, and
	# each waits for dpkg's lock instead of failing on it.
	(
		flock 9 || exit 1
		if [ $apt_updated = 0 ]; then
			$sudo apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 || exit 1
		fi
		DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
			--no-install-recommends "$@" >&2
	) 9>"${TMPDIR:-/tmp}/stowage-apt.lock" || return 1
	apt_updated=1
	command -v "$cmd" >/dev/null 2>&1
}

if ! command -v go >/dev/null 2>&1; then
	echo "test.sh: go is not on PATH" >&2
	exit 1
fi
# The race detector needs cgo and a C compiler; the emulator scripts use curl.
stowage_need gcc gcc libc6-dev || record FAIL "install gcc" 0
stowage_need curl curl || record FAIL "install curl" 0
export CGO_ENABLED=1

# Servers.
started=()
stop_servers() {
	local n
	for n in "${started[@]+"${started[@]}"}"; do
		if declare -F "${n}_stop" >/dev/null; then
			"${n}_stop" || true
		fi
	done
	started=()
}
trap stop_servers EXIT
trap 'stop_servers; exit 130' INT TERM

start_server() { # start_server NAME
	"${1}_install" && "${1}_start"
}

# install_all NAME...: run every <name>_install at once, each in a subshell with
# its output in a log (a cold install is minutes of compiling or downloading
# per server; in parallel the slowest one sets the time), then print each log.
# The starts that follow find the caches warm; a failed install fails there.
install_all() {
	local n logdir pids=() i=0 rc
	logdir=$(mktemp -d "${TMPDIR:-/tmp}/stowage-install.XXXXXX") || return 1
	for n in "$@"; do
		("${n}_install") >"$logdir/$n.log" 2>&1 &
		pids+=($!)
	done
	for n in "$@"; do
		wait "${pids[$i]}"
		rc=$?
		i=$((i + 1))
		if [ -s "$logdir/$n.log" ]; then
			sed "s/^/[$n install] /" "$logdir/$n.log"
		fi
		[ $rc = 0 ] || echo "test.sh: ${n}_install failed (exit $rc)" >&2
	done
	rm -rf "$logdir"
	return 0
}

if [ $start_servers = 1 ]; then
	names=()
	for f in scripts/emulators/*.sh; do
		[ -e "$f" ] || continue
		name=$(basename "$f" .sh)
		name=${name//[-.]/_}
		# shellcheck source=/dev/null
		if ! source "$f"; then
			record FAIL "emulator $name: source $f" 0
			continue
		fi
		if ! declare -F "${name}_install" >/dev/null || ! declare -F "${name}_start" >/dev/null; then
			record FAIL "emulator $name: ${name}_install/_start undefined" 0
			continue
		fi
		names+=("$name")
	done
	step "install test servers (in parallel)" install_all "${names[@]+"${names[@]}"}"
	for name in "${names[@]+"${names[@]}"}"; do
		started+=("$name")
		step "emulator $name" start_server "$name"
	done
fi

gofmt_check() {
	local out
	out=$(gofmt -l . 2>&1)
	if [ -n "$out" ]; then
		echo "unformatted (run gofmt -w):"
		echo "$out"
		return 1
	fi
}

# The registry/ module (the Distribution adapter, its own go.mod) is tested from its folder:
# `./...` of the core module does not reach it. Distribution's driver suite has a 5 GiB
# stream case (TestWriteReadLargeStreams); it runs with the large cases only, on the
# backends whose test server can hold it (not Azurite or fake-gcs-server in memory).
in_registry() { (cd registry && "$@"); }
registry_large='TestDistributionSuite/(filesystem|s3-minio)/TestWriteReadLargeStreams$'
# oss's plain harness is TestConformanceV4 (V4 signatures, crc64: the defaults);
# it starts its own osstest in-process, data in the test's temp dir.
large_run='^(TestConformance|TestConformanceMinIO|TestConformanceV4)$/^root$/^(LargeStream5GiB|MixedAppends10GiB)$'
large_pkgs='./filesystem ./s3 ./azure ./oss'
if [ "${STOWAGE_FAKEGCS_BACKEND:-}" = filesystem ]; then
	registry_large='TestDistributionSuite/(filesystem|s3-minio|gcs)/TestWriteReadLargeStreams$'
	large_run='^(TestConformance|TestConformanceMinIO|TestConformanceV4|TestConformanceResumable)$/^root$/^(LargeStream5GiB|MixedAppends10GiB)$'
	large_pkgs="$large_pkgs ./gcs"
fi

step "gofmt" gofmt_check
step "go vet ./..." go vet ./...
step "registry: go vet ./..." in_registry go vet ./...
step "go test -race -short ./..." go test -race -short -count=1 -timeout 30m ./...
step "registry: go test -race -short ./..." in_registry go test -race -short -count=1 -timeout 30m ./...
if [ $full = 1 ]; then
	step "go test ./... (full)" go test -count=1 -timeout 40m ./...
	step "registry: go test ./... (full)" in_registry go test -count=1 -timeout 40m \
		-skip 'TestDistributionSuite/.*/TestWriteReadLargeStreams$' ./...
	case "$large" in
	1 | true)
		# One go test for the conformance suite's large cases, so the
		# packages run side by side (-p 2), on the plain harness of each
		# backend whose server holds them (the decorated and versitygw
		# harnesses prove what the default suite already runs on them).
		step "large: conformance 5 GiB stream and 10 GiB appends" env STOWAGE_LARGE=1 \
			go test -count=1 -timeout 60m -run "$large_run" $large_pkgs
		step "large: s3 TestLarge" env STOWAGE_LARGE=1 go test -count=1 -timeout 60m -run '^TestLarge$' ./s3
		step "large: registry Distribution suite 5 GiB stream" \
			in_registry env STOWAGE_LARGE=1 go test -count=1 -timeout 60m -run "$registry_large" .
		;;
	esac
fi

stop_servers
echo
echo "==> summary"
printf '%s\n' "${results[@]}"
if [ $failed = 0 ]; then
	echo "test.sh: all steps passed"
	exit 0
fi
echo "test.sh: FAILED"
exit 1
