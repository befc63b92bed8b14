//! 2-D convolution (cross-correlation, as every deep-learning library defines it).
//!
//! `y[n, co, oh, ow] = b[co] + Σ_{ci, i, j} x[n, ci, oh·s − p + i, ow·s − p + j] · w[co, ci, i, j]`
//!
//! where s is the stride, p the zero padding, and positions outside the input read as 0.
//! A convolutional encoder is a stack of these with stride 2: each halves the picture and
//! deepens the channels (1×28×28 → 6×14×14 → 39×7×7 in the default model).
//!
//! [`Conv2dGeometry`] (in `geometry.rs`) is the only place sizes are checked; the kernels
//! trust it. Its grid tests against the naive loop are in `tests.rs`. Five
//! implementations, picked by [`Conv2dAlgo`], compute the same numbers:
//! * [`naive`]: the equation above as seven nested loops, in f64. The spec, never fast.
//! * [`direct`]: the same loops reordered so the innermost one walks a contiguous output row.
//! * [`im2col_gemm`]: copy every receptive field into a column ([`crate::conv2d::im2col`]), then one
//!   matrix product per image. Usually the fastest, at the cost of a scratch buffer.
//! * [`batched_gemm`]: the columns of a chunk of images side by side, one product per chunk:
//!   for deeper layers, whose output per image is too small to fill a product (49 or 9 pixels).
//! * [`phase_planes`]: no columns at all; each kernel tap is one shifted multiply-add over the
//!   whole image: for one input channel, where the product's inner dimension would be 9.
//!
//! Next: [`crate::conv2d::im2col`], then [`crate::conv_transpose2d`], which is this file run backwards.

pub mod batched_gemm;
pub mod direct;
mod geometry;
pub mod im2col;
pub mod im2col_gemm;
pub mod naive;
pub mod phase_planes;
#[cfg(test)]
pub(crate) mod tests;

pub(crate) use geometry::{check_lens, valid_outputs};
pub use geometry::{Conv2dGeometry, Conv2dSpec};

use crate::elementwise::Activation;

/// The weight gradient is summed over the batch in at most this many groups of consecutive
/// images, each on its own task, then the group sums are added in order. A fixed count (not
/// the thread count) keeps the rounding, and so the result, the same on every machine.
///
/// Groups are whole calls of the kernel (a chunk of images for the batched product), and one
/// call per group while there are at most 32 calls: rayon then shares the calls out one by
/// one. With at most 8 groups, conv-selu's third layer (ten chunks) made five groups of two
/// chunks, three for one thread and two for the other: a group per chunk (and chunks of equal
/// size, `batched_gemm`) balances the two threads (figures: docs/performance.md, "Measurements behind the code").
const WEIGHT_GRAD_GROUPS: usize = 32;

