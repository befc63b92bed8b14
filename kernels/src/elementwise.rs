//! Element-wise activations and their derivatives, each pair side by side.
//!
//! An activation is what makes a stack of layers more than one big matrix: without it the
//! whole encoder would collapse into a single linear map (and the autoencoder into PCA).
//!
//! | activation | y = f(x) | f′ as the backward pass computes it |
//! |---|---|---|
//! | ReLU | max(0, x) | 1 if x > 0 else 0 |
//! | leaky ReLU | x if x > 0 else a·x | 1 if x > 0 else a |
//! | SELU | λ·x if x > 0 else λα(eˣ − 1) | λ if x > 0 else y + λα (from the output: λαeˣ = y + λα) |
//! | sigmoid | 1 / (1 + e⁻ˣ) | y·(1 − y) (from the output) |
//! | tanh | (eˣ − e⁻ˣ) / (eˣ + e⁻ˣ) | 1 − y² (from the output) |
//!
//! Every loop is a `zip` over slices with a branch-free body (`if` on a comparison becomes a
//! vector select), so the compiler vectorises it. The exponential would otherwise be a call
//! into the C library per element, which cannot vectorise; [`exp`] is a short polynomial
//! that can, and that is accurate to about one unit in the last place of an f32.

use crate::{PARALLEL_CHUNK, PARALLEL_MIN_ELEMS};
use rayon::prelude::*;

/// SELU's α, PyTorch's value (Klambauer et al. 2017): with λ below, it keeps activations at
/// zero mean and unit variance through deep stacks when weights are LeCun-normal.
pub const SELU_ALPHA: f32 = 1.673_263_2;
/// SELU's scale λ, PyTorch's value.
pub const SELU_LAMBDA: f32 = 1.050_701;

/// An element-wise non-linearity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// max(0, x).
    Relu,
    /// x for x > 0, else `slope`·x (PyTorch's default slope is 0.01).
    LeakyRelu {
        /// The slope for negative inputs.
        slope: f32,
    },
    /// Scaled exponential linear unit.
    Selu,
    /// The logistic function, squashing to (0, 1): the usual output of an image decoder.
    Sigmoid,
    /// Hyperbolic tangent, squashing to (−1, 1).
    Tanh,
}

impl Activation {
    /// f(x) for one element.
    #[inline(always)]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            // `x < 0 ? 0 : x` rather than `max`, so a NaN passes through instead of vanishing.
            Activation::Relu => {
                if x < 0.0 {
                    0.0
                } else {
                    x
                }
            }
            Activation::LeakyRelu { slope } => {
                if x > 0.0 {
                    x
                } else {
                    slope * x
                }
            }
            Activation::Selu => {
                if x > 0.0 {
                    SELU_LAMBDA * x
                } else {
                    SELU_LAMBDA * SELU_ALPHA * (exp(x) - 1.0)
                }
            }
            Activation::Sigmoid => sigmoid(x),
            Activation::Tanh => tanh(x),
        }
    }

    /// Whether the output y = f(x) alone decides f′ (see [`backward_from_output`]): for every
    /// activation but a leaky ReLU with a negative slope, whose output is positive on both
    /// sides of 0.
    pub fn output_decides_derivative(self) -> bool {
        !matches!(self, Activation::LeakyRelu { slope } if slope < 0.0)
    }

    /// f′ at one element, given both its input x and output y = f(x).
    #[inline(always)]
    pub fn derivative(self, x: f32, y: f32) -> f32 {
        match self {
            Activation::Relu => {
                if x > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::LeakyRelu { slope } => {
                if x > 0.0 {
                    1.0
                } else {
                    slope
                }
            }
            Activation::Selu => {
                if x > 0.0 {
                    SELU_LAMBDA
                } else {
                    y + SELU_LAMBDA * SELU_ALPHA
                }
            }
            Activation::Sigmoid => y * (1.0 - y),
            Activation::Tanh => 1.0 - y * y,
        }
    }

    /// Every activation (leaky ReLU with PyTorch's default slope 0.01): the one list that
    /// command-line help, configuration files, tests and benchmarks all use.
    pub const ALL: [Activation; 5] = [
        Activation::Relu,
        Activation::LeakyRelu { slope: 0.01 },
        Activation::Selu,
        Activation::Sigmoid,
        Activation::Tanh,
    ];

    /// A short lowercase name, as configs and the CLI spell it.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::LeakyRelu { .. } => "leaky_relu",
            Activation::Selu => "selu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
        }
    }
}

