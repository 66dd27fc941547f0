#!/usr/bin/env bash
# Builds examples/c-cloudco into a WebAssembly component, from the WIT alone (no SDK):
#
#   wit-bindgen c  -> bindings (provider_component.h/.c and the component-type object)
#   clang          -> a wasm32-wasi core module (Debian's clang, lld and wasi-libc)
#   wasm-tools     -> `component new` turns the core module into a component
#
# Usage: build.sh [OUT.wasm]   (default: ../../target/guests/cloudco-c.wasm)
# Needs: clang lld wasi-libc libclang-rt-dev-wasm32 (apt), wit-bindgen-cli and wasm-tools
# (cargo install; the versions .ci/run installs).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${1:-$repo/target/guests/cloudco-c.wasm}
wit=${WIT:-$repo/wit}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

wit-bindgen c "$wit" --world provider-component --out-dir "$work/gen" >/dev/null

# The provider definition the component ships (its `provider-json`), as a C string literal.
sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$/\\n"/' "$here/cloudco-c.json" \
    > "$work/gen/definition.inc"

# The API version is the WIT package's version (what `describe` reports as api-version).
api=$(sed -n 's/^package cpi:provider@\([0-9.]*\);.*/\1/p' "$wit"/*.wit | head -1)
[[ -n $api ]] || { echo "no 'package cpi:provider@X.Y.Z;' in $wit" >&2; exit 1; }

clang --target=wasm32-wasi --sysroot=/usr -mexec-model=reactor -O2 -Wall -Wextra -Werror \
    -Wno-unused-parameter -I"$work/gen" -DAPI_VERSION="\"$api\"" \
    -o "$work/core.wasm" \
    "$here/provider.c" "$here/json.c" \
    "$work/gen/provider_component.c" "$work/gen/provider_component_component_type.o"

mkdir -p "$(dirname "$out")"
wasm-tools component new "$work/core.wasm" -o "$out"
