# shellcheck shell=bash
# OpenStack Swift (the real server, Debian's packages) for the swift
# backend's tests: a proxy with tempauth, SLO, bulk delete and temp URLs in
# front of one object, one container and one account server, with one device
# and one replica.
#
# Sourced by scripts/test.sh. Defines:
#   swift_install  install the Debian packages swift, swift-proxy,
#                  swift-object, swift-container, swift-account and
#                  memcached when a command is missing (apt-get, ~30 s
#                  once; later calls are instant)
#   swift_start    write a configuration, build the rings and start
#                  memcached and the four servers on 127.0.0.1 in a fresh
#                  temporary folder, wait until a tempauth login works, and
#                  export the STOWAGE_SWIFT_* variables the swift tests read
#   swift_stop     stop what swift_start started and remove its folder
#
# The process IDs are in SWIFT_PIDS (memcached, then the object, container,
# account and proxy servers), the folder in SWIFT_DATA: configuration, rings,
# the device (srv/d1) and one log per process. The device is on disk
# (TMPDIR), not tmpfs: the tests write multi-GiB objects. Swift keeps object
# metadata in extended attributes, which ext4 limits to one block: more than
# ~3 KiB of user metadata on one object answers 503 there.
#
# The servers run in the foreground with workers = 0 (they never fork nor
# drop privileges, so they run as root too) and log to their log file only
# (never syslog). They are started through a small Python launcher rather
# than the swift-*-server commands, which take the hash prefix, the storage
# policies and the constraints from /etc/swift/swift.conf whatever swift_dir
# says (and fail when it is missing): the launcher takes them from the
# swift.conf of the folder, so nothing in /etc/swift matters (nor is
# written). None of the background daemons
# (replicators, auditors, updaters) runs: with one replica they have nothing
# to do. The proxy never error-limits its only nodes, and waits for the
# container listing update of each object PUT. Unlike Swift's defaults, SLO
# and DLO reads are not rate-limited (Swift's default serves the segments of
# under 1 MiB after the tenth at one a second).
#
# The container is not created here: the tests create it. Accounts (tempauth,
# both admins of their account): test:tester / testing (AUTH_test) and
# test2:tester2 / testing2 (AUTH_test2).
#
# Settings (environment): STOWAGE_SWIFT_PORT (the proxy, default 8080, or the
# next free port above it). The object, container and account servers take
# the first three free consecutive ports from 6200, memcached the first free
# port from 11211.

# shellcheck source=scripts/emulator-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../emulator-lib.sh" || return 1

SWIFT_PACKAGES=(swift swift-proxy swift-object swift-container swift-account memcached eatmydata)
SWIFT_COMMANDS=(swift-proxy-server swift-object-server swift-container-server swift-account-server swift-ring-builder memcached eatmydata)

swift_install() {
	local cmd
	for cmd in "${SWIFT_COMMANDS[@]}"; do
		if declare -F stowage_need >/dev/null; then
			stowage_need "$cmd" "${SWIFT_PACKAGES[@]}" || return 1
		elif ! command -v "$cmd" >/dev/null 2>&1; then
			echo "swift: $cmd is missing; install the Debian packages ${SWIFT_PACKAGES[*]}" >&2
			return 1
		fi
	done
}

# swift_python: the interpreter of the swift-proxy-server command (Debian's
# python3, which has the swift module).
swift_python() {
	local line
	line=$(head -n 1 "$(command -v swift-proxy-server)" 2>/dev/null)
	line=${line#\#!}
	line=${line# }
	if [ -n "$line" ] && [ -x "${line%% *}" ]; then
		echo "${line%% *}"
	else
		echo python3
	fi
}

# swift_write_config DATA MEMCACHED OBJECT CONTAINER ACCOUNT PROXY: the
# configuration files and the launcher, in DATA.
swift_write_config() {
	local data=$1 mc=$2 obj=$3 cont=$4 acct=$5 proxy=$6 name port use extra
	cat >"$data/swift.conf" <<EOF || return 1
[swift-hash]
swift_hash_path_prefix = stowage-prefix
swift_hash_path_suffix = stowage-suffix

[storage-policy:0]
name = Policy-0
default = yes
EOF
	for name in object container account; do
		case $name in
		object)
			port=$obj use=object
			# Wait for the container listing update (in the background after
			# 1 s otherwise): a listing right after a PUT must show it.
			extra="container_update_timeout = 10
node_timeout = 10
conn_timeout = 2"
			;;
		container)
			port=$cont use=container extra="node_timeout = 10
conn_timeout = 2"
			;;
		account) port=$acct use=account extra= ;;
		esac
		cat >"$data/$name-server.conf" <<EOF || return 1
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $port
workers = 0
swift_dir = $data
devices = $data/srv
mount_check = false
disable_fallocate = true
recon_cache_path = $data/cache
log_name = $name-server

