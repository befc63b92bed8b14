//! What a training step and an inference call allocate once the first has sized every
//! buffer: nothing. Counted by a global allocator that counts (on one thread, so the counts are
//! the step's own).
//!
//! Tensors come from the tape's buffer pool and the kernels' scratch memory; the bookkeeping
//! is reused too: each node's backward object moves into the box the op at its position had
//! the step before, backward passes return their gradients in place ([`Grads`]), parameter
//! names are built in one buffer ([`Name`]), and sums keep their partial results on the stack.
//!
//! [`Grads`]: handgrad::autodiff::Grads
//! [`Name`]: handgrad::nn::Name

use handgrad::data::mnist::{Dataset, Lookup};
use handgrad::seed::{self, Stream};
use handgrad::train::run_dir::new_trainer;
use handgrad::train::{RunConfig, PRESETS};
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

/// Runs `f(step)` for steps 0 to 4 on one thread and returns (allocations, bytes) of each.
/// The caller holds [`COUNTING`] for the whole test, so no other test allocates meanwhile.
fn counted(mut f: impl FnMut(usize) + Send) -> Vec<(usize, usize)> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    pool.install(|| {
        (0..5)
            .map(|step| {
                let before = (
                    ALLOCATIONS.load(Ordering::Relaxed),
                    BYTES.load(Ordering::Relaxed),
                );
                f(step);
                (
                    ALLOCATIONS.load(Ordering::Relaxed) - before.0,
                    BYTES.load(Ordering::Relaxed) - before.1,
                )
            })
            .collect()
    })
}

/// Every preset's name, with K = 32 for the parameterised ones.
fn presets() -> Vec<String> {
    PRESETS.iter().map(|p| p.name.replace('K', "32")).collect()
}

#[test]
fn after_two_steps_a_training_step_allocates_nothing() {
    let _counting = COUNTING.lock().unwrap_or_else(|e| e.into_inner());
    let ds = Dataset::find("mnist", &Lookup::default()).expect("shipped MNIST");
    for preset in presets() {
        let batch = 64;
        let mut cfg = RunConfig::preset(&preset).expect("preset");
        cfg.train.batch_size = batch;
        let mut trainer = new_trainer(&cfg).expect("trainer");
        let mut rng = seed::rng(0, Stream::Step { epoch: 0, batch: 0 });
        let batches: Vec<Vec<usize>> = (0..5)
            .map(|step| (step * batch..(step + 1) * batch).collect())
            .collect();
        let counts = counted(|step| {
            trainer
                .step(&ds.test, &batches[step], &mut rng)
                .expect("step");
        });
        eprintln!("{preset}: (allocations, bytes) of training steps 1–5: {counts:?}");
        assert!(
            counts[0].1 > 100_000,
            "{preset}: the first step sizes its buffers: {counts:?}"
        );
        // The second step still grows the lists that keep the first step's bookkeeping for
        // reuse (its backward objects, its input lists); from the third on, nothing.
        assert!(
            counts[2..].iter().all(|&c| c == (0, 0)),
            "{preset}: steps after the second allocate: {counts:?}"
        );
    }
}

#[test]
fn after_the_first_call_inference_allocates_nothing() {
    let _counting = COUNTING.lock().unwrap_or_else(|e| e.into_inner());
    let ds = Dataset::find("mnist", &Lookup::default()).expect("shipped MNIST");
    let mut pixels = Vec::new();
    ds.test
        .batch_into(&(0..128).collect::<Vec<_>>(), &mut pixels);
    for preset in presets() {
        let cfg = RunConfig::preset(&preset).expect("preset");
        let mut trainer = new_trainer(&cfg).expect("trainer");
        let mut out = Vec::new();
        let counts = counted(|_| {
            trainer
                .model
                .reconstruct_into(&pixels, 64, &mut out)
                .expect("reconstruct_into");
        });
        eprintln!("{preset}: (allocations, bytes) of inference calls 1–5: {counts:?}");
        assert!(
            counts[0].1 > 10_000,
            "{preset}: the first call sizes its buffers: {counts:?}"
        );
        assert!(
            counts[1..].iter().all(|&c| c == (0, 0)),
            "{preset}: calls after the first allocate: {counts:?}"
        );
    }
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
