//! A chain of layers, each feeding the next — how encoders and decoders are written.

use super::shape::Reshaping;
use super::{join_name, Module, Name, Param};
use crate::autodiff::{Graph, Var};
use crate::error::{Error, Result};

/// Layers applied in order. Children are named by their index, so the first layer's weight is
/// `0.weight` (and `encoder.0.weight` inside a model named `encoder`), PyTorch's convention.
///
/// A shape error inside a child comes back as [`Error::Architecture`] naming the layer, so an
/// inconsistent model description points at the exact place that does not fit.
#[derive(Debug, Default)]
pub struct Sequential {
    name: String,
    layers: Vec<Box<dyn Module>>,
    /// `name.0`, `name.1`, …: each child's full name, made once (not on every step).
    child_names: Vec<String>,
}

impl Sequential {
    /// An empty chain; `name` is used in error messages (`encoder`, `decoder`).
    pub fn new(name: impl Into<String>) -> Self {
        Sequential {
            name: name.into(),
            layers: Vec::new(),
            child_names: Vec::new(),
        }
    }

    /// Appends a layer (builder style).
    pub fn with(mut self, layer: impl Module + 'static) -> Self {
        self.push(Box::new(layer));
        self
    }

    /// Appends a layer.
    pub fn push(&mut self, layer: Box<dyn Module>) {
        self.child_names
            .push(join_name(&self.name, &self.layers.len().to_string()));
        self.layers.push(layer);
    }

    /// The full name of layer `i` (`encoder.3`), as errors and checkpoints spell it.
    pub fn child_name(&self, i: usize) -> Option<&str> {
        self.child_names.get(i).map(String::as_str)
    }

    /// Number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether there are no layers.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// The layers, in order.
    pub fn layers(&self) -> &[Box<dyn Module>] {
        &self.layers
    }
}

impl Sequential {
    /// Runs layer `i` alone, its nodes recorded in the layer's scope (so diagnostics can name
    /// it); a shape error comes back naming the layer.
    ///
    /// # Errors
    /// [`Error::Architecture`] for shape errors, others unchanged.
    pub fn forward_layer(&mut self, i: usize, g: &mut Graph, x: Var) -> Result<Var> {
        let y = self.in_layer(i, g, x, |layer, g, x| Some(layer.forward(g, x)))?;
        // Invariant: the closure above always returns Some.
        y.ok_or_else(|| Error::Graph {
            detail: format!("{}: layer {i} gave no output", self.name),
        })
    }

    /// Runs `f` on layer `i` inside the layer's scope; a shape error comes back naming the
    /// layer. `Ok(None)` when `f` declines (a layer that cannot fuse an activation).
    fn in_layer(
        &mut self,
        i: usize,
        g: &mut Graph,
        x: Var,
        f: impl FnOnce(&mut dyn Module, &mut Graph, Var) -> Option<Result<Var>>,
    ) -> Result<Option<Var>> {
        g.live(&[x])?;
        let (Some(layer), Some(name)) = (self.layers.get_mut(i), self.child_names.get(i)) else {
            return Err(Error::Graph {
                detail: format!("{} has no layer {i}", self.name),
            });
        };
        let previous = g.enter_scope(name);
        let y = f(layer.as_mut(), g, x);
        g.leave_scope(previous);
        y.transpose().map_err(|e| match e {
            Error::Shape { op, detail } => Error::Architecture {
                layer: name.clone(),
                detail: format!("{op} on input {:?}: {detail}", g.shape(x)),
            },
            other => other,
        })
    }
}

