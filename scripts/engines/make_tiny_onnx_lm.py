#!/usr/bin/env python3
"""Build a tiny decoder-only language model (random weights) as an ONNX file.

    make_tiny_onnx_lm.py OUT.onnx [--seed 0] [--head-scale 16] [--no-kv-cache] [--verify]

Needs only `onnx` and `numpy` (`--verify` also needs `onnxruntime`). The model is Llama-shaped
and small enough to decode on a CPU in a fraction of a millisecond per token:

- vocab 512, hidden 256, 2 layers, 4 attention heads (head dim 64), MLP 768 (SwiGLU),
  learned absolute position embeddings for up to 2048 positions;
- RMSNorm written out as primitive ops (Pow, ReduceMean, Add, Sqrt, Div, Mul), SiLU as
  x * Sigmoid(x), attention as MatMul / Mul(scale) / Add(causal mask) / Softmax / MatMul, and
  Q/K/V projections as MatMul + Add (bias), so that ONNX Runtime's graph optimizer has real
  work to do. `basic` constant-folds the attention scale (computed in the graph from a
  constant); `extended` fuses RMSNorm into SimplifiedLayerNormalization, SiLU into QuickGelu,
  and the K transpose and the scale into FusedMatMul (the 3-D MatMul + Add stay unfused);
  `all` adds only layout transforms, which do not apply here, so it runs the `extended` graph.
  Nodes: 109 (disable) -> 107 (basic) -> 76 (extended, all); `--verify` prints the op
  histogram at every level;
- the causal mask is built inside the graph from the sequence lengths (Shape/Range/
  LessOrEqual/Where), so every shape is dynamic.

Interface (names follow the Hugging Face Optimum convention):

    inputs   input_ids                 int64   [batch, seq]
             past_key_values.{i}.key   float32 [batch, 4, past_seq, 64]   i = 0, 1
             past_key_values.{i}.value float32 [batch, 4, past_seq, 64]
    outputs  logits                    float32 [batch, seq, 512]
             present.{i}.key           float32 [batch, 4, past_seq + seq, 64]
             present.{i}.value         float32 [batch, 4, past_seq + seq, 64]

The positions of `input_ids` are past_seq .. past_seq+seq-1; for the first step pass empty
past tensors (past_seq = 0). With `--no-kv-cache` the model has only `input_ids` -> `logits`
and the driver re-runs the whole sequence each step.

The LM head is multiplied by `--head-scale` (default 16): the logits of a random-weight model
are otherwise nearly tied (a flat distribution). With the default the chosen token has a mean
probability of about 0.85 (seed 0: minimum 0.32 over 256 tokens). The scale only sharpens the
distribution (logprobs, sampling); it does not move the argmax. Greedy decoding is identical
across ORT optimization levels and thread counts (fused kernels change the logprobs by about
1e-5). Rounding every weight to fp16 did not flip any of 256 greedy tokens for seeds 0 and 1,
so a token flip signals a numeric change larger than fp16 weight storage (`--verify` reports
the exact-match rates and the first divergence).

Opset 17, IR version 8 (accepted by onnxruntime >= 1.10, including 1.32).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

VOCAB = 512
HIDDEN = 256
LAYERS = 2
HEADS = 4
HEAD_DIM = HIDDEN // HEADS
FF = 768
MAX_POS = 2048
EPS = 1e-5
OPSET = 17
IR_VERSION = 8


class Graph:
    """A small helper that accumulates nodes and initializers with unique names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.n = 0

    def name(self, hint: str) -> str:
        self.n += 1
        return f"{hint}_{self.n}"

    def init(self, name: str, arr: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def const(self, hint: str, arr: np.ndarray) -> str:
        return self.init(self.name(hint), arr)

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, n_out: int = 1, **attrs) -> str:
        outs = [self.name(hint or op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=self.name("n_" + op_type), **attrs))
        return outs[0] if n_out == 1 else outs


def rms_norm(g: Graph, x: str, weight: str, eps: str, two: str) -> str:
    # x / sqrt(mean(x^2) + eps) * w: the pattern ORT fuses into SimplifiedLayerNormalization.
    sq = g.op("Pow", [x, two])
    mean = g.op("ReduceMean", [sq], axes=[-1], keepdims=1)
    var = g.op("Add", [mean, eps])
    std = g.op("Sqrt", [var])
    normed = g.op("Div", [x, std])
    return g.op("Mul", [normed, weight])


