#!/usr/bin/env python3
"""Triton Inference Server (PyPI nvidia-pytriton) serving `tiny_lm`, a streaming toy LM.

    serve_pytriton.py [--http-port 8000] [--grpc-port 8001] [--metrics-port 8002]
                      [--instances 1] [--max-batch-size 8] [--dynamic-batching on|off]
                      [--max-queue-delay-us 0] [--dtype fp32|fp16] [--fuse none|qkv]
                      [--seed 0] [--quiet]
    serve_pytriton.py --version

`--version` asks the bundled `tritonserver` binary itself (started against a nonexistent model
repository, it prints its option table, including `server_version`, and exits at once) and prints
`tritonserver version: 2.51.0 (nvidia-pytriton 0.7.0)`.

pytriton starts the real `tritonserver` binary bundled in its wheel (server 2.51.0, Python
backend) and binds the model `tiny_lm` to it: decoupled (one response per generated token),
inputs `text_input` (BYTES) and `max_tokens` (INT32), output `text_output` (BYTES). Use it with
Triton's generate extension:

    curl -N localhost:8000/v2/models/tiny_lm/generate_stream \\
         -d '{"text_input":"hello","max_tokens":16}'
    -> data: {"model_name":"tiny_lm","model_version":"1","text_output":" the"}   (one per token)

Readiness: GET /v2/health/ready and /v2/models/tiny_lm/ready (200). Prometheus metrics
(nv_inference_*) on --metrics-port. Needs Debian's python (/usr/bin/python3): pyenv's 3.11.7
breaks the Python backend stub.

The model is a real, tiny computation (numpy, greedy): a random-weight one-layer transformer
(token embedding 512 x 128, single-head causal attention with a KV cache, a 128-256-128 ReLU MLP,
output head scaled for a peaked distribution) over a 512-token ASCII vocabulary; a few hundred
thousand multiply-adds per token. It tokenizes one character per token and never stops early:
every request generates exactly `max_tokens` tokens (each a non-empty piece).

Two switches change the computation itself (what l1's Triton launcher maps kernel dimensions to):
- `--dtype fp32|fp16`: the dtype weights and activations are stored and computed in (numpy
  float16 matmuls round inputs and outputs to half precision; no BLAS, so fp16 is slower here).
- `--fuse none|qkv`: `qkv` computes the query, key and value projections as one fused
  [d, 3d] matrix product instead of three (the same numbers, one kernel call instead of three). When Triton's dynamic batcher hands it several requests at
once, they are decoded together (one matrix product per step for the whole batch). pytriton
sends one response to every request of a batch per step, so a request whose `max_tokens` is
reached before the others in its batch receives empty `text_output` events ("") until the
longest one finishes; count non-empty `text_output` events as tokens.

Start-up retry: pytriton's model proxies fetch their configuration from a handshake socket, and
on a loaded machine one can try before the socket listens ("Connection refused" in
get_config_from_handshake_server; seen with 2 instances in CI). That failure, and only that one,
is retried up to 3 times with a fresh server and workspace, with a warning on stderr.
L1_TRITON_TEST_HANDSHAKE_RACE=1 makes the first attempt fail that way (a test hook).

Lifecycle: exits 0 on SIGTERM/SIGINT after stopping tritonserver (pytriton sends it SIGINT and
waits). This process asks the kernel for SIGTERM when its parent dies (PR_SET_PDEATHSIG), and
pytriton does the same for tritonserver, so killing the launching shell (even with SIGKILL)
leaves no tritonserver behind. The workspace (~/.cache/pytriton/l1-triton-<pid>, 22 MB) is removed
on exit, and by the next start when this process was SIGKILLed. Exits 1 when Triton fails to
start or dies.
"""
import argparse
import ctypes
import ctypes.util
import logging
import os
import signal
import string
import sys
import threading
import time

import numpy as np

WORDS = """the and of to in is that it for was on are as with his they at be this have from
or one had by word but not what all were we when your can said there use an each which she do
how their if will up other about out many then them these so some her would make like him into
time has look two more write go see number no way could people my than first water been call
who its now find long down day did get come made may part hello world model token test fast
slow kernel cache batch triton server stream""".split()


