#!/usr/bin/env python3
"""Check the flags l1's translators produce against an engine's own argument definitions.

Usage: scripts/check-engine-flags.py sglang [--cache DIR] [--versions 0.5.5,0.5.10,...]
       scripts/check-engine-flags.py vllm [--installed] [--rows FILE] [--python PY]

For SGLang (the only engine whose parser ships in an installable wheel here): downloads the
wheel of every boundary version with `pip download --no-deps` into a cache outside the
repository (default ~/.cache/l1/wheels; nothing is committed), reads `sglang/srt/server_args.py`
and `sglang/srt/arg_groups/**.py` from the wheel *without importing them* (Python's `ast`), and
collects every command-line flag with its choices: `parser.add_argument("--x", choices=[...])`
calls, and (from about 0.5.14) the annotated dataclass fields `name: A[T, Arg(...)]` that
generate `--name-with-dashes` (choices from `Arg(choices=...)` or a `Literal[...]` type;
`Arg(no_cli=True)` fields are not flags). It then runs the engines crate's ignored test
`sglang::tests::print_flag_matrix`, which prints the argument list `engines/src/sglang.rs`
produces for every value of every dimension at every boundary version, and checks that each
flag exists at that version and each value is among its choices where they are literal.

For vLLM (`scripts/check-engine-flags.py vllm`): the installed vLLM's own parser, nothing
read from source. The ignored test `vllm::tests::print_flag_matrix` prints the argument list
`engines/src/vllm.rs` produces on a CPU and on a GPU host for every catalog value of every
dimension, every `fusion_strategy` x `cuda_graph` pair, each `block_size`, the catalog defaults
and the `vllm serve <model>` form, at every boundary version; the lists at the installed
version's `major.minor` are then checked inside the vLLM venv (default
~/.cache/l1/engines/venv-vllm, or $L1_ENGINES_DIR/venv-vllm; the script re-runs itself with
that venv's python) without starting a server or touching a device:
  1. `make_arg_parser(FlexibleArgumentParser())` (the OpenAI server's parser, as
     `python -m vllm.entrypoints.openai.api_server` builds it) `.parse_args(argv)`: every flag
     exists, every value is among its choices or converts to its type, and the `-cc.*` /
     `--attention-config.*` dotted values validate as pydantic `CompilationConfig` /
     `AttentionConfig` fields;
  2. `validate_parsed_serve_args`, then `AsyncEngineArgs.from_cli_args` (the engine arguments
     the server would build its config from);
  3. the values vLLM validates only in `create_engine_config` (which needs the model's HF
     config and a platform): the attention backend name against `AttentionBackendEnum`
     (`AttentionConfig.validate_backend_before`), the optimization level against
     `OptimizationLevel`, `--quantization` against `QUANTIZATION_METHODS`, and `CacheConfig`
     built from the block size and KV cache dtype;
  4. that each flag landed where meant (e.g. `--no-enable-chunked-prefill` leaves
     `enable_chunked_prefill` False, `-cc.cudagraph_mode=FULL` gives `CUDAGraphMode.FULL`);
  5. the `VLLM_*` environment variables the translator sets are names in `vllm.envs`; their
     values (and any environment output at other versions, e.g. `VLLM_ATTENTION_BACKEND`
     before 0.13) are not parser-checkable and are listed as such.
The engines crate's test `vllm::tests::flags_parse_against_installed_vllm` runs this with
`--installed --rows FILE` when the venv exists. `--rows FILE` reads `L1-FLAGS` lines from a file
instead of running cargo.

Exit status: 0 when every flag and value checks out, 1 otherwise. TGI has no such check: its
launcher is a Rust (clap) binary with no installable parser here, so its flags are covered by
the unit tests in engines/src/tgi.rs only.
"""

import argparse
import ast
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def str_list(node, names):
    """The strings of a literal list/tuple/set, or of a module-level name bound to one."""
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        out = []
        for e in node.elts:
            if isinstance(e, ast.Constant) and isinstance(e.value, str):
                out.append(e.value)
            elif isinstance(e, ast.Starred):
                inner = str_list(e.value, names)
                if inner is None:
                    return None
                out.extend(inner)
            else:
                return None
        return out
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        a, b = str_list(node.left, names), str_list(node.right, names)
        if a is not None and b is not None:
            return a + b
    return None


