# The two commands of the README: `make demo` (the main job on built-in defaults) and
# `make test` (the whole test suite). Both first run the idempotent host set-up.
SWIFT ?= swift
CXLLAB := .build/debug/cxllab

.PHONY: setup build demo test test-pure bench clean

setup:
	bash scripts/setup-host.sh

build:
	$(SWIFT) build

demo: setup build
	bash scripts/demo.sh

# The fault drills run after the rest and on their own: one of them restarts libvirtd.
test: setup
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --skip FaultDrillTests
	$(SWIFT) test --skip-build --filter FaultDrillTests

# The suites that need no guest, network or browser (tags .vm, .network, .browser): under a
# minute once built, and no host set-up.
test-pure:
	$(SWIFT) build --build-tests
	CXLLAB_TESTS=pure $(SWIFT) test --skip-build --skip FaultDrillTests

# Figures are taken with the optimised build: debug Swift parses JSON several times slower.
bench: setup
	$(SWIFT) build -c release
	.build/release/cxllab bench

clean:
	rm -rf .build
