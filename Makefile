# eks-warden — make demo (main job against the emulator), make test (everything), make lint;
# make build (the Lambda zip), make validate (both CloudFormation templates, offline), make deploy (SAM).
SHELL := /bin/bash
CARGO ?= cargo
# Builds share one feature set (tests, examples and binaries together) so nothing compiles twice.
TARGET_DIR := $(shell $(CARGO) metadata --format-version 1 --no-deps 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

.PHONY: all emulator dev build deploy validate deploy-tools build-tools demo test lint fmt clean bench bench-peers fuzz

all: dev

emulator:
	bash scripts/emulator-venv.sh

# The CLI, the bootstrap binary and the examples, debug, for the demo and local runs.
dev:
	$(CARGO) build --bins --examples

# --- deployment (README "Deploy") ----------------------------------------------------------------
# Tools live in their own git-ignored virtualenvs (scripts/deploy-tools.sh): cargo-lambda + zig in
# .venv-tools, cfn-lint + aws-sam-cli in .venv-deploy (it pins an older botocore than the emulator).
TOOLS_BIN := $(CURDIR)/.venv-tools/bin
DEPLOY_BIN := $(CURDIR)/.venv-deploy/bin
TEMPLATES := template.yaml templates/member-role.yaml
# The Lambda's architecture: arm64 (as template.yaml declares); ARCH=x86_64 builds for Intel.
ARCH ?= arm64
LAMBDA_ARCH_FLAG := $(if $(filter arm64,$(ARCH)),--arm64,--x86-64)
RUST_TARGET := $(if $(filter arm64,$(ARCH)),aarch64,x86_64)-unknown-linux-gnu

build-tools:
	bash scripts/deploy-tools.sh build

deploy-tools:
	bash scripts/deploy-tools.sh validate

# The Lambda's zip: $(TARGET_DIR)/lambda/bootstrap/bootstrap.zip (release, stripped, cross-linked by zig).
build: build-tools
	@if command -v rustup >/dev/null; then rustup target add $(RUST_TARGET); fi
	PATH="$(TOOLS_BIN):$$PATH" $(CARGO) lambda build --release $(LAMBDA_ARCH_FLAG) --bin bootstrap --output-format zip
	@ls -l "$(TARGET_DIR)/lambda/bootstrap/"

# cfn-lint and `sam validate --lint` on both templates; offline: a dummy region, no credentials.
validate: deploy-tools
	AWS_DEFAULT_REGION=us-east-1 $(DEPLOY_BIN)/cfn-lint $(TEMPLATES)
	for t in $(TEMPLATES); do \
	  env -u AWS_PROFILE -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN \
	    AWS_DEFAULT_REGION=us-east-1 SAM_CLI_TELEMETRY=0 \
	    $(DEPLOY_BIN)/sam validate --lint --template-file $$t || exit 1; \
	done

# `sam build` runs cargo-lambda per the template's Metadata (rust-cargolambda, binary bootstrap, arm64),
# then `sam deploy` takes the stack name, region and parameters from samconfig.toml (or asks, --guided).
# With a samconfig.toml (copy samconfig.toml.example) it runs without prompts; without one it asks.
deploy: build-tools deploy-tools
	PATH="$(TOOLS_BIN):$(DEPLOY_BIN):$$PATH" SAM_CLI_TELEMETRY=0 sam build --beta-features
	PATH="$(DEPLOY_BIN):$$PATH" SAM_CLI_TELEMETRY=0 sam deploy $(if $(wildcard samconfig.toml),,--guided)

demo: emulator dev
	scripts/with-emulator.sh scripts/demo.sh "$(TARGET_DIR)/debug"

test: emulator
	$(CARGO) test --all-targets

# --- evidence: BENCHMARKS.md and fuzzing (none of these runs in CI) ----------------------------------
# Release builds (the bench profile inherits release). `make bench` seeds the emulator, runs every figure
# and rewrites BENCHMARKS.md; `make bench-peers` installs Cloud Custodian and Prowler into .venv-peers
# and rewrites only the Peers section.
bench: emulator
	$(CARGO) bench --bench warden

bench-peers: emulator
	bash scripts/peers-venv.sh
	$(CARGO) bench --bench warden -- --peers

# The payload parser and router under mutated events/ fixtures for FUZZ_SECONDS; a panic stops it and
# writes the input to $(TARGET_DIR)/fuzz-crashes/. FUZZ_SEED replays a run, FUZZ_REPLAY=FILE one input.
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(CARGO) run --release --example fuzz

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf .venv .venv-tools .venv-deploy .aws-sam