def literal_choices(node):
    """Strings of a `Literal[...]` anywhere inside a type annotation (`Optional[Literal[...]]`)."""
    for sub in ast.walk(node):
        if (
            isinstance(sub, ast.Subscript)
            and isinstance(sub.value, ast.Name)
            and sub.value.id == "Literal"
        ):
            sl = sub.slice
            elts = sl.elts if isinstance(sl, ast.Tuple) else [sl]
            vals = [e.value for e in elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            if vals:
                return vals
    return None


def module_lists(trees):
    """Module-level `NAME = [..strings..]` bindings across the files (resolved in two passes)."""
    names = {}
    for _ in range(2):
        for tree in trees:
            for node in tree.body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1:
                    t = node.targets[0]
                    if isinstance(t, ast.Name):
                        vals = str_list(node.value, names)
                        if vals is not None:
                            names[t.id] = vals
                elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
                    vals = str_list(node.value, names)
                    if vals is not None:
                        names[node.target.id] = vals
    return names


def flags_of(sources):
    """{flag: choices or None} from the parser sources."""
    trees = [ast.parse(src) for src in sources]
    names = module_lists(trees)
    flags = {}

    def add(flag, choices):
        if flag not in flags or flags[flag] is None:
            flags[flag] = choices

    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument":
                opts = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str) and a.value.startswith("-")]
                choices = None
                for kw in node.keywords:
                    if kw.arg == "choices":
                        choices = str_list(kw.value, names)
                for o in opts:
                    add(o, choices)
            if isinstance(node, ast.ClassDef):
                for stmt in node.body:
                    if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
                        continue
                    ann = stmt.annotation
                    if not (isinstance(ann, ast.Subscript) and isinstance(ann.value, ast.Name) and ann.value.id == "A"):
                        continue
                    parts = ann.slice.elts if isinstance(ann.slice, ast.Tuple) else [ann.slice]
                    no_cli, choices, aliases = False, None, []
                    for p in parts[1:]:
                        if isinstance(p, ast.Call) and getattr(p.func, "id", None) == "Arg":
                            for kw in p.keywords:
                                if kw.arg == "no_cli" and isinstance(kw.value, ast.Constant) and kw.value.value:
                                    no_cli = True
                                elif kw.arg == "choices":
                                    choices = str_list(kw.value, names)
                                elif kw.arg == "aliases":
                                    aliases = str_list(kw.value, names) or []
                    if choices is None and parts:
                        choices = literal_choices(parts[0])
                    if no_cli:
                        continue
                    add("--" + stmt.target.id.replace("_", "-"), choices)
                    for a in aliases:
                        add(a, choices)
    return flags


def wheel_sources(engine, version, cache):
    """The parser sources of `engine==version`, downloaded into `cache` once."""
    d = cache / engine / version
    wheels = list(d.glob("*.whl")) if d.exists() else []
    if not wheels:
        d.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             "--quiet", f"{engine}=={version}", "-d", str(d)],
            check=True,
        )
        wheels = list(d.glob("*.whl"))
    out = []
    with zipfile.ZipFile(wheels[0]) as z:
        for n in z.namelist():
            if n == "sglang/srt/server_args.py" or (
                n.startswith("sglang/srt/arg_groups/") and n.endswith(".py")
            ):
                out.append(z.read(n).decode())
    if not out:
        raise SystemExit(f"{wheels[0]}: no sglang/srt/server_args.py")
    return out


def read_rows(text):
    """The `L1-FLAGS {json}` lines of a text."""
    return [json.loads(l.split("L1-FLAGS ", 1)[1]) for l in text.splitlines() if "L1-FLAGS " in l]


def produced(engine):
    """The translator's argument lists, from the engines crate's ignored printing test."""
    cmd = ["cargo", "test", "--release", "-p", "l1-engines", "--lib",
           f"{engine}::tests::print_flag_matrix", "--", "--ignored", "--nocapture", "--exact"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}")
    rows = read_rows(r.stdout)
    if not rows:
        raise SystemExit("the flag matrix test printed nothing")
    return rows


