//! Choosing vector instructions at run time.
//!
//! A binary built for any x86-64 processor may only assume SSE2 (4 lanes of f32). Most
//! processors it runs on have AVX2 + FMA (8 lanes) and some AVX-512 (16 lanes): up to four
//! times the arithmetic per instruction. [`widest!`] compiles a loop once per instruction set
//! and picks the widest copy the processor supports (or the one `HANDGRAD_ISA` names, see
//! [`crate::peak::Isa::active`]), so plain, readable loops run with the machine's full vector
//! width. The packed GEMM's micro-kernels, which need exact control of
//! registers, use intrinsics instead ([`crate::gemm::packed`]).

/// Runs a loop body compiled three times: for AVX-512 (16 lanes), for AVX2 + FMA (8 lanes),
/// and for the baseline (SSE2, 4 lanes), choosing at run time the one [`Isa::active`] names.
///
/// [`Isa::active`]: crate::peak::Isa::active
/// The body and the closures it calls are inlined into each copy, so each is vectorised with
/// its own instruction set; what they compute is identical.
macro_rules! widest {
    ($body:expr) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f")]
            unsafe fn avx512<R>(run: impl FnOnce() -> R) -> R {
                run()
            }
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2<R>(run: impl FnOnce() -> R) -> R {
                run()
            }
            match crate::peak::Isa::active() {
                // SAFETY: the processor has the features each copy is compiled for.
                crate::peak::Isa::Avx512 => unsafe {
                    avx512(
                        #[inline(always)]
                        || $body,
                    )
                },
                // SAFETY: as above.
                crate::peak::Isa::Avx2Fma => unsafe {
                    avx2(
                        #[inline(always)]
                        || $body,
                    )
                },
                crate::peak::Isa::Portable => $body,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            $body
        }
    }};
}
