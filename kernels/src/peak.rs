//! The machine's arithmetic peak, measured: how many f32 multiply-adds per second one core can
//! do at best, so that a kernel's speed can be stated as a share of it.
//!
//! A fused multiply-add (FMA) computes a·b + c in one instruction; with 8 lanes (AVX2, 256-bit
//! registers) or 16 (AVX-512), one instruction is 16 or 32 floating-point operations. A core
//! can start one or two FMAs per cycle but each takes about four cycles to finish, so the loop
//! below keeps `CHAINS` (12) independent accumulators in flight; nothing else (no loads, no
//! stores) competes. What it reaches is the ceiling any real kernel is measured against.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

/// Independent accumulator chains: enough to cover the FMA latency on two ports.
const CHAINS: usize = 12;

/// The instruction set a peak was measured with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// 512-bit vectors, 16 f32 lanes.
    Avx512,
    /// 256-bit vectors with FMA, 8 lanes.
    Avx2Fma,
    /// Whatever the compiler makes of a portable loop.
    Portable,
}

/// The instruction set every kernel uses, once chosen: 0 before, else [`Isa::code`].
static CHOSEN: AtomicU8 = AtomicU8::new(0);

impl Isa {
    /// The widest this processor supports.
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Isa::Avx2Fma;
            }
        }
        Isa::Portable
    }

    /// The instruction set the kernels use: the one `HANDGRAD_ISA` names (`avx512`, `avx2`,
    /// `portable`), else the widest this processor has. Chosen once, at the first call; a
    /// value the processor cannot run is ignored here (the `handgrad` command refuses it
    /// first, with [`Isa::from_env`]'s sentence).
    pub fn active() -> Self {
        match Isa::from_code(CHOSEN.load(Ordering::Relaxed)) {
            Some(isa) => isa,
            None => {
                let isa = Isa::from_env().unwrap_or_else(|_| Isa::detect());
                CHOSEN.store(isa.code(), Ordering::Relaxed);
                isa
            }
        }
    }

    /// What `HANDGRAD_ISA` asks for: unset or empty, the widest this processor has.
    ///
    /// # Errors
    /// A sentence for a name that is no instruction set, or one this processor lacks.
    pub fn from_env() -> Result<Self, String> {
        let asked = std::env::var("HANDGRAD_ISA").unwrap_or_default();
        let asked = asked.trim();
        if asked.is_empty() {
            return Ok(Isa::detect());
        }
        let widest = Isa::detect();
        let isa = Isa::parse(asked).ok_or_else(|| {
            format!(
                "HANDGRAD_ISA={asked:?} is not an instruction set: give avx512, avx2 or portable, or leave it unset for the widest this processor has ({})",
                widest.name()
            )
        })?;
        if !isa.supported() {
            return Err(format!(
                "HANDGRAD_ISA={asked} asks for {}, which this processor lacks (its widest is {}): give {}",
                isa.name(),
                widest.name(),
                Isa::available()
                    .iter()
                    .map(|i| i.short())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Ok(isa)
    }

    /// `avx512`, `avx2` or `portable`, as `HANDGRAD_ISA` spells them.
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "avx512" | "avx-512" | "avx512f" => Some(Isa::Avx512),
            "avx2" | "avx2+fma" => Some(Isa::Avx2Fma),
            "portable" => Some(Isa::Portable),
            _ => None,
        }
    }

    /// The name `HANDGRAD_ISA` takes.
    pub fn short(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2Fma => "avx2",
            Isa::Portable => "portable",
        }
    }

    /// Whether this processor can run it (every AVX-512 processor also has AVX2 and FMA).
    pub fn supported(self) -> bool {
        match self {
            Isa::Portable => true,
            Isa::Avx2Fma => Isa::detect() != Isa::Portable,
            Isa::Avx512 => Isa::detect() == Isa::Avx512,
        }
    }

    /// Every instruction set this processor can run, widest first.
    pub fn available() -> Vec<Self> {
        [Isa::Avx512, Isa::Avx2Fma, Isa::Portable]
            .into_iter()
            .filter(|i| i.supported())
            .collect()
    }

    /// Makes every kernel use `isa` from now on (tests and benchmarks that compare
    /// instruction sets). Refused (false, nothing changed) if the processor cannot run it.
    pub fn select(isa: Self) -> bool {
        if !isa.supported() {
            return false;
        }
        CHOSEN.store(isa.code(), Ordering::Relaxed);
        true
    }

    fn code(self) -> u8 {
        match self {
            Isa::Avx512 => 1,
            Isa::Avx2Fma => 2,
            Isa::Portable => 3,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Isa::Avx512),
            2 => Some(Isa::Avx2Fma),
            3 => Some(Isa::Portable),
            _ => None,
        }
    }

    /// "AVX-512F", "AVX2+FMA", "portable".
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "AVX-512F",
            Isa::Avx2Fma => "AVX2+FMA",
            Isa::Portable => "portable",
        }
    }
}

