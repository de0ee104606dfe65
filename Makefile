# The two commands of the README: `make demo` (the main job on built-in defaults) and
# `make test` (the whole test suite). Both first run the idempotent host set-up.
SWIFT ?= swift
CXLLAB := .build/debug/cxllab

.PHONY: setup build demo test clean

setup:
	bash scripts/setup-host.sh

build:
	$(SWIFT) build

demo: setup build
	bash scripts/demo.sh

test: setup
	$(SWIFT) build --build-tests
	$(SWIFT) test

clean:
	rm -rf .build
