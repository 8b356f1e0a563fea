#!/usr/bin/env python3
"""Check the flags l1's translators produce against an engine's own argument definitions.

Usage: scripts/check-engine-flags.py sglang [--cache DIR] [--versions 0.5.5,0.5.10,...]
       scripts/check-engine-flags.py vllm [--installed] [--rows FILE] [--python PY]
       scripts/check-engine-flags.py vllm --source [--cache DIR] [--versions 0.11,0.12,...] [--rows FILE]

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

`vllm --source` checks every boundary version (0.11 ... 0.33) instead, without importing vLLM: it
downloads each version's wheel (`pip download --no-deps`, ~450 MB each, into the same cache as
SGLang's: ~/.cache/l1/wheels/vllm/<version>/), reads only the few modules it needs out of the zip
with `ast`, and rebuilds the server CLI the way vLLM builds it: the option strings of every
`add_argument(...)` in `vllm/engine/arg_utils.py` and `vllm/entrypoints/**/cli_args.py` (aliases
such as `-q`, `-cc`, `-ac`, 0.11's `-O` included); for `add_argument("--x", **kw["field"])` with
`kw = get_kwargs(SomeConfig)` the dataclass field's annotation, followed through `from` imports and
type aliases (`bool` -> also `--no-x`; `Literal[...]` -> choices; an Enum -> its member names; a
config dataclass -> the fields its dotted/JSON keys may name; `int`); the flags generated in a
`for key, value in get_kwargs(FrontendArgs).items(): add_argument(f"--{key...}")` loop (one per
field, kebab-case, `--no-` for booleans); `"flags": [...]` extra aliases; and how this version's
`FlexibleArgumentParser` rewrites `-O<n>` (`-O.level=<n>` on 0.11, `--optimization-level <n>`
from 0.12). Each produced flag must exist; each value is checked where the source constrains it
(`--dtype`, `--kv-cache-dtype`, `--quantization` against the `QuantizationMethods` literal,
`--block-size` where it is a literal, `--attention-backend` against the backend enum,
`--optimization-level` against `OptimizationLevel`, `-cc.cudagraph_mode=` / 0.11's
`--compilation-config '{"cudagraph_mode": ...}'` against `CUDAGraphMode` and the config's fields,
`--attention-config.flash_attn_version`, integers); `VLLM_*` environment names must be keys of
`vllm/envs.py`'s `environment_variables`, and `VLLM_ATTENTION_BACKEND` (before 0.13) a member of
that version's backend enum. Paths, names and the host are reported as not constrained. On 0.32
the flag set read this way is exactly the installed parser's option strings (less `-h/--help`).
Not run in CI (the downloads).

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
    wheel = download_wheel(engine, version, cache)
    out = []
    with zipfile.ZipFile(wheel) as z:
        for n in z.namelist():
            if n == "sglang/srt/server_args.py" or (
                n.startswith("sglang/srt/arg_groups/") and n.endswith(".py")
            ):
                out.append(z.read(n).decode())
    if not out:
        raise SystemExit(f"{wheel}: no sglang/srt/server_args.py")
    return out


# ---------------------------------------------------------------- vLLM, from wheel source (--source)

VLLM_BUILTINS = {"bool", "int", "str", "float", "dict", "list", "tuple", "set", "bytes", "Any", "Path"}
VLLM_CONTAINERS = {"list", "List", "tuple", "Tuple", "set", "Set", "dict", "Dict", "Sequence", "Mapping", "Callable", "type", "Type"}


def download_wheel(engine, version, cache):
    """The wheel of `engine==version` in `cache/engine/version`, downloaded (--no-deps) once."""
    d = cache / engine / version
    wheels = sorted(d.glob("*.whl")) if d.exists() else []
    if not wheels:
        d.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             "--quiet", f"{engine}=={version}", "-d", str(d)],
            check=True,
        )
        wheels = sorted(d.glob("*.whl"))
    if not wheels:
        raise SystemExit(f"pip download {engine}=={version}: no wheel in {d}")
    return wheels[0]


class WheelSource:
    """Python modules read from a wheel (never imported); names resolved through `from` imports."""

    def __init__(self, wheel):
        self.zip = zipfile.ZipFile(wheel)
        self.names = set(self.zip.namelist())
        self.trees = {}

    def path(self, mod):
        base = mod.replace(".", "/")
        for p in (base + ".py", base + "/__init__.py"):
            if p in self.names:
                return p
        return None

    def module(self, mod):
        if mod not in self.trees:
            p = self.path(mod)
            self.trees[mod] = ast.parse(self.zip.read(p).decode()) if p else None
        return self.trees[mod]

    def text(self, mod):
        p = self.path(mod)
        return self.zip.read(p).decode() if p else ""

    def modules_matching(self, pred):
        return sorted(n[:-3].replace("/", ".").removesuffix(".__init__") for n in self.names if n.endswith(".py") and pred(n))

    @staticmethod
    def _top(body):
        for stmt in body:  # module level, including `if TYPE_CHECKING:` and `try:` blocks
            if isinstance(stmt, ast.If):
                yield from WheelSource._top(stmt.body)
                if getattr(stmt.test, "id", None) != "TYPE_CHECKING":  # the typed view, not `X = str`
                    yield from WheelSource._top(stmt.orelse)
            elif isinstance(stmt, ast.Try):
                yield from WheelSource._top(stmt.body)
                for h in stmt.handlers:
                    yield from WheelSource._top(h.body)
            else:
                yield stmt

    def lookup(self, mod, name, depth=0):
        """('class', ClassDef, module) or ('alias', value node, module) for `name` as seen from `mod`."""
        tree = self.module(mod)
        if tree is None or depth > 10:
            return None
        found = None
        for stmt in self._top(tree.body):
            if isinstance(stmt, ast.ClassDef) and stmt.name == name:
                found = ("class", stmt, mod)
            elif isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in stmt.targets):
                found = ("alias", stmt.value, mod)
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.target.id == name and stmt.value is not None:
                found = ("alias", stmt.value, mod)
            elif isinstance(stmt, ast.ImportFrom) and found is None:
                for a in stmt.names:
                    if (a.asname or a.name) == name:
                        src = stmt.module or ""
                        if stmt.level:
                            pkg = mod if (self.path(mod) or "").endswith("__init__.py") else mod.rsplit(".", 1)[0]
                            for _ in range(stmt.level - 1):
                                pkg = pkg.rsplit(".", 1)[0]
                            src = f"{pkg}.{src}" if src else pkg
                        r = self.lookup(src, a.name, depth + 1)
                        if r is None and self.path(f"{src}.{a.name}"):
                            r = None  # a submodule, not a type
                        if r is not None:
                            found = r
        return found

    def analyse(self, node, mod, out=None, depth=0):
        """What a type annotation admits: {'kinds': set, 'literals': [...], 'enums': [...], 'classes': [...]}."""
        if out is None:
            out = {"kinds": set(), "literals": [], "enums": [], "classes": []}
        if node is None or depth > 15:
            return out
        if isinstance(node, ast.Constant):
            if node.value is None:
                out["kinds"].add("None")
            elif isinstance(node.value, str):
                try:
                    self.analyse(ast.parse(node.value, mode="eval").body, mod, out, depth + 1)
                except SyntaxError:
                    pass
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            self.analyse(node.left, mod, out, depth + 1)
            self.analyse(node.right, mod, out, depth + 1)
        elif isinstance(node, ast.Subscript):
            head = node.value.id if isinstance(node.value, ast.Name) else getattr(node.value, "attr", "")
            elts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            if head == "Literal":
                for e in elts:  # Literal["auto", RunnerType]: nested literal aliases too
                    if isinstance(e, ast.Constant):
                        out["literals"].append(e.value)
                    else:
                        out["literals"].extend(self.analyse(e, mod, None, depth + 1)["literals"])
            elif head in ("Annotated", "SkipValidation"):  # SkipValidation[T] is Annotated[T, ...]
                self.analyse(elts[0], mod, out, depth + 1)
            elif head in ("Optional", "Union"):
                for e in elts:
                    self.analyse(e, mod, out, depth + 1)
            elif head in ("ClassVar", "InitVar"):
                out["kinds"].add("ClassVar")
            elif head in VLLM_CONTAINERS:
                out["kinds"].add(head.lower())
            else:
                self.analyse(node.value, mod, out, depth + 1)
        elif isinstance(node, (ast.Name, ast.Attribute)):
            n = node.id if isinstance(node, ast.Name) else node.attr
            if n in VLLM_BUILTINS:
                out["kinds"].add(n)
                return out
            r = self.lookup(mod, n)
            if r is None:
                out["kinds"].add("?" + n)
            elif r[0] == "alias":
                self.analyse(r[1], r[2], out, depth + 1)
            else:
                cls, m = r[1], r[2]
                bases = [b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in cls.bases]
                if any(b.endswith("Enum") for b in bases):
                    members = [(t.id, s.value.value if isinstance(s.value, ast.Constant) else None)
                               for s in cls.body if isinstance(s, ast.Assign)
                               for t in s.targets if isinstance(t, ast.Name) and not t.id.startswith("_")]
                    out["enums"].append((cls.name, members))
                else:
                    out["classes"].append((cls, m))
        return out

    def fields(self, cls, mod, depth=0):
        """{field: (annotation, module)} of a (data)class, base classes first."""
        out = {}
        if depth > 8:
            return out
        for b in cls.bases:
            n = b.id if isinstance(b, ast.Name) else getattr(b, "attr", None)
            r = self.lookup(mod, n) if n else None
            if r and r[0] == "class":
                out.update(self.fields(r[1], r[2], depth + 1))
        for stmt in cls.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                if "ClassVar" in ast.dump(stmt.annotation):
                    continue
                out[stmt.target.id] = (stmt.annotation, mod)
        return out


def vllm_flag_info(src, ann, mod, origin):
    t = src.analyse(ann, mod)
    info = {"origin": origin, "literals": [str(v) for v in t["literals"]], "enums": t["enums"],
            "classes": t["classes"], "int": "int" in t["kinds"] and "str" not in t["kinds"] and not t["literals"],
            "bool": "bool" in t["kinds"] and "str" not in t["kinds"]}
    return info


def vllm_source_flags(src):
    """{flag: info} of the vLLM server CLI, read from the wheel's source (see the module docs)."""
    flags = {}

    def add(flag, info):
        if flag not in flags or (flags[flag]["origin"] == "alias" and info["origin"] != "alias"):
            flags[flag] = info

    plain = {"origin": "explicit", "literals": [], "enums": [], "classes": [], "int": False, "bool": False}
    mods = ["vllm.engine.arg_utils"] + src.modules_matching(
        lambda n: n.startswith("vllm/entrypoints/") and n.endswith("/cli_args.py"))
    for mod in mods:
        tree = src.module(mod)
        if tree is None:
            continue
        names = module_lists([tree])
        classes = {c.name: c for c in ast.walk(tree) if isinstance(c, ast.ClassDef)}

        def subclasses(name):
            out = [name]
            for c in classes.values():
                if any(getattr(b, "id", None) in out for b in c.bases) and c.name not in out:
                    out.append(c.name)
            return out

        funcs = []
        for c in classes.values():
            funcs += [(f, c.name) for f in c.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))]
        funcs += [(f, None) for f in tree.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for func, owner in funcs:
            kw_vars = {}  # var = get_kwargs(Cls) -> [(ClassDef, module)]
            for n in ast.walk(func):
                if (isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)
                        and isinstance(n.value, ast.Call) and getattr(n.value.func, "id", None) == "get_kwargs"
                        and n.value.args and isinstance(n.value.args[0], ast.Name)):
                    arg = n.value.args[0].id
                    if arg == "cls" and owner:
                        kw_vars[n.targets[0].id] = [(classes[c], mod) for c in subclasses(owner)]
                    else:
                        r = src.lookup(mod, arg)
                        if r and r[0] == "class":
                            kw_vars[n.targets[0].id] = [(r[1], r[2])]
            generated_calls = set()
            for n in ast.walk(func):  # for key, value in <kwargs>.items(): add_argument(f"--{key...}", **value)
                if (isinstance(n, ast.For) and isinstance(n.iter, ast.Call) and isinstance(n.iter.func, ast.Attribute)
                        and isinstance(n.iter.func.value, ast.Name) and n.iter.func.value.id in kw_vars):
                    calls = [c for c in ast.walk(n) if isinstance(c, ast.Call) and getattr(c.func, "attr", None) == "add_argument"]
                    if calls:
                        generated_calls.update(id(c) for c in calls)
                        for cls, cmod in kw_vars[n.iter.func.value.id]:
                            for fname, (ann, fmod) in src.fields(cls, cmod).items():
                                info = vllm_flag_info(src, ann, fmod, "field")
                                add("--" + fname.replace("_", "-"), info)
                                if info["bool"]:
                                    add("--no-" + fname.replace("_", "-"), dict(info, origin="no"))
            for n in ast.walk(func):
                if not (isinstance(n, ast.Call) and getattr(n.func, "attr", None) == "add_argument") or id(n) in generated_calls:
                    continue
                opts = [a.value for a in n.args if isinstance(a, ast.Constant) and isinstance(a.value, str) and a.value.startswith("-")]
                info = dict(plain)
                spread = [kw.value for kw in n.keywords if kw.arg is None]  # **kwargs["x"], **{**kwargs["x"], ...}
                spread += [v for d in spread if isinstance(d, ast.Dict) for k, v in zip(d.keys, d.values) if k is None]
                for v in spread:
                    if (isinstance(v, ast.Subscript) and isinstance(v.value, ast.Name)
                            and v.value.id in kw_vars and isinstance(v.slice, ast.Constant)):
                        for cls, cmod in kw_vars[v.value.id]:
                            f = src.fields(cls, cmod).get(v.slice.value)
                            if f:
                                info = vllm_flag_info(src, f[0], f[1], "explicit")
                for kw in n.keywords:
                    if kw.arg == "choices":
                        ch = str_list(kw.value, names)
                        if ch is not None:
                            info = dict(info, literals=ch)
                    elif kw.arg == "action" and getattr(kw.value, "attr", getattr(kw.value, "id", None)) == "BooleanOptionalAction":
                        info = dict(info, bool=True)
                    elif kw.arg == "type" and getattr(kw.value, "id", None) == "int":
                        info = dict(info, int=True)
                for i, o in enumerate(opts):
                    add(o, info if o.startswith("--") or i == 0 else dict(info, origin="alias"))
                    if info["bool"] and o.startswith("--"):
                        add("--no-" + o[2:], dict(info, origin="no"))
        for n in ast.walk(tree):  # extra aliases: {"flags": ["-x", ...]} / kwargs["y"]["flags"] = [...]
            if isinstance(n, ast.Dict):
                for k, v in zip(n.keys, n.values):
                    if isinstance(k, ast.Constant) and k.value == "flags":
                        for a in str_list(v, names) or []:
                            add(a, dict(plain, origin="alias"))
            elif (isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Subscript)
                    and isinstance(n.targets[0].slice, ast.Constant) and n.targets[0].slice.value == "flags"):
                for a in str_list(n.value, names) or []:
                    add(a, dict(plain, origin="alias"))
    return flags