/// d_w ← Σ over the images of `add_images(x_imgs, d_y_imgs, out_imgs, partial)`, where
/// `add_images` adds the contribution of up to `per_call` consecutive images (their x and d_y,
/// one after another) to a running sum. The batch is cut into at most `WEIGHT_GRAD_GROUPS`
/// (32) groups of consecutive images (each a whole number of calls), summed in parallel into
/// partial sums kept in scratch memory, which are then added in order (element by element, in
/// parallel over the elements). Where the calls fall depends on the shapes only.
///
/// `out`, when given, is a per-image result computed alongside (as many floats per image for
/// every image); each call gets its images' part of it to write, so a kernel can make two
/// results from one pass over its inputs.
pub(crate) fn sum_weight_grad_in_groups(
    geom: &Conv2dGeometry,
    per_call: usize,
    x: &[f32],
    d_y: &[f32],
    out: Option<&mut [f32]>,
    d_w: &mut [f32],
    add_images: impl Fn(&[f32], &[f32], Option<&mut [f32]>, &mut [f32]) + Sync,
) {
    use rayon::prelude::*;
    let n = geom.spec().n;
    // Whole calls per group (so no call is cut short but the batch's last).
    let calls = n.div_ceil(per_call.max(1));
    let group_len = calls.div_ceil(WEIGHT_GRAD_GROUPS) * per_call.max(1);
    let groups = n.div_ceil(group_len);
    let w_len = d_w.len();
    let (x_len, y_len) = (geom.input_image_len(), geom.output_image_len());
    // Each group's part of `out` (empty when there is none), cut without allocating.
    let has_out = out.is_some();
    let out_len = out.as_ref().map_or(0, |o| o.len() / n);
    let mut out_parts: [&mut [f32]; WEIGHT_GRAD_GROUPS] = Default::default();
    let mut rest = out.unwrap_or_default();
    for part in out_parts.iter_mut().take(groups) {
        let (head, tail) = rest.split_at_mut((out_len * group_len).min(rest.len()));
        *part = head;
        rest = tail;
    }
    crate::scratch::with_scratch(groups * w_len, |partials| {
        partials
            .par_chunks_mut(w_len)
            .zip(x.par_chunks(x_len * group_len))
            .zip(d_y.par_chunks(y_len * group_len))
            .zip(out_parts.par_iter_mut())
            .for_each(|(((partial, x_group), d_y_group), out_group)| {
                partial.fill(0.0);
                let calls = x_group
                    .chunks(x_len * per_call)
                    .zip(d_y_group.chunks(y_len * per_call));
                let mut outs = out_group.chunks_mut((out_len * per_call).max(1));
                for (x_imgs, d_y_imgs) in calls {
                    let out_imgs = if has_out { outs.next() } else { None };
                    add_images(x_imgs, d_y_imgs, out_imgs, partial);
                }
            });
        // d_w[i] = Σ_g partial_g[i], the groups in order, pieces of d_w on their own tasks.
        let add_up = |start: usize, piece: &mut [f32]| {
            let len = piece.len();
            let mut sums = partials.chunks_exact(w_len).map(|p| &p[start..][..len]);
            // Invariant: the batch is never empty (Conv2dGeometry rejects N = 0), so there
            // is a first group.
            let Some(first) = sums.next() else {
                unreachable!("at least one group")
            };
            piece.copy_from_slice(first);
            for partial in sums {
                for (acc, v) in piece.iter_mut().zip(partial) {
                    *acc += v;
                }
            }
        };
        if groups * w_len < crate::PARALLEL_MIN_ELEMS {
            add_up(0, d_w);
        } else {
            let piece = crate::PARALLEL_CHUNK / groups.max(1) + 1;
            d_w.par_chunks_mut(piece)
                .enumerate()
                .for_each(|(i, d)| add_up(i * piece, d));
        }
    });
}

/// Which implementation computes a convolution. All of them give the same numbers (up to f32
/// rounding); they differ in speed and memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Conv2dAlgo {
    /// Plain nested loops accumulating in f64: the reference, slow.
    Naive,
    /// Reordered loops over contiguous output rows, no scratch memory.
    Direct,
    /// Unroll receptive fields into columns, then one GEMM per image.
    Im2colGemm,
    /// Unroll the receptive fields of a chunk of images side by side (a few hundred output
    /// positions), then one GEMM per chunk, chunks in parallel.
    BatchedGemm,
    /// Split the input into stride-phase planes, then one shifted multiply-add over the whole
    /// image per kernel tap: for one input channel, where a GEMM's inner dimension would be 9.
    PhasePlanes,
    /// [`Conv2dAlgo::PhasePlanes`] for one input channel, [`Conv2dAlgo::BatchedGemm`] where an
    /// image's output has fewer positions than a chunk's 512 columns (one GEMM per image would be
    /// too thin to use the vector units), [`Conv2dAlgo::Im2colGemm`] elsewhere: see
    /// [`Conv2dAlgo::resolve`].
    #[default]
    Auto,
}

impl Conv2dAlgo {
    /// Every algorithm, for benchmarks and tests that compare them.
    pub const ALL: [Conv2dAlgo; 6] = [
        Conv2dAlgo::Naive,
        Conv2dAlgo::Direct,
        Conv2dAlgo::Im2colGemm,
        Conv2dAlgo::BatchedGemm,
        Conv2dAlgo::PhasePlanes,
        Conv2dAlgo::Auto,
    ];

    /// The algorithm that runs: [`Conv2dAlgo::Naive`] whenever [`crate::use_reference_loops`]
    /// is on; otherwise what [`Conv2dAlgo::Auto`] stands for in this layer, or the algorithm
    /// itself.
    ///
    /// Chunks of images measured faster than one GEMM per image wherever an image's output is
    /// smaller than a chunk. An image whose output fills a chunk on its own would make chunks
    /// of one image: that is [`Conv2dAlgo::Im2colGemm`], which can also split its product
    /// across threads when the batch is small. With one input channel (conv-selu's first
    /// layer, and its last through the adjoint) the phase planes measured faster than
    /// im2col + GEMM (figures: docs/performance.md, "Measurements behind the code").
    pub fn resolve(self, geom: &Conv2dGeometry) -> Conv2dAlgo {
        if crate::reference_loops() {
            return Conv2dAlgo::Naive;
        }
        if self != Conv2dAlgo::Auto {
            return self;
        }
        let positions = geom.h_out() * geom.w_out();
        if geom.spec().c_in == 1 {
            Conv2dAlgo::PhasePlanes
        } else if positions < batched_gemm::CHUNK_COLUMNS {
            Conv2dAlgo::BatchedGemm
        } else {
            Conv2dAlgo::Im2colGemm
        }
    }

