#!/usr/bin/env python3
"""How stable is greedy decoding of a model under llama-server flag changes?

    measure_greedy_stability.py MODEL.gguf [--server CMD] [--port 8500] [--tokens 64]

Starts `llama-server` (default: ${L1_ENGINES_DIR:-~/.cache/l1/engines}/bin/llama-server) once per
configuration, sends 8 fixed prompts (greedy: temperature 0, ignore_eos, cache_prompt false,
return_tokens) to /completion and compares the generated token ids with the reference
configuration `-fa on -t 2`. Prints, per configuration, how many sequences are identical and
how many tokens precede the first divergence. Uses only the standard library. The table in
make_tiny_gguf.py was made with this.
"""
import argparse
import concurrent.futures
import json
import math
import os
import shlex
import statistics
import subprocess
import time
import urllib.request

PROMPTS = [
    "hello world",
    "The quick brown fox jumps over the lazy dog.",
    "Once upon a time, there was a model",
    "1 2 3 4 5 6 7 8",
    "What is the fastest kernel for batch size 8?",
    "def f(x): return x * 2",
    "<html><body>test</body></html>",
    "kernel cache batch water people time",
]

REFERENCE = ["-fa", "on", "-t", "2"]
CONFIGS = [
    ("(a) repeat of the reference", REFERENCE, 1),
    ("(b) -fa on -t 1", ["-fa", "on", "-t", "1"], 1),
    ("-fa on -b 64 -ub 16", ["-fa", "on", "-b", "64", "-ub", "16"], 1),
    ("-fa on, 4 concurrent", ["-fa", "on"], 4),
    ("-fa on -np 1", ["-fa", "on", "-np", "1"], 1),
    ("-fa off", ["-fa", "off"], 1),
    ("(c) -fa on -ctk/-ctv q8_0", ["-fa", "on", "-ctk", "q8_0", "-ctv", "q8_0"], 1),
    ("(d) -fa on -ctk/-ctv q4_0", ["-fa", "on", "-ctk", "q4_0", "-ctv", "q4_0"], 1),
]


def post(port, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/completion",
                                 data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)


def generate(server, model, flags, port, concurrency, n_tokens, n_probs=0):
    cmd = server + ["-m", model, "--port", str(port), "-c", "4096", "-np", "4"] + flags
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                    break
            except Exception:
                if proc.poll() is not None or time.monotonic() > deadline:
                    return None
                time.sleep(0.02)

        def one(prompt):
            return post(port, {"prompt": prompt, "n_predict": n_tokens, "temperature": 0,
                               "ignore_eos": True, "cache_prompt": False,
                               "return_tokens": True, "n_probs": n_probs})

        with concurrent.futures.ThreadPoolExecutor(concurrency) as ex:
            return list(ex.map(one, PROMPTS))
    finally:
        proc.terminate()
        proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--server", default=os.path.join(
        os.environ.get("L1_ENGINES_DIR", os.path.expanduser("~/.cache/l1/engines")),
        "bin", "llama-server"))
    ap.add_argument("--port", type=int, default=8500)
    ap.add_argument("--tokens", type=int, default=64)
    a = ap.parse_args()
    server = shlex.split(a.server)

    ref = generate(server, a.model, REFERENCE, a.port, 1, a.tokens, n_probs=2)
    if ref is None:
        raise SystemExit("the reference configuration did not start")
    gaps, top1 = [], []
    for r in ref:
        for c in r.get("completion_probabilities", []):
            t = c.get("top_logprobs", [])
            if len(t) >= 2:
                gaps.append(t[0]["logprob"] - t[1]["logprob"])
                top1.append(math.exp(t[0]["logprob"]))
    if gaps:
        gaps.sort()
        print(f"reference {' '.join(REFERENCE)}: median top-1 probability {statistics.median(top1):.3f}; "
              f"top-1/top-2 logit gap median {statistics.median(gaps):.3f}, "
              f"10th percentile {gaps[len(gaps) // 10]:.4f}, min {gaps[0]:.5f}")
    print(f"reference text of prompt 1: {ref[0]['content'][:70]!r}")
    total = len(PROMPTS) * a.tokens
    for i, (name, flags, conc) in enumerate(CONFIGS):
        res = generate(server, a.model, flags, a.port + 1 + i, conc, a.tokens)
        if res is None:
            print(f"{name:32s} did not start")
            continue
        equal = sum(x["tokens"] == y["tokens"] for x, y in zip(ref, res))
        prefix = 0
        for x, y in zip(ref, res):
            for p, q in zip(x["tokens"], y["tokens"]):
                if p != q:
                    break
                prefix += 1
        print(f"{name:32s} equal {equal}/{len(PROMPTS)}  prefix {prefix}/{total}")


if __name__ == "__main__":
    main()
