//! The reparameterisation trick, the one piece of randomness a VAE differentiates through.
//!
//! A VAE's encoder outputs a distribution N(μ, σ²) per input, not a point. Sampling
//! z ~ N(μ, σ²) directly has no gradient with respect to μ and σ. Rewriting the sample as
//!
//! z = μ + σ ⊙ ε,  σ = e^(½·logvar),  ε ~ N(0, I) drawn outside the graph,
//!
//! moves the randomness into a constant ε, and z becomes an ordinary differentiable function
//! of μ and logvar: ∂z/∂μ = 1, ∂z/∂logvar = ½·σ ⊙ ε. It is composed from existing ops
//! (scale, exp, multiply, add), so its backward pass is theirs.

use crate::autodiff::graph::{as_slice_mut, Graph, Var};
use crate::error::Result;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

impl Graph {
    /// A constant of `shape` filled with draws from N(0, 1): the ε of the trick above. It is
    /// drawn straight into a recycled buffer, so sampling allocates nothing after a step.
    pub fn randn(&mut self, shape: &[usize], rng: &mut impl Rng) -> Var {
        let mut eps = self.alloc(shape);
        for v in as_slice_mut(&mut eps) {
            *v = StandardNormal.sample(rng);
        }
        self.constant_owned(eps)
    }

    /// z = μ + e^(½·logvar) ⊙ ε for a standard-normal sample ε (see [`Graph::randn`]).
    ///
    /// # Errors
    /// [`crate::Error::Shape`] when μ, logvar and ε do not broadcast together.
    pub fn reparameterize(&mut self, mu: Var, logvar: Var, eps: Var) -> Result<Var> {
        let half = self.mul_scalar(logvar, 0.5)?;
        let sigma = self.exp(half)?;
        let noise = self.mul(sigma, eps)?;
        self.add(mu, noise)
    }
}
