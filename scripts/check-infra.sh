#!/usr/bin/env bash
# Offline checks of infra/ (no cluster, no Docker engine):
#   - every manifest in infra/kubernetes against the Kubernetes API schemas (kubernetes-validate,
#     strict: unknown fields fail), for the oldest and newest versions checked;
#   - the kustomization rendered by `kubectl kustomize`, validated the same way (when kubectl is
#     installed);
#   - checkov's Kubernetes and Dockerfile policies: no failed check (suppressions carry reasons
#     in the files themselves);
#   - infra/docker-compose.yml with `docker compose config` when the Compose plugin is installed,
#     otherwise a structural check (services, build targets, volumes, depends_on, variables);
#   - infra/prometheus/prometheus.yml parses (and `promtool check config` when installed).
# Run from anywhere; prints one summary line and exits non-zero on any error.
set -euo pipefail
cd "$(dirname "$0")/.."

tools="$(scripts/python-tools.sh)"
k8s_versions=(1.30.0 1.37.0)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

fail() {
  echo "check-infra: $*" >&2
  exit 1
}

# 1. Manifests, one by one (kustomization.yaml is kustomize's, not the API's).
manifests=()
while IFS= read -r file; do
  manifests+=("$file")
done < <(find infra/kubernetes -name '*.yaml' ! -name kustomization.yaml | sort)
[ "${#manifests[@]}" -gt 0 ] || fail "no manifests in infra/kubernetes"
for version in "${k8s_versions[@]}"; do
  "$tools/kubernetes-validate" --strict --quiet --kubernetes-version "$version" "${manifests[@]}" \
    || fail "kubernetes-validate failed against Kubernetes $version"
done

# 2. What `kubectl apply -k infra/kubernetes` would apply.
if command -v kubectl > /dev/null 2>&1; then
  kubectl kustomize infra/kubernetes > "$work/rendered.yaml" || fail "kubectl kustomize failed"
  for version in "${k8s_versions[@]}"; do
    "$tools/kubernetes-validate" --strict --quiet --kubernetes-version "$version" \
      "$work/rendered.yaml" || fail "the rendered kustomization failed against Kubernetes $version"
  done
  rendered="$(grep -c '^kind:' "$work/rendered.yaml")"
  kustomize_result="kustomization renders $rendered resources"
else
  kustomize_result="kustomization not rendered (no kubectl)"
fi

# 3. checkov: exits non-zero on a failed check; the counts go into the summary.
if ! "$tools/checkov" --directory infra --framework kubernetes dockerfile --quiet --compact \
  --skip-download > "$work/checkov.txt" 2>&1; then
  cat "$work/checkov.txt" >&2
  fail "checkov reported failed checks"
fi
read -r passed failed skipped < <(awk -F'[:,] *' '/Passed checks/ {
    p += $2; f += $4; s += $6
  } END { print p + 0, f + 0, s + 0 }' "$work/checkov.txt")
[ "$failed" -eq 0 ] || { cat "$work/checkov.txt" >&2; fail "checkov: $failed failed checks"; }
[ "$passed" -gt 0 ] || { cat "$work/checkov.txt" >&2; fail "checkov ran no check"; }

# 4. The compose file. `config` needs the variables it requires; a dummy token will do.
if docker compose version > /dev/null 2>&1; then
  NEXUS_NODE_TOKEN=check docker compose -f infra/docker-compose.yml config --quiet \
    || fail "docker compose config failed"
  compose_result="compose config ok"
else
  "$tools/python" - infra/docker-compose.yml infra/.env.example << 'EOF' || fail "infra/docker-compose.yml is inconsistent"
import os, re, sys
import yaml

path, env_example = sys.argv[1], sys.argv[2]
base = os.path.dirname(path)
with open(path) as f:
    text = f.read()
compose = yaml.safe_load(text)
services = compose["services"]
volumes = compose.get("volumes") or {}
errors = []
for name, service in services.items():
    if "image" not in service:
        errors.append(f"{name}: no image")
    build = service.get("build")
    if build:
        context = os.path.normpath(os.path.join(base, build["context"]))
        dockerfile = os.path.join(context, build.get("dockerfile", "Dockerfile"))
        if not os.path.isfile(dockerfile):
            errors.append(f"{name}: no {dockerfile}")
        else:
            with open(dockerfile) as f:
                stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", f.read(), re.M | re.I)
            if build.get("target") and build["target"] not in stages:
                errors.append(f"{name}: target {build['target']} is not a stage of {dockerfile}")
    for dependency, spec in (service.get("depends_on") or {}).items():
        if dependency not in services:
            errors.append(f"{name}: depends on unknown service {dependency}")
        condition = (spec or {}).get("condition", "service_started")
        if condition not in ("service_started", "service_healthy", "service_completed_successfully"):
            errors.append(f"{name}: unknown condition {condition}")
        if condition == "service_healthy" and "healthcheck" not in services.get(dependency, {}):
            errors.append(f"{name}: waits for {dependency} to be healthy, which has no healthcheck")
    for mount in service.get("volumes") or []:
        source = mount.split(":")[0]
        if source.startswith((".", "/")):
            if not os.path.exists(os.path.join(base, source)):
                errors.append(f"{name}: bind mount {source} does not exist")
        elif source not in volumes:
            errors.append(f"{name}: volume {source} is not declared")
# Every variable the file reads is documented in .env.example.
with open(env_example) as f:
    documented = set(re.findall(r"^#?\s*([A-Z_][A-Z0-9_]*)=", f.read(), re.M))
for variable in sorted(set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", text)) - documented):
    errors.append(f"${{{variable}}} is not in {env_example}")
for error in errors:
    print(f"{path}: {error}", file=sys.stderr)
sys.exit(1 if errors else 0)
EOF
  compose_result="compose structure ok (no docker compose plugin for config)"
fi

# 5. Prometheus.
"$tools/python" -c 'import sys, yaml; c = yaml.safe_load(open(sys.argv[1])); assert c["scrape_configs"]' \
  infra/prometheus/prometheus.yml || fail "infra/prometheus/prometheus.yml does not parse"
if command -v promtool > /dev/null 2>&1; then
  promtool check config infra/prometheus/prometheus.yml > /dev/null || fail "promtool check config failed"
fi

echo "check-infra: ${#manifests[@]} manifest files valid against Kubernetes ${k8s_versions[*]} (strict), $kustomize_result, checkov $passed passed / $failed failed / $skipped skipped, $compose_result"
