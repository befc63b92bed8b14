//! What a training step (and an inference call) allocates once the first has sized every
//! buffer, counted by a global allocator that counts (on one thread, so the counts are the
//! step's own).
//!
//! Tensors come from the tape's buffer pool and the kernels' scratch memory, so after the
//! first step no tensor is allocated: what remains is bookkeeping, a few small allocations per
//! tape node (its boxed backward, the list of gradients its backward returns, shapes some ops
//! copy). Their count is the same every step and their bytes are a sliver of the step's
//! tensors; both are asserted here.

use handgrad::data::mnist::{Dataset, Lookup};
use handgrad::seed::{self, Stream};
use handgrad::train::run_dir::new_trainer;
use handgrad::train::RunConfig;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Held by each test while it counts: the counters are global and tests run in parallel.
static COUNTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// (allocations, bytes) of each of steps 1 to 5 of `preset` at batch `batch`.
fn allocations_per_step(preset: &str, batch: usize) -> Vec<(usize, usize)> {
    let _counting = COUNTING.lock().unwrap_or_else(|e| e.into_inner());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    pool.install(|| {
        let mut cfg = RunConfig::preset(preset).expect("preset");
        cfg.train.batch_size = batch;
        let ds = Dataset::find("mnist", &Lookup::default()).expect("shipped MNIST");
        let mut trainer = new_trainer(&cfg).expect("trainer");
        let mut rng = seed::rng(0, Stream::Step { epoch: 0, batch: 0 });
        let mut counts = Vec::new();
        for step in 0..5 {
            let indices: Vec<usize> = (step * batch..(step + 1) * batch).collect();
            let before = (
                ALLOCATIONS.load(Ordering::Relaxed),
                BYTES.load(Ordering::Relaxed),
            );
            trainer.step(&ds.test, &indices, &mut rng).expect("step");
            counts.push((
                ALLOCATIONS.load(Ordering::Relaxed) - before.0,
                BYTES.load(Ordering::Relaxed) - before.1,
            ));
        }
        counts
    })
}

#[test]
fn after_the_first_step_no_tensor_is_allocated_and_the_bookkeeping_is_constant() {
    for (preset, batch) in [("conv-selu", 64), ("mlp4", 256)] {
        let counts = allocations_per_step(preset, batch);
        let (first_bytes, later) = (counts[0].1, &counts[2..]);
        eprintln!("{preset}: (allocations, bytes) of steps 1–5: {counts:?}");
        // The same bookkeeping every step from the third on (the second may still grow a
        // list that the first step's sizes did not reach).
        assert!(
            later.windows(2).all(|w| w[0] == w[1]),
            "{preset}: {counts:?}"
        );
        // The first step allocates every tensor; later ones a small fraction of that: none
        // of its tensors, only lists of a few words.
        let (allocations, bytes) = later[0];
        assert!(
            bytes * 50 < first_bytes,
            "{preset}: {bytes} bytes per step against {first_bytes} in the first"
        );
        assert!(
            bytes / allocations.max(1) < 512,
            "{preset}: allocations of {} bytes on average",
            bytes / allocations.max(1)
        );
    }
}

#[test]
fn repeated_inference_reuses_its_buffers() {
    // `reconstruct` returns a new Vec of the reconstructions each call; everything else (the
    // activations of every layer) comes from a graph kept between calls.
    let _counting = COUNTING.lock().unwrap_or_else(|e| e.into_inner());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    let counts: Vec<(usize, usize)> = pool.install(|| {
        let cfg = RunConfig::preset("conv-small").expect("preset");
        let ds = Dataset::find("mnist", &Lookup::default()).expect("shipped MNIST");
        let mut trainer = new_trainer(&cfg).expect("trainer");
        let mut pixels = Vec::new();
        ds.test
            .batch_into(&(0..128).collect::<Vec<_>>(), &mut pixels);
        (0..5)
            .map(|_| {
                let before = (
                    ALLOCATIONS.load(Ordering::Relaxed),
                    BYTES.load(Ordering::Relaxed),
                );
                let out = trainer.model.reconstruct(&pixels).expect("reconstruct");
                assert_eq!(out.len(), pixels.len());
                (
                    ALLOCATIONS.load(Ordering::Relaxed) - before.0,
                    BYTES.load(Ordering::Relaxed) - before.1 - out.len() * 4,
                )
            })
            .collect()
    });
    eprintln!(
        "conv-small inference: (allocations, bytes besides the result) of calls 1–5: {counts:?}"
    );
    let (first_bytes, later) = (counts[0].1, &counts[2..]);
    assert!(later.windows(2).all(|w| w[0] == w[1]), "{counts:?}");
    assert!(
        later[0].1 * 50 < first_bytes,
        "{} bytes per call besides the result, against {first_bytes} in the first",
        later[0].1
    );
}

#[test]
fn reconstruct_into_gives_what_reconstruct_gives_in_any_batch_and_reuses_its_output() {
    let _counting = COUNTING.lock().unwrap_or_else(|e| e.into_inner());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("pool");
    pool.install(|| {
        let cfg = RunConfig::preset("conv-small").expect("preset");
        let ds = Dataset::find("mnist", &Lookup::default()).expect("shipped MNIST");
        let mut trainer = new_trainer(&cfg).expect("trainer");
        let mut pixels = Vec::new();
        ds.test
            .batch_into(&(0..20).collect::<Vec<_>>(), &mut pixels);
        let whole = trainer.model.reconstruct(&pixels).expect("reconstruct");
        let mut out = vec![7.0; 3];
        for batch in [1, 7, 20, 64] {
            trainer
                .model
                .reconstruct_into(&pixels, batch, &mut out)
                .expect("reconstruct_into");
            assert_eq!(out.len(), whole.len(), "batch {batch}");
            let worst = out
                .iter()
                .zip(&whole)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(worst < 1e-5, "batch {batch}: differs by {worst}");
        }
        // A second call with the same batch and output allocates no new output. Counted on
        // one thread, as the other tests count: with two, which worker first meets a shape
        // (and sizes its scratch for it) varies from run to run.
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("pool");
        let kept = out.as_ptr();
        let bytes = one.install(|| {
            trainer
                .model
                .reconstruct_into(&pixels, 64, &mut out)
                .expect("reconstruct_into");
            let before = BYTES.load(Ordering::Relaxed);
            trainer
                .model
                .reconstruct_into(&pixels, 64, &mut out)
                .expect("reconstruct_into");
            BYTES.load(Ordering::Relaxed) - before
        });
        assert_eq!(out.as_ptr(), kept);
        assert!(
            bytes < out.len(),
            "{bytes} bytes allocated by a repeated call"
        );
        assert!(
            trainer
                .model
                .reconstruct_into(&pixels, 0, &mut out)
                .is_err(),
            "a batch of 0 is refused"
        );
    });
}
