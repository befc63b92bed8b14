//! Autoencoders: an encoder squeezes an image into a short code, a decoder rebuilds the image
//! from the code, and training asks for the rebuilt image to equal the original. Whatever the
//! code keeps is what the network found worth keeping.
//!
//! Reading order: [`spec`] (a model described as data) → [`plan`] (every layer's shapes worked
//! out and checked before any weight exists) → [`autoencoder`] (the layers, and the
//! variational variant) → [`classifier`] (an MLP head on features or on a trained encoder).

pub mod autoencoder;
pub mod classifier;
pub mod plan;
pub mod spec;

pub use autoencoder::{infer, Autoencoder, Encoded};
pub use classifier::Classifier;
pub use plan::{Layer, LayerPlan, ModelPlan};
pub use spec::{ConvLayer, DecoderSpec, DeconvLayer, ModelSpec};
