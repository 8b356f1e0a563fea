#!/usr/bin/env python3
"""Write l1's tiny random-weight Llama in Hugging Face format (for vLLM; no model hub needed).

    make_tiny_hf_llama.py OUT_DIR [--seed 0] [--head-scale 64] [--embd-std 0.15] [--dtype bfloat16]

Needs torch, transformers and tokenizers (run it with venv-vllm's python). Writes
`config.json`, `generation_config.json`, `model.safetensors` and the tokenizer files with
`save_pretrained`, so vLLM loads the directory offline (HF_HUB_OFFLINE=1).

Model: LlamaForCausalLM, hidden 256, 2 layers, 4 heads with 2 KV heads (head_dim 64; vLLM's CPU
attention supports head sizes 32/64/80/96/112/128/...), intermediate 512, vocabulary 512,
context 4096, untied head, bfloat16, ~1.3 M parameters. Weights N(0, 0.02) from
torch.manual_seed(seed); as in make_tiny_gguf.py the token embeddings are N(0, 0.15) (greedy
decoding then survives harmless numeric changes) and the output head is scaled by 64 (a peaked
next-token distribution), and the rows of the special tokens are zero so that </s> is never
generated (requests always run to max_tokens).

Tokenizer: a `tokenizers` BPE over printable ASCII with a Metaspace pre-tokenizer ("▁" marks a
word start), wrapped as PreTrainedTokenizerFast with a ChatML chat template. Tokens: <unk> <s>
</s> <|im_start|> <|im_end|>, "▁", each printable ASCII character with and without "▁", then
common English words with all their prefixes (each built by one merge). Every token decodes to
ASCII, so a stream never holds back partial UTF-8: one token is one SSE chunk (a byte-level BPE
was tried in the probe and made vLLM merge chunks).
"""
import argparse
import json
import os
import string

WORDS = """the and of to in is that it for was on are as with his they at be this have from
or one had by word but not what all were we when your can said there use an each which she do
how their if will up other about out many then them these so some her would make like him into
time has look two more write go see number no way could people my than first water been call
who its now find long down day did get come made may part hello world model token test fast
slow kernel cache batch""".split()

SPECIALS = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def build_bpe(n_vocab):
    """vocab {token: id} and merges [(a, b)] for a BPE whose tokens are all ASCII pieces."""
    vocab, merges = {}, []
    for s in SPECIALS:
        vocab[s] = len(vocab)
    printable = [c for c in string.printable if c.isprintable() and c != " "]  # 94
    for c in ["\u2581"] + printable:
        vocab[c] = len(vocab)
    for c in printable:
        if len(vocab) >= n_vocab:
            break
        vocab["\u2581" + c] = len(vocab)
        merges.append(("\u2581", c))
    for w in WORDS:
        for k in range(2, len(w) + 1):
            if len(vocab) >= n_vocab:
                break
            tok = "\u2581" + w[:k]
            if tok in vocab:
                continue
            vocab[tok] = len(vocab)
            merges.append(("\u2581" + w[:k - 1], w[k - 1]))
    k = 0
    while len(vocab) < n_vocab:  # filler pairs, only reached for a larger --vocab
        a, b = printable[k // len(printable) % len(printable)], printable[k % len(printable)]
        k += 1
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
            merges.append((a, b))
    return vocab, merges


def make_tokenizer(n_vocab):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab, merges = build_bpe(n_vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.add_special_tokens(SPECIALS)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
        pad_token="</s>", additional_special_tokens=["<|im_start|>", "<|im_end|>"],
        model_max_length=4096, clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHATML
    return fast, vocab


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--head-scale", type=float, default=64.0)
    ap.add_argument("--embd-std", type=float, default=0.15)
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--ff", type=int, default=512)
    ap.add_argument("--vocab", type=int, default=512)
    ap.add_argument("--ctx", type=int, default=4096)
    a = ap.parse_args()

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer, vocab = make_tokenizer(a.vocab)
    assert len(tokenizer) == a.vocab, (len(tokenizer), a.vocab)

    cfg = LlamaConfig(
        vocab_size=a.vocab, hidden_size=a.hidden, intermediate_size=a.ff,
        num_hidden_layers=a.layers, num_attention_heads=a.heads, num_key_value_heads=a.kv_heads,
        head_dim=a.hidden // a.heads, max_position_embeddings=a.ctx, rms_norm_eps=1e-5,
        rope_theta=10000.0, hidden_act="silu", tie_word_embeddings=False, initializer_range=0.02,
        bos_token_id=vocab["<s>"], eos_token_id=vocab["</s>"], pad_token_id=vocab["</s>"],
    )
    torch.manual_seed(a.seed)
    model = LlamaForCausalLM(cfg)
    never = [vocab[s] for s in SPECIALS]
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.fill_(1.0)
            elif name == "model.embed_tokens.weight":
                p.normal_(0.0, a.embd_std)
            elif name == "lm_head.weight":
                p.normal_(0.0, 0.02 * a.head_scale)
                p[never] = 0.0
            else:
                p.normal_(0.0, 0.02)
    model = model.to(getattr(torch, a.dtype))
    model.generation_config.bos_token_id = vocab["<s>"]
    model.generation_config.eos_token_id = vocab["</s>"]
    model.generation_config.pad_token_id = vocab["</s>"]

    os.makedirs(a.out, exist_ok=True)
    model.save_pretrained(a.out, safe_serialization=True)
    tokenizer.save_pretrained(a.out)
    for name in os.listdir(a.out):
        os.chmod(os.path.join(a.out, name), 0o644)

    # Self-check: the saved directory loads and greedy decoding runs.
    from transformers import AutoModelForCausalLM, AutoTokenizer
    t2 = AutoTokenizer.from_pretrained(a.out)
    m2 = AutoModelForCausalLM.from_pretrained(a.out)
    ids = t2("hello world", return_tensors="pt").input_ids
    out = m2.generate(ids, max_new_tokens=8, do_sample=False)
    chat = t2.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                  add_generation_prompt=True)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"wrote {a.out}: LlamaForCausalLM, {a.layers} layers, hidden {a.hidden}, heads "
          f"{a.heads}/{a.kv_heads}, ff {a.ff}, vocab {a.vocab}, {n_params} params, {a.dtype}; "
          f"'hello world' -> {t2.convert_ids_to_tokens(ids[0].tolist())} -> "
          f"{t2.decode(out[0, ids.shape[1]:])!r}; chat prompt {json.dumps(chat)}")


if __name__ == "__main__":
    main()
