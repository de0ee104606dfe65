# The two commands of the README: `make demo` (the main job on built-in defaults) and
# `make test` (the whole test suite). Both first run the idempotent host set-up.
SWIFT ?= swift
CXLLAB := .build/debug/cxllab

.PHONY: setup build demo test bench clean

setup:
	bash scripts/setup-host.sh

build:
	$(SWIFT) build

demo: setup build
	bash scripts/demo.sh

test: setup
	$(SWIFT) build --build-tests
	$(SWIFT) test

# Figures are taken with the optimised build: debug Swift parses JSON several times slower.
bench: setup
	$(SWIFT) build -c release
	.build/release/cxllab bench

clean:
	rm -rf .build
