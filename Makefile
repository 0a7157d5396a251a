.DEFAULT_GOAL := help
PY ?= python3

.PHONY: help dev test ci lint fmt bench docs wheel test-wheel test-oldest

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-12s %s\n", $$1, $$2}'

dev: ## install rconv (release build) with the test and bench extras
	$(PY) -m pip install ".[test,bench]"

test: ## the README's test command, then the Rust unit tests (what .ci/run runs)
	$(PY) -m pip install ".[test,notebooks,dask]" && $(PY) -m pytest
	cargo test --release

ci: ## exactly what CI runs (tests, cargo test, linters)
	bash .ci/run

lint: ## cargo fmt --check, clippy -D warnings, ruff, mypy
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	ruff check python tests benchmarks docs
	ruff format --check python tests benchmarks docs/*.py
	$(PY) -m mypy

fmt: ## format Rust and Python sources
	cargo fmt --all
	ruff format python tests benchmarks docs/*.py
	ruff check --fix python tests benchmarks docs

bench: ## run the benchmarks (prints ratios, writes benchmarks/results.json)
	$(PY) -m benchmarks

docs: ## build the HTML docs (warnings are errors) into docs/_build/html; check they need no network
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html
	$(PY) docs/check_offline.py docs/_build/html

wheel: ## build the abi3 release wheel (manylinux_2_28, checked by maturin's audit) into dist/
	PYTHON=$(PY) bash .ci/build-wheel dist

test-wheel: ## build the wheel, install it in a fresh venv without cargo on PATH, run it
	$(PY) -m pytest -q tests/integration/test_wheel.py

test-oldest: ## the test suite with the oldest supported NumPy and test dependencies
	PYTHON=$(PY) bash .ci/test-oldest
