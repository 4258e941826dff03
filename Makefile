# Kiln: `make demo` runs the main job end to end, `make test` runs every test.
# Both install what they need first (see scripts/setup.sh).

SWIFT ?= swift
KILN := .build/release/kiln

.PHONY: test demo deps venv build clean

deps:
	@scripts/setup.sh deps

venv: deps
	@scripts/setup.sh venv

build: deps
	$(SWIFT) build -c release --product kiln

# KILN_REQUIRE_PYTHON makes a missing cross-check engine a failure instead of a skip.
test: venv
	$(SWIFT) build --build-tests
	KILN_PYTHON=$(CURDIR)/.venv/bin/python KILN_REQUIRE_PYTHON=1 $(SWIFT) test --skip-build --disable-swift-testing

# Setup, release build, then `kiln demo` (scripts/demo.sh); DEMO_ARGS go to kiln demo.
demo:
	@scripts/demo.sh $(DEMO_ARGS)

clean:
	rm -rf .build runs
