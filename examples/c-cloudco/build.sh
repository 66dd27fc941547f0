#!/usr/bin/env bash
# Builds the cloudco-c component from C, with no SDK: bindings from the WIT alone.
#
#   examples/c-cloudco/build.sh [OUT]     # default OUT: target/guests/cloudco-c.wasm
#
# Needs Debian's clang (with libclang-rt-dev-wasm32) and wasi-libc, and, installed with cargo
# (`.ci/run` does): wit-bindgen-cli 0.61.0 (`wit-bindgen c`) and wasm-tools 1.263.0
# (`wasm-tools component new`). Generated files go to target/guests/c-cloudco/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${1:-$repo/target/guests/cloudco-c.wasm}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
gen="$repo/target/guests/c-cloudco"
mkdir -p "$(dirname "$out")"
rm -rf "$gen"
mkdir -p "$gen"

for tool in clang wit-bindgen wasm-tools; do
    command -v "$tool" >/dev/null || { echo "$tool not found (see the top of $0)" >&2; exit 127; }
done

# The bindings: provider_component.{h,c} and the component type as an object file.
wit-bindgen c "$repo/wit" --world provider-component --out-dir "$gen" >/dev/null

# The provider definition as a C string (the sandbox has no files at run time).
{
    printf 'static const char DEFINITION[] =\n'
    sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/    "/' -e 's/$/\\n"/' "$here/cloudco-c.json"
    printf '    ;\n'
} >"$gen/definition.h"

# A reactor module: no `main`, only the exports; nothing of WASI is used, so the module
# imports only cpi's host interface and needs no preview1 adapter.
clang --target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Wextra -Werror \
    -Wno-unused-parameter -I "$gen" \
    -o "$gen/cloudco-c.core.wasm" \
    "$here/cloudco.c" "$gen/provider_component.c" "$gen/provider_component_component_type.o"

wasm-tools component new "$gen/cloudco-c.core.wasm" -o "$out.tmp"
wasm-tools validate "$out.tmp"
mv "$out.tmp" "$out"
echo "built $out ($(wc -c <"$out") bytes)" >&2
