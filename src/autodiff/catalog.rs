//! Every op the tape has, each with a small case to check its gradient on: what
//! `handgrad gradcheck` runs. A case is the op's name, random inputs of a sensible shape
//! (kept away from an op's kinks and outside its domain's edges), and the function that
//! records the op on a tape.

use super::graph::{Backward, BackwardCtx, Grads, Graph, Var};
use super::ops::loss::Reduction;
use super::Activation;
use crate::error::{Error, Result};
use crate::machine::{human_bytes, human_count};
use ndarray::{ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Sizes a case may be given (`gradcheck conv2d --stride 1 --padding 0`).
#[derive(Clone, Debug, PartialEq)]
pub struct CaseOptions {
    /// The main input's shape, for element-wise ops, reductions and losses: (N, C) or any.
    pub shape: Vec<usize>,
    /// Convolutions and pooling: kernel size.
    pub kernel: usize,
    /// Convolutions and pooling: stride.
    pub stride: usize,
    /// Convolutions: zero padding.
    pub padding: usize,
    /// Convolutions: input and output channels.
    pub channels: (usize, usize),
    /// Convolutions and pooling: input height and width.
    pub size: usize,
}

/// The most elements one input of a check may have: finite differences run two forward
/// passes per element, so a check of 100,000 elements already takes a while.
pub const MAX_CHECKED_ELEMENTS: u128 = 100_000;

impl CaseOptions {
    /// Refuses sizes no check could get through before anything is allocated: each input
    /// (the main shape, the convolutions' images and weights) holds at most
    /// [`MAX_CHECKED_ELEMENTS`]; the message names the size and the memory it would take.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting.
    pub fn check(&self) -> Result<()> {
        let elements = |dims: &[usize]| {
            dims.iter()
                .try_fold(1u128, |n, &d| n.checked_mul(d as u128))
                .unwrap_or(u128::MAX)
        };
        let (c_in, c_out) = self.channels;
        let (k, size) = (self.kernel, self.size);
        for (what, dims) in [
            ("shape", self.shape.clone()),
            ("size", vec![2, c_in, size, size]),
            ("channels", vec![c_out, c_in, k, k]),
        ] {
            let n = elements(&dims);
            if n > MAX_CHECKED_ELEMENTS {
                let shown: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
                return Err(Error::config(
                    what,
                    format!(
                        "an input of {} has {} elements ({} as f32); a finite-difference check runs two forward passes per element, so it takes at most {}",
                        shown.join("×"),
                        human_count(n),
                        human_bytes(n.saturating_mul(4)),
                        human_count(MAX_CHECKED_ELEMENTS)
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl Default for CaseOptions {
    fn default() -> Self {
        CaseOptions {
            shape: vec![2, 5],
            kernel: 3,
            stride: 2,
            padding: 1,
            channels: (2, 3),
            size: 6,
        }
    }
}

/// The function a case records: the op applied to the input `Var`s.
pub type CaseFn = Box<dyn Fn(&mut Graph, &[Var]) -> Result<Var>>;

/// One op and the inputs to check it on.
pub struct OpCase {
    /// The op's name.
    pub name: &'static str,
    /// Its inputs.
    pub inputs: Vec<ArrayD<f32>>,
    /// What their roles are: "x", "w", "b".
    pub roles: Vec<&'static str>,
    /// Records the op.
    pub f: CaseFn,
}

/// Every op name [`case`] knows, in the order `gradcheck all` runs them.
pub const OPS: &[&str] = &[
    "add",
    "sub",
    "mul",
    "div",
    "exp",
    "log",
    "sqrt",
    "pow",
    "sum",
    "mean",
    "sum_axis",
    "matmul",
    "linear",
    "linear_sigmoid",
    "conv2d",
    "conv_transpose2d",
    "conv2d_tanh",
    "conv_transpose2d_sigmoid",
    "max_pool2d",
    "upsample_nearest2d",
    "relu",
    "leaky_relu",
    "selu",
    "sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "mse",
    "bce",
    "bce_with_logits",
    "cross_entropy",
    "kl_gaussian",
    "batch_norm",
    "reshape",
    "slice",
    "concat",
    "reparameterize",
];

/// A tensor of `shape`, uniform in [lo, hi), the same for the same seed.
pub fn uniform(shape: &[usize], lo: f32, hi: f32, seed: u64) -> ArrayD<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    ArrayD::from_shape_simple_fn(IxDyn(shape), || rng.random_range(lo..hi))
}

/// Uniform in ±[lo, hi): away from 0, where ReLU-like ops have a kink.
pub fn away_from_zero(shape: &[usize], lo: f32, hi: f32, seed: u64) -> ArrayD<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    ArrayD::from_shape_simple_fn(IxDyn(shape), || {
        let m = rng.random_range(lo..hi);
        if rng.random::<bool>() {
            m
        } else {
            -m
        }
    })
}

/// The case for op `name` with sizes from `o`.
///
/// # Errors
/// [`Error::Config`] for an unknown op (listing the known ones) or sizes that do not fit it.
pub fn case(name: &str, o: &CaseOptions) -> Result<OpCase> {
    o.check()?;
    let x = uniform(&o.shape, -1.0, 1.0, 1);
    let y = uniform(&o.shape, -1.0, 1.0, 2);
    let pos = uniform(&o.shape, 0.5, 2.0, 3);
    let kinked = away_from_zero(&o.shape, 0.05, 1.0, 4);
    let prob = uniform(&o.shape, 0.1, 0.9, 5);
    let rows = o.shape.first().copied().unwrap_or(1);
    let last = o.shape.last().copied().unwrap_or(1);
    let (c_in, c_out) = o.channels;
    let k = o.kernel;
    let image = [2, c_in, o.size, o.size];
    let one = |name: &'static str, inputs: Vec<ArrayD<f32>>, f: CaseFn| {
        let roles = match inputs.len() {
            1 => vec!["x"],
            2 => vec!["a", "b"],
            _ => vec!["x", "w", "b"],
        };
        Ok(OpCase {
            name,
            inputs,
            roles,
            f,
        })
    };
    if o.shape.is_empty() || o.shape.contains(&0) {
        return Err(Error::config("shape", "every dimension must be at least 1"));
    }
    match name {
        "add" => one("add", vec![x, y], Box::new(|g, v| g.add(v[0], v[1]))),
        "sub" => one("sub", vec![x, y], Box::new(|g, v| g.sub(v[0], v[1]))),
        "mul" => one("mul", vec![x, y], Box::new(|g, v| g.mul(v[0], v[1]))),
        "div" => one("div", vec![x, pos], Box::new(|g, v| g.div(v[0], v[1]))),
        "exp" => one("exp", vec![x], Box::new(|g, v| g.exp(v[0]))),
        "log" => one("log", vec![pos], Box::new(|g, v| g.log(v[0]))),
        "sqrt" => one("sqrt", vec![pos], Box::new(|g, v| g.sqrt(v[0]))),
        "pow" => one("pow", vec![pos], Box::new(|g, v| g.pow(v[0], 2.5))),
        "sum" => one("sum", vec![x], Box::new(|g, v| g.sum(v[0]))),
        "mean" => one("mean", vec![x], Box::new(|g, v| g.mean(v[0]))),
        "sum_axis" => one(
            "sum_axis",
            vec![x],
            Box::new(|g, v| g.sum_axis(v[0], 0, false)),
        ),
        "matmul" | "linear" | "linear_sigmoid" => {
            let (n, d_in, d_out) = (rows, last, 4);
            let a = uniform(&[n, d_in], -1.0, 1.0, 6);
            let w = uniform(&[d_out, d_in], -1.0, 1.0, 7);
            let b = uniform(&[d_out], -1.0, 1.0, 8);
            match name {
                "matmul" => one(
                    "matmul",
                    vec![a, w.t().to_owned().as_standard_layout().to_owned()],
                    Box::new(|g, v| g.matmul(v[0], v[1])),
                ),
                "linear" => one(
                    "linear",
                    vec![a, w, b],
                    Box::new(|g, v| g.linear(v[0], v[1], Some(v[2]))),
                ),
                // The activation fused into the product (the backward reads f′ off the
                // output).
                _ => one(
                    "linear_sigmoid",
                    vec![a, w, b],
                    Box::new(|g, v| {
                        g.linear_then(v[0], v[1], Some(v[2]), Some(Activation::Sigmoid))
                    }),
                ),
            }
        }
        "conv2d" => {
            let (s, p) = (o.stride, o.padding);
            let inputs = vec![
                uniform(&image, -1.0, 1.0, 9),
                uniform(&[c_out, c_in, k, k], -1.0, 1.0, 10),
                uniform(&[c_out], -1.0, 1.0, 11),
            ];
            one(
                "conv2d",
                inputs,
                Box::new(move |g, v| g.conv2d(v[0], v[1], Some(v[2]), s, p)),
            )
        }
        "conv_transpose2d" => {
            let (s, p) = (o.stride, o.padding);
            let op = s.saturating_sub(1).min(1);
            let inputs = vec![
                uniform(&image, -1.0, 1.0, 12),
                uniform(&[c_in, c_out, k, k], -1.0, 1.0, 13),
                uniform(&[c_out], -1.0, 1.0, 14),
            ];
            one(
                "conv_transpose2d",
                inputs,
                Box::new(move |g, v| g.conv_transpose2d(v[0], v[1], Some(v[2]), s, p, op)),
            )
        }
        // The convolutions with an activation fused in (the backward reads f′ off the
        // output): smooth activations, so the finite differences have no kink to straddle.
        "conv2d_tanh" => {
            let (s, p) = (o.stride, o.padding);
            let inputs = vec![
                uniform(&image, -1.0, 1.0, 15),
                uniform(&[c_out, c_in, k, k], -1.0, 1.0, 16),
                uniform(&[c_out], -1.0, 1.0, 17),
            ];
            let act = Some(Activation::Tanh);
            one(
                "conv2d_tanh",
                inputs,
                Box::new(move |g, v| g.conv2d_then(v[0], v[1], Some(v[2]), s, p, act)),
            )
        }
        "conv_transpose2d_sigmoid" => {
            let (s, p) = (o.stride, o.padding);
            let op = s.saturating_sub(1).min(1);
            let inputs = vec![
                uniform(&image, -1.0, 1.0, 18),
                uniform(&[c_in, c_out, k, k], -1.0, 1.0, 19),
                uniform(&[c_out], -1.0, 1.0, 20),
            ];
            let act = Some(Activation::Sigmoid);
            one(
                "conv_transpose2d_sigmoid",
                inputs,
                Box::new(move |g, v| {
                    g.conv_transpose2d_then(v[0], v[1], Some(v[2]), s, p, op, act)
                }),
            )
        }
        "max_pool2d" => {
            // Distinct values, so that no window has a tie (where max has no derivative).
            let n: usize = image.iter().product();
            let mut values: Vec<f32> = (0..n)
                .map(|i| i as f32 * 0.37 % 5.0 + i as f32 * 1e-3)
                .collect();
            values.reverse();
            let x = ArrayD::from_shape_vec(IxDyn(&image), values)
                .map_err(|e| Error::shape("max_pool2d", e.to_string()))?;
            let (kk, s) = (k.min(o.size), o.stride);
            one(
                "max_pool2d",
                vec![x],
                Box::new(move |g, v| g.max_pool2d(v[0], kk, s)),
            )
        }
        "upsample_nearest2d" => one(
            "upsample_nearest2d",
            vec![uniform(&image, -1.0, 1.0, 15)],
            Box::new(|g, v| g.upsample_nearest2d(v[0], 2)),
        ),
        "relu" => one("relu", vec![kinked], Box::new(|g, v| g.relu(v[0]))),
        "leaky_relu" => one(
            "leaky_relu",
            vec![kinked],
            Box::new(|g, v| g.leaky_relu(v[0], 0.1)),
        ),
        "selu" => one("selu", vec![kinked], Box::new(|g, v| g.selu(v[0]))),
        "sigmoid" => one("sigmoid", vec![x], Box::new(|g, v| g.sigmoid(v[0]))),
        "tanh" => one("tanh", vec![x], Box::new(|g, v| g.tanh(v[0]))),
        "softmax" => one("softmax", vec![x], Box::new(|g, v| g.softmax(v[0]))),
        "log_softmax" => one("log_softmax", vec![x], Box::new(|g, v| g.log_softmax(v[0]))),
        "mse" => one(
            "mse",
            vec![x, y],
            Box::new(|g, v| g.mse(v[0], v[1], Reduction::Mean)),
        ),
        "bce" => {
            let target = uniform(&o.shape, 0.0, 1.0, 16);
            one(
                "bce",
                vec![prob, target],
                Box::new(|g, v| g.bce(v[0], v[1], Reduction::Mean)),
            )
        }
        "bce_with_logits" => {
            let target = uniform(&o.shape, 0.0, 1.0, 17);
            one(
                "bce_with_logits",
                vec![x, target],
                Box::new(|g, v| g.bce_with_logits(v[0], v[1], Reduction::Mean)),
            )
        }
        "cross_entropy" => {
            let targets: Vec<usize> = (0..rows).map(|i| (i * 3) % last).collect();
            one(
                "cross_entropy",
                vec![uniform(&[rows, last], -1.0, 1.0, 18)],
                Box::new(move |g, v| g.cross_entropy(v[0], &targets, Reduction::Mean)),
            )
        }
        "kl_gaussian" => one(
            "kl_gaussian",
            vec![
                uniform(&[rows, last], -1.0, 1.0, 19),
                uniform(&[rows, last], -1.0, 1.0, 20),
            ],
            Box::new(|g, v| g.kl_gaussian(v[0], v[1])),
        ),
        "batch_norm" => {
            let c = last;
            let inputs = vec![
                uniform(&[rows.max(8), c], -1.0, 1.0, 21),
                uniform(&[c], 0.5, 1.5, 22),
                uniform(&[c], -0.5, 0.5, 23),
            ];
            one(
                "batch_norm",
                inputs,
                Box::new(|g, v| Ok(g.batch_norm_train(v[0], v[1], v[2], 1e-5)?.0)),
            )
        }
        "reshape" => {
            let total: usize = o.shape.iter().product();
            one(
                "reshape",
                vec![x],
                Box::new(move |g, v| g.reshape(v[0], &[total])),
            )
        }
        "slice" => one(
            "slice",
            vec![x],
            Box::new(move |g, v| g.slice(v[0], 0, 0, rows.div_ceil(2))),
        ),
        "concat" => one(
            "concat",
            vec![x, y],
            Box::new(|g, v| g.concat(&[v[0], v[1], v[0]], 0)),
        ),
        "reparameterize" => {
            let eps = uniform(&o.shape, -1.0, 1.0, 24);
            one(
                "reparameterize",
                vec![x, y],
                Box::new(move |g, v| {
                    let e = g.constant(eps.clone());
                    g.reparameterize(v[0], v[1], e)
                }),
            )
        }
        other => Err(Error::config(
            "op",
            format!("unknown {other:?} (one of: {}, or all)", OPS.join(", ")),
        )),
    }
}

/// Appends a deliberately wrong node after `y`: the identity in the forward pass, but its
/// backward passes on 1.5 times the gradient it receives. Every input's gradient is then off by
/// half, which is what a gradient check is there to catch.
pub fn plant_bug(g: &mut Graph, y: Var) -> Var {
    let value = g.value(y).to_owned();
    g.record(WrongIdentity, &[y], value)
}

/// The identity with a wrong derivative (1.5 instead of 1).
#[derive(Debug)]
struct WrongIdentity;

impl Backward for WrongIdentity {
    fn backward(&self, ctx: &mut BackwardCtx<'_>) -> Result<Grads> {
        Ok([Some(ctx.d_y().mapv(|v| 1.5 * v))].into())
    }
}
