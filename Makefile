# eks-warden — make demo (main job against the emulator), make test (everything), make lint.
SHELL := /bin/bash
CARGO ?= cargo
# Builds share one feature set (tests, examples and binaries together) so nothing compiles twice.
TARGET_DIR := $(shell $(CARGO) metadata --format-version 1 --no-deps 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

.PHONY: all emulator build demo test lint fmt clean

all: build

emulator:
	bash scripts/emulator-venv.sh

build:
	$(CARGO) build --bins --examples

demo: emulator build
	scripts/with-emulator.sh scripts/demo.sh "$(TARGET_DIR)/debug"

test: emulator
	$(CARGO) test --all-targets

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf .venv
