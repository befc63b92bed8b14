//! A classifier, built on features or on a trained encoder: what an autoencoder's code is
//! worth for recognising classes.
//!
//! The head is a small MLP: Linear(d → h₁), activation, …, Linear(hₖ → classes); its outputs
//! are raw class scores ("logits"), and the loss is cross-entropy (log-softmax, then the
//! negative log-probability of the right class). What goes in decides the experiment:
//!
//! * features computed once (PCA coordinates, or a *frozen* encoder's codes): only the head
//!   learns;
//! * a trained encoder in front of the head, trained with it (*fine-tuning*);
//! * the same encoder freshly initialised (*from scratch*): the control that shows what
//!   pretraining on reconstruction was worth.
//!
//! Classes are numbered 0…k−1 here; a subset of the dataset's classes ({0, 1, 2, 4, 7}) is
//! relabelled by the caller and the names kept for pictures. The loss it is trained with is
//! in [`crate::train::task`].

use crate::autodiff::{Graph, Var};
use crate::error::{Error, Result};
use crate::nn::init::Init;
use crate::nn::{Act, Linear, Module, Name, Param, Sequential};
use kernels::elementwise::Activation;
use rand::Rng;

/// An MLP head, optionally behind an encoder.
#[derive(Debug)]
pub struct Classifier {
    /// Images → code, when the classifier reads images; `None` when it reads features.
    pub encoder: Option<Sequential>,
    /// For a VAE's encoder (whose output is μ then ln σ²): how many leading numbers are the
    /// code μ.
    code_len: Option<usize>,
    /// Code or features → class scores.
    pub head: Sequential,
    classes: usize,
    /// The batch's labels as indices, reused from step to step.
    targets: Vec<usize>,
}

impl Classifier {
    /// A head reading `inputs` numbers: Linear layers through `hidden` with `activation`
    /// between them, then Linear(· → `classes`).
    ///
    /// # Errors
    /// [`Error::Config`] for a zero size or fewer than two classes.
    pub fn new(
        encoder: Option<(Sequential, usize, bool)>,
        inputs: usize,
        hidden: &[usize],
        activation: Activation,
        classes: usize,
        rng: &mut impl Rng,
    ) -> Result<Self> {
        if inputs == 0 || hidden.contains(&0) {
            return Err(Error::config(
                "classifier",
                format!("sizes must be at least 1 (inputs {inputs}, hidden {hidden:?})"),
            ));
        }
        if classes < 2 {
            return Err(Error::config(
                "classes",
                format!("{classes} class: a classifier needs at least two"),
            ));
        }
        let mut head = Sequential::new("head");
        let mut d = inputs;
        for &h in hidden {
            head.push(Box::new(Linear::new(d, h, true, Init::PyTorchDefault, rng)));
            head.push(Box::new(Act(activation)));
            d = h;
        }
        head.push(Box::new(Linear::new(
            d,
            classes,
            true,
            Init::PyTorchDefault,
            rng,
        )));
        let (encoder, code_len) = match encoder {
            Some((e, latent, variational)) => (Some(e), variational.then_some(latent)),
            None => (None, None),
        };
        Ok(Classifier {
            encoder,
            code_len,
            head,
            classes,
            targets: Vec::new(),
        })
    }

    /// The number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// `labels` as class indices, in a buffer reused from call to call.
    pub fn targets(&mut self, labels: &[u8]) -> &[usize] {
        self.targets.clear();
        self.targets.extend(labels.iter().map(|&l| l as usize));
        &self.targets
    }

    /// Predicted class of every row of `logits` (N, classes): the largest score.
    pub fn argmax(logits: &[f32], classes: usize) -> Vec<usize> {
        logits
            .chunks_exact(classes)
            .map(|row| {
                row.iter()
                    .enumerate()
                    .fold((0, f32::NEG_INFINITY), |best, (k, &v)| {
                        if v > best.1 {
                            (k, v)
                        } else {
                            best
                        }
                    })
                    .0
            })
            .collect()
    }
}

impl Module for Classifier {
    /// Class scores (N, classes) for a batch of images or features.
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        let features = match &mut self.encoder {
            Some(e) => {
                let out = e.forward(g, x)?;
                match self.code_len {
                    Some(z) => g.slice(out, 1, 0, z)?,
                    None => out,
                }
            }
            None => x,
        };
        self.head.forward(g, features)
    }

    fn visit(&self, name: &mut Name, f: &mut dyn FnMut(&str, &Param)) {
        if let Some(e) = &self.encoder {
            name.with("encoder", |n| e.visit(n, f));
        }
        name.with("head", |n| self.head.visit(n, f));
    }

    fn visit_mut(&mut self, name: &mut Name, f: &mut dyn FnMut(&str, &mut Param)) {
        if let Some(e) = &mut self.encoder {
            name.with("encoder", |n| e.visit_mut(n, f));
        }
        name.with("head", |n| self.head.visit_mut(n, f));
    }

    fn set_training(&mut self, training: bool) {
        if let Some(e) = &mut self.encoder {
            e.set_training(training);
        }
        self.head.set_training(training);
    }

    fn reseed(&mut self, seed: u64) {
        if let Some(e) = &mut self.encoder {
            e.reseed(crate::seed::child(seed, 0));
        }
        self.head.reseed(crate::seed::child(seed, 1));
    }
}
