SHELL := /bin/bash
# The two set-up commands of README.md:
#   make demo   simulate a week of CloudTrail with incidents, then detect them
#   make test   everything CI runs: format, lints, the whole test suite
#
# What the tests need is installed by `make test` itself: the Python tools
# (moto, cfn-lint, checkov, osmem-server), pinned in requirements-test.txt,
# into .venv/ (`make venv`); Debian's chromium, unzip, openssl and curl when
# missing (`make deps`); OpenSearch from Maven Central (`make opensearch-fetch`).

CARGO ?= cargo
DEMO_DIR ?= demo-data

.PHONY: demo test deps venv fmt lint unit build install bench eval fuzz opensearch opensearch-fetch opensearch-stop

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Where cargo builds: CARGO_TARGET_DIR when it is set, as cargo does.
BIN := $(or $(CARGO_TARGET_DIR),target)/release/trailwatch

build:
	$(CARGO) build --release

# `trailwatch` on the PATH (~/.cargo/bin), as the README's commands run it.
install:
	$(CARGO) install --locked --path .

demo: build
	$(BIN) simulate --out $(DEMO_DIR) --days 7 --start 2026-11-15 --seed 1 --force
	$(BIN) detect $(DEMO_DIR) --since -1d --format table; \
	  status=$$?; [ $$status -le 1 ] || exit $$status

# Debian packages the tests use, each installed only when its command is
# missing: chromium (the report test), and unzip, openssl and curl
# (tests/opensearch/node.sh unpacks the node, makes its certificates and
# waits for it). mvn and java come with the machine.
DEB_TOOLS := chromium:chromium unzip:unzip openssl:openssl curl:curl

deps:
	@missing=""; for t in $(DEB_TOOLS); do \
	  command -v $${t%%:*} >/dev/null 2>&1 || missing="$$missing $${t##*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian's$$missing for the tests"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; fi
	@command -v mvn >/dev/null 2>&1 && command -v java >/dev/null 2>&1 || \
	  { echo "make test needs Maven and Java 17 (the machine's) to fetch and run OpenSearch"; exit 1; }

venv: .venv/.installed

.venv/.installed: requirements-test.txt
	python3 -m venv .venv
	.venv/bin/pip install --quiet --disable-pip-version-check -r requirements-test.txt
	touch $@

fmt:
	$(CARGO) fmt --check

lint:
	$(CARGO) clippy --all-targets -- -D warnings

unit:
	PATH="$(CURDIR)/.venv/bin:$$PATH" $(CARGO) test

test: deps venv opensearch-fetch fmt lint unit

# Detect's speed and peak memory against gunzip + JSON parse of the same
# files, on two input sizes (about 1 and 2 million events). Figures in README.md.
bench:
	$(CARGO) bench --bench detect
	$(CARGO) bench --bench forward
	$(CARGO) bench --bench engine

# Detection quality on the seeds nobody tuned on: per organisation profile,
# recall per incident kind, false pages a day, median and worst latency (the
# table in README.md). EVAL_ARGS="--seeds tuning --explain" while tuning.
EVAL_ARGS ?=
eval:
	$(CARGO) run --quiet -- eval $(EVAL_ARGS)

# Each fuzz target for FUZZ_SECONDS (cargo fuzz, libFuzzer with
# AddressSanitizer; stable Rust with RUSTC_BOOTSTRAP for its -Z flags).
# New inputs go to tests/fuzz/corpus/<target>/ (commit what is worth
# keeping); a crash stops the run with its input under
# tests/fuzz/artifacts/<target>/: keep it in tests/fuzz/regressions/<target>/,
# where `make test` replays it.
FUZZ_SECONDS ?= 60
CARGO_FUZZ_VERSION := 0.13.2
FUZZ_TARGETS := cloudtrail cloudwatch_logs detector_toml series_csv rcf_series alert keys_and_paths

fuzz:
	@cargo fuzz --version 2>/dev/null | grep -q " $(CARGO_FUZZ_VERSION)" || \
	  $(CARGO) install cargo-fuzz --version $(CARGO_FUZZ_VERSION) --locked
	@for t in $(FUZZ_TARGETS); do \
	  echo "fuzzing $$t for $(FUZZ_SECONDS) s"; \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run --fuzz-dir tests/fuzz $$t tests/fuzz/corpus/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 -max_len=1048576 2>&1 | \
	    grep -E "^(#[0-9]+ +DONE|Done|SUMMARY|==[0-9]+==ERROR|artifact_prefix|Test unit written)" ; \
	  test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	done

# A real OpenSearch 2.19.4 node with the security and job-scheduler plugins,
# TLS and an admin password, on 127.0.0.1:$(OPENSEARCH_PORT) (default 9200);
# see tests/opensearch/node.sh. The test suite starts its own on a free port;
# `make test` downloads it first (Maven Central, cached, checksums checked).
opensearch-fetch:
	tests/opensearch/node.sh fetch

opensearch:
	tests/opensearch/node.sh start

opensearch-stop:
	tests/opensearch/node.sh stop
