//! The optimiser beats random search on fixed-seed synthetic landscapes (deterministic: fixed
//! landscape and run seeds; no timing). The margin is in the quality of the reported point.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report.

use l1_tune::landscape::{run_optimiser, run_random, synthetic};
use l1_tune::session::Direction;
use l1_tune::{Acquisition, TuneConfig};

#[test]
fn the_optimiser_beats_random_search() {
    beats_random(Acquisition::ExpectedImprovement);
}

#[test]
fn the_optimiser_with_the_knowledge_gradient_beats_random_search() {
    beats_random(Acquisition::KnowledgeGradient);
}

fn beats_random(acquisition: Acquisition) {
    let cfg = TuneConfig {
        acquisition,
        ..TuneConfig::new("output_tokens_per_s", Direction::Maximize)
    };
    let k = 40;
    let (mut ours_within, mut random_within) = (0, 0);
    let (mut ours_regret, mut random_regret) = (0.0, 0.0);
    let mut runs = 0;
    for land_seed in [11u64, 12, 13] {
        let land = synthetic(land_seed, &[5, 4, 4, 3, 3, 3], 0.02);
        assert!(land.truth.len() > 1000);
        for seed in 0..4u64 {
            let o = run_optimiser(&land, &cfg, k, seed).unwrap();
            let r = run_random(&land, k, seed);
            ours_regret += o.regret_at(&land, k);
            random_regret += r.regret_at(&land, k);
            ours_within += usize::from(o.regret_at(&land, k) <= 0.02);
            random_within += usize::from(r.regret_at(&land, k) <= 0.02);
            runs += 1;
        }
    }
    let (ours_regret, random_regret) = (ours_regret / runs as f64, random_regret / runs as f64);
    eprintln!(
        "{acquisition:?}, k={k}: within 2 %: ours {ours_within}/{runs}, random {random_within}/{runs}; mean regret ours {:.2} %, random {:.2} %",
        100.0 * ours_regret,
        100.0 * random_regret
    );
    // Honest margins (measured: ours 10/12 within 2 %, random 2/12; mean regret 1.3 % against
    // 8.5 %): at 40 of >1,000 combos random search reaches 2 % in a small minority of runs, the
    // optimiser in most; its mean regret is less than a third of random search's.
    assert!(
        ours_within >= runs / 2,
        "ours within 2 %: {ours_within}/{runs}"
    );
    assert!(ours_within >= random_within + runs / 3);
    assert!(ours_regret * 3.0 < random_regret);
}
