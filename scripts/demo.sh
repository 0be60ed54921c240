#!/usr/bin/env bash
# `make demo`: run the simulated factory fleet on embedded defaults (ROBOTS=N, DURATION=s,
# OVERLAY=site.yaml).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck disable=SC1091
. ./env.sh
args=(--robots "${ROBOTS:-2}" --duration "${DURATION:-0}")
[ -n "${OVERLAY:-}" ] && args+=(--overlay "$OVERLAY")
exec python3 -m kpai_bringup.demo "${args[@]}"