impl std::fmt::Display for Activation {
    /// The name; a leaky ReLU whose slope is not the default 0.01 shows it: `leaky_relu:0.2`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Activation::LeakyRelu { slope } if slope != 0.01 => write!(f, "leaky_relu:{slope}"),
            other => f.write_str(other.name()),
        }
    }
}

impl std::str::FromStr for Activation {
    type Err = String;

    /// Parses a name of [`Activation::ALL`] (`-` and `_` alike), or `leaky_relu:SLOPE`.
    fn from_str(text: &str) -> Result<Self, String> {
        let given = text.trim();
        // Only the name has `-` and `_` alike: a slope keeps its sign.
        let (name, slope) = match given.split_once(':') {
            Some((name, slope)) => (name.replace('-', "_"), Some(slope)),
            None => (given.replace('-', "_"), None),
        };
        if let (Some(slope), "leaky_relu") = (slope, name.as_str()) {
            return match slope.trim().parse::<f32>() {
                Ok(slope) if slope.is_finite() => Ok(Activation::LeakyRelu { slope }),
                _ => Err(format!("{slope:?} is not a slope (leaky_relu:0.2)")),
            };
        }
        Activation::ALL
            .into_iter()
            .find(|a| slope.is_none() && a.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Activation::ALL.iter().map(|a| a.name()).collect();
                format!("unknown {given:?} ({})", names.join(", "))
            })
    }
}

/// y ← f(x).
pub fn forward(act: Activation, x: &[f32], y: &mut [f32]) {
    // One `map` per variant, so each loop body is a single monomorphised closure.
    match act {
        Activation::Relu => map(x, y, |v| Activation::Relu.apply(v)),
        Activation::LeakyRelu { slope } => {
            map(x, y, move |v| Activation::LeakyRelu { slope }.apply(v))
        }
        Activation::Selu => map(x, y, |v| Activation::Selu.apply(v)),
        Activation::Sigmoid => map(x, y, sigmoid),
        Activation::Tanh => map(x, y, tanh),
    }
}

/// y ← f(y) in place, on the calling thread: what a fused kernel applies to a block of its
/// output while the block is in cache (the kernel runs its blocks in parallel itself).
pub fn forward_in_place(act: Activation, y: &mut [f32]) {
    fn run(y: &mut [f32], f: impl Fn(f32) -> f32) {
        widest!(for v in y.iter_mut() {
            *v = f(*v);
        })
    }
    match act {
        Activation::Relu => run(y, |v| Activation::Relu.apply(v)),
        Activation::LeakyRelu { slope } => {
            run(y, move |v| Activation::LeakyRelu { slope }.apply(v))
        }
        Activation::Selu => run(y, |v| Activation::Selu.apply(v)),
        Activation::Sigmoid => run(y, sigmoid),
        Activation::Tanh => run(y, tanh),
    }
}

/// d_x ← d_y ⊙ f′(x), with f′ from [`Activation::derivative`]: through
/// [`backward_from_output`] wherever the output decides f′, from x otherwise.
pub fn backward(act: Activation, x: &[f32], y: &[f32], d_y: &[f32], d_x: &mut [f32]) {
    match act {
        Activation::LeakyRelu { slope } if !act.output_decides_derivative() => {
            zip3_map(x, y, d_y, d_x, move |v, out, g| {
                g * Activation::LeakyRelu { slope }.derivative(v, out)
            })
        }
        _ => backward_from_output(act, y, d_y, d_x),
    }
}