[pipeline:main]
pipeline = healthcheck $name-server

[app:$name-server]
use = egg:swift#$use
$extra

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
	done
	cat >"$data/proxy-server.conf" <<EOF || return 1
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $proxy
workers = 0
swift_dir = $data
log_name = proxy-server
expose_info = true

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl tempauth staticweb copy slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
allow_account_management = true
account_autocreate = true
conn_timeout = 2
node_timeout = 60
recoverable_node_timeout = 60
# One node per ring: never stop sending it requests after errors.
error_suppression_interval = 0

[filter:tempauth]
use = egg:swift#tempauth
allow_overrides = true
user_test_tester = testing .admin
user_test2_tester2 = testing2 .admin

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$mc

[filter:tempurl]
use = egg:swift#tempurl
methods = GET HEAD PUT POST DELETE

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:bulk]
use = egg:swift#bulk

[filter:staticweb]
use = egg:swift#staticweb

[filter:copy]
use = egg:swift#copy

# Swift serves the segments after the tenth at one a second when they are
# under 1 MiB (rate_limit_under_size): not with the tests' small segments.
[filter:slo]
use = egg:swift#slo
rate_limit_segments_per_sec = 0

[filter:dlo]
use = egg:swift#dlo
rate_limit_segments_per_sec = 0

[filter:versioned_writes]
use = egg:swift#versioned_writes

[filter:symlink]
use = egg:swift#symlink
EOF
	cat >"$data/rings.py" <<'EOF' || return 1
# Builds the object, container and account rings (one device, one replica)
# in one process: ten times faster than swift-ring-builder's nine calls.
import sys
from swift.common.ring import RingBuilder

folder = sys.argv[1]
for kind, port in zip(("object", "container", "account"), sys.argv[2:5]):
    builder = RingBuilder(10, 1, 1)
    builder.add_dev({"region": 1, "zone": 1, "ip": "127.0.0.1",
                     "port": int(port), "device": "d1", "weight": 1})
    builder.rebalance()
    builder.save("%s/%s.builder" % (folder, kind))
    builder.get_ring().save("%s/%s.ring.gz" % (folder, kind))
EOF
	cat >"$data/server.py" <<'EOF' || return 1
# Runs one Swift server: server.py SWIFT_CONF NAME CONF (NAME: proxy-server,
# object-server, container-server or account-server). What the
# swift-NAME command does, except that swift.conf is SWIFT_CONF instead of
# /etc/swift/swift.conf, and that the log goes to stderr only, never syslog.
import logging
import sys

from swift.common import utils

swift_conf, name, conf = sys.argv[1:4]
# Importing utils read the hash prefix and suffix of /etc/swift/swift.conf
# (when it exists): read them again from SWIFT_CONF.
utils.SWIFT_CONF_FILE = swift_conf
utils.HASH_PATH_PREFIX = utils.HASH_PATH_SUFFIX = b""
utils.validate_configuration()


class NoSyslog(logging.Handler):
    def __init__(self, *args, **kwargs):
        logging.Handler.__init__(self)

    def emit(self, record):
        pass


utils.ThreadSafeSysLogHandler = NoSyslog

from swift.common import constraints, storage_policy  # noqa: E402

constraints.reload_constraints()
storage_policy.reload_storage_policies()

from swift.common.wsgi import run_wsgi  # noqa: E402

options = {"verbose": True}
if name == "object-server":
    from swift.obj import server

    options["global_conf_callback"] = server.global_conf_callback
sys.exit(run_wsgi(conf, name, **options))
EOF
}

# swift_healthy PORT: true when the server on PORT answers its /healthcheck.
swift_healthy() {
	[ "$(emu_http_code "http://127.0.0.1:$1/healthcheck")" = 200 ]
}

# swift_authorized URL: true when tempauth at URL gives test:tester a token
# and a storage URL, and the account answers with it (the proxy reaches the
# account server through its ring).
swift_authorized() {
	local headers token storage
	headers=$(curl -s -D - -o /dev/null -H "X-Auth-User: test:tester" -H "X-Auth-Key: testing" "$1" 2>/dev/null) || return 1
	token=$(printf '%s\n' "$headers" | tr -d '\r' | sed -n 's/^[Xx]-[Aa]uth-[Tt]oken: *//p')
	storage=$(printf '%s\n' "$headers" | tr -d '\r' | sed -n 's/^[Xx]-[Ss]torage-[Uu]rl: *//p')
	[ -n "$token" ] && [ -n "$storage" ] || return 1
	case $(emu_http_code "$storage" -I -H "X-Auth-Token: $token") in
	2??) return 0 ;;
	esac
	return 1
}

