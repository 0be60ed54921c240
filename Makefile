# KPAI stack. The two commands: `make demo` (simulated factory fleet) and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

DURATION ?= 0
ROBOTS ?= 2
PYTEST_ARGS ?=
OVERLAY ?=

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 12

setup:  ## create .venv, install dependencies, build the workspace, write env.sh (idempotent)
	@bash scripts/setup.sh

test:  ## set up (with the training extra), lint, type-check and run the whole test suite
	@KPAI_EXTRAS=$(if $(wildcard requirements/train.txt),train,) bash scripts/setup.sh
	@bash scripts/test.sh $(PYTEST_ARGS)

demo: setup  ## run the simulated factory fleet (ROBOTS=N, DURATION=seconds, 0 = until Ctrl-C, OVERLAY=site.yaml, CAMERA_RATE=Hz, ODOM_RATE=Hz, CLOCK_RATE=Hz, CHAOS=seconds between node kills, LAYOUT=one_process|processes)
	@ROBOTS=$(ROBOTS) DURATION=$(DURATION) OVERLAY=$(OVERLAY) CAMERA_RATE=$(CAMERA_RATE) ODOM_RATE=$(ODOM_RATE) CLOCK_RATE=$(CLOCK_RATE) CHAOS=$(CHAOS) LAYOUT=$(LAYOUT) bash scripts/demo.sh

test-kilted:  ## the ROS integration tier on ROS 2 Kilted wheels (own copy, venv and build in .kpai-distros/kilted)
	@bash scripts/test_distro.sh kilted $(PYTEST_ARGS)

lint: setup  ## ruff and mypy only
	@bash scripts/test.sh --lint-only

doctor: setup  ## check the environment and say how to fix what fails
	@bin/kpai doctor

bench: setup  ## run the benchmarks under bench/ (results in bench/results/)
	@bash scripts/bench.sh

npu-toolchains:  ## optional vendor NPU compilers in their own venvs (VENDOR=furiosa: ~6.7 GB; not run by CI)
	@bash scripts/npu_toolchains.sh $(or $(VENDOR),furiosa)

clean:  ## remove build products (keeps .venv)
	rm -rf build install log .kpai-stamps/build env.sh

.PHONY: help setup test test-kilted demo lint doctor bench npu-toolchains clean
