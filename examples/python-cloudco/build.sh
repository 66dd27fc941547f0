#!/usr/bin/env bash
# Builds the cloudco-py component with componentize-py (`pip install componentize-py==0.25.1`).
#
#   examples/python-cloudco/build.sh [OUT]     # default OUT: target/guests/cloudco-py.wasm
#
# Also writes the Python bindings for the WIT world to target/guests/python-cloudco-bindings
# (for editors and type checkers: put that directory on PYTHONPATH). Nothing is written into
# the source tree.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${1:-$repo/target/guests/cloudco-py.wasm}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
bindings="$repo/target/guests/python-cloudco-bindings"
mkdir -p "$(dirname "$out")"

command -v componentize-py >/dev/null || {
    echo "componentize-py not found: pip install componentize-py==0.25.1" >&2
    exit 127
}

cd "$here"
export PYTHONDONTWRITEBYTECODE=1
rm -rf "$bindings"
componentize-py -d "$repo/wit" -w provider-component bindings "$bindings"
componentize-py -d "$repo/wit" -w provider-component componentize app -o "$out.tmp"
mv "$out.tmp" "$out"
echo "built $out ($(wc -c <"$out") bytes)" >&2
