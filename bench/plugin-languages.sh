#!/usr/bin/env bash
# Per-language plugin figures: component size, compile time, load from the
# compiled cache, a call on a fresh instance and on a warm one. Builds the
# client-claims example in Rust, JavaScript and Python (and client-name-c when
# its tools are installed), then runs each through `tessera plugin test` twice:
# once with an empty compiled cache, once with it filled.
#
#   bench/plugin-languages.sh            # prints a Markdown table
#   REPEAT=500 bench/plugin-languages.sh
set -euo pipefail
cd "$(dirname "$0")/.."
REPEAT="${REPEAT:-200}"
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --quiet --release -p tessera
TESSERA="$TARGET/release/tessera"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# Build time of an unchanged plugin (dependencies installed, Rust crates
# compiled): what an author waits for after an edit.
declare -A build_s
timed() {
  local lang="$1"; shift
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null 2>"$WORK/$lang.log" || return 1
  end=$(date +%s.%N)
  build_s[$lang]=$(python3 -c "print(f'{$end - $start:.1f} s')")
}
touch plugins/client-claims/src/lib.rs
timed rust "$TESSERA" plugin build plugins/client-claims --out "$WORK/rust.wasm"
timed javascript "$TESSERA" plugin build plugins/client-claims-js --out "$WORK/javascript.wasm"
timed python "$TESSERA" plugin build plugins/client-claims-py --out "$WORK/python.wasm"
langs=(rust javascript python)
if timed c plugins/client-name-c/build.sh --out "$WORK/c.wasm"; then
  langs+=(c)
fi

cat > "$WORK/event.json" <<'JSON'
{ "client": { "id": "acme-sync", "name": "ACME order sync", "app_type": "machine",
              "metadata": { "partner": "acme", "tier": "gold" } },
  "config": { "namespace": "https://claims.example.com/", "metadata_keys": ["partner", "tier"] } }
JSON

echo "| language | build | component | compile | load from cache | fresh instance + call | warm call |"
echo "|---|---|---|---|---|---|---|"
for lang in "${langs[@]}"; do
  cache="$WORK/cache-$lang"
  run() {
    "$TESSERA" plugin test "$WORK/$lang.wasm" --stage credentials-exchange \
      --event "$WORK/event.json" --cache-dir "$cache" --repeat "$1"
  }
  cold="$(run 0)"
  warm="$(run "$REPEAT")"
  python3 - "$lang" "${build_s[$lang]}" "$cold" "$warm" <<'PY'
import json, sys
lang, build, cold, warm = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
size = cold["plugin"]["size"]
t = warm["timing"]
print(f"| {lang} | {build} | {size / 1024 / 1024:.2f} MiB | {cold['timing']['load_ms'] / 1000:.2f} s "
      f"| {t['load_ms']:.1f} ms | {t['fresh_instance_us']} µs | {t['warm_call_us']} µs |")
PY
done
