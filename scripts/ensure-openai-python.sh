#!/usr/bin/env bash
# Installs the official `openai` Python package (pinned below) into a folder outside git, only
# when missing, for the proxy tests that drive `stampede serve` with it. Prints the folder to put
# on PYTHONPATH (the only stdout line). Override the cache with STAMPEDE_CACHE_DIR.
set -euo pipefail
version=3.57.0
cache=${STAMPEDE_CACHE_DIR:-$HOME/.cache/stampede}
dir="$cache/python-openai-$version"
if [ -f "$dir/.complete" ]; then
    echo "$dir"; exit 0
fi
command -v python3 >/dev/null || { echo "python3 is required (scripts/ensure-deps.sh installs it)" >&2; exit 1; }
echo "Installing openai==$version from PyPI into $dir" >&2
rm -rf "$dir.partial"
python3 -m pip install --quiet --disable-pip-version-check --no-warn-conflicts --target "$dir.partial" "openai==$version" >&2
PYTHONPATH="$dir.partial" python3 -c "import openai; assert openai.__version__ == '$version', openai.__version__" >&2
touch "$dir.partial/.complete"
rm -rf "$dir"; mv "$dir.partial" "$dir"
echo "$dir"
