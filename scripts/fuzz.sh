#!/usr/bin/env bash
# Runs each cargo-fuzz target of fuzz/ for FUZZ_SECONDS seconds (default 60), and fails on the
# first crash, naming the input that caused it (kept under fuzz/artifacts/<target>/). Reproduce
# one with `scripts/fuzz.sh <target> <input>`.
#
# cargo-fuzz is built once into ~/.cache/sirsinexus/tools, the instrumented build lives in
# ~/.cache/sirsinexus/fuzz-target (so later runs are incremental), and what a run finds is kept
# in ~/.cache/sirsinexus/fuzz-corpus, so each run starts where the last one stopped; the seeds
# committed in fuzz/corpus/ are only read.
#
# Only the stable compiler is installed: RUSTC_BOOTSTRAP=1 lets it take the unstable flags
# cargo-fuzz passes (-Zsanitizer). No sanitizer (`-s none`): the decoders are safe Rust (the
# workspace forbids unsafe code), so AddressSanitizer would find little beyond what a panic,
# the timeout and the memory limit catch, at a cost in memory and executions per second.
set -euo pipefail
cd "$(dirname "$0")/.."

version=0.13.2
cache="$HOME/.cache/sirsinexus"
fuzz="$cache/tools/bin/cargo-fuzz"
if ! "$fuzz" --version 2>/dev/null | grep -q "$version"; then
  echo "== building cargo-fuzz $version (once per machine)"
  cargo install cargo-fuzz --locked --version "$version" --root "$cache/tools" --quiet
fi

export RUSTC_BOOTSTRAP=1
# Debug assertions catch integer overflow; 16 codegen units (cargo-fuzz's default is 1) let the
# large crates compile on both cores.
build=(-s none --debug-assertions --codegen-units 16 --target-dir "$cache/fuzz-target")
# A slow input (10 s) or one using 2 GB counts as a crash, as a panic does.
limits=(-timeout=10 -rss_limit_mb=2048 -max_len=65536)

if [ $# -eq 2 ]; then
  exec "$fuzz" run "${build[@]}" "$1" "$2" -- "${limits[@]}"
fi

seconds=${FUZZ_SECONDS:-60}
targets=$("$fuzz" list)
echo "== building the fuzz targets"
"$fuzz" build "${build[@]}"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for target in $targets; do
  corpus="$cache/fuzz-corpus/$target"
  mkdir -p "$corpus"
  echo "== $target: ${seconds}s"
  # The targets' temporary files go to the scratch directory, removed at the end.
  if ! TMPDIR="$scratch" "$fuzz" run "${build[@]}" "$target" "$corpus" "fuzz/corpus/$target" -- \
    "${limits[@]}" -max_total_time="$seconds" -print_final_stats=1 >"$scratch/$target.log" 2>&1; then
    tail -40 "$scratch/$target.log"
    crash=$(grep -o 'Test unit written to .*' "$scratch/$target.log" | tail -1 | sed 's/Test unit written to //')
    echo "$target crashed on ${crash:-an input libFuzzer did not save}" >&2
    echo "reproduce: scripts/fuzz.sh $target ${crash:-<input>}" >&2
    exit 1
  fi
  grep -E '^#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb' "$scratch/$target.log" | sed 's/^/   /'
done