def pairs(argv):
    """(flag, value or None) for each `--flag` in an argument list."""
    out = []
    for i, a in enumerate(argv):
        if a.startswith("--"):
            nxt = argv[i + 1] if i + 1 < len(argv) else None
            out.append((a, nxt if nxt is not None and not nxt.startswith("--") else None))
    return out


def vllm_venv_python():
    engines = os.environ.get("L1_ENGINES_DIR") or str(Path(os.environ.get("HOME", "/tmp")) / ".cache/l1/engines")
    return Path(engines) / "venv-vllm/bin/python"


def check_installed_vllm(rows):
    """Parse and validate every argument list at the installed version (see the module docs)."""
    import contextlib
    import io
    import logging
    import warnings

    os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
    warnings.simplefilter("ignore")
    import vllm
    from vllm import envs
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    try:  # 0.32: the launchers package; before: vllm.entrypoints.openai.cli_args
        from vllm.entrypoints.launchers.cli_args import make_arg_parser, validate_parsed_serve_args
    except ImportError:
        from vllm.entrypoints.openai.cli_args import make_arg_parser, validate_parsed_serve_args
    from vllm.config import AttentionConfig, CacheConfig
    from vllm.config.vllm import OptimizationLevel
    from vllm.model_executor.layers.quantization import QUANTIZATION_METHODS

    logging.disable(logging.WARNING)
    version = vllm.__version__
    mm = ".".join(version.split("+")[0].split(".")[:2])
    rows = [r for r in rows if r["version"] == mm]
    if not rows:
        raise SystemExit(f"installed vLLM {version}: no argument lists at {mm} (not a boundary version?)")
    parser = make_arg_parser(FlexibleArgumentParser(description="vLLM OpenAI-Compatible RESTful API server."))
    known_env = set(getattr(envs, "environment_variables", {}))
    failures, flags, unchecked_env = [], 0, set()
    for r in rows:
        where = f"{mm} {r['hardware']} {r['dim']}={r['value']}"
        argv = list(r["argv"])
        if argv and argv[0] == "serve":  # `vllm serve <model> ...`: the subcommand's parser is this one
            argv = argv[1:]
        flags += sum(1 for a in argv if a.startswith("-"))
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err):
                ns = parser.parse_args(argv)
            validate_parsed_serve_args(ns)
            e = AsyncEngineArgs.from_cli_args(ns)
            if e.attention_backend is not None:
                AttentionConfig.validate_backend_before(e.attention_backend)
            OptimizationLevel(int(e.optimization_level))
            if e.quantization is not None and e.quantization not in QUANTIZATION_METHODS:
                raise ValueError(f"quantization {e.quantization!r} not in QUANTIZATION_METHODS")
            cache_kwargs = {"cache_dtype": e.kv_cache_dtype}
            if e.block_size is not None:
                cache_kwargs["block_size"] = e.block_size
            CacheConfig(**cache_kwargs)
            for problem in landed(argv, e):
                failures.append(f"{where}: {problem}")
        except SystemExit:
            lines = [l for l in err.getvalue().splitlines() if l.strip() and not l.lstrip().startswith(("[", "usage:"))]
            failures.append(f"{where}: rejected by the parser: {' | '.join(lines[-3:])}")
            continue
        except Exception as x:  # noqa: BLE001 - any validation error is the finding
            failures.append(f"{where}: {type(x).__name__}: {str(x).splitlines()[0] if str(x) else ''}")
            continue
        for k in r.get("env", {}):
            if k.startswith("VLLM_") and known_env and k not in known_env:
                failures.append(f"{where}: environment variable {k} is not in vllm.envs")
            unchecked_env.add(f"{k}={r['env'][k]}")
    for f in failures:
        print("FAIL", f)
    print(f"environment outputs (names checked against vllm.envs, values not parser-checkable): {', '.join(sorted(unchecked_env))}")
    ok = len(rows) - len({f.split(': ', 1)[0] for f in failures})
    print(f"vllm {version}: {ok}/{len(rows)} argument lists parse ({flags} flag uses), {len(failures)} failures")
    return 1 if failures else 0


