#!/usr/bin/env python3
"""Listing cost of the generated suite against a bare libtest-mimic binary, in one run.

    scripts/bench-list.py [--runs N] [--kernels LABEL=PATH ...]

Builds (unless binaries are given) the `kernels` test binary and the `bare_list` bench, writes
the 15,376-trial sim spec (2 models x 2 GPUs x 2 workloads, every dimension of the
bench spec `all`, kv_cache_dtype left at its default) to a scratch
directory, and lists, N times each: the bundled specs and the big spec with every `kernels`
binary, then the same trial names with the bare binary. Prints a markdown table of the median
CPU time (user + system) and wall time per listing, and each listing's CPU time as a multiple of
the bare binary's on the same names. Nothing is written outside the scratch directory.
"""
import argparse, json, os, resource, statistics, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BIG = """kind: sweep
name: list-15k
targets:
  engines: [sim@1.0]
  models: [llama-3.1-8b, qwen2.5-7b]
  hardware: [h100-sxm, h200]
  workloads: [chat-short, rag-long]
space:
  mode: exhaustive
  dims:
    attention_backend: all
    kv_layout: all
    matmul_path: all
    activation_dtype: all
    fusion_strategy: all
    cuda_graph: all
gates:
  - { method: manual }
"""


def cargo_exe(args):
    out = subprocess.run(["cargo", *args, "--message-format=json"], cwd=ROOT, check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    exes = [json.loads(l).get("executable") for l in out.splitlines() if '"executable"' in l]
    exes = [e for e in exes if e]
    if not exes:
        sys.exit(f"no executable from cargo {' '.join(args)}")
    return exes[-1]


def timed(cmd, env):
    """(cpu seconds, wall seconds, stdout) of one run of `cmd`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall, p.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--kernels", action="append", default=[], metavar="LABEL=PATH",
                    help="a kernels test binary to list with (default: build the current one)")
    ap.add_argument("--bare", help="the bare_list bench binary (default: build it)")
    a = ap.parse_args()
    kernels = [k.split("=", 1) for k in a.kernels] or [
        ["current", cargo_exe(["test", "--release", "-p", "l1-harness", "--test", "kernels", "--no-run"])]]
    bare = a.bare or cargo_exe(["bench", "-p", "l1-harness", "--bench", "bare_list", "--no-run"])
    scratch = Path(tempfile.mkdtemp(prefix="l1-bench-list-"))
    big = scratch / "specs"
    big.mkdir()
    (big / "list-15k.yaml").write_text(BIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEXTEST", "L1_"))}
    env["L1_TARGET_DIR"] = str(scratch / "target")
    rows = []
    for spec_label, specs in [("bundled specs", ROOT / "specs"), ("15k-trial spec", big)]:
        names_file = scratch / f"names-{len(rows)}.txt"
        for label, exe in kernels:
            e = dict(env, L1_SPECS=str(specs))
            runs = [timed([exe, "--list"], e) for _ in range(a.runs)]
            n = sum(1 for l in runs[0][2].splitlines() if l.endswith(": test"))
            names_file.write_text(runs[0][2])
            rows.append((spec_label, f"kernels ({label})", n, runs))
        e = dict(env, L1_BARE_NAMES=str(names_file))
        runs = [timed([bare, "--list"], e) for _ in range(a.runs)]
        n = sum(1 for l in runs[0][2].splitlines() if l.endswith(": test"))
        rows.append((spec_label, "bare libtest-mimic", n, runs))
    print(f"median of {a.runs} runs; CPU = user + system\n")
    print("| specs | binary | trials | CPU ms | wall ms | CPU vs bare |")
    print("|---|---|---:|---:|---:|---:|")
    bare_cpu = {r[0]: statistics.median(x[0] for x in r[3]) for r in rows if r[1].startswith("bare")}
    for spec_label, label, n, runs in rows:
        cpu = statistics.median(x[0] for x in runs)
        wall = statistics.median(x[1] for x in runs)
        print(f"| {spec_label} | {label} | {n:,} | {cpu*1e3:.0f} | {wall*1e3:.0f} | {cpu / bare_cpu[spec_label]:.1f}x |")


if __name__ == "__main__":
    main()
