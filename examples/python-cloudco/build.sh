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

# cpi's own WIT (the repository's wit/, unchanged) plus this example's world over it, which
# adds standard wasi:http/outgoing-handler (examples/python-cloudco/wit/world.wit says why it
# lives here). componentize-py's bundled `poll_loop` imports wasi:http's types as
# `wit_world.imports.types`, so cpi's `types` is named `cpi_types`.
world=(
    -d "$repo/wit" -d "$here/wit" -w cpi:cloudco-py/provider-component-http
    --import-interface-name wasi:http/types@0.2.12=types
    --import-interface-name cpi:provider/types@0.2.0=cpi_types
)

cd "$here"
export PYTHONDONTWRITEBYTECODE=1
rm -rf "$bindings"
componentize-py "${world[@]}" bindings "$bindings"
componentize-py "${world[@]}" componentize app -o "$out.tmp"
mv "$out.tmp" "$out"
echo "built $out ($(wc -c <"$out") bytes)" >&2
