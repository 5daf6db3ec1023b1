# Entry points: the README's two commands (`make demo`, `make test`), plus lint and bench.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

FUNCTIONS_TARGET := wasm32-wasip2
REDIS_URL ?= redis://127.0.0.1:6379
PGHOST ?= 127.0.0.1
PGPORT ?= 5432

.PHONY: demo test lint deploy-check deps-check fuzz-smoke functions toolchain services tools bench

## demo: build the example functions, start the platform with `nexus up` and deploy them, printing URLs and a token.
demo: toolchain functions
	cargo run --locked --bin nexus -- up -f functions/spin.toml

## test: formatting, lints, cargo deny, the deployment checks, a short fuzzing run and every test, against the real Postgres and
## Redis. The binaries are built first: the cluster and cloud tests run `nexus-edge`, which no
## test of its own package builds; the cloud tests run it under cargo-lambda's Lambda emulator.
test: toolchain services tools lint deploy-check deps-check fuzz-smoke
	cargo build --workspace --locked --bins
	NEXUS_CARGO_LAMBDA="$$(scripts/python-tools.sh)/cargo-lambda" \
	  cargo nextest run --workspace --locked --no-fail-fast

## tools: the system programs the tests run, from Debian's packages when missing: Prometheus
## (the observability test scrapes the coordinator and a node with it) and Chromium (the
## dashboard test drives it headless).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
TOOLS := /usr/bin/prometheus:prometheus /usr/bin/chromium:chromium
tools:
	@missing=""; for tool in $(TOOLS); do \
	  test -x "$${tool%%:*}" || missing="$$missing $${tool##*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian's$$missing for the tests"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

## deploy-check: terraform fmt and checkov on terraform/; kubernetes-validate and checkov on infra/.
deploy-check:
	scripts/check-terraform.sh
	scripts/check-infra.sh

## deps-check: cargo deny (advisories from the RustSec snapshot in ../shared/data, licences,
## bans, sources), offline.
deps-check:
	scripts/check-deps.sh

## fuzz-smoke: each cargo-fuzz target (fuzz/: spin.toml loading, REST request decoding, protobuf
## messages) for FUZZ_SECONDS seconds (default 60); fails on any crash, naming the input.
fuzz-smoke:
	scripts/fuzz.sh

## lint: rustfmt and clippy for the workspace and for the guest functions.
lint: toolchain
	cargo fmt --all -- --check
	cd functions && cargo fmt --all -- --check
	cd functions && cargo clippy --locked --release --target $(FUNCTIONS_TARGET) -- -D warnings
	cd functions && cargo clippy --locked --release --target wasm32-wasip1 -p hello-sdk2 -- -D warnings
	cargo clippy --workspace --all-targets --locked -- -D warnings

## functions: build the guest components (functions/target/wasm32-wasip2/release/*.wasm), and
## `hello` and `hello-sdk2` (spin-sdk 2.2) as core modules (wasm32-wasip1), made components on load.
functions: toolchain
	cd functions && cargo build --locked --release --target $(FUNCTIONS_TARGET)
	cd functions && cargo build --locked --release --target wasm32-wasip1 -p hello -p hello-sdk2

## toolchain: install the pinned toolchain and the wasm target when missing.
toolchain:
	@rustup toolchain install --no-self-update >/dev/null 2>&1 || rustup toolchain install
	@cd functions && (rustup toolchain install --no-self-update >/dev/null 2>&1 || rustup toolchain install)
	@rustup target list --installed | grep -qx $(FUNCTIONS_TARGET) || rustup target add $(FUNCTIONS_TARGET)
	@rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1

## services: the tests need Postgres, Redis, MariaDB and Mosquitto; fail loudly when one is down.
services:
	@redis-cli -u $(REDIS_URL) ping >/dev/null 2>&1 || { \
	  echo "Redis is not reachable at $(REDIS_URL). Start it with:"; \
	  echo '  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no'; \
	  exit 1; }
	@pg_isready -q -h $(PGHOST) -p $(PGPORT) || { \
	  echo "PostgreSQL is not reachable at $(PGHOST):$(PGPORT). Start it with:"; \
	  echo '  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start'; \
	  exit 1; }
	@(exec 3<>/dev/tcp/127.0.0.1/3306) 2>/dev/null || { \
	  echo "MariaDB is not reachable at 127.0.0.1:3306. Start it with:"; \
	  echo '  mysqld_safe --user=mysql >/dev/null 2>&1 &'; \
	  exit 1; }
	@(exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null || { \
	  echo "Mosquitto is not reachable at 127.0.0.1:1883. Start it with:"; \
	  echo '  mosquitto -d'; \
	  exit 1; }

## bench: on hello, the runtime direct vs through the trigger vs wasmtime serve; the cluster (coordinator → nexus-edge, closed and open loop); instantiate latency; login and deploy → first 200; agents (create, message, context read, memory with 1,000,000 idle agents).
bench: toolchain functions
	scripts/bench.sh
