//! Autoencoders: an encoder squeezes an image into a short code, a decoder rebuilds the image
//! from the code, and training asks for the rebuilt image to equal the original. Whatever the
//! code keeps is what the network found worth keeping.
//!
//! Reading order: [`config`] (a model described as data, and the presets) → [`autoencoder`]
//! (building the layers from that description, checking every shape before training).

pub mod autoencoder;
pub mod config;

pub use autoencoder::Autoencoder;
pub use config::{
    ActName, ConvLayer, DecoderSpec, DeconvLayer, LossName, ModelSpec, OptimizerName, PlateauSpec,
    RunConfig, TrainSpec,
};