def vocabulary(n=512):
    """512 ASCII pieces: printable characters, ' ' + each letter/digit, then ' ' + words."""
    printable = [c for c in string.printable if c.isprintable()]  # 95, includes ' '
    pieces = list(printable)
    pieces += [" " + c for c in string.ascii_letters + string.digits]
    pieces += [" " + w for w in WORDS]
    seen, out = set(), []
    for p in pieces:
        if p not in seen:
            seen.add(p)
            out.append(p)
    k = 0
    while len(out) < n:
        p = " " + string.ascii_lowercase[k // 26 % 26] + string.ascii_lowercase[k % 26]
        k += 1
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out[:n]


class TinyLM:
    """Random-weight one-layer transformer, greedy decoding, numpy float32."""

    def __init__(self, seed=0, vocab=512, d=128, ff=256, head_scale=16.0, max_ctx=4096,
                 dtype=np.float32, fuse_qkv=False):
        rng = np.random.default_rng(seed)
        self.pieces = vocabulary(vocab)
        self.char_id = {p: i for i, p in enumerate(self.pieces) if len(p) == 1}
        self.d, self.max_ctx = d, max_ctx
        g = lambda *s, std: (rng.standard_normal(s) * std).astype(np.float32)  # noqa: E731
        self.emb = g(vocab, d, std=1.0)
        self.pos = g(max_ctx, d, std=0.1)
        self.wq, self.wk, self.wv, self.wo = (g(d, d, std=d ** -0.5) for _ in range(4))
        self.w1, self.w2 = g(d, ff, std=d ** -0.5), g(ff, d, std=ff ** -0.5)
        self.head = g(d, vocab, std=head_scale * d ** -0.5)
        # Weights drawn in float32 (the same model whatever the dtype), then cast.
        self.dtype = np.dtype(dtype)
        for name in ("emb", "pos", "wq", "wk", "wv", "wo", "w1", "w2", "head"):
            setattr(self, name, getattr(self, name).astype(self.dtype))
        self.wqkv = np.concatenate([self.wq, self.wk, self.wv], axis=1) if fuse_qkv else None

    def encode(self, text):
        ids = [self.char_id.get(c, self.char_id["?"]) for c in text if c.isprintable() and c.isascii()]
        return ids or [self.char_id[" "]]

    @staticmethod
    def _norm(x):
        return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + 1e-5)

    def _step(self, x, caches):
        """x: [B, d] hidden inputs at the current positions; caches: per-request (K, V) lists."""
        h = self._norm(x)
        if self.wqkv is not None:
            q, k, v = np.split(h @ self.wqkv, 3, axis=-1)
        else:
            q, k, v = h @ self.wq, h @ self.wk, h @ self.wv
        att = np.empty_like(x)
        for b, (ks, vs) in enumerate(caches):
            ks.append(k[b])
            vs.append(v[b])
            kk, vv = np.stack(ks), np.stack(vs)
            s = kk @ q[b] / self.dtype.type(np.sqrt(self.d))
            p = np.exp(s - s.max())
            att[b] = (p / p.sum()) @ vv
        x = x + att @ self.wo
        x = x + np.maximum(self._norm(x) @ self.w1, 0.0) @ self.w2
        return self._norm(x) @ self.head  # logits [B, vocab]

    def generate(self, prompts, max_tokens):
        """Yield, per step, a list with one token string per prompt (None once it is done)."""
        B = len(prompts)
        ids = [self.encode(p)[-(self.max_ctx // 2):] for p in prompts]
        caches = [([], []) for _ in range(B)]
        # prefill, one position at a time (tiny prompts; keeps the code obvious)
        last = np.zeros((B, len(self.pieces)), dtype=self.dtype)
        for b in range(B):
            for t, tok in enumerate(ids[b]):
                x = (self.emb[tok] + self.pos[t])[None, :]
                last[b] = self._step(x, [caches[b]])[0]
        pos = [len(i) for i in ids]
        steps = max(max_tokens) if B else 0
        for s in range(steps):
            nxt = last.argmax(axis=-1)
            yield [self.pieces[nxt[b]] if s < max_tokens[b] else None for b in range(B)]
            if s + 1 == steps:
                break
            x = np.stack([self.emb[nxt[b]] + self.pos[min(pos[b], self.max_ctx - 1)] for b in range(B)])
            last = self._step(x, caches)
            pos = [p + 1 for p in pos]


def first(value, default):
    a = np.asarray(value).reshape(-1)
    return a[0] if a.size else default


def make_infer_func(lm, default_max_tokens=16):
    def infer_func(requests):
        prompts, budgets, shapes = [], [], []
        for r in requests:
            t = first(r["text_input"], b"")
            prompts.append(t.decode("utf-8", "replace") if isinstance(t, (bytes, bytearray)) else str(t))
            mt = int(first(r["max_tokens"], default_max_tokens)) if "max_tokens" in r else default_max_tokens
            budgets.append(max(0, min(mt, lm.max_ctx // 2)))
            shapes.append(np.asarray(r["text_input"]).shape or (1,))
        for toks in lm.generate(prompts, budgets):
            yield [{"text_output": np.full(shapes[b], (t or "").encode(), dtype=object)}
                   for b, t in enumerate(toks)]

    return infer_func


def workspace_path():
    """A per-process pytriton workspace; removes those left by killed runs of this script."""
    import pathlib
    import shutil

    base = pathlib.Path(os.environ.get("PYTRITON_HOME", pathlib.Path.home() / ".cache" / "pytriton"))
    base.mkdir(parents=True, exist_ok=True)
    for old in base.glob("l1-triton-*"):
        try:
            os.kill(int(old.name.rsplit("-", 1)[1]), 0)
        except ProcessLookupError:
            shutil.rmtree(old, ignore_errors=True)
        except (ValueError, PermissionError):
            pass
    return base / f"l1-triton-{os.getpid()}"


def server_version():
    """`tritonserver version: X (nvidia-pytriton Y)` from the bundled binary, without a model."""
    import importlib.metadata
    import importlib.util
    import re
    import subprocess
    import tempfile

    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pytriton is not installed")
    binary = os.path.join(list(spec.submodule_search_locations)[0], "tritonserver", "bin", "tritonserver")
    missing = os.path.join(tempfile.gettempdir(), f"l1-no-model-repository-{os.getpid()}")
    out = subprocess.run([binary, f"--model-repository={missing}", "--allow-http=false",
                          "--allow-grpc=false", "--allow-metrics=false", "--exit-timeout-secs=1"],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    m = re.search(r"\|\s*server_version\s*\|\s*(\S+)", out.stdout + out.stderr)
    if not m:
        raise RuntimeError(f"{binary} printed no server_version: {(out.stdout + out.stderr)[-500:]}")
    return f"tritonserver version: {m.group(1)} (nvidia-pytriton {importlib.metadata.version('nvidia-pytriton')})"


def set_parent_death_signal(sig=signal.SIGTERM):
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, int(sig), 0, 0, 0)  # PR_SET_PDEATHSIG
    except OSError:
        pass


HANDSHAKE_ATTEMPTS = 3


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--http-port", type=int, default=8000)
    ap.add_argument("--grpc-port", type=int, default=8001)
    ap.add_argument("--metrics-port", type=int, default=8002)
    ap.add_argument("--instances", type=int, default=1, help="model instances (default 1)")
    ap.add_argument("--max-batch-size", type=int, default=8,
                    help="Triton max_batch_size; 0 disables batching (default 8)")
    ap.add_argument("--dynamic-batching", choices=["on", "off"], default="on")
    ap.add_argument("--max-queue-delay-us", type=int, default=0,
                    help="dynamic batcher max_queue_delay_microseconds (default 0)")
    ap.add_argument("--dtype", choices=["fp32", "fp16"], default="fp32",
                    help="weights and activations: float32 or float16 (default fp32)")
    ap.add_argument("--fuse", choices=["none", "qkv"], default="none",
                    help="qkv: one fused Q/K/V projection instead of three (default none)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--version", action="store_true", help="print the bundled tritonserver's version")
    ap.add_argument("--quiet", action="store_true", help="only warnings from pytriton's own logging")
    a = ap.parse_args()
    if a.version:
        try:
            print(server_version(), flush=True)
        except Exception as e:  # noqa: BLE001
            print(f"error: {e}", file=sys.stderr, flush=True)
            return 1
        return 0
    if a.instances < 1 or a.max_batch_size < 0 or a.max_queue_delay_us < 0:
        ap.error("--instances must be >= 1, --max-batch-size and --max-queue-delay-us >= 0")

    parent = os.getppid()
    set_parent_death_signal()
    if os.getppid() != parent:  # the parent died before prctl took effect
        return 0

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    logging.basicConfig(level=logging.WARNING if a.quiet else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
    from pytriton.triton import Triton, TritonConfig

    batching = a.max_batch_size > 0
    config = ModelConfig(
        batching=batching,
        max_batch_size=a.max_batch_size if batching else 0,
        batcher=(DynamicBatcher(max_queue_delay_microseconds=a.max_queue_delay_us)
                 if batching and a.dynamic_batching == "on" else None),
        decoupled=True,
    )
    lm = TinyLM(seed=a.seed, dtype=np.float16 if a.dtype == "fp16" else np.float32,
                fuse_qkv=a.fuse == "qkv")
    t0 = time.monotonic()
    # pytriton's model proxies (one per instance) fetch their configuration from a handshake
    # socket; on a loaded machine a proxy can try it before the socket listens and the model
    # load fails with "Connection refused" in get_config_from_handshake_server (seen with 2
    # instances during CI). That failure, and only that one, is retried with a fresh server.
    import shutil

    workspace = workspace_path()
    for attempt in range(1, HANDSHAKE_ATTEMPTS + 1):
        if attempt > 1:  # the failed attempt's workspace: pytriton wants to create it anew
            shutil.rmtree(workspace, ignore_errors=True)
        triton = Triton(workspace=workspace, config=TritonConfig(
            http_port=a.http_port, grpc_port=a.grpc_port, metrics_port=a.metrics_port,
            http_address="127.0.0.1", grpc_address="127.0.0.1", log_verbose=0))
        try:
            if attempt == 1 and os.environ.get("L1_TRITON_TEST_HANDSHAKE_RACE"):
                # Test hook: the failure pytriton raises when it loses the race.
                raise RuntimeError("Model initialize error: get_config_from_handshake_server: "
                                   "ConnectionRefusedError: [Errno 111] Connection refused")
            triton.bind(
                model_name="tiny_lm",
                infer_func=[make_infer_func(lm) for _ in range(a.instances)],
                inputs=[Tensor(name="text_input", dtype=bytes, shape=(1,)),
                        Tensor(name="max_tokens", dtype=np.int32, shape=(1,), optional=True)],
                outputs=[Tensor(name="text_output", dtype=bytes, shape=(1,))],
                config=config,
                strict=False,
            )
            triton.run()
            break
        except Exception as e:  # noqa: BLE001
            triton.stop()
            text = str(e)
            if (attempt < HANDSHAKE_ATTEMPTS and not stop.is_set()
                    and "get_config_from_handshake_server" in text and "Connection refused" in text):
                print(f"warning: model proxy handshake refused (pytriton race), retrying "
                      f"({attempt}/{HANDSHAKE_ATTEMPTS})", file=sys.stderr, flush=True)
                continue
            print(f"error: Triton failed to start: {e}", file=sys.stderr, flush=True)
            return 1
    print(f"tiny_lm ready on http://127.0.0.1:{a.http_port} (grpc {a.grpc_port}, metrics "
          f"{a.metrics_port}; {a.instances} instance(s), max_batch_size {config.max_batch_size}, "
          f"dynamic batching {a.dynamic_batching if batching else 'off'}, max queue delay "
          f"{a.max_queue_delay_us} us, {a.dtype}, fuse {a.fuse}) in "
          f"{time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)
    rc = 0
    while not stop.wait(0.5):
        if not triton.is_alive():
            print("error: tritonserver or the model proxy died", file=sys.stderr, flush=True)
            rc = 1
            break
    triton.stop()
    return rc


if __name__ == "__main__":
    sys.exit(main())
