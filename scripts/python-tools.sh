#!/usr/bin/env bash
# Prints the bin directory of a virtualenv holding scripts/python-tools.txt, creating or
# updating it first when that list changed. The venv lives outside the clone, so later runs on
# the same machine reuse it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${NEXUS_TOOLS_VENV:-$HOME/.cache/sirsinexus/python-tools}"
stamp="$venv/.requirements"
exec 9>"${venv}.lock" 2>/dev/null || { mkdir -p "$(dirname "$venv")"; exec 9>"${venv}.lock"; }
flock 9
if ! cmp -s "$here/python-tools.txt" "$stamp"; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/python-tools.txt" >&2
  cp "$here/python-tools.txt" "$stamp"
fi
echo "$venv/bin"
