//! Embeddings in fewer dimensions: the classical tools an autoencoder is compared with and looked at through.
//!
//! * [`eigen`]: eigenvalues of a symmetric matrix (Jacobi as the reference, Householder + QR
//!   as the fast path).
//! * [`pca`]: principal components, the best *linear* code of a given size: the baseline a
//!   nonlinear autoencoder has to beat, and a way to draw its codes in 2-D.
//! * [`tsne`]: a 2-D map that keeps each point's neighbours near it, for looking at codes.

pub mod eigen;
pub mod pca;
pub mod tsne;
