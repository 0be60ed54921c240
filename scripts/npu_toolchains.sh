#!/usr/bin/env bash
# Optional vendor NPU toolchains, each in its own virtual environment beside .venv (their pinned
# dependencies conflict with the stack's: the FuriosaAI compiler needs torch 2.7.0, a CUDA build
# from PyPI). Not part of `make setup`/`make test`, and CI does not run it.
#
#   scripts/npu_toolchains.sh furiosa    .venv-furiosa: furiosa-native-compiler 2026.1 with
#                                        furiosa-llm (its compile() needs it), torch 2.7.0, onnx,
#                                        onnx2torch. About 6.7 GB download and install; the
#                                        compiler's last stage cross-compiles, so it also needs
#                                        the Debian package gcc-aarch64-linux-gnu.
#   scripts/npu_toolchains.sh mobilint   nothing to install from a registry: the runtime
#                                        (mobilint-qb-runtime) belongs on the robot beside its NPU
#                                        driver, the compiler (qbcompiler) is a Docker image from
#                                        Mobilint. Prints what to do.
#
# `kpai-npu compile --backend furiosa-rngd` finds .venv-furiosa through $KPAI_ROOT (env.sh) or
# $KPAI_FURIOSA_PYTHON and runs the compile worker with its Python.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
log() { printf '[npu-toolchains] %s\n' "$*"; }
die() { printf '[npu-toolchains] ERROR: %s\n' "$*" >&2; exit 1; }

# versions measured with the 2026.1 compiler (see issue 17); change them together
FURIOSA_PACKAGES=(
  'furiosa-native-compiler~=2026.1.0'
  'furiosa-llm~=2026.1.0'
  'torch==2.7.0'
  'onnx'
  'onnx2torch'
  'PyYAML'
)

furiosa() {
  local venv="$ROOT/.venv-furiosa"
  command -v aarch64-linux-gnu-gcc >/dev/null ||
    log "warning: aarch64-linux-gnu-gcc not found; the compiler's last stage needs it:" \
        "sudo apt-get install gcc-aarch64-linux-gnu"
  [ -x "$venv/bin/python" ] || { log "creating $venv"; "$PYTHON" -m venv "$venv"; }
  log "installing ${FURIOSA_PACKAGES[*]} into $venv (about 6.7 GB; takes a while)"
  "$venv/bin/python" -m pip install --upgrade pip
  "$venv/bin/python" -m pip install "${FURIOSA_PACKAGES[@]}"
  "$venv/bin/python" -c 'import furiosa.native_compiler as c; print("furiosa-native-compiler", c.__version__)'
  log "done: kpai-npu backends shows the compiler; kpai-npu compile --backend furiosa-rngd uses it"
}

mobilint() {
  cat <<'TXT'
[npu-toolchains] Mobilint: nothing is installed from a package registry.
  runtime (robot with an ARIES/REGULUS NPU and its driver):  pip install mobilint-qb-runtime
  compiler: Docker image mobilint/qbcompiler (Mobilint Download Center, account needed);
            compile the ONNX model there with mxq_compile and ship <model>.mxq beside it.
TXT
}

[ $# -ge 1 ] || die "usage: $0 furiosa|mobilint"
for vendor in "$@"; do
  case "$vendor" in
    furiosa) furiosa ;;
    mobilint) mobilint ;;
    *) die "unknown vendor '$vendor' (furiosa, mobilint)" ;;
  esac
done
