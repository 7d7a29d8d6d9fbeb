#!/usr/bin/env bash
# Ensures a local ClickHouse server for development and tests.
#   scripts/clickhouse.sh start   install (OS packages) if missing, start, wait until it answers
#   scripts/clickhouse.sh stop    stop the server this script started
#   scripts/clickhouse.sh status
# The server listens on 127.0.0.1:${CLICKHOUSE_PORT:-9000} (native protocol only)
# and keeps its data under ${CLICKHOUSE_DIR:-.data/clickhouse}. A server that
# already answers on that port is used as it is.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
port=${CLICKHOUSE_PORT:-9000}
dir=${CLICKHOUSE_DIR:-$root/.data/clickhouse}

log() { printf 'clickhouse: %s\n' "$*" >&2; }

answers() {
	clickhouse-client --port "$port" --query 'SELECT 1' >/dev/null 2>&1
}

install() {
	command -v clickhouse-server >/dev/null && command -v clickhouse-client >/dev/null && return
	log "installing clickhouse-server and clickhouse-client from the OS packages"
	local sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq clickhouse-server clickhouse-client >/dev/null
}

write_config() {
	mkdir -p "$dir"/{data,tmp,user_files,log,format_schemas}
	cat >"$dir/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>$dir/log/clickhouse-server.log</log>
        <errorlog>$dir/log/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>$port</tcp_port>
    <path>$dir/data/</path>
    <tmp_path>$dir/tmp/</tmp_path>
    <user_files_path>$dir/user_files/</user_files_path>
    <format_schema_path>$dir/format_schemas/</format_schema_path>
    <users_config>$dir/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mark_cache_size>1073741824</mark_cache_size>
    <max_concurrent_queries>100</max_concurrent_queries>
</yandex>
XML
	cat >"$dir/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>8000000000</max_memory_usage>
            <load_balancing>random</load_balancing>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
XML
}

start() {
	if answers; then
		log "a server already answers on 127.0.0.1:$port"
		return
	fi
	install
	write_config
	local run=()
	if [ "$(id -u)" -eq 0 ] && id clickhouse >/dev/null 2>&1; then
		# The server refuses to run as root: run it as the package's user,
		# with a data folder that user can reach.
		if ! runuser -u clickhouse -- test -w "$dir" 2>/dev/null; then
			chown -R clickhouse:clickhouse "$dir" 2>/dev/null || true
		fi
		if ! runuser -u clickhouse -- test -w "$dir/data" 2>/dev/null; then
			dir=/var/tmp/assoliment-clickhouse-$port
			log "the clickhouse user cannot write the repository; using $dir"
			write_config
			chown -R clickhouse:clickhouse "$dir"
		fi
		run=(runuser -u clickhouse --)
	fi
	log "starting on 127.0.0.1:$port with data in $dir"
	nohup "${run[@]}" clickhouse-server --config-file="$dir/config.xml" >"$dir/log/stdout.log" 2>&1 &
	echo $! >"$root/.data/clickhouse.pid" 2>/dev/null || { mkdir -p "$root/.data"; echo $! >"$root/.data/clickhouse.pid"; }
	for _ in $(seq 1 120); do
		if answers; then
			log "ready"
			return
		fi
		sleep 0.5
	done
	log "did not answer within 60 s; see $dir/log/"
	tail -n 20 "$dir/log/clickhouse-server.err.log" >&2 || true
	exit 1
}

stop() {
	local pidfile="$root/.data/clickhouse.pid"
	[ -f "$pidfile" ] || { log "not started by this script"; return; }
	local pid
	pid=$(cat "$pidfile")
	pkill -TERM -P "$pid" 2>/dev/null || true
	kill -TERM "$pid" 2>/dev/null || true
	pkill -TERM -f "clickhouse-server --config-file=.*assoliment|clickhouse-server --config-file=$dir" 2>/dev/null || true
	rm -f "$pidfile"
	log "stopped"
}

case "${1:-start}" in
start) start ;;
stop) stop ;;
status) if answers; then echo "answers on 127.0.0.1:$port"; else echo "not running"; exit 1; fi ;;
*) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