    /// A short lowercase name, as benchmarks and the CLI print it.
    pub fn name(self) -> &'static str {
        match self {
            Conv2dAlgo::Naive => "naive",
            Conv2dAlgo::Direct => "direct",
            Conv2dAlgo::Im2colGemm => "im2col_gemm",
            Conv2dAlgo::BatchedGemm => "batched_gemm",
            Conv2dAlgo::PhasePlanes => "phase_planes",
            Conv2dAlgo::Auto => "auto",
        }
    }
}

/// y ← conv2d(x, w) + b. `b` may be `None` (no bias).
///
/// # Shapes
/// x (N, C_in, H, W), w (C_out, C_in, KH, KW), b (C_out) → y (N, C_out, OH, OW).
pub fn forward(
    geom: &Conv2dGeometry,
    algo: Conv2dAlgo,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    y: &mut [f32],
) {
    let epilogue = Epilogue { bias: b, act: None };
    forward_with(geom, algo, x, w, epilogue, y);
}

/// y ← act(conv2d(x, w) + b): [`forward`] with an activation fused in. Where the algorithm
/// is [`Conv2dAlgo::BatchedGemm`] each chunk's outputs get their bias and activation while
/// they are in cache; elsewhere the activation is one more pass over y.
///
/// # Shapes
/// As [`forward`].
pub fn forward_with(
    geom: &Conv2dGeometry,
    algo: Conv2dAlgo,
    x: &[f32],
    w: &[f32],
    epilogue: Epilogue<'_>,
    y: &mut [f32],
) {
    crate::conv2d::check_lens(geom, "conv2d::forward", x.len(), w.len(), y.len());
    crate::check_bias(geom.spec().c_out, epilogue.bias);
    let b = epilogue.bias;
    match algo.resolve(geom) {
        Conv2dAlgo::Naive => naive::forward(geom, x, w, b, y),
        Conv2dAlgo::Direct => direct::forward(geom, x, w, b, y),
        Conv2dAlgo::Im2colGemm => im2col_gemm::forward(geom, x, w, b, y),
        Conv2dAlgo::PhasePlanes => phase_planes::forward(geom, x, w, b, y),
        Conv2dAlgo::BatchedGemm | Conv2dAlgo::Auto => {
            return batched_gemm::forward(geom, x, w, epilogue, y);
        }
    }
    let activation = Epilogue {
        bias: None,
        ..epilogue
    };
    activation.apply_to_batch(y, geom.output_image_len(), geom.h_out() * geom.w_out());
}

/// What a convolution does to its output before handing it back: add one number per channel
/// (the bias), then apply an activation. Fused into the kernel, both happen while the output
/// is still in cache, instead of in two more passes over memory.
#[derive(Clone, Copy, Debug, Default)]
pub struct Epilogue<'a> {
    /// One number per output channel, added to every value of its plane.
    pub bias: Option<&'a [f32]>,
    /// Applied after the bias.
    pub act: Option<Activation>,
}

/// Images per task when an epilogue runs over a whole batch.
const EPILOGUE_IMAGES: usize = 32;

impl Epilogue<'_> {
    /// Applies to whole images (NCHW) on this thread: channel planes of `plane` values, the
    /// bias cycling through the channels.
    pub(crate) fn apply(&self, y: &mut [f32], plane: usize) {
        if let Some(bias) = self.bias {
            for (values, &b) in y.chunks_exact_mut(plane.max(1)).zip(bias.iter().cycle()) {
                values.iter_mut().for_each(|v| *v += b);
            }
        }
        if let Some(act) = self.act {
            crate::elementwise::forward_in_place(act, y);
        }
    }

    /// [`Epilogue::apply`] over a batch of images of `image_len` values, a few images per
    /// task in parallel.
    pub(crate) fn apply_to_batch(&self, y: &mut [f32], image_len: usize, plane: usize) {
        use rayon::prelude::*;
        if self.bias.is_none() && self.act.is_none() {
            return;
        }
        y.par_chunks_mut((EPILOGUE_IMAGES * image_len).max(1))
            .for_each(|images| self.apply(images, plane));
    }
}

