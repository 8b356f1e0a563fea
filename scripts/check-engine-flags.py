#!/usr/bin/env python3
"""Check the flags l1's translators produce against an engine's own argument definitions.

Usage: scripts/check-engine-flags.py sglang [--cache DIR] [--versions 0.5.5,0.5.10,...]

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


def produced(engine):
    """The translator's argument lists, from the engines crate's ignored printing test."""
    cmd = ["cargo", "test", "--release", "-p", "l1-engines", "--lib",
           f"{engine}::tests::print_flag_matrix", "--", "--ignored", "--nocapture", "--exact"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}")
    rows = [json.loads(l.split("L1-FLAGS ", 1)[1]) for l in r.stdout.splitlines() if "L1-FLAGS " in l]
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("engine", choices=["sglang"])
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("HOME", "/tmp")) / ".cache/l1/wheels")
    ap.add_argument("--versions", help="comma-separated subset of the boundary versions")
    args = ap.parse_args()

    rows = produced(args.engine)
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