impl Sequential {
    /// Layers i, i+1, … as one op when they are `Flatten`, a layer with
    /// [`Module::forward_flat`] (linear), its activation if it can fuse it, `Unflatten`, with
    /// at least one of the two reshapes there: the output and how many layers it stands for.
    /// `Ok(None)` when layer i starts no such run.
    fn linear_through_reshapes(
        &mut self,
        i: usize,
        g: &mut Graph,
        x: Var,
    ) -> Result<Option<(Var, usize)>> {
        let reshape = |k: usize| self.layers.get(k).and_then(|l| l.as_reshape());
        let flatten = reshape(i) == Some(Reshaping::Flatten);
        let layer = i + usize::from(flatten);
        let act = (self.layers.get(layer + 1))
            .and_then(|l| l.as_activation())
            .filter(|a| a.output_decides_derivative());
        let after = layer + 1 + usize::from(act.is_some());
        // The unflattened shape, copied out of the layer so the layers can be borrowed again.
        let mut tail = [0; 4];
        let tail_len = match reshape(after) {
            Some(Reshaping::Unflatten(t)) if t.len() <= tail.len() => {
                tail[..t.len()].copy_from_slice(t);
                Some(t.len())
            }
            _ => None,
        };
        if !flatten && tail_len.is_none() {
            return Ok(None);
        }
        let tail = tail_len.map(|len| &tail[..len]);
        let y = self.in_layer(layer, g, x, |l, g, x| l.forward_flat(g, x, act, tail))?;
        let end = after + usize::from(tail.is_some());
        Ok(y.map(|y| (y, end - i)))
    }
}

impl Module for Sequential {
    /// Runs the layers in order. A layer followed by an activation that it can apply to its
    /// own output ([`Module::forward_then`]: the convolutions and linear layers) runs with it as
    /// one op: the activation then happens while the layer's output is in cache, and the tape holds
    /// one output instead of two. The numbers are those of the two layers run one by one
    /// ([`Sequential::forward_layer`]).
    ///
    /// Likewise a linear layer with a `Flatten` before it or an `Unflatten` after it (and its
    /// activation between) runs as one op that reads and writes the batch in place
    /// ([`Module::forward_flat`]), where each reshape would copy it.
    fn forward(&mut self, g: &mut Graph, mut x: Var) -> Result<Var> {
        let mut i = 0;
        while i < self.layers.len() {
            if let Some((y, layers)) = self.linear_through_reshapes(i, g, x)? {
                x = y;
                i += layers;
                continue;
            }
            if let Some(act) = self.layers.get(i + 1).and_then(|l| l.as_activation()) {
                if let Some(y) = self.in_layer(i, g, x, |l, g, x| l.forward_then(g, x, act))? {
                    x = y;
                    i += 2;
                    continue;
                }
            }
            x = self.forward_layer(i, g, x)?;
            i += 1;
        }
        Ok(x)
    }

    fn visit(&self, name: &mut Name, f: &mut dyn FnMut(&str, &Param)) {
        for (i, layer) in self.layers.iter().enumerate() {
            name.with(i, |n| layer.visit(n, f));
        }
    }

    fn visit_mut(&mut self, name: &mut Name, f: &mut dyn FnMut(&str, &mut Param)) {
        for (i, layer) in self.layers.iter_mut().enumerate() {
            name.with(i, |n| layer.visit_mut(n, f));
        }
    }

    fn set_training(&mut self, training: bool) {
        for layer in &mut self.layers {
            layer.set_training(training);
        }
    }

