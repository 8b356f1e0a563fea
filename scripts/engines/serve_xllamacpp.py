#!/usr/bin/env python3
"""A drop-in `llama-server` built on the PyPI wheel `xllamacpp`.

xllamacpp ships llama.cpp's own C++ HTTP server prebuilt (no compiler needed); constructing
`xllamacpp.Server(CommonParams)` loads the model and starts that server on a background
thread. This script maps llama-server's command-line flags onto `CommonParams` with
llama-server's meanings and defaults, then keeps the process alive until SIGTERM/SIGINT.

Endpoints are llama.cpp's: /health, /v1/completions, /v1/chat/completions (SSE, usage with
stream_options.include_usage), /tokenize, /detokenize, /props, /slots, /v1/models and, with
--metrics, /metrics.

Exit codes: 0 after SIGTERM/SIGINT, 1 when llama.cpp refuses to start (its own error lines,
e.g. "quantized V cache requires flash_attn to be enabled", are on stderr, followed by one
`error:` line from this script), 2 for a command-line error (argparse).

    serve_xllamacpp.py -m MODEL.gguf [--host H] [--port P] [-t N] [-tb N] [-c N] [-np N]
                       [-b N] [-ub N] [-fa on|off|auto] [-ctk T] [-ctv T] [--metrics]
                       [--slots|--no-slots] [-cb|-nocb] [--seed N] [-a ALIAS] [--version] ...
"""
import argparse
import importlib.metadata
import signal
import sys
import threading
import time

CACHE_TYPES = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"]
FLASH_ATTN = {
    "on": "LLAMA_FLASH_ATTN_TYPE_ENABLED",
    "off": "LLAMA_FLASH_ATTN_TYPE_DISABLED",
    "auto": "LLAMA_FLASH_ATTN_TYPE_AUTO",
}


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="llama-server",
        description="llama.cpp server (embedded via the xllamacpp wheel), llama-server flags",
        allow_abbrev=False,
    )
    p.add_argument("--version", action="store_true", help="print the version and exit")
    p.add_argument("-m", "--model", help="model path (GGUF)")
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="listen port (default 8080)")
    p.add_argument("-t", "--threads", type=int, default=-1,
                   help="threads for generation (default -1: llama.cpp picks)")
    p.add_argument("-tb", "--threads-batch", type=int, default=-1,
                   help="threads for batch/prompt processing (default: same as --threads)")
    p.add_argument("-c", "--ctx-size", type=int, default=0,
                   help="context size (default 0: from the model)")
    p.add_argument("-np", "--parallel", type=int, default=-1,
                   help="number of server slots (default -1: auto, 4 slots with a unified KV cache)")
    p.add_argument("-kvu", "--kv-unified", action="store_true", default=None,
                   help="one KV buffer shared by all slots")
    p.add_argument("-b", "--batch-size", type=int, default=2048, help="logical batch size")
    p.add_argument("-ub", "--ubatch-size", type=int, default=512, help="physical batch size")
    p.add_argument("-fa", "--flash-attn", choices=list(FLASH_ATTN), default="auto",
                   help="flash attention (default auto)")
    p.add_argument("-ctk", "--cache-type-k", choices=CACHE_TYPES, default="f16",
                   help="KV cache type for K (default f16)")
    p.add_argument("-ctv", "--cache-type-v", choices=CACHE_TYPES, default="f16",
                   help="KV cache type for V (default f16)")
    p.add_argument("-nkvo", "--no-kv-offload", action="store_true", help="keep the KV cache on the host")
    p.add_argument("--metrics", action="store_true", help="enable the Prometheus /metrics endpoint")
    p.add_argument("--slots", dest="slots", action="store_true", default=True,
                   help="enable the /slots endpoint (default)")
    p.add_argument("--no-slots", dest="slots", action="store_false", help="disable /slots")
    p.add_argument("-cb", "--cont-batching", dest="cont_batching", action="store_true", default=True,
                   help="continuous batching (default)")
    p.add_argument("-nocb", "--no-cont-batching", dest="cont_batching", action="store_false",
                   help="disable continuous batching")
    p.add_argument("--cache-prompt", dest="cache_prompt", action="store_true", default=True,
                   help="reuse the KV cache of a previous prompt (default)")
    p.add_argument("--no-cache-prompt", dest="cache_prompt", action="store_false")
    p.add_argument("--warmup", dest="warmup", action="store_true", default=True,
                   help="run an empty warm-up pass at load (default)")
    p.add_argument("--no-warmup", dest="warmup", action="store_false")
    p.add_argument("--seed", type=int, default=None, help="default RNG seed for sampling")
    p.add_argument("-a", "--alias", help="model name reported by the API")
    p.add_argument("--threads-http", type=int, default=-1, help="HTTP worker threads")
    p.add_argument("-to", "--timeout", type=int, default=None, help="read/write timeout, seconds")
    p.add_argument("-lv", "--verbosity", "--log-verbosity", type=int, default=None,
                   help="log verbosity (llama.cpp's -lv)")
    return p, p.parse_args(argv)