def vllm_o_rewrite(src):
    """How this version's FlexibleArgumentParser rewrites `-O<n>`: ('--optimization-level', None),
    ('-O', 'level') (0.11: `-O.level=<n>`, `-O` being the compilation config) or None."""
    text = src.text("vllm.utils.argparse_utils") + src.text("vllm.utils")
    if '"--optimization-level"' in text or "'--optimization-level'" in text:
        return ("--optimization-level", None)
    if "-O.level=" in text:
        return ("-O", "level")
    return None


def vllm_env_names(src):
    tree = src.module("vllm.envs")
    for n in ast.walk(tree) if tree else []:
        target = n.targets[0] if isinstance(n, ast.Assign) and len(n.targets) == 1 else getattr(n, "target", None)
        if isinstance(n, (ast.Assign, ast.AnnAssign)) and isinstance(target, ast.Name) \
                and target.id == "environment_variables" and isinstance(n.value, ast.Dict):
            return {k.value for k in n.value.keys if isinstance(k, ast.Constant)}
    return set()


def vllm_backend_names(src):
    """Member names of the attention backend enum (`_Backend` before 0.12, then `AttentionBackendEnum`),
    which `VLLM_ATTENTION_BACKEND` (before 0.13) names."""
    for mod in ("vllm.v1.attention.backends.registry", "vllm.attention.backends.registry", "vllm.platforms.interface"):
        for name in ("AttentionBackendEnum", "_Backend"):
            r = src.lookup(mod, name) if src.path(mod) else None
            if r and r[0] == "class":
                return [t.id for st in r[1].body if isinstance(st, ast.Assign)
                        for t in st.targets if isinstance(t, ast.Name) and not t.id.startswith("_")]
    return []