def build(seed: int, head_scale: float, kv_cache: bool) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)

    def normal(shape, std):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    g = Graph()
    f32 = lambda v: np.array(v, dtype=np.float32)  # noqa: E731
    i64 = lambda v: np.array(v, dtype=np.int64)  # noqa: E731
    two = g.const("two", f32(2.0))
    eps = g.const("eps", f32(EPS))
    one_i = g.const("one", i64(1))
    zero_i = g.const("zero", i64(0))
    neg = g.const("neg_inf", f32(-1e9))
    zero_f = g.const("zero_f", f32(0.0))
    # 1/sqrt(head_dim) computed in the graph from a constant, as exporters often emit it:
    # `basic` constant-folds it, which then lets `extended` fold the scale into FusedMatMul.
    scale = g.op("Reciprocal", [g.op("Sqrt", [g.const("head_dim", f32(HEAD_DIM))])], "attn_scale")
    heads_shape = g.const("heads_shape", i64([0, 0, HEADS, HEAD_DIM]))
    merge_shape = g.const("merge_shape", i64([0, 0, HIDDEN]))

    embed = g.init("model.embed_tokens.weight", normal((VOCAB, HIDDEN), 1.0))
    pos_embed = g.init("model.embed_positions.weight", normal((MAX_POS, HIDDEN), 0.5))

    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "seq", VOCAB])]
    kv_shape_in = ["batch", HEADS, "past_seq", HEAD_DIM]
    kv_shape_out = ["batch", HEADS, "total_seq", HEAD_DIM]
    if kv_cache:
        for i in range(LAYERS):
            for kind in ("key", "value"):
                inputs.append(helper.make_tensor_value_info(f"past_key_values.{i}.{kind}", TensorProto.FLOAT, kv_shape_in))
                outputs.append(helper.make_tensor_value_info(f"present.{i}.{kind}", TensorProto.FLOAT, kv_shape_out))

    # Sequence lengths and positions.
    seq = g.op("Gather", [g.op("Shape", ["input_ids"]), one_i], "seq_len", axis=0)
    if kv_cache:
        past = g.op("Gather", [g.op("Shape", ["past_key_values.0.key"]), g.const("two_i", i64(2))], "past_len", axis=0)
    else:
        past = zero_i
    total = g.op("Add", [past, seq], "total_len")
    q_pos = g.op("Range", [past, total, one_i], "q_pos")  # [S]
    k_pos = g.op("Range", [zero_i, total, one_i], "k_pos")  # [T]
    allowed = g.op(
        "LessOrEqual",
        [g.op("Unsqueeze", [k_pos, g.const("ax0", i64([0]))]), g.op("Unsqueeze", [q_pos, g.const("ax1", i64([1]))])],
        "allowed",
    )  # [S, T]
    mask = g.op("Where", [allowed, zero_f, neg], "causal_mask")  # [S, T], broadcast over [B, H, S, T]

    h = g.op(
        "Add",
        [g.op("Gather", [embed, "input_ids"], "tok_emb", axis=0), g.op("Gather", [pos_embed, q_pos], "pos_emb", axis=0)],
        "h",
    )

    for i in range(LAYERS):
        p = f"model.layers.{i}"
        ln1 = g.init(f"{p}.input_layernorm.weight", (1.0 + normal((HIDDEN,), 0.1)))
        ln2 = g.init(f"{p}.post_attention_layernorm.weight", (1.0 + normal((HIDDEN,), 0.1)))
        x = rms_norm(g, h, ln1, eps, two)

        def proj(kind: str) -> str:
            w = g.init(f"{p}.self_attn.{kind}_proj.weight", normal((HIDDEN, HIDDEN), 1.0 / np.sqrt(HIDDEN)))
            b = g.init(f"{p}.self_attn.{kind}_proj.bias", normal((HIDDEN,), 0.1))
            y = g.op("Add", [g.op("MatMul", [x, w]), b], f"{kind}_proj")
            y = g.op("Reshape", [y, heads_shape])  # [B, S, H, Dh]
            return g.op("Transpose", [y], f"{kind}_heads", perm=[0, 2, 1, 3])  # [B, H, S, Dh]

        q, k, v = proj("q"), proj("k"), proj("v")
        if kv_cache:
            k_all = f"present.{i}.key"
            v_all = f"present.{i}.value"
            g.nodes.append(helper.make_node("Concat", [f"past_key_values.{i}.key", k], [k_all], name=g.name("n_Concat"), axis=2))
            g.nodes.append(helper.make_node("Concat", [f"past_key_values.{i}.value", v], [v_all], name=g.name("n_Concat"), axis=2))
        else:
            k_all, v_all = k, v
        kt = g.op("Transpose", [k_all], "k_t", perm=[0, 1, 3, 2])  # [B, H, Dh, T]
        scores = g.op("Mul", [g.op("MatMul", [q, kt]), scale], "scores")  # [B, H, S, T]
        probs = g.op("Softmax", [g.op("Add", [scores, mask])], "probs", axis=-1)
        ctx = g.op("MatMul", [probs, v_all], "ctx")  # [B, H, S, Dh]
        ctx = g.op("Reshape", [g.op("Transpose", [ctx], perm=[0, 2, 1, 3]), merge_shape], "ctx_merged")
        wo = g.init(f"{p}.self_attn.o_proj.weight", normal((HIDDEN, HIDDEN), 1.0 / np.sqrt(HIDDEN)))
        h = g.op("Add", [h, g.op("MatMul", [ctx, wo])], "h")

        x = rms_norm(g, h, ln2, eps, two)
        wg = g.init(f"{p}.mlp.gate_proj.weight", normal((HIDDEN, FF), 1.0 / np.sqrt(HIDDEN)))
        wu = g.init(f"{p}.mlp.up_proj.weight", normal((HIDDEN, FF), 1.0 / np.sqrt(HIDDEN)))
        wd = g.init(f"{p}.mlp.down_proj.weight", normal((FF, HIDDEN), 1.0 / np.sqrt(FF)))
        gate = g.op("MatMul", [x, wg], "gate")
        act = g.op("Mul", [gate, g.op("Sigmoid", [gate])], "silu")
        up = g.op("MatMul", [x, wu], "up")
        h = g.op("Add", [h, g.op("MatMul", [g.op("Mul", [act, up]), wd])], "h")

    norm_w = g.init("model.norm.weight", 1.0 + normal((HIDDEN,), 0.1))
    x = rms_norm(g, h, norm_w, eps, two)
    lm_head = g.init("lm_head.weight", normal((HIDDEN, VOCAB), head_scale / np.sqrt(HIDDEN)))
    g.nodes.append(helper.make_node("MatMul", [x, lm_head], ["logits"], name=g.name("n_MatMul")))

    graph = helper.make_graph(g.nodes, "tiny_llama", inputs, outputs, g.inits)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="l1/make_tiny_onnx_lm.py",
        ir_version=IR_VERSION,
    )
    meta = {
        "l1.vocab_size": VOCAB,
        "l1.hidden": HIDDEN,
        "l1.layers": LAYERS,
        "l1.heads": HEADS,
        "l1.head_dim": HEAD_DIM,
        "l1.max_positions": MAX_POS,
        "l1.kv_cache": int(kv_cache),
        "l1.seed": seed,
        "l1.head_scale": head_scale,
    }
    for k, v in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, str(v)
    return model