def pkg_version():
    try:
        return importlib.metadata.version("xllamacpp")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def version_line(xl):
    info = getattr(xl, "BUILD_INFO", {}) or {}
    build, commit = info.get("build_number", 0), info.get("commit", "unknown")
    llama = f"b{build}-{commit}" if build else pkg_version()
    return f"version: {llama} (xllamacpp {pkg_version()})", info


def main(argv):
    parser, a = parse_args(argv)
    import xllamacpp as xl  # after argparse, so --help and usage errors stay fast

    if a.version:
        line, info = version_line(xl)
        if info:
            line += f"\nbuilt with {info.get('compiler', '?')} for {info.get('build_target', '?')}"
        print(line, flush=True)
        return 0
    if not a.model:
        parser.error("the following arguments are required: -m/--model")

    p = xl.CommonParams()
    p.model.path = a.model
    p.hostnames = [a.host]
    p.port = a.port
    p.cpuparams.n_threads = a.threads
    p.cpuparams_batch.n_threads = a.threads_batch if a.threads_batch > 0 else a.threads
    p.n_ctx = a.ctx_size
    p.n_parallel = a.parallel
    if a.kv_unified:
        p.kv_unified = True
    p.n_batch = a.batch_size
    p.n_ubatch = a.ubatch_size
    p.flash_attn_type = getattr(xl.llama_flash_attn_type, FLASH_ATTN[a.flash_attn])
    p.cache_type_k = getattr(xl.ggml_type, "GGML_TYPE_" + a.cache_type_k.upper())
    p.cache_type_v = getattr(xl.ggml_type, "GGML_TYPE_" + a.cache_type_v.upper())
    p.no_kv_offload = a.no_kv_offload
    p.endpoint_metrics = a.metrics
    p.endpoint_slots = a.slots
    p.cont_batching = a.cont_batching
    p.cache_prompt = a.cache_prompt
    p.warmup = a.warmup
    p.n_threads_http = a.threads_http
    if a.seed is not None:
        p.sampling.seed = a.seed & 0xFFFFFFFF  # llama.cpp: -1 means random (LLAMA_DEFAULT_SEED)
    if a.alias:
        p.model_alias = {a.alias}
    if a.timeout is not None:
        p.timeout_read = a.timeout
        p.timeout_write = a.timeout
    if a.verbosity is not None:
        p.verbosity = a.verbosity

    stop = threading.Event()

    def on_signal(signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    t0 = time.monotonic()
    try:
        # Loads the model and starts llama.cpp's HTTP server on a background thread; raises
        # RuntimeError when llama.cpp refuses (it has logged its reason on stderr already).
        server = xl.Server(p)
    except Exception as e:  # noqa: BLE001 - report whatever the binding raised
        print(f"error: llama-server (xllamacpp) failed to start: {e} "
              f"(llama.cpp's reason is in the 'E' log lines above)", file=sys.stderr, flush=True)
        return 1
    addr = getattr(server, "listening_address", f"http://{a.host}:{a.port}")
    print(f"xllamacpp {pkg_version()}: server is listening on {addr} "
          f"({time.monotonic() - t0:.2f} s)", file=sys.stderr, flush=True)

    while not stop.wait(0.5):
        pass
    # Stop the HTTP thread and the main loop (the destructor waits for them; milliseconds).
    del server
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
