#!/usr/bin/env bash
# Install the real engines l1 runs on CPU, and their locally generated test models.
#
#   scripts/setup-engines.sh [llamacpp] [onnxruntime] [all]      (default: llamacpp)
#
# Installs into ${L1_ENGINES_DIR:-~/.cache/l1/engines} (the harness looks there first):
#   bin/llama-server           llama.cpp's server: the PyPI wheel xllamacpp behind a
#                              llama-server-compatible wrapper (scripts/engines/serve_xllamacpp.py)
#   models/tiny-llama.gguf     random-weight tiny Llama (scripts/engines/make_tiny_gguf.py)
#   lib/libonnxruntime.so      ONNX Runtime's C library from the PyPI wheel `onnxruntime`
#
# Idempotent: a component is redone only when its `.done-<name>` marker or a key file is
# missing; a failed step exits non-zero and leaves no marker. Only PyPI is needed (pip's cache is
# used). See shared/reference/cpu-engines.md for why these routes.
set -euo pipefail

DIR="${L1_ENGINES_DIR:-$HOME/.cache/l1/engines}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${L1_PYTHON:-python3}"
mkdir -p "$DIR/bin" "$DIR/models" "$DIR/lib" "$DIR/share"

want=("$@")
[ ${#want[@]} -eq 0 ] && want=(llamacpp)
for w in "${want[@]}"; do
  case "$w" in
    all) want=(llamacpp onnxruntime) ;;
    llamacpp|onnxruntime) ;;
    *) echo "setup-engines: unknown component '$w' (choices: llamacpp onnxruntime all)" >&2; exit 2 ;;
  esac
done

step() { echo "setup-engines: $*"; }
done_ok() { [ -f "$DIR/.done-$1" ] && shift && for f in "$@"; do [ -e "$f" ] || return 1; done; }

llamacpp() {
  local venv="$DIR/venv-llamacpp"
  if done_ok llamacpp "$DIR/bin/llama-server" "$DIR/models/tiny-llama.gguf" "$venv/bin/python"; then
    step "llamacpp: ok (cached)"; return
  fi
  local t0=$SECONDS
  rm -f "$DIR/.done-llamacpp"
  step "llamacpp: creating $venv and installing xllamacpp, gguf, numpy"
  "$PY" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check xllamacpp gguf numpy
  cp "$HERE/engines/serve_xllamacpp.py" "$DIR/share/serve_xllamacpp.py"
  cat > "$DIR/bin/llama-server" <<WRAP
#!/bin/sh
exec "$venv/bin/python" "$DIR/share/serve_xllamacpp.py" "\$@"
WRAP
  chmod +x "$DIR/bin/llama-server"
  step "llamacpp: making models/tiny-llama.gguf"
  "$venv/bin/python" "$HERE/engines/make_tiny_gguf.py" "$DIR/models/tiny-llama.gguf"
  "$DIR/bin/llama-server" --version
  touch "$DIR/.done-llamacpp"
  step "llamacpp: done in $((SECONDS - t0)) s"
}

onnxruntime() {
  local venv="$DIR/venv-ort"
  if done_ok onnxruntime "$DIR/lib/libonnxruntime.so" "$venv/bin/python"; then
    step "onnxruntime: ok (cached)"; return
  fi
  local t0=$SECONDS
  rm -f "$DIR/.done-onnxruntime"
  step "onnxruntime: creating $venv and installing onnx, onnxruntime, numpy"
  "$PY" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check onnx onnxruntime numpy
  local lib
  lib="$(ls "$venv"/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.1* | head -1)"
  [ -f "$lib" ] || { echo "setup-engines: onnxruntime: libonnxruntime.so not found in the wheel" >&2; exit 1; }
  ln -sf "$lib" "$DIR/lib/libonnxruntime.so"
  if [ -f "$HERE/engines/make_tiny_onnx_lm.py" ]; then
    step "onnxruntime: making models/tiny-llama.onnx"
    "$venv/bin/python" "$HERE/engines/make_tiny_onnx_lm.py" "$DIR/models/tiny-llama.onnx"
  fi
  touch "$DIR/.done-onnxruntime"
  step "onnxruntime: done in $((SECONDS - t0)) s"
}

for w in "${want[@]}"; do "$w"; done
step "engines in $DIR:"
ls -1 "$DIR/bin" "$DIR/models" "$DIR/lib" | sed 's/^/  /'