def vllm_tokens(argv, rewrite):
    """(flag, dotted key or None, value or None) for each option in an argument list."""
    out = []
    i = 1 if argv and argv[0] == "serve" else 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if not a.startswith("-"):
            continue  # the positional model of `vllm serve`
        value = None
        if "=" in a:
            a, value = a.split("=", 1)
        elif i < len(argv) and not argv[i].startswith("-"):
            value = argv[i]
            i += 1
        if a.startswith("-O") and a != "-O" and a[2] != "." and not a.startswith("--") and rewrite:
            value = a[2:] if value is None else value
            a = rewrite[0] + ("." + rewrite[1] if rewrite[1] else "")
        key = None
        if "." in a:
            a, key = a.split(".", 1)
        out.append((a, key, value))
    return out


def vllm_value_problem(src, info, value):
    """Why `value` is not accepted by a flag or config field, or None; 'unchecked' when nothing to check."""
    if info["literals"]:
        return None if value in info["literals"] else f"not among {info['literals']}"
    if info["enums"]:
        names = [m for _, members in info["enums"] for m, _ in members]
        values = [str(v) for _, members in info["enums"] for _, v in members if v is not None]
        if value in names or value in values or value.upper() in names:
            return None
        return f"not a member of {info['enums'][0][0]} {names}"
    if info["int"]:
        try:
            int(value)
            return None
        except ValueError:
            return "not an integer"
    return "unchecked"


