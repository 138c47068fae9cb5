# shellcheck shell=bash
# Helpers shared by the emulator scripts in scripts/emulators/ (each sources
# this file; it defines functions only). Needs bash and curl (scripts/test.sh
# installs curl when it is missing).
#
#   emu_free_port NAME PORT [WIDTH]
#       prints PORT, or the first port above it (in steps of WIDTH, default 1)
#       such that nothing listens on it nor on the WIDTH-1 ports after it. A
#       server already there (another test run, a developer's own) must never
#       be mistaken for the one we start.
#   emu_http_code URL [CURL-ARGS...]
#       prints the HTTP status URL answers, or 000 when nothing answers.
#   emu_wait NAME PID LOG CHECK...
#       runs the command CHECK... every 0.2 s until it succeeds (0), for up to
#       60 s. Fails, printing LOG, when the process PID exits or time runs out.
#   emu_kill PID DATA
#       stops the process PID (if any) and removes the folder DATA (if any).

# emu_listening PORT: true when something accepts connections on 127.0.0.1:PORT.
emu_listening() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

emu_free_port() {
	local name=$1 p=$2 width=${3:-1} i j busy
	for i in $(seq 0 "$width" 50); do
		busy=0
		for j in $(seq 0 $((width - 1))); do
			if emu_listening $((p + i + j)); then
				busy=1
				break
			fi
		done
		if [ $busy = 0 ]; then
			echo $((p + i))
			return 0
		fi
	done
	echo "$name: no free port in $p..$((p + 50 + width - 1))" >&2
	return 1
}

emu_http_code() {
	local url=$1 code
	shift
	code=$(curl -s -o /dev/null -w '%{http_code}' "$@" "$url" 2>/dev/null)
	echo "${code:-000}"
}

emu_wait() {
	local name=$1 pid=$2 log=$3 i
	shift 3
	for i in $(seq 1 300); do
		if "$@"; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "$name: server exited; log:" >&2
			cat "$log" >&2
			return 1
		fi
		sleep 0.2
	done
	echo "$name: not ready after 60 s; log:" >&2
	cat "$log" >&2
	return 1
}

emu_kill() {
	if [ -n "${1:-}" ]; then
		kill "$1" 2>/dev/null
		wait "$1" 2>/dev/null
	fi
	if [ -n "${2:-}" ]; then
		rm -rf "$2"
	fi
	return 0
}