/// d_x ← d_y ⊙ f′, with f′ found from the output y alone: where f′ depends on x at all, it is
/// through x's sign, which y shares (y > 0 exactly when x > 0), or through y itself (sigmoid,
/// tanh, SELU below 0). This loop only moves memory, so reading two arrays (y, d_y) instead of
/// three is a third less time; and a layer that fuses its activation keeps only y.
///
/// One loop per variant, as in [`forward`], so that each body is a single specialised
/// closure the compiler vectorises (a `match` inside the loop would not be).
///
/// # Panics
/// For a leaky ReLU with a negative slope, whose output does not decide f′
/// ([`Activation::output_decides_derivative`]).
pub fn backward_from_output(act: Activation, y: &[f32], d_y: &[f32], d_x: &mut [f32]) {
    assert!(
        act.output_decides_derivative(),
        "backward_from_output: {act:?}'s output does not decide its derivative"
    );
    // The activation is named as a constant inside each closure (not captured as a value), so
    // the `match` in `derivative` folds away and the loop body is straight-line code. The
    // output is passed as both arguments: `derivative` only tests the sign of its first.
    match act {
        Activation::Relu => zip_map(y, d_y, d_x, |out, g| {
            g * Activation::Relu.derivative(out, out)
        }),
        Activation::LeakyRelu { slope } => zip_map(y, d_y, d_x, move |out, g| {
            g * Activation::LeakyRelu { slope }.derivative(out, out)
        }),
        Activation::Selu => zip_map(y, d_y, d_x, |out, g| {
            g * Activation::Selu.derivative(out, out)
        }),
        Activation::Sigmoid => zip_map(y, d_y, d_x, |out, g| {
            g * Activation::Sigmoid.derivative(out, out)
        }),
        Activation::Tanh => zip_map(y, d_y, d_x, |out, g| {
            g * Activation::Tanh.derivative(out, out)
        }),
    }
}

/// The logistic function, computed so that neither branch overflows: for x < 0 it uses
/// eˣ/(1 + eˣ), for x ≥ 0 it uses 1/(1 + e⁻ˣ); both read e^(−|x|) ≤ 1.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    let e = exp(-x.abs());
    let r = 1.0 / (1.0 + e);
    if x >= 0.0 {
        r
    } else {
        e * r
    }
}

/// tanh x, written so loops that call it vectorise (the C library's `tanhf` is one call per
/// element). Near 0 an odd Taylor series x − x³/3 + 2x⁵/15 − 17x⁷/315 + 62x⁹/2835 (error below
/// 10⁻¹² for |x| < 1/8); elsewhere (1 − e)/(1 + e) with e = e^(−2|x|), which never overflows,
/// given x's sign. Both are computed and one is selected, so there is no branch in the loop.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let x2 = x * x;
    let series = x
        * (1.0
            + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0 + x2 * (62.0 / 2835.0)))));
    let e = exp(-2.0 * x.abs());
    let ratio = ((1.0 - e) / (1.0 + e)).copysign(x);
    if x.abs() < 0.125 {
        series
    } else {
        ratio
    }
}

/// eˣ in f32, written so loops that call it vectorise.
///
/// Range reduction: x = k·ln2 + r with k an integer and |r| ≤ ln2/2, so eˣ = 2ᵏ·eʳ. The
/// polynomial is eʳ's Taylor series to degree 7 (the next term is below 6·10⁻⁹ on that
/// interval), and 2ᵏ is built directly in the float's exponent bits. k is found by adding
/// 1.5·2²³, which rounds to an integer in the low mantissa bits without a float→int call.
/// Inputs are clamped to [−87.3, 88.3], where k stays in −126..=127 and the result a normal f32.
///
/// Accuracy, as measured by this file's test over every 97th f32 in [−87, 88]: at most one
/// unit in the last place from the correctly rounded result, a relative error below 1.03·10⁻⁷.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in two so that k·LN2_HI is exact in f32 for |k| < 2⁹.
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUND: f32 = 12_582_912.0; // 1.5·2²³
    let x = x.clamp(-87.3, 88.3);
    let shifted = x * LOG2_E + ROUND;
    let k = shifted - ROUND;
    let r = x - k * LN2_HI - k * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // The low bits of `shifted` hold k + 2²² (the 1.5·2²³ offset), so subtracting ROUND's bits
    // leaves k as a two's-complement integer.
    let k_int = shifted.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    let two_k = f32::from_bits(((k_int + 127) as u32) << 23);
    p * two_k
}

/// Runs `body(start, chunk)` over consecutive chunks of `out` (`start` is the chunk's offset),
/// on rayon's threads when `out` is long. The element-wise maps below are built on it.
fn for_chunks(out: &mut [f32], body: impl Fn(usize, &mut [f32]) + Sync + Send) {
    if out.len() < PARALLEL_MIN_ELEMS {
        body(0, out);
    } else {
        out.par_chunks_mut(PARALLEL_CHUNK)
            .enumerate()
            .for_each(|(i, chunk)| body(i * PARALLEL_CHUNK, chunk));
    }
}

