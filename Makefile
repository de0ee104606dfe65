# The two commands of the README: `make demo` (the main job on built-in defaults) and
# `make test` (the whole test suite). Both first run the idempotent host set-up: the main
# job's packages for the demo, those and the tests' tools for the tests.
SWIFT ?= swift
CXLLAB := .build/debug/cxllab

.PHONY: setup setup-suite setup-tests build demo test test-pure bench clean

# What the main job needs; `setup-suite` adds what `cxllab suite ndctl` needs, `setup-tests`
# what the test suite needs (the suite's tools and Chromium).
setup:
	bash scripts/setup-host.sh

setup-suite:
	bash scripts/setup-host.sh --suite

setup-tests:
	bash scripts/setup-host.sh --tests

build:
	$(SWIFT) build

demo: setup build
	bash scripts/demo.sh

# Three phases: everything else, two guests at a time; then the ndctl lab that needs the
# host's cores to itself (device-dax times its loop against bare metal); then the host's fault
# drills, on their own too: they restart libvirtd and damage the shared cache.
test: setup-tests
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --skip HostFaultDrillTests --skip NdctlHostToItselfTests
	$(SWIFT) test --skip-build --filter NdctlHostToItselfTests
	$(SWIFT) test --skip-build --filter HostFaultDrillTests

# The suites that need no guest, network or browser (tags .vm, .network, .browser): under a
# minute once built, and no host set-up.
test-pure:
	$(SWIFT) build --build-tests
	CXLLAB_TESTS=pure $(SWIFT) test --skip-build --skip HostFaultDrillTests --skip NdctlHostToItselfTests

# Figures are taken with the optimised build: debug Swift parses JSON several times slower.
bench: setup
	$(SWIFT) build -c release
	.build/release/cxllab bench

clean:
	rm -rf .build