# ---------------------------------------------------------------------------------------------
# --verify: checker, ORT greedy decode across optimization levels, op histograms.


def _greedy(sess, prompt: list[int], n: int, kv_cache: bool) -> tuple[list[int], list[float]]:
    ids = list(prompt)
    toks: list[int] = []
    lps: list[float] = []
    past = {}
    if kv_cache:
        past = {
            f"past_key_values.{i}.{k}": np.zeros((1, HEADS, 0, HEAD_DIM), np.float32) for i in range(LAYERS) for k in ("key", "value")
        }
    feed_ids = ids
    for _ in range(n):
        feeds = {"input_ids": np.array([feed_ids], dtype=np.int64), **past}
        outs = sess.run(None, feeds)
        logits = outs[0][0, -1].astype(np.float64)
        tok = int(np.argmax(logits))
        m = logits.max()
        lp = float(logits[tok] - (m + np.log(np.exp(logits - m).sum())))
        toks.append(tok)
        lps.append(lp)
        ids.append(tok)
        if kv_cache:
            names = [o.name for o in sess.get_outputs()]
            past = {n_.replace("present", "past_key_values"): v for n_, v in zip(names, outs) if n_.startswith("present.")}
            feed_ids = [tok]
        else:
            feed_ids = ids
    return toks, lps