/// y ← x: a plain copy, on rayon's threads for long slices. The tape copies whole batches (a
/// batch onto the tape, reshapes, weights); on one thread, the other threads would wait
/// through it.
pub fn copy(x: &[f32], y: &mut [f32]) {
    crate::check_lens("copy", &[("x", x.len(), y.len())]);
    for_chunks(y, |start, ys| ys.copy_from_slice(&x[start..][..ys.len()]));
}

/// y ← f(x) element by element, in parallel for long slices, with the widest vectors the
/// processor has.
pub fn map(x: &[f32], y: &mut [f32], f: impl Fn(f32) -> f32 + Sync + Send) {
    crate::check_lens("map", &[("x", x.len(), y.len())]);
    for_chunks(y, |start, ys| {
        widest!(for (yv, &xv) in ys.iter_mut().zip(&x[start..]) {
            *yv = f(xv);
        })
    });
}

/// out ← f(a, b) element by element, in parallel for long slices, with the widest vectors.
pub fn zip_map(a: &[f32], b: &[f32], out: &mut [f32], f: impl Fn(f32, f32) -> f32 + Sync + Send) {
    crate::check_lens(
        "zip_map",
        &[("a", a.len(), out.len()), ("b", b.len(), out.len())],
    );
    for_chunks(out, |start, os| {
        widest!(
            for ((o, &av), &bv) in os.iter_mut().zip(&a[start..]).zip(&b[start..]) {
                *o = f(av, bv);
            }
        )
    });
}

/// out ← f(a, b, c) element by element, in parallel for long slices, with the widest vectors.
pub fn zip3_map(
    a: &[f32],
    b: &[f32],
    c: &[f32],
    out: &mut [f32],
    f: impl Fn(f32, f32, f32) -> f32 + Sync + Send,
) {
    let n = out.len();
    crate::check_lens(
        "zip3_map",
        &[("a", a.len(), n), ("b", b.len(), n), ("c", c.len(), n)],
    );
    for_chunks(out, |start, os| {
        widest!(for (((o, &av), &bv), &cv) in os
            .iter_mut()
            .zip(&a[start..])
            .zip(&b[start..])
            .zip(&c[start..])
        {
            *o = f(av, bv, cv);
        })
    });
}

/// `step(p, m, v, g)` for every element of a parameter p, its two running moments m and v,
/// and its gradient g, the first three updated in place: an optimiser's update (Adam's). In
/// parallel for long slices, with the widest vectors (Adam's square root and division are one
/// instruction on a whole vector). The update is a small part of a training step of the
/// models here, so this is for tidiness more than speed (figures: docs/performance.md, "Measurements behind the code").
pub fn update_with_moments(
    param: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    grad: &[f32],
    step: impl Fn(&mut f32, &mut f32, &mut f32, f32) + Sync + Send,
) {
    let n = param.len();
    crate::check_lens(
        "update_with_moments",
        &[
            ("m", m.len(), n),
            ("v", v.len(), n),
            ("grad", grad.len(), n),
        ],
    );
    let run = |p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]| {
        widest!(for (((p, m), v), &g) in p.iter_mut().zip(m).zip(v).zip(g) {
            step(p, m, v, g);
        })
    };
    if n < PARALLEL_MIN_ELEMS {
        run(param, m, v, grad);
    } else {
        param
            .par_chunks_mut(PARALLEL_CHUNK)
            .zip(m.par_chunks_mut(PARALLEL_CHUNK))
            .zip(v.par_chunks_mut(PARALLEL_CHUNK))
            .zip(grad.par_chunks(PARALLEL_CHUNK))
            .for_each(|(((p, m), v), g)| run(p, m, v, g));
    }
}

/// The reference activations: straight from the definitions, in f64 (with the C library's
/// exp and tanh). Fast and reference must agree to f32 precision.
pub mod naive {
    use super::{Activation, SELU_ALPHA, SELU_LAMBDA};

