//! Seeded synthetic prompts that hit a token-length target for the engine's own tokenizer.
//!
//! Text is drawn from a fixed list of common lowercase words (ASCII: every test model's
//! tokenizer covers it). With a [`TokenCounter`] (the engine's `/tokenize` endpoint), each prompt
//! is corrected until it has the target token count (within one word); without one, tokens are
//! estimated at one per word.

use rand::{Rng, SeedableRng};

const WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "had",
    "they",
    "you",
    "were",
    "their",
    "one",
    "all",
    "we",
    "can",
    "her",
    "has",
    "there",
    "been",
    "if",
    "more",
    "when",
    "will",
    "would",
    "who",
    "so",
    "no",
    "time",
    "people",
    "year",
    "way",
    "day",
    "man",
    "thing",
    "woman",
    "life",
    "child",
    "world",
    "school",
    "state",
    "family",
    "student",
    "group",
    "country",
    "problem",
    "hand",
    "part",
    "place",
    "case",
    "week",
    "company",
    "system",
    "program",
    "question",
    "work",
    "government",
    "number",
    "night",
    "point",
    "home",
    "water",
    "room",
    "mother",
    "area",
    "money",
    "story",
    "fact",
    "month",
    "lot",
    "right",
    "study",
    "book",
    "eye",
    "job",
    "word",
    "business",
    "issue",
    "side",
    "kind",
    "head",
    "house",
    "service",
    "friend",
    "father",
    "power",
    "hour",
    "game",
    "line",
    "end",
    "member",
    "law",
    "car",
    "city",
    "kernel",
    "memory",
    "cache",
    "token",
    "model",
    "batch",
    "server",
    "request",
    "latency",
];

/// Counts tokens with the engine's tokenizer.
pub trait TokenCounter {
    fn count(&self, text: &str) -> Result<usize, String>;
}

/// `n` seeded words.
fn words(rng: &mut impl Rng, n: usize) -> Vec<&'static str> {
    (0..n)
        .map(|_| WORDS[rng.random_range(0..WORDS.len())])
        .collect()
}

/// A prompt of about `target` tokens from `seed`: exact to within one word when `counter` is
/// given (at most four corrections), else one word per token.
pub fn prompt(
    target: u32,
    seed: u64,
    counter: Option<&dyn TokenCounter>,
    tokens_per_word: f64,
) -> Result<String, String> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let target = target.max(1) as usize;
    let pool = words(&mut rng, target * 2 + 16);
    let Some(counter) = counter else {
        return Ok(pool[..target].join(" "));
    };
    let tpw = tokens_per_word.max(0.1);
    let mut n = ((target as f64 / tpw).round() as usize).clamp(1, pool.len());
    let mut best = (usize::MAX, n);
    for _ in 0..4 {
        let got = counter.count(&pool[..n].join(" "))?;
        let miss = got.abs_diff(target);
        if miss < best.0 {
            best = (miss, n);
        }
        if miss == 0 {
            break;
        }
        let step = ((target as f64 - got as f64) / tpw).round() as isize;
        let step = if step == 0 {
            (target as isize - got as isize).signum()
        } else {
            step
        };
        n = (n as isize + step).clamp(1, pool.len() as isize) as usize;
    }
    Ok(pool[..best.1].join(" "))
}

/// Tokens per word of the engine's tokenizer, from one sample of 400 words.
pub fn tokens_per_word(counter: &dyn TokenCounter, seed: u64) -> Result<f64, String> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let sample = words(&mut rng, 400).join(" ");
    Ok(counter.count(&sample)? as f64 / 400.0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Counts characters / 3, like a coarse subword tokenizer.
    struct ByThirds;
    impl TokenCounter for ByThirds {
        fn count(&self, text: &str) -> Result<usize, String> {
            Ok(text.len().div_ceil(3))
        }
    }

    #[test]
    fn prompts_hit_the_target_and_are_seeded() {
        let tpw = tokens_per_word(&ByThirds, 1).unwrap();
        for target in [1, 7, 64, 300] {
            let p = prompt(target, 5, Some(&ByThirds), tpw).unwrap();
            let got = ByThirds.count(&p).unwrap();
            assert!(got.abs_diff(target as usize) <= 4, "{target}: {got}");
            assert_eq!(p, prompt(target, 5, Some(&ByThirds), tpw).unwrap());
        }
        assert_ne!(
            prompt(50, 1, None, 1.0).unwrap(),
            prompt(50, 2, None, 1.0).unwrap()
        );
        assert_eq!(prompt(50, 1, None, 1.0).unwrap().split(' ').count(), 50);
    }
}