def landed(argv, e):
    """Problems where a flag parsed but did not set what the translator meant."""
    out = []
    pv = dict(pairs(argv))

    def want(flag, got, expect):
        if flag in pv and got != expect:
            out.append(f"{flag} {pv[flag] or ''}: parsed as {got!r}, meant {expect!r}")

    want("--attention-backend", str(getattr(e.attention_backend, "name", e.attention_backend)), pv.get("--attention-backend"))
    if "--attention-config.flash_attn_version" in pv:
        want("--attention-config.flash_attn_version", e.attention_config.flash_attn_version, int(pv["--attention-config.flash_attn_version"]))
    want("--kv-cache-dtype", e.kv_cache_dtype, pv.get("--kv-cache-dtype"))
    want("--dtype", e.dtype, pv.get("--dtype"))
    want("--quantization", e.quantization, pv.get("--quantization"))
    if "--block-size" in pv:
        want("--block-size", e.block_size, int(pv["--block-size"]))
    if "--max-model-len" in pv:
        want("--max-model-len", e.max_model_len, int(pv["--max-model-len"]))
    want("--enable-chunked-prefill", e.enable_chunked_prefill, True)
    want("--no-enable-chunked-prefill", e.enable_chunked_prefill, False)
    want("--enforce-eager", e.enforce_eager, True)
    for a in argv:
        if a.startswith("-O") and a[2:].isdigit() and int(e.optimization_level) != int(a[2:]):
            out.append(f"{a}: optimization level parsed as {e.optimization_level!r}")
        if a.startswith("-cc.cudagraph_mode="):
            cc = e.compilation_config
            mode = cc.get("cudagraph_mode") if isinstance(cc, dict) else cc.cudagraph_mode
            if getattr(mode, "name", mode) != a.split("=", 1)[1]:
                out.append(f"{a}: cudagraph_mode parsed as {mode!r}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("engine", choices=["sglang", "vllm"])
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("HOME", "/tmp")) / ".cache/l1/wheels")
    ap.add_argument("--versions", help="comma-separated subset of the boundary versions")
    ap.add_argument("--installed", action="store_true", help="vllm: check against the installed vLLM (the default)")
    ap.add_argument("--rows", type=Path, help="read the L1-FLAGS lines from this file instead of running cargo")
    ap.add_argument("--python", type=Path, help="vllm: the venv's python (default: venv-vllm in the engines dir)")
    args = ap.parse_args()

    if args.engine == "vllm":
        try:
            import vllm  # noqa: F401
            here = True
        except ImportError:
            here = False
        if not here:
            py = args.python or vllm_venv_python()
            if not py.is_file():
                raise SystemExit(f"no vLLM venv at {py} (scripts/setup-engines.sh vllm installs it)")
            rows_file = args.rows
            tmp = None
            if rows_file is None:
                import tempfile
                tmp = tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False)
                tmp.write("".join(f"L1-FLAGS {json.dumps(r)}\n" for r in produced("vllm")))
                tmp.close()
                rows_file = Path(tmp.name)
            try:
                return subprocess.run([str(py), __file__, "vllm", "--installed", "--rows", str(rows_file)]).returncode
            finally:
                if tmp is not None:
                    os.unlink(tmp.name)
        rows = read_rows(args.rows.read_text()) if args.rows else produced("vllm")
        return check_installed_vllm(rows)

    rows = read_rows(args.rows.read_text()) if args.rows else produced(args.engine)
    versions = sorted({r["version"] for r in rows}, key=lambda v: [int(x) for x in v.split(".")])
    if args.versions:
        keep = set(args.versions.split(","))
        versions = [v for v in versions if v in keep]
    failures, checked = [], 0
    for version in versions:
        flags = flags_of(wheel_sources(args.engine, version, args.cache))
        for r in (r for r in rows if r["version"] == version):
            for flag, value in pairs(r["argv"]):
                checked += 1
                where = f"{version} {r['dim']}={r['value']}: {flag}"
                if flag not in flags:
                    failures.append(f"{where}: no such flag")
                elif value is not None and flags[flag] is not None and value not in flags[flag]:
                    failures.append(f"{where} {value}: not among {flags[flag]}")
        print(f"{args.engine} {version}: {len(flags)} flags read")
    for f in failures:
        print("FAIL", f)
    print(f"{checked} flag uses checked across {len(versions)} versions, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
