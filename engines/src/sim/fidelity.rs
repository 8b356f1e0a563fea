//! The sim's divergence model: deterministic greedy answers to probes, so the fidelity gate can be
//! tested with known truth.
//!
//! A virtual language model: at every position the context (prompt and tokens so far) hashes to
//! a state, and the state to "true" logits over a 64-token vocabulary: one leading token ahead
//! of the rest by a margin drawn from the state (0.5–6 logits; 1 position in 20 a near-tie
//! below 0.5, as peaked real models have). A combo computes those logits plus numeric error: the sum, over the dimensions
//! that change numerics, of `sigma(dimension, value) · N(0, 1)`, each draw seeded by the
//! dimension, its value, the state and the token. Greedy decoding picks the argmax; once a
//! token differs, the context differs, so every later position does too (as in a real model).
//!
//! Two combos with the same numeric dimensions give identical answers, bit for bit; dimensions
//! that do not change numerics (`cuda_graph`, `kv_layout`, knobs such as `block_size`) add no
//! error. Error scales (logit units): 16-bit activations 0.02 (fp16 and bf16 differ), fp8
//! activations 0.12, KV caches fp16/bf16 0.01, fp8 0.06, q8_0 0.03, q4_0 0.6; attention kernels
//! 0.004–0.01, GEMM paths 0.004, fusion 0.003. `auto` and `unset` follow the engine default.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::Combo;
use crate::probe::{ProbeAnswer, ProbeRun, ProbeSet, Step};

const VOCAB: usize = 64;

/// The numeric error scale (logit units) of one dimension value; 0 for dimensions that do not
/// change numerics.
pub fn sigma(dimension: &str, value: &str) -> f64 {
    match (dimension, value) {
        ("activation_dtype", "fp8_e4m3" | "fp8_e5m2") => 0.12,
        ("activation_dtype", "fp16" | "bf16" | "unset") => 0.02,
        ("kv_cache_dtype", "fp8_e4m3" | "fp8_e5m2") => 0.06,
        ("kv_cache_dtype", "q8_0") => 0.03,
        ("kv_cache_dtype", "q4_0") => 0.6,
        ("kv_cache_dtype", _) => 0.01,
        ("attention_backend", "native") => 0.01,
        ("attention_backend", _) => 0.004,
        ("matmul_path", _) => 0.004,
        ("fusion_strategy", _) => 0.003,
        _ => 0.0,
    }
}

fn mix(mut h: u64, x: u64) -> u64 {
    h ^= x
        .wrapping_add(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(h << 6)
        .wrapping_add(h >> 2);
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb) ^ (h >> 31)
}

fn hash_str(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The numeric error sources of a combo: (seed of the source, scale). `kv_cache_dtype: auto`
/// follows the activation dtype.
fn sources(combo: &Combo) -> Vec<(u64, f64)> {
    let mut out = Vec::new();
    for (dim, value) in &combo.dims {
        let value = if dim == "kv_cache_dtype" && value == "auto" {
            combo
                .dims
                .get("activation_dtype")
                .map_or("bf16", String::as_str)
        } else {
            value.as_str()
        };
        let s = sigma(dim, value);
        if s > 0.0 {
            out.push((hash_str(&format!("{dim}={value}")), s));
        }
    }
    out
}

/// The logits a combo computes at context state `state`.
fn logits(state: u64, errors: &[(u64, f64)]) -> [f64; VOCAB] {
    let mut rng = ChaCha8Rng::seed_from_u64(state);
    let mut z = [0.0f64; VOCAB];
    for x in &mut z {
        let n: f64 = StandardNormal.sample(&mut rng);
        *x = n;
    }
    // The leading token and its margin: mostly clear (0.5-6 logits), 1 in 20 a near-tie (< 0.5).
    let lead = (mix(state, 1) % VOCAB as u64) as usize;
    let u = (mix(state, 2) >> 11) as f64 / (1u64 << 53) as f64;
    let margin = if u < 0.05 {
        u / 0.05 * 0.5
    } else {
        0.5 + 5.5 * (u - 0.05) / 0.95
    };
    let second = z
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != lead)
        .map(|(_, v)| *v)
        .fold(f64::NEG_INFINITY, f64::max);
    z[lead] = second + margin;
    for &(seed, s) in errors {
        let mut rng = ChaCha8Rng::seed_from_u64(mix(state, seed));
        for x in &mut z {
            let n: f64 = StandardNormal.sample(&mut rng);
            *x += s * n;
        }
    }
    z
}

