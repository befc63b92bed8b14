//! Weight initialisation: where training starts.
//!
//! A layer's initial weights decide whether signals survive the trip through a deep stack.
//! Each scheme draws weights with a variance chosen from the layer's fan-in (inputs per output)
//! and fan-out, so activations neither vanish nor explode at the start:
//!
//! | scheme | distribution | meant for |
//! |---|---|---|
//! | PyTorch default | U(±1/√fan_in) (kaiming-uniform with a = √5) | what PyTorch layers start with |
//! | LeCun normal | N(0, 1/fan_in) | SELU (self-normalising networks) |
//! | Xavier uniform / normal | U(±√(6/(fan_in+fan_out))) / N(0, 2/(fan_in+fan_out)) | tanh, sigmoid |
//! | Kaiming uniform / normal | U(±√(6/fan_in)) / N(0, 2/fan_in) | ReLU |
//!
//! Fan-in and fan-out follow PyTorch's rule: for a weight of shape (a, b, k…), fan_in = b·Πk and
//! fan_out = a·Πk. For a transposed convolution, whose weight is (C_in, C_out, KH, KW), that
//! makes fan_in = C_out·KH·KW — PyTorch's convention, kept so results compare.
//! Biases start at U(±1/√fan_in) under the PyTorch default and at 0 otherwise.

use ndarray::{ArrayD, IxDyn};
use rand::Rng;
use rand_distr::{Distribution, Normal, Uniform};

crate::named_enum! {
    /// A weight initialisation scheme.
    #[derive(Default)]
    pub enum Init: "initialisation" {
        #[default]
        PyTorchDefault = "pytorch", "PyTorch's default for Linear and Conv layers: U(±1/√fan_in)",
        LecunNormal = "lecun_normal", "N(0, 1/fan_in), for SELU",
        XavierUniform = "xavier_uniform", "U(±√(6/(fan_in + fan_out))), for tanh and sigmoid",
        XavierNormal = "xavier_normal", "N(0, 2/(fan_in + fan_out)), for tanh and sigmoid",
        KaimingUniform = "kaiming_uniform", "U(±√(6/fan_in)), for ReLU",
        KaimingNormal = "kaiming_normal", "N(0, 2/fan_in), for ReLU",
    }
}

impl Init {
    /// A weight tensor of `shape` drawn from this scheme.
    pub fn weight(self, shape: &[usize], rng: &mut impl Rng) -> ArrayD<f32> {
        let (fan_in, fan_out) = fans(shape);
        let (fi, fo) = (fan_in.max(1) as f32, fan_out.max(1) as f32);
        match self {
            Init::PyTorchDefault => uniform(shape, 1.0 / fi.sqrt(), rng),
            Init::LecunNormal => normal(shape, (1.0 / fi).sqrt(), rng),
            Init::XavierUniform => uniform(shape, (6.0 / (fi + fo)).sqrt(), rng),
            Init::XavierNormal => normal(shape, (2.0 / (fi + fo)).sqrt(), rng),
            Init::KaimingUniform => uniform(shape, (6.0 / fi).sqrt(), rng),
            Init::KaimingNormal => normal(shape, (2.0 / fi).sqrt(), rng),
        }
    }

    /// A bias of `len` numbers for a weight of `weight_shape`.
    pub fn bias(self, len: usize, weight_shape: &[usize], rng: &mut impl Rng) -> ArrayD<f32> {
        match self {
            Init::PyTorchDefault => uniform(
                &[len],
                1.0 / (fans(weight_shape).0.max(1) as f32).sqrt(),
                rng,
            ),
            _ => ArrayD::zeros(IxDyn(&[len])),
        }
    }
}

/// (fan_in, fan_out) of a weight shape, PyTorch's rule.
pub fn fans(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [n] => (*n, *n),
        [a, b, rest @ ..] => {
            let receptive: usize = rest.iter().product();
            (b * receptive, a * receptive)
        }
    }
}

fn uniform(shape: &[usize], bound: f32, rng: &mut impl Rng) -> ArrayD<f32> {
    // Invariant: bound > 0 because fan_in ≥ 1, so the range is non-empty.
    let dist = Uniform::new_inclusive(-bound, bound)
        .unwrap_or_else(|e| unreachable!("non-empty range: {e}"));
    ArrayD::from_shape_simple_fn(IxDyn(shape), || dist.sample(rng))
}

fn normal(shape: &[usize], std: f32, rng: &mut impl Rng) -> ArrayD<f32> {
    // Invariant: std is finite and positive for the same reason.
    let dist = Normal::new(0.0, std).unwrap_or_else(|e| unreachable!("finite std: {e}"));
    ArrayD::from_shape_simple_fn(IxDyn(shape), || dist.sample(rng))
}
