# The commands a newcomer needs. Each target sets up what it needs first (a quick check once done).
SHELL := /bin/bash
.DEFAULT_GOAL := help
ENV := source scripts/env.sh
PYTEST_ARGS ?=
# make studio STUDIO_ARGS="--ros --namespace robot1": options of the studio (see its --help)
STUDIO_ARGS ?=
# make test-ros ROS=kilted: the ROS-facing tests on ROS 2 Kilted from PyPI, in its own .venv-kilted
# and install-kilted (default jazzy: the usual .venv and install). Not ROS_DISTRO: make exports it,
# and setup.sh reads ROS_DISTRO as "a system ROS 2 is sourced".
ROS ?= jazzy
ROS_TESTS := tests splitcomp_ros/test
ROS_ENV := $(if $(filter-out jazzy,$(ROS)),export SPLITCOMP_PYPI_ROS=$(ROS) &&)

.PHONY: help setup build test test-fast test-ros lint demo studio bench clean

help:
	@echo "make demo   - set up, build, and run the split pipeline end to end on EfficientNet-Lite0 and real photos"
	@echo "make test   - set up, build, and run every test (what CI runs)"
	@echo "make test-fast - unit and property tests, lint and one DDS round trip (about 3 minutes; no slow marker)"
	@echo "make test-ros ROS=kilted - only the ROS-facing tests ($(ROS_TESTS)), on ROS 2 Kilted (default jazzy)"
	@echo "make lint   - ruff (lint and format check) and mypy, as the tests run them"
	@echo "make studio - the web page (and JSON API) at http://127.0.0.1:8000/: upload, cut, split, calibrate, test, download"
	@echo "make bench  - codec, pipeline and restart benchmarks, as tables (figures in docs/measurements.md)"
	@echo "make setup  - virtual environment with pinned dependencies, then colcon build"
	@echo "make clean  - remove build outputs and the virtual environment"

setup build:
	@bash scripts/setup.sh

# Two lanes at once (scripts/test_lanes.sh): the DDS tests, and beside them at a lower priority the CPU-bound ones.
test: setup
	@$(ENV) && bash scripts/test_lanes.sh $(PYTEST_ARGS)

# The inner loop: it sets up only a workspace that was never set up (after changing requirements,
# messages or entry points, run make setup). Tests marked slow (pytest.ini) are left out.
test-fast:
	@[[ -f "$${SPLITCOMP_VENV:-.venv}/.splitcomp-deps" && -f install/setup.bash ]] || bash scripts/setup.sh
	@$(ENV) && python -m pytest -m "not slow" $(PYTEST_ARGS)

test-ros:
	@$(ROS_ENV) bash scripts/setup.sh
	@$(ROS_ENV) $(ENV) && python -m pytest $(PYTEST_ARGS) $(ROS_TESTS)

lint: setup
	@$(ENV) && ruff check . && ruff format --check . && mypy

demo: setup
	@$(ENV) && python -m splitcomp_tools.demo

studio: setup
	@$(ENV) && python -m splitcomp_tools.studio $(STUDIO_ARGS)

bench: setup
	@$(ENV) && python -m splitcomp_tools.bench codec && python -m splitcomp_tools.bench pipeline && \
		python -m splitcomp_tools.bench restarts

clean:
	rm -rf build install log .venv build-kilted install-kilted log-kilted .venv-kilted .pytest_cache .hypothesis
