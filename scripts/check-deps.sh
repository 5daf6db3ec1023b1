#!/usr/bin/env bash
# `cargo deny check` against deny.toml, offline: the RustSec advisory database comes from the
# snapshot in ../shared/data (unpacked once where deny.toml's db-path expects it), cargo-deny
# is built once into ~/.cache/sirsinexus/tools.
set -euo pipefail
cd "$(dirname "$0")/.."

version=0.20.2
tools="$HOME/.cache/sirsinexus/tools"
deny="$tools/bin/cargo-deny"
if ! "$deny" --version 2>/dev/null | grep -q "$version"; then
  echo "== building cargo-deny $version (once per machine)"
  cargo install cargo-deny --locked --version "$version" --root "$tools" --quiet
fi

snapshot=$(ls ../shared/data/rustsec-advisory-db-*.tar.gz 2>/dev/null | sort | tail -1)
if [ -z "$snapshot" ]; then
  echo "no RustSec snapshot in ../shared/data" >&2
  exit 1
fi
# The directory name cargo-deny derives from the database URL in deny.toml.
db="$HOME/.cache/sirsinexus/advisory-dbs/advisory-db-3157b0e258782691"
stamp="$db/.snapshot"
if [ "$(cat "$stamp" 2>/dev/null)" != "$(basename "$snapshot")" ]; then
  rm -rf "$db"
  mkdir -p "$db"
  tar xzf "$snapshot" -C "$db" --strip-components=1
  basename "$snapshot" > "$stamp"
fi

# cargo-deny reads every package's manifest through `cargo metadata --offline`, for every
# platform; a fresh machine has only the crates its own builds used, so fetch the rest first.
cargo fetch --locked --quiet

echo "== cargo deny check ($(basename "$snapshot"))"
"$deny" deny --log-level warn --locked --offline check