    fn reseed(&mut self, seed: u64) {
        for (i, layer) in self.layers.iter_mut().enumerate() {
            layer.reseed(crate::seed::child(seed, i as u64));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autodiff::Activation;
    use crate::nn::conv::{Conv2d, ConvTranspose2d, Kernel};
    use crate::nn::linear::Linear;
    use crate::nn::shape::{Act, Flatten, Unflatten};
    use crate::nn::Init;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    /// The output's shape, the output and every parameter's gradient of a weighted sum over
    /// the output, with the layers run fused (`forward`) or one by one (`forward_layer`).
    fn run(net: &mut Sequential, x: &ndarray::ArrayD<f32>, fused: bool) -> Vec<Vec<f32>> {
        let mut g = Graph::new();
        let mut v = g.constant(x.clone());
        if fused {
            v = net.forward(&mut g, v).expect("forward");
        } else {
            for i in 0..net.len() {
                v = net.forward_layer(i, &mut g, v).expect("layer");
            }
        }
        let shape = g.shape(v).iter().map(|&d| d as f32).collect();
        let mut out = vec![shape, g.data(v).to_vec()];
        // Weights that differ per element, so a gradient in the wrong place shows.
        let r = crate::autodiff::catalog::uniform(g.shape(v), 0.5, 1.5, 9);
        let r = g.constant(r);
        let weighted = g.mul(v, r).expect("mul");
        let loss = g.sum(weighted).expect("sum");
        g.backward(loss).expect("backward");
        net.visit(&mut Name::default(), &mut |_, p| {
            let grad = g
                .param_grad(p.id())
                .expect("a gradient for every parameter");
            out.push(grad.iter().copied().collect());
        });
        out
    }

    #[test]
    fn a_layer_and_its_activation_fused_give_the_numbers_of_the_two() {
        let mut rng = StdRng::seed_from_u64(3);
        let init = Init::PyTorchDefault;
        // Batched (3 → 5 channels at 4×4 outputs) and phase-plane (1 input channel) layers,
        // an activation the output decides and one it does not (a negative leaky slope), then
        // linear layers with and without a bias: the first reading through a Flatten, the last
        // writing through an Unflatten, then through both with a leaky ReLU between that
        // cannot be fused (so the Unflatten runs alone), then through both with a sigmoid.
        let mut net = Sequential::new("net")
            .with(Conv2d::new(1, 3, Kernel::new(3, 2, 1), init, &mut rng))
            .with(Act(Activation::Selu))
            .with(Conv2d::new(3, 5, Kernel::new(3, 1, 1), init, &mut rng))
            .with(Act(Activation::LeakyRelu { slope: -0.2 }))
            .with(ConvTranspose2d::new(
                5,
                2,
                Kernel::new(3, 2, 1),
                1,
                init,
                &mut rng,
            ))
            .with(Act(Activation::Sigmoid))
            .with(Flatten)
            .with(Linear::new(128, 10, true, init, &mut rng))
            .with(Act(Activation::Tanh))
            .with(Linear::new(10, 6, false, init, &mut rng))
            .with(Act(Activation::Relu))
            .with(Unflatten(vec![2, 3]))
            .with(Flatten)
            .with(Linear::new(6, 12, true, init, &mut rng))
            .with(Act(Activation::LeakyRelu { slope: -0.2 }))
            .with(Unflatten(vec![3, 2, 2]))
            .with(Flatten)
            .with(Linear::new(12, 8, true, init, &mut rng))
            .with(Act(Activation::Sigmoid))
            .with(Unflatten(vec![2, 2, 2]));
        let x = crate::autodiff::catalog::uniform(&[4, 1, 8, 8], -1.0, 1.0, 5);
        let fused = run(&mut net, &x, true);
        let apart = run(&mut net, &x, false);
        assert_eq!(fused.len(), apart.len());
        for (k, (a, b)) in fused.iter().zip(&apart).enumerate() {
            for (u, v) in a.iter().zip(b) {
                assert!(
                    (u - v).abs() <= 1e-5 * (1.0 + v.abs()),
                    "tensor {k}: {u} vs {v}"
                );
            }
        }
    }

    #[test]
    fn an_unflatten_that_does_not_fit_the_linear_layer_before_it_is_an_error_naming_it() {
        let mut rng = StdRng::seed_from_u64(4);
        let mut net = Sequential::new("net")
            .with(Linear::new(6, 5, true, Init::PyTorchDefault, &mut rng))
            .with(Act(Activation::Relu))
            .with(Unflatten(vec![2, 3]));
        let mut g = Graph::new();
        let x = g.constant(crate::autodiff::catalog::uniform(&[2, 6], -1.0, 1.0, 1));
        let err = net.forward(&mut g, x).expect_err("5 outputs cannot be 2×3");
        let text = err.to_string();
        assert!(text.contains("[2, 3]") && text.contains("net.0"), "{text}");
    }
}
