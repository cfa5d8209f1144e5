#!/usr/bin/env bash
# Installs the system packages StampedeCache needs (Debian/Ubuntu), only when missing:
#   libhiredis-dev (hiredis 0.14: the RESP codec), redis-server and redis-tools
#   (tests, the demo and the benchmarks start private servers; redis-benchmark is a baseline),
#   faketime (a test runs a worker with its clock skewed by hours), openssl (TLS tests and
#   `bench client --tls` make their certificates with it), wrk (`bench proxy` drives its hit
#   rounds with it, in a process of its own).
set -euo pipefail
missing=()
dpkg -s libhiredis-dev >/dev/null 2>&1 || missing+=(libhiredis-dev)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-benchmark >/dev/null 2>&1 || missing+=(redis-tools)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v faketime >/dev/null 2>&1 || missing+=(faketime)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "Installing missing packages: ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts a system redis-server on install; we never use it (every run starts its own).
