#!/usr/bin/env bash
# Static checks of terraform/: formatting (`terraform fmt`) and security (checkov), as CI runs
# them. Offline: providers cannot be downloaded here, so `terraform validate` is not part of it,
# and checkov neither fetches policies nor downloads external modules (the examples use local
# ones, which it resolves). Run from anywhere; exits non-zero on any finding.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

if ! command -v terraform >/dev/null 2>&1; then
  echo "check-terraform: terraform is not installed (https://developer.hashicorp.com/terraform/install)" >&2
  exit 1
fi

# fmt needs no CLI configuration: do not warn about a missing one.
if [[ ! -f "${TF_CLI_CONFIG_FILE:-$HOME/.terraformrc}" ]]; then
  export TF_CLI_CONFIG_FILE=/dev/null
fi

echo "== terraform fmt -check -recursive -diff terraform"
if ! terraform fmt -check -recursive -diff terraform; then
  echo "check-terraform: FAILED: terraform fmt (fix with: terraform fmt -recursive terraform)" >&2
  exit 1
fi

tools="$(scripts/python-tools.sh)"
report="$(mktemp)"
trap 'rm -f "$report"' EXIT

echo "== checkov -d terraform --framework terraform"
# Exits 1 on any failed check; inline `#checkov:skip=ID:reason` suppressions count as skipped.
status=0
CKV_SKIP_PACKAGE_UPDATE_CHECK=true "$tools/checkov" \
  --directory terraform \
  --framework terraform \
  --quiet \
  --compact \
  --skip-download \
  --download-external-modules false \
  | tee "$report" || status=$?

summary="$(grep -Eo 'Passed checks: [0-9]+, Failed checks: [0-9]+, Skipped checks: [0-9]+' "$report" | tail -n 1 || true)"
if [[ -z "$summary" ]]; then
  echo "check-terraform: FAILED: checkov printed no summary (exit status $status)" >&2
  exit 1
fi
failed="$(sed -E 's/.*Failed checks: ([0-9]+).*/\1/' <<<"$summary")"
if [[ "$status" -ne 0 || "$failed" -ne 0 ]]; then
  echo "check-terraform: FAILED: terraform fmt clean; checkov: $summary" >&2
  exit 1
fi
echo "check-terraform: OK: terraform fmt clean; checkov: $summary"