    /// f(x) in f64.
    pub fn apply(act: Activation, x: f64) -> f64 {
        match act {
            Activation::Relu => x.max(0.0),
            Activation::LeakyRelu { slope } => {
                if x > 0.0 {
                    x
                } else {
                    slope as f64 * x
                }
            }
            Activation::Selu => {
                let (l, a) = (SELU_LAMBDA as f64, SELU_ALPHA as f64);
                if x > 0.0 {
                    l * x
                } else {
                    l * a * x.exp_m1()
                }
            }
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Activation::Tanh => x.tanh(),
        }
    }

    /// f′(x) in f64, from the input only.
    pub fn derivative(act: Activation, x: f64) -> f64 {
        match act {
            Activation::Relu => {
                if x > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::LeakyRelu { slope } => {
                if x > 0.0 {
                    1.0
                } else {
                    slope as f64
                }
            }
            Activation::Selu => {
                let (l, a) = (SELU_LAMBDA as f64, SELU_ALPHA as f64);
                if x > 0.0 {
                    l
                } else {
                    l * a * x.exp()
                }
            }
            Activation::Sigmoid => {
                let s = apply(act, x);
                s * (1.0 - s)
            }
            Activation::Tanh => 1.0 - x.tanh().powi(2),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::uniform;

    #[test]
    fn exp_is_within_one_ulp_of_the_correctly_rounded_value() {
        // Every 97th f32 in [−87, 88] (about 23 million inputs, every exponent and mantissa
        // pattern class): the result may differ from the correctly rounded e^x by at most one
        // unit in the last place, which is what the doc comment of `exp` promises.
        let (mut worst_ulps, mut worst_rel, mut x) = (0u32, 0.0f64, -87.0f32);
        while x < 88.0 {
            let exact = (x as f64).exp();
            let got = exp(x);
            worst_ulps = worst_ulps.max(got.to_bits().abs_diff((exact as f32).to_bits()));
            worst_rel = worst_rel.max(((got as f64 - exact) / exact).abs());
            // Step through the bit patterns: towards zero for negatives, away for positives.
            x = if x < 0.0 && x > -1e-30 {
                1e-30
            } else if x < 0.0 {
                f32::from_bits(x.to_bits() - 97)
            } else {
                f32::from_bits(x.to_bits() + 97)
            };
        }
        assert!(
            worst_ulps <= 1,
            "{worst_ulps} ulps (relative {worst_rel:e})"
        );
        assert!(worst_rel < 1.1e-7, "relative error {worst_rel:e}");
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(-1000.0) > 0.0 && exp(1000.0).is_finite());
    }

    #[test]
    fn forward_and_backward_match_the_f64_definitions() {
        crate::testing::on_every_isa(forward_and_backward_match_the_f64_definitions_once);
    }

    /// The check, on the kernels of whichever instruction set is selected.
    fn forward_and_backward_match_the_f64_definitions_once() {
        // Inputs spread over [−6, 6], including the far tails where sigmoid saturates.
        let x: Vec<f32> = uniform(70_001, 3).iter().map(|v| v * 6.0).collect();
        let d_y = uniform(x.len(), 4);
        // Besides the named ones, leaky ReLUs whose output does not (negative slope) and does
        // (zero slope) decide the derivative on its own.
        let leaky = [-0.5, 0.0].map(|slope| Activation::LeakyRelu { slope });
        for act in Activation::ALL.into_iter().chain(leaky) {
            let mut y = vec![0.0; x.len()];
            let mut d_x = vec![0.0; x.len()];
            forward(act, &x, &mut y);
            backward(act, &x, &y, &d_y, &mut d_x);
            for k in 0..x.len() {
                let want_y = naive::apply(act, x[k] as f64);
                let want_dx = d_y[k] as f64 * naive::derivative(act, x[k] as f64);
                assert!(
                    (y[k] as f64 - want_y).abs() <= 1e-6 + 1e-6 * want_y.abs(),
                    "{act:?}({}) = {} not {want_y}",
                    x[k],
                    y[k]
                );
                assert!(
                    (d_x[k] as f64 - want_dx).abs() <= 1e-6 + 1e-5 * want_dx.abs(),
                    "{act:?}'({}) gave {} not {want_dx}",
                    x[k],
                    d_x[k]
                );
            }
        }
    }

    #[test]
    fn tanh_is_accurate_near_zero_and_in_the_tails() {
        for &x in &[
            0.0f32, 1e-6, -3e-4, 0.1, -0.124, 0.125, 0.3, -1.0, 5.0, -12.0, 40.0,
        ] {
            let exact = (x as f64).tanh();
            assert!(
                (tanh(x) as f64 - exact).abs() <= 2e-7 * exact.abs().max(1e-30) + 1e-8,
                "tanh({x}) = {} not {exact}",
                tanh(x)
            );
        }
        assert_eq!(tanh(f32::INFINITY), 1.0);
    }

    #[test]
    fn copy_copies_short_and_long_slices_whole() {
        crate::testing::on_every_isa(copy_copies_short_and_long_slices_whole_once);
    }

    /// The check, on the kernels of whichever instruction set is selected.
    fn copy_copies_short_and_long_slices_whole_once() {
        // Below, at and past the length where the copy goes parallel, and a ragged last piece.
        for len in [0, 7, PARALLEL_MIN_ELEMS, 3 * PARALLEL_CHUNK + 5, 70_001] {
            let x = uniform(len, 9);
            let mut y = vec![f32::NAN; len];
            copy(&x, &mut y);
            assert_eq!(x, y, "length {len}");
        }
    }

    #[test]
    fn updates_with_moments_match_the_plain_loop_exactly() {
        crate::testing::on_every_isa(updates_with_moments_match_the_plain_loop_exactly_once);
    }

    /// The check, on the kernels of whichever instruction set is selected.
    fn updates_with_moments_match_the_plain_loop_exactly_once() {
        let step = |p: &mut f32, m: &mut f32, v: &mut f32, g: f32| {
            *m = 0.9 * *m + 0.1 * g;
            *v = 0.999 * *v + 0.001 * g * g;
            *p -= 0.01 * *m / (v.sqrt() + 1e-8);
        };
        for len in [0, 5, PARALLEL_MIN_ELEMS + 3, 70_001] {
            let (p0, g) = (uniform(len, 1), uniform(len, 2));
            let m0 = uniform(len, 3);
            let v0: Vec<f32> = uniform(len, 4).iter().map(|v| v.abs()).collect();
            let (mut p, mut m, mut v) = (p0.clone(), m0.clone(), v0.clone());
            update_with_moments(&mut p, &mut m, &mut v, &g, step);
            let (mut p_ref, mut m_ref, mut v_ref) = (p0, m0, v0);
            for i in 0..len {
                step(&mut p_ref[i], &mut m_ref[i], &mut v_ref[i], g[i]);
            }
            // Element-wise with no reordering: vectors and threads give the same bits.
            assert_eq!((p, m, v), (p_ref, m_ref, v_ref), "length {len}");
        }
    }

    #[test]
    fn sigmoid_saturates_without_overflow() {
        assert!(sigmoid(-200.0) < 1e-37);
        assert_eq!(sigmoid(200.0), 1.0);
        assert!((sigmoid(0.0) - 0.5).abs() < 1e-7);
    }

    #[test]
    fn names_round_trip_through_display_and_parse() {
        for act in Activation::ALL
            .into_iter()
            .chain([Activation::LeakyRelu { slope: 0.2 }])
        {
            assert_eq!(act.to_string().parse::<Activation>(), Ok(act));
        }
        assert_eq!(
            "leaky-relu".parse::<Activation>(),
            Ok(Activation::LeakyRelu { slope: 0.01 })
        );
        // The slope keeps its sign, and a refusal quotes what was typed.
        assert_eq!(
            "leaky-relu:-0.1".parse::<Activation>(),
            Ok(Activation::LeakyRelu { slope: -0.1 })
        );
        assert!("relu:2".parse::<Activation>().is_err());
        let err = "leaky-x".parse::<Activation>().unwrap_err();
        assert!(err.contains("\"leaky-x\""), "{err}");
        let err = "swish".parse::<Activation>().unwrap_err();
        assert!(
            err.contains("relu, leaky_relu, selu, sigmoid, tanh"),
            "{err}"
        );
    }

    #[test]
    fn relu_keeps_nan_visible() {
        let mut y = [0.0];
        forward(Activation::Relu, &[f32::NAN], &mut y);
        assert!(y[0].is_nan());
    }
}