def verify(path: str, model: onnx.ModelProto, kv_cache: bool, n_tokens: int) -> int:
    import collections
    import tempfile

    import onnxruntime as ort

    onnx.checker.check_model(path, full_check=True)
    print(f"onnx.checker: ok (ir_version={model.ir_version}, opset={model.opset_import[0].version})")
    rng = np.random.default_rng(1234)
    prompt = [int(t) for t in rng.integers(0, VOCAB, 32)]
    n_new = n_tokens
    levels = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, level in levels.items():
            for threads in (1, 2):
                so = ort.SessionOptions()
                so.graph_optimization_level = level
                so.intra_op_num_threads = threads
                so.log_severity_level = 3  # saving an `all` model warns about NCHWc; not relevant here
                opt_path = os.path.join(tmp, f"{name}.onnx")
                if threads == 1:
                    so.optimized_model_filepath = opt_path
                sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
                results[(name, threads)] = _greedy(sess, prompt, n_new, kv_cache)
                if threads == 1:
                    opt = onnx.load(opt_path)
                    hist = collections.Counter(n.op_type for n in opt.graph.node)
                    print(f"{name:9s} {len(opt.graph.node):4d} nodes: " + ", ".join(f"{k}={v}" for k, v in sorted(hist.items())))
        ref_toks, ref_lps = results[("disable", 1)]
        ok = True
        for key, (toks, lps) in results.items():
            match = sum(a == b for a, b in zip(toks, ref_toks)) / len(ref_toks)
            diff = max(abs(a - b) for a, b in zip(lps, ref_lps))
            print(f"level={key[0]:9s} threads={key[1]}: exact-match {match:.3f}, max |dlogprob| {diff:.2e}")
            ok &= match == 1.0
        if kv_cache:
            # The full-recompute path (empty past, whole sequence) must agree with the cached one.
            so = ort.SessionOptions()
            sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
            ids = list(prompt)
            full = []
            for _ in range(n_new):
                past = {
                    f"past_key_values.{i}.{k}": np.zeros((1, HEADS, 0, HEAD_DIM), np.float32) for i in range(LAYERS) for k in ("key", "value")
                }
                logits = sess.run(["logits"], {"input_ids": np.array([ids], np.int64), **past})[0][0, -1]
                tok = int(np.argmax(logits))
                full.append(tok)
                ids.append(tok)
            match = sum(a == b for a, b in zip(full, ref_toks)) / n_new
            print(f"full recompute vs KV cache: exact-match {match:.3f}")
            ok &= match == 1.0
        print(f"greedy tokens: {ref_toks}")
        p = np.exp(np.array(ref_lps))
        print(f"chosen-token probability: mean {p.mean():.3f}, min {p.min():.3f}")
        # A coarse numeric change: round every weight to fp16 and decode again.
        m16 = onnx.load(path)
        for init in m16.graph.initializer:
            if init.data_type == TensorProto.FLOAT and len(init.dims) >= 1:  # not the -1e9 mask scalar
                arr = numpy_helper.to_array(init).astype(np.float16).astype(np.float32)
                init.CopyFrom(numpy_helper.from_array(arr, init.name))
        p16 = os.path.join(tmp, "fp16w.onnx")
        onnx.save(m16, p16)
        sess = ort.InferenceSession(p16, ort.SessionOptions(), providers=["CPUExecutionProvider"])
        toks16, _ = _greedy(sess, prompt, n_new, kv_cache)
        first = next((i for i, (a, b) in enumerate(zip(toks16, ref_toks)) if a != b), None)
        match = sum(a == b for a, b in zip(toks16, ref_toks)) / n_new
        print(f"fp16-rounded weights: exact-match {match:.3f}, first divergence at {first}")
    print("verify: " + ("ok" if ok else "MISMATCH"))
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="output .onnx path")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--head-scale", type=float, default=16.0, help="LM head multiplier (about the logit std); default 16")
    ap.add_argument("--no-kv-cache", action="store_true", help="no past_key_values inputs / present outputs")
    ap.add_argument("--verify", action="store_true", help="run onnx.checker and a greedy decode with onnxruntime")
    ap.add_argument("--verify-tokens", type=int, default=64, help="tokens to decode with --verify (prompt: 32)")
    args = ap.parse_args()
    kv = not args.no_kv_cache
    model = build(args.seed, args.head_scale, kv)
    onnx.checker.check_model(model, full_check=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    onnx.save(model, args.out)
    n_params = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
    print(f"wrote {args.out}: {len(model.graph.node)} nodes, {n_params} parameters, kv_cache={kv}, seed={args.seed}, head_scale={args.head_scale}")
    if args.verify:
        return verify(args.out, model, kv, args.verify_tokens)
    return 0


if __name__ == "__main__":
    sys.exit(main())