/// Runs `iterations` rounds of [`CHAINS`] FMAs per lane on one core; returns the flops done
/// (2 per lane per FMA).
fn fma_loop(isa: Isa, iterations: u64) -> f64 {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `detect` found the features these functions are compiled for.
        Isa::Avx512 => unsafe { fma_loop_avx512(iterations) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2Fma => unsafe { fma_loop_avx2(iterations) },
        _ => fma_loop_portable(iterations),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_loop_avx2(iterations: u64) -> f64 {
    use std::arch::x86_64::*;
    let a = _mm256_set1_ps(0.999_999);
    let b = _mm256_set1_ps(1e-7);
    let mut acc = [_mm256_set1_ps(1.0); CHAINS];
    for _ in 0..iterations {
        for x in acc.iter_mut() {
            *x = _mm256_fmadd_ps(*x, a, b);
        }
    }
    let mut sum = [0.0f32; 8];
    let total = acc
        .iter()
        .fold(_mm256_setzero_ps(), |s, &x| _mm256_add_ps(s, x));
    _mm256_storeu_ps(sum.as_mut_ptr(), total);
    std::hint::black_box(sum);
    (iterations * CHAINS as u64 * 8 * 2) as f64
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma_loop_avx512(iterations: u64) -> f64 {
    use std::arch::x86_64::*;
    let a = _mm512_set1_ps(0.999_999);
    let b = _mm512_set1_ps(1e-7);
    let mut acc = [_mm512_set1_ps(1.0); CHAINS];
    for _ in 0..iterations {
        for x in acc.iter_mut() {
            *x = _mm512_fmadd_ps(*x, a, b);
        }
    }
    let total = acc
        .iter()
        .fold(_mm512_setzero_ps(), |s, &x| _mm512_add_ps(s, x));
    std::hint::black_box(_mm512_reduce_add_ps(total));
    (iterations * CHAINS as u64 * 16 * 2) as f64
}

/// The baseline has no fused multiply-add (`f32::mul_add` would call a slow software routine):
/// a multiply and an add, which the portable kernels do too, vectorised on SSE2's 4 lanes.
fn fma_loop_portable(iterations: u64) -> f64 {
    let mut acc = [[1.0f32; 8]; CHAINS];
    for _ in 0..iterations {
        for chain in acc.iter_mut() {
            for x in chain.iter_mut() {
                *x = *x * 0.999_999 + 1e-7;
            }
        }
    }
    std::hint::black_box(acc);
    (iterations * CHAINS as u64 * 8 * 2) as f64
}

/// The f32 FMA peak of `threads` cores working at once, in GFLOP/s, measured for about
/// `millis` milliseconds with the instruction set the kernels use ([`Isa::active`]): the
/// ceiling they can reach. Returns it with the ISA.
pub fn fma_peak_gflops(threads: usize, millis: u64) -> (f64, Isa) {
    let isa = Isa::active();
    // Calibrate one chunk to about a millisecond, then run chunks until the time is up.
    let mut iterations = 10_000u64;
    loop {
        let t = Instant::now();
        fma_loop(isa, iterations);
        if t.elapsed().as_micros() > 500 || iterations > 1 << 30 {
            break;
        }
        iterations *= 2;
    }
    let per_thread = |_| {
        let start = Instant::now();
        let mut flops = 0.0;
        while start.elapsed().as_millis() < millis as u128 {
            flops += fma_loop(isa, iterations);
        }
        flops / start.elapsed().as_secs_f64()
    };
    let total: f64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads.max(1))
            .map(|k| s.spawn(move || per_thread(k)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0.0)).sum()
    });
    (total / 1e9, isa)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_counts_the_same_work() {
        // The count is arithmetic, not timing: each ISA reports its lanes × chains × 2.
        assert_eq!(fma_loop(Isa::Portable, 3), (3 * CHAINS * 8 * 2) as f64);
        let isa = Isa::detect();
        let lanes = match isa {
            Isa::Avx512 => 16,
            _ => 8,
        };
        assert_eq!(fma_loop(isa, 3), (3 * CHAINS * lanes * 2) as f64);
        let (gflops, _) = fma_peak_gflops(1, 5);
        assert!(gflops > 0.0);
    }

    #[test]
    fn instruction_sets_are_named_checked_and_chosen() {
        for isa in [Isa::Avx512, Isa::Avx2Fma, Isa::Portable] {
            assert_eq!(Isa::parse(isa.short()), Some(isa));
        }
        assert_eq!(Isa::parse("AVX2"), Some(Isa::Avx2Fma));
        assert_eq!(Isa::parse("sse9"), None);
        let available = Isa::available();
        assert_eq!(available.first(), Some(&Isa::detect()));
        assert_eq!(available.last(), Some(&Isa::Portable));
        crate::testing::on_every_isa(|| {
            let active = Isa::active();
            assert!(active.supported());
            // The peak is measured with the instruction set the kernels use.
            assert_eq!(fma_peak_gflops(1, 2).1, active);
        });
    }
}