swift_start() {
	local data py proxy base obj cont acct mc url name port pid i
	local ports=()
	swift_install || return 1
	proxy=$(emu_free_port swift "${STOWAGE_SWIFT_PORT:-8080}") || return 1
	base=6200
	if [ "$proxy" -ge $base ] && [ "$proxy" -le $((base + 52)) ]; then
		base=$((proxy + 1))
	fi
	base=$(emu_free_port swift $base 3) || return 1
	obj=$base cont=$((base + 1)) acct=$((base + 2))
	mc=$(emu_free_port swift 11211) || return 1
	data=$(mktemp -d "${TMPDIR:-/tmp}/stowage-swift.XXXXXX") || return 1
	SWIFT_DATA=$data
	SWIFT_PIDS=()
	mkdir -p "$data/srv/d1" "$data/cache" || {
		swift_stop
		return 1
	}
	py=$(swift_python)
	if ! swift_write_config "$data" "$mc" "$obj" "$cont" "$acct" "$proxy" ||
		! "$py" "$data/rings.py" "$data" "$obj" "$cont" "$acct" >"$data/rings.log" 2>&1; then
		echo "swift: could not write the configuration or the rings:" >&2
		cat "$data/rings.log" >&2 2>/dev/null
		swift_stop
		return 1
	fi
	if [ "$(id -u)" = 0 ]; then
		memcached -l 127.0.0.1 -p "$mc" -U 0 -m 64 -u root >"$data/memcached.log" 2>&1 &
	else
		memcached -l 127.0.0.1 -p "$mc" -U 0 -m 64 >"$data/memcached.log" 2>&1 &
	fi
	SWIFT_PIDS+=($!)
	ports+=("$mc")
	# EVENTLET_NO_GREENDNS: no dnspython (a third of the start-up time;
	# every address is 127.0.0.1). libeatmydata turns fsync into a no-op:
	# an object PUT waits for two of them (object file, container
	# database), 40-90 ms a PUT on this disk, which dominated the tests'
	# time; a test server need not survive a power cut.
	local preload=
	for preload in /usr/lib/*/libeatmydata.so /usr/lib/libeatmydata.so ""; do
		[ -z "$preload" ] || [ -e "$preload" ] && break
	done
	for name in object container account proxy; do
		LD_PRELOAD=$preload EVENTLET_NO_GREENDNS=yes "$py" "$data/server.py" "$data/swift.conf" "$name-server" "$data/$name-server.conf" \
			>"$data/$name-server.log" 2>&1 &
		SWIFT_PIDS+=($!)
	done
	ports+=("$obj" "$cont" "$acct" "$proxy")
	url="http://127.0.0.1:$proxy/auth/v1.0"
	i=0
	for name in memcached object-server container-server account-server proxy-server; do
		pid=${SWIFT_PIDS[$i]} port=${ports[$i]}
		i=$((i + 1))
		if [ $name = memcached ]; then
			emu_wait "swift ($name)" "$pid" "$data/$name.log" emu_listening "$port" && continue
		else
			emu_wait "swift ($name)" "$pid" "$data/$name.log" swift_healthy "$port" && continue
		fi
		swift_stop
		return 1
	done
	if ! emu_wait "swift (proxy-server)" "${SWIFT_PIDS[4]}" "$data/proxy-server.log" swift_authorized "$url"; then
		swift_stop
		return 1
	fi
	for pid in "${SWIFT_PIDS[@]}"; do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "swift: process $pid exited; logs:" >&2
			tail -n 20 "$data"/*.log >&2
			swift_stop
			return 1
		fi
	done
	export STOWAGE_SWIFT_AUTHURL="$url"
	export STOWAGE_SWIFT_USERNAME=test:tester
	export STOWAGE_SWIFT_PASSWORD=testing
	export STOWAGE_SWIFT_CONTAINER="${STOWAGE_SWIFT_CONTAINER:-stowage-test}"
	echo "swift: ready at $url (pids ${SWIFT_PIDS[*]}, data $data)" >&2
}

swift_stop() {
	local pid i alive=0
	for pid in "${SWIFT_PIDS[@]+"${SWIFT_PIDS[@]}"}"; do
		kill "$pid" 2>/dev/null
	done
	# They stop in well under a second; one that hangs gets SIGKILL after 10 s.
	for i in $(seq 1 50); do
		alive=0
		for pid in "${SWIFT_PIDS[@]+"${SWIFT_PIDS[@]}"}"; do
			if kill -0 "$pid" 2>/dev/null; then
				alive=1
			fi
		done
		[ $alive = 0 ] && break
		sleep 0.2
	done
	for pid in "${SWIFT_PIDS[@]+"${SWIFT_PIDS[@]}"}"; do
		if [ $alive = 1 ] && kill -0 "$pid" 2>/dev/null; then
			kill -9 "$pid" 2>/dev/null
		fi
		wait "$pid" 2>/dev/null
	done
	if [ -n "${SWIFT_DATA:-}" ]; then
		rm -rf "$SWIFT_DATA"
	fi
	SWIFT_PIDS=() SWIFT_DATA=
	return 0
}
