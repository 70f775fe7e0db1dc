#!/usr/bin/env bash
# Builds the C plugin client-name-c into a WebAssembly component.
#
#   ./build.sh [--out FILE]      default: client_name_c.wasm beside this script
#
# Steps (README.md explains each):
#   1. wit-bindgen c   wit/plugin.wit, world credentials-exchange -> build/*.c *.h *.o
#   2. clang           plugin.c + bindings -> build/client_name_c.core.wasm (wasm32-wasi reactor)
#   3. wasm-tools      component new + the WASI preview1 reactor adapter -> the component
#
# Tools: clang-19, lld-19, wasi-libc and libclang-rt-19-dev-wasm32 (Debian 12
# packages), wit-bindgen and wasm-tools (cargo install), curl, tar and
# sha256sum (for the adapter, fetched once from crates.io into
# ~/.cache/tessera/). A missing tool stops the build with the command that
# installs it. CLANG, WIT_BINDGEN, WASM_TOOLS and WASI_ADAPTER (a path to a
# wasi_snapshot_preview1.reactor.wasm) override the defaults.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
wit="$here/../../wit"
build="$here/build"
out="$here/client_name_c.wasm"

# The adapter turns the core module's WASI preview1 imports (fd_write, used
# to write to stderr) into WASI 0.2 imports. Its version follows wasmtime's:
# 48.0.8 matches the wasmtime Tessera embeds. The checksum is the one the
# crates.io index lists for this .crate.
adapter_crate=wasi-preview1-component-adapter-provider
adapter_version=48.0.8
adapter_sha256=d3a1674fffec103c1d4367d4417a3bd5423cde3cfd56ff3b326b5fc72c0a8ebd

# Versions the recipe was written and measured with.
wit_bindgen_install="cargo install wit-bindgen-cli --version 0.63.0 --locked --no-default-features --features c,go"
wasm_tools_install="cargo install wasm-tools --version 1.263.0 --locked --no-default-features --features component,validate,print,metadata"
apt_install="apt-get install clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32"

# shellcheck source=../recipe.sh
. "$here/../recipe.sh"
parse_args "$@"

# 0. Tools ---------------------------------------------------------------------
clang="${CLANG:-clang-19}"
wit_bindgen="${WIT_BINDGEN:-wit-bindgen}"
wasm_tools="${WASM_TOOLS:-wasm-tools}"
target=wasm32-wasi # the name Debian's wasi-libc is installed under

need "$clang" "$apt_install   # clang-19"
need "$wit_bindgen" "$wit_bindgen_install"
need "$wasm_tools" "$wasm_tools_install"

# clang finds the linker, libc and compiler builtins on its own; ask it where
# it looks so that a missing package is named here and not in a link error.
[ -x "$("$clang" --target=$target -print-prog-name=wasm-ld)" ] ||
    missing "wasm-ld (the WebAssembly linker)" "apt-get install lld-19"
[ -f "$("$clang" --target=$target -print-file-name=crt1-reactor.o)" ] ||
    missing "the wasm32-wasi C library" "apt-get install wasi-libc"
[ -f "$("$clang" --target=$target -print-libgcc-file-name)" ] ||
    missing "the wasm32 compiler builtins" "apt-get install libclang-rt-19-dev-wasm32"

adapter="${WASI_ADAPTER:-$(from_crate $adapter_crate $adapter_version $adapter_sha256 \
    artefacts/wasi_snapshot_preview1.reactor.wasm)}"
[ -f "$adapter" ] || { echo "build.sh: no WASI adapter at $adapter" >&2; exit 1; }

start=$(date +%s.%N)
rm -rf "$build"
mkdir -p "$build"

# 1. Bindings ------------------------------------------------------------------
# credentials_exchange.{c,h}: the types, the import wrappers, the export
# glue, cabi_realloc and the post-return that frees what the export returns.
# credentials_exchange_component_type.o: the world, as a custom section that
# `wasm-tools component new` reads.
# (wit-bindgen reports each file it writes; show that only when it fails.)
if ! log="$("$wit_bindgen" c "$wit" --world credentials-exchange --out-dir "$build" 2>&1)"; then
    echo "$log" >&2
    exit 1
fi

# 2. Core module ---------------------------------------------------------------
# A reactor: a library with no main. Debian's wasi-libc carries debug info,
# which --strip-debug drops; the component-type section stays. The plugin
# prints no floating-point numbers, so the smaller printf is linked.
core="$build/client_name_c.core.wasm"
"$clang" --target=$target -mexec-model=reactor -O2 -std=c11 \
    -Wall -Wextra \
    -I "$build" \
    -o "$core" \
    "$here/plugin.c" \
    "$build/credentials_exchange.c" \
    "$build/credentials_exchange_component_type.o" \
    -Wl,--strip-debug \
    -lc-printscan-no-floating-point

# 3. Component -----------------------------------------------------------------
mkdir -p "$(dirname "$out")"
"$wasm_tools" component new "$core" --adapt "wasi_snapshot_preview1=$adapter" -o "$out"

end=$(date +%s.%N)
size=$(wc -c < "$out")
elapsed=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
echo "build.sh: wrote $out ($size bytes) in $elapsed s"
