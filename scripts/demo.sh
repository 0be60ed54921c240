#!/usr/bin/env bash
# `make demo`: run the simulated factory fleet on embedded defaults (ROBOTS=N, DURATION=s).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck disable=SC1091
. ./env.sh
exec python3 -m kpai_bringup.demo --robots "${ROBOTS:-2}" --duration "${DURATION:-0}"