def vllm_dotted_problem(src, info, key, value):
    """A config field `key` (a.b.c) of the config class behind a flag, and its value."""
    cur = info
    for part in key.split("."):
        if not cur["classes"]:
            return None, "unchecked"
        cls, mod = cur["classes"][0]
        f = src.fields(cls, mod).get(part.replace("-", "_"))
        if f is None:
            return f"{cls.name} has no field {part!r}", None
        cur = vllm_flag_info(src, f[0], f[1], "field")
    return None, (vllm_value_problem(src, cur, value) if value is not None else "unchecked")


def check_vllm_source(rows, versions, cache):
    """Check each boundary version's argument lists against the flags read from its wheel's source."""
    total_fail = 0
    for version in versions:
        vrows = [r for r in rows if r["version"] == version]
        src = WheelSource(download_wheel("vllm", version, cache))
        flags = vllm_source_flags(src)
        rewrite = vllm_o_rewrite(src)
        envs = vllm_env_names(src)
        backends = vllm_backend_names(src)
        uses = values = unchecked = env_values = 0
        unknown, bad = [], []
        for r in vrows:
            where = f"{version} {r['hardware']} {r['dim']}={r['value']}"
            for flag, key, value in vllm_tokens(r["argv"], rewrite):
                uses += 1
                info = flags.get(flag)
                if info is None:
                    unknown.append(f"{where}: {flag}{'.' + key if key else ''}: no such flag")
                    continue
                if key is not None:
                    problem, vp = vllm_dotted_problem(src, info, key, value)
                    if problem:
                        bad.append(f"{where}: {flag}.{key}: {problem}")
                        continue
                elif value is not None and value.startswith("{") and info["classes"]:
                    # 0.11's `--compilation-config '{"cudagraph_mode": ...}'`: each key as a dotted one
                    found = [problem or p for problem, p in
                             (vllm_dotted_problem(src, info, k, str(v)) for k, v in json.loads(value).items())]
                    vp = next((p for p in found if p and p != "unchecked"), None)
                    if vp is None and found and all(p == "unchecked" for p in found):
                        vp = "unchecked"
                elif value is not None:
                    vp = vllm_value_problem(src, info, value)
                else:
                    continue  # a flag without a value (`--enforce-eager`): its existence is the check
                if vp == "unchecked":
                    unchecked += 1  # a path, name, host or number of a type nothing constrains
                elif vp:
                    bad.append(f"{where}: {flag}{'.' + key if key else ''} {value}: {vp}")
                else:
                    values += 1
            for k in r.get("env", {}):
                if k.startswith("VLLM_") and envs and k not in envs:
                    bad.append(f"{where}: environment variable {k} is not in vllm/envs.py")
                elif k == "VLLM_ATTENTION_BACKEND" and backends and r["env"][k] not in backends:
                    bad.append(f"{where}: {k}={r['env'][k]}: not a member of the attention backend enum {backends}")
                elif k == "VLLM_ATTENTION_BACKEND":
                    env_values += 1
        unknown, bad = sorted(set(unknown)), sorted(set(bad))
        for f in unknown + bad:
            print("FAIL", f)
        origins = {}
        for info in flags.values():
            origins[info["origin"]] = origins.get(info["origin"], 0) + 1
        print(f"vllm {version} ({src.zip.filename.rsplit('/', 1)[-1]}): {len(flags)} flags read "
              f"({', '.join(f'{n} {o}' for o, n in sorted(origins.items()))}); -O<n> -> "
              f"{rewrite[0] + ('.' + rewrite[1] if rewrite and rewrite[1] else '') if rewrite else 'as is'}; "
              f"{len(vrows)} lists, {uses} flag uses, {values} values checked ({unchecked} not constrained), "
              f"{env_values} VLLM_ATTENTION_BACKEND values checked, {len(unknown)} unknown flags, {len(bad)} bad values")
        total_fail += len(unknown) + len(bad)
    print(f"{len(versions)} versions, {total_fail} failures")
    return 1 if total_fail else 0


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
    ap.add_argument("--source", action="store_true",
                    help="vllm: check every boundary version against its wheel's source (downloads ~450 MB a version)")
    ap.add_argument("--rows", type=Path, help="read the L1-FLAGS lines from this file instead of running cargo")
    ap.add_argument("--python", type=Path, help="vllm: the venv's python (default: venv-vllm in the engines dir)")
    args = ap.parse_args()

    if args.engine == "vllm" and args.source:
        rows = read_rows(args.rows.read_text()) if args.rows else produced("vllm")
        versions = sorted({r["version"] for r in rows}, key=lambda v: [int(x) for x in v.split(".")])
        if args.versions:
            keep = set(args.versions.split(","))
            versions = [v for v in versions if v in keep]
        return check_vllm_source(rows, versions, args.cache)
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
