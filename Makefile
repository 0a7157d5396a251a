.DEFAULT_GOAL := help
PY ?= python3

.PHONY: help dev test ci lint fmt bench

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-8s %s\n", $$1, $$2}'

dev: ## install rconv (release build) with the test and bench extras
	$(PY) -m pip install ".[test,bench]"

test: ## the README's test command, then the Rust unit tests (what .ci/run runs)
	$(PY) -m pip install ".[test,notebooks,dask]" && $(PY) -m pytest
	cargo test --release

ci: ## exactly what CI runs (tests, cargo test, linters)
	bash .ci/run

lint: ## cargo fmt --check, clippy -D warnings, ruff
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	ruff check python tests benchmarks
	ruff format --check python tests benchmarks

fmt: ## format Rust and Python sources
	cargo fmt --all
	ruff format python tests benchmarks
	ruff check --fix python tests benchmarks

bench: ## run the benchmark script (prints ratios, writes benchmarks/results.json)
	$(PY) benchmarks/bench.py
