#!/usr/bin/env bash
# `make demo`: run the simulated factory fleet on embedded defaults (ROBOTS=N, DURATION=s,
# OVERLAY=site.yaml, CAMERA_RATE=Hz, ODOM_RATE=Hz, CLOCK_RATE=Hz, CHAOS=s between node kills,
# LAYOUT=one_process|processes).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck disable=SC1091
. ./env.sh
args=(--robots "${ROBOTS:-2}" --duration "${DURATION:-0}")
[ -n "${OVERLAY:-}" ] && args+=(--overlay "$OVERLAY")
[ -n "${CAMERA_RATE:-}" ] && args+=(--camera-rate "$CAMERA_RATE")
[ -n "${ODOM_RATE:-}" ] && args+=(--odom-rate "$ODOM_RATE")
[ -n "${CLOCK_RATE:-}" ] && args+=(--clock-rate "$CLOCK_RATE")
[ -n "${CHAOS:-}" ] && args+=(--chaos "$CHAOS")
[ -n "${LAYOUT:-}" ] && args+=(--layout "$LAYOUT")
exec python3 -m kpai_bringup.demo "${args[@]}"