/// d_x ← ∂L/∂x: every input pixel collects w·d_y from each output window that covered it.
/// This is a transposed convolution of d_y with the same weights.
///
/// # Shapes
/// d_y (N, C_out, OH, OW), w (C_out, C_in, KH, KW) → d_x (N, C_in, H, W).
pub fn backward_input(
    geom: &Conv2dGeometry,
    algo: Conv2dAlgo,
    d_y: &[f32],
    w: &[f32],
    d_x: &mut [f32],
) {
    crate::conv2d::check_lens(
        geom,
        "conv2d::backward_input",
        d_x.len(),
        w.len(),
        d_y.len(),
    );
    match algo.resolve(geom) {
        Conv2dAlgo::Naive => naive::backward_input(geom, d_y, w, d_x),
        Conv2dAlgo::Direct => direct::backward_input(geom, d_y, w, d_x),
        Conv2dAlgo::Im2colGemm => im2col_gemm::backward_input(geom, d_y, w, d_x),
        Conv2dAlgo::PhasePlanes => phase_planes::backward_input(geom, d_y, w, d_x),
        Conv2dAlgo::BatchedGemm | Conv2dAlgo::Auto => {
            batched_gemm::backward_input(geom, d_y, w, d_x)
        }
    }
}

/// d_w ← ∂L/∂w = Σ over the batch of x correlated with d_y.
///
/// # Shapes
/// x (N, C_in, H, W), d_y (N, C_out, OH, OW) → d_w (C_out, C_in, KH, KW).
pub fn backward_weight(
    geom: &Conv2dGeometry,
    algo: Conv2dAlgo,
    x: &[f32],
    d_y: &[f32],
    d_w: &mut [f32],
) {
    crate::conv2d::check_lens(
        geom,
        "conv2d::backward_weight",
        x.len(),
        d_w.len(),
        d_y.len(),
    );
    match algo.resolve(geom) {
        Conv2dAlgo::Naive => naive::backward_weight(geom, x, d_y, d_w),
        Conv2dAlgo::Direct => direct::backward_weight(geom, x, d_y, d_w),
        Conv2dAlgo::Im2colGemm => im2col_gemm::backward_weight(geom, x, d_y, d_w),
        Conv2dAlgo::PhasePlanes => phase_planes::backward_weight(geom, x, d_y, d_w),
        Conv2dAlgo::BatchedGemm | Conv2dAlgo::Auto => {
            batched_gemm::backward_weight(geom, x, d_y, d_w)
        }
    }
}

/// Both gradients at once: d_x as [`backward_input`] and d_w as [`backward_weight`]. Both
/// read d_y; where the algorithm is [`Conv2dAlgo::BatchedGemm`] each chunk's d_y is gathered
/// once and used for both ([`batched_gemm::backward_input_and_weight`]), elsewhere the two
/// run one after the other.
///
/// # Shapes
/// x (N, C_in, H, W), d_y (N, C_out, OH, OW), w (C_out, C_in, KH, KW) → d_x like x, d_w like w.
pub fn backward_input_and_weight(
    geom: &Conv2dGeometry,
    algo: Conv2dAlgo,
    x: &[f32],
    d_y: &[f32],
    w: &[f32],
    d_x: &mut [f32],
    d_w: &mut [f32],
) {
    if algo.resolve(geom) == Conv2dAlgo::BatchedGemm {
        batched_gemm::backward_input_and_weight(geom, x, d_y, w, d_x, d_w);
    } else {
        backward_input(geom, algo, d_y, w, d_x);
        backward_weight(geom, algo, x, d_y, d_w);
    }
}

/// d_b ← ∂L/∂b: d_y summed over N, OH and OW, one number per output channel.
///
/// # Shapes
/// d_y (N, C_out, OH, OW) → d_b (C_out).
pub fn backward_bias(geom: &Conv2dGeometry, d_y: &[f32], d_b: &mut [f32]) {
    let s = geom.spec();
    crate::check_lens(
        "conv2d::backward_bias",
        &[
            ("d_y", d_y.len(), geom.output_shape().iter().product()),
            ("d_b", d_b.len(), s.c_out),
        ],
    );
    crate::reduce::sum_per_channel(d_y, s.n, s.c_out, geom.h_out() * geom.w_out(), d_b);
}
