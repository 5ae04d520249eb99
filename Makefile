# The commands a newcomer needs. Each target sets up what it needs first (a quick check once done).
SHELL := /bin/bash
.DEFAULT_GOAL := help
ENV := source scripts/env.sh
PYTEST_ARGS ?=

.PHONY: help setup build test demo bench clean

help:
	@echo "make demo   - set up, build, and run the split pipeline end to end on the shipped demo model"
	@echo "make test   - set up, build, and run every test"
	@echo "make bench  - codec and pipeline benchmarks (figures in the README)"
	@echo "make setup  - virtual environment with pinned dependencies, then colcon build"
	@echo "make clean  - remove build outputs and the virtual environment"

setup build:
	@bash scripts/setup.sh

test: setup
	@$(ENV) && python -m pytest $(PYTEST_ARGS)

demo: setup
	@$(ENV) && python -m splitcomp_tools.demo

bench: setup
	@$(ENV) && python -m splitcomp_tools.bench codec && python -m splitcomp_tools.bench pipeline

clean:
	rm -rf build install log .venv .pytest_cache .hypothesis
