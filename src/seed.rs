//! Where randomness comes from: one named stream per use, each derived from the run's seed.
//!
//! Training draws random numbers in many places — the order of each epoch's images, a
//! denoiser's corruption, a VAE's samples, the trials of a search, the codes `generate`
//! decodes. If they all came from one generator, resuming a run from its checkpoint would
//! replay different numbers (the generator's position is not saved), and adding a picture to
//! a command would change every number drawn after it. So each use gets its own [`Stream`],
//! whose generator is a pure function of the seed and the stream's name: epoch 7, batch 12
//! draws the same noise whether the run started at epoch 1 or resumed at epoch 6.

use rand::rngs::StdRng;
use rand::SeedableRng;

/// SplitMix64's golden-ratio increment: multiplying neighbouring small numbers by it spreads
/// them over all 64 bits, so streams 1 and 2 do not start from nearly equal seeds.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's second multiplier, for the second coordinate of a step.
const SECOND: u64 = 0xBF58_476D_1CE4_E5B9;

/// One use of randomness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// A training step's corruption and a VAE's samples (epochs and batches count from 1;
    /// `{ epoch: 0, batch: 0 }` is a step outside the epoch loop: a trace's, a benchmark's).
    Step {
        /// The epoch.
        epoch: usize,
        /// The batch within it.
        batch: usize,
    },
    /// The corruption of the test images shown in a run's reconstruction snapshots.
    Snapshots,
    /// The corruption `eval` and `denoise` apply to test images.
    Damage,
    /// The random codes `generate` decodes.
    Generate,
    /// The noise `generate --centroids` adds to each class's mean code.
    Centroids,
    /// The settings a search draws for its trial number `index`.
    Trial(usize),
    /// The order in which an epoch visits the training images (epochs count from 1).
    Shuffle {
        /// The epoch.
        epoch: usize,
    },
    /// The masks a training step's dropout layers draw (apart from [`Stream::Step`], so a
    /// model with dropout corrupts and samples exactly as one without).
    Masks {
        /// The epoch.
        epoch: usize,
        /// The batch within it.
        batch: usize,
    },
}

/// The generator of `stream` under `seed`.
pub fn rng(seed: u64, stream: Stream) -> StdRng {
    // The special streams sit at coordinates no training step reaches.
    let step = |epoch: usize, batch: u64| {
        let mix = (epoch as u64)
            .wrapping_mul(GOLDEN)
            .wrapping_add((batch + 1).wrapping_mul(SECOND));
        StdRng::seed_from_u64(seed ^ mix)
    };
    match stream {
        Stream::Step { epoch, batch } => step(epoch, batch as u64),
        Stream::Snapshots => step(0, 0),
        Stream::Damage => step(usize::MAX, 0),
        Stream::Generate => step(usize::MAX - 1, 0),
        Stream::Centroids => step(usize::MAX - 2, 0),
        Stream::Trial(index) => step(index, 0x5EA),
        // Batches stay far below 2⁶³: the top bit keeps these apart from the steps' own.
        Stream::Masks { epoch, batch } => step(epoch, batch as u64 | 1 << 63),
        Stream::Shuffle { epoch } => {
            StdRng::seed_from_u64(seed ^ (epoch as u64 + 1).wrapping_mul(GOLDEN))
        }
    }
}

/// A seed for the `index`-th child of something seeded with `seed` (the layers of a
/// container): neighbouring indices give unrelated seeds.
pub fn child(seed: u64, index: u64) -> u64 {
    seed ^ (index + 1).wrapping_mul(SECOND).rotate_left(17)
}

/// The generator of every evaluation pass: fixed, not derived from a run's seed, so that a
/// model's validation and test losses (under corruption too) are the same every time and for
/// every run they are compared across.
pub fn evaluation() -> StdRng {
    StdRng::seed_from_u64(0xE7A1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn first(seed: u64, stream: Stream) -> u64 {
        rng(seed, stream).random()
    }

    #[test]
    fn a_stream_is_a_function_of_the_seed_and_its_name_alone() {
        let step = Stream::Step {
            epoch: 7,
            batch: 12,
        };
        assert_eq!(first(5, step), first(5, step));
        assert_ne!(first(5, step), first(6, step));
        let all = [
            step,
            Stream::Step {
                epoch: 7,
                batch: 13,
            },
            Stream::Masks {
                epoch: 7,
                batch: 12,
            },
            Stream::Snapshots,
            Stream::Damage,
            Stream::Generate,
            Stream::Centroids,
            Stream::Trial(3),
            Stream::Shuffle { epoch: 7 },
        ];
        let draws: Vec<u64> = all.iter().map(|&s| first(5, s)).collect();
        for (i, a) in draws.iter().enumerate() {
            assert!(
                !draws[i + 1..].contains(a),
                "{:?} repeats another stream",
                all[i]
            );
        }
    }
}
