#!/usr/bin/env bash
# Installs libchdb.so, a current ClickHouse engine as a library (chDB, from
# the npm package @chdb/lib-linux-x64-gnu), under .data/chdb, where the
# storage module's tests load it to run every statement of the platform on a
# current ClickHouse besides the 18.16 server. Does nothing when the pinned
# version is there already. Needs npm (Debian package npm).
#   scripts/chdb.sh          install if missing, print the library's path
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
version=26.5.3
dir=${CHDB_DIR:-$root/.data/chdb}
pkg=$dir/node_modules/@chdb/lib-linux-x64-gnu

log() { printf 'chdb: %s\n' "$*" >&2; }

if [ -f "$pkg/libchdb.so" ] && grep -q "\"version\": \"$version\"" "$pkg/package.json" 2>/dev/null; then
	echo "$pkg/libchdb.so"
	exit 0
fi
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
	log "the pinned package is for Linux on x86-64 only, not $(uname -s)-$(uname -m)"
	exit 1
fi
if ! command -v npm >/dev/null; then
	log "installing npm (Debian package npm)"
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
log "installing @chdb/lib-linux-x64-gnu@$version into $dir (about 560 MB)"
mkdir -p "$dir"
npm install --prefix "$dir" --no-save --no-package-lock --no-audit --no-fund --loglevel=error "@chdb/lib-linux-x64-gnu@$version" >&2
echo "$pkg/libchdb.so"
