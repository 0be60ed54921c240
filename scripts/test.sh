#!/usr/bin/env bash
# The whole test suite: ruff, mypy on the pure modules, then pytest (unit, ros, e2e tiers).
# Extra arguments go to pytest (e.g. `make test PYTEST_ARGS="-m unit"`).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck disable=SC1091
. ./env.sh
status=0
echo '[test] ruff check'
ruff check src tests bench scripts || status=1
# mypy on the modules that never import rclpy (listed in scripts/mypy-modules.txt)
mapfile -t pure < <(grep -vE '^\s*(#|$)' scripts/mypy-modules.txt)
if [ ${#pure[@]} -gt 0 ]; then
  echo "[test] mypy (${#pure[@]} pure modules)"
  mypy --no-error-summary "${pure[@]}" || status=1
fi
if [ "${1:-}" = --lint-only ]; then exit $status; fi
echo '[test] pytest'
python -m pytest "$@"
rc=$?
if [ $rc = 5 ]; then echo '[test] pytest collected no tests' >&2; rc=1; fi
[ $rc = 0 ] || status=$rc
exit $status