fn log_softmax(z: &[f64; VOCAB]) -> [f64; VOCAB] {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let lse = max + z.iter().map(|x| (x - max).exp()).sum::<f64>().ln();
    let mut out = [0.0; VOCAB];
    for (o, x) in out.iter_mut().zip(z) {
        *o = x - lse;
    }
    out
}

/// The sim's answers to `set` under `combo`: greedy, with chosen-token logprobs and top-k.
pub fn answer(set: &ProbeSet, combo: &Combo) -> ProbeRun {
    let errors = sources(combo);
    let answers = set
        .prompts
        .iter()
        .enumerate()
        .map(|(i, prompt)| {
            let mut state = mix(hash_str(prompt), set.seed);
            let mut steps = Vec::with_capacity(set.max_tokens as usize);
            for _ in 0..set.max_tokens {
                let lp = log_softmax(&logits(state, &errors));
                let mut order: Vec<usize> = (0..VOCAB).collect();
                order.sort_by(|&a, &b| lp[b].total_cmp(&lp[a]).then(a.cmp(&b)));
                let best = order[0];
                steps.push(Step {
                    token: format!("id:{best}"),
                    logprob: Some(lp[best]),
                    top: order
                        .iter()
                        .take(set.top_k as usize)
                        .map(|&t| (format!("id:{t}"), lp[t]))
                        .collect(),
                });
                state = mix(state, best as u64 + 1);
            }
            ProbeAnswer {
                index: i,
                prompt_tokens: Some(prompt.split_whitespace().count() as u32),
                steps,
                finish_reason: Some("length".into()),
                failure: None,
                error: None,
            }
        })
        .collect();
    ProbeRun::from_answers(set, "sim divergence model", answers)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::probe::ProbeSpec;

    fn combo(pairs: &[(&str, &str)]) -> Combo {
        let mut c = Combo::default();
        for (d, v) in pairs {
            c.dims.insert((*d).into(), (*v).into());
        }
        c
    }

    fn exact(a: &ProbeRun, b: &ProbeRun) -> usize {
        a.answers
            .iter()
            .zip(&b.answers)
            .filter(|(x, y)| {
                x.steps
                    .iter()
                    .map(|s| &s.token)
                    .eq(y.steps.iter().map(|s| &s.token))
            })
            .count()
    }

    #[test]
    fn same_numerics_same_answers_and_harmless_dims_change_nothing() {
        let set = ProbeSpec::default().resolve().unwrap();
        let base = combo(&[("activation_dtype", "bf16"), ("kv_cache_dtype", "auto")]);
        let a = answer(&set, &base);
        assert_eq!(a, answer(&set, &base));
        let mut graphs = base.clone();
        graphs.dims.insert("cuda_graph".into(), "off".into());
        graphs.knobs.insert("block_size".into(), "32".into());
        assert_eq!(a.answers, answer(&set, &graphs).answers);
        assert_eq!(a.logprobs, crate::probe::LogprobSupport::TopK);
    }

    #[test]
    fn aggressive_quantization_diverges_more() {
        let set = ProbeSpec {
            output_tokens: 32,
            ..ProbeSpec::default()
        }
        .resolve()
        .unwrap();
        let base = answer(&set, &combo(&[("kv_cache_dtype", "fp16")]));
        let q8 = answer(&set, &combo(&[("kv_cache_dtype", "q8_0")]));
        let q4 = answer(&set, &combo(&[("kv_cache_dtype", "q4_0")]));
        let (e8, e4) = (exact(&base, &q8), exact(&base, &q4));
        assert!(e8 > e4, "q8_0 {e8} vs q4_0 {e4} exact matches");
    }
}
