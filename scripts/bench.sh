#!/usr/bin/env bash
# `make bench`: run every benchmark under bench/ in turn; results land in bench/results/*.json.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck disable=SC1091
. ./env.sh
status=0
for b in bench/*.py; do
  echo "=== $b"
  python3 "$b" || { echo "[bench] $b failed" >&2; status=1; }
done
exit $status
