//! `handgrad explore`: a page in the browser where a learner touches a trained autoencoder.
//!
//! Every other command draws a picture once. Here the decoder answers while the learner moves:
//! a point dragged across the map of codes is decoded as it goes, a slider per code number
//! changes one number of the code, a digit drawn with the mouse is encoded and marked on the
//! map. All of it runs on the run's own model through the library's own calls.
//!
//! Reading order: [`runs`] (what a run folder says about itself, and a run opened for
//! decoding with its map of codes) → [`api`] (each request and its answer, as a plain
//! function) → [`server`] (HTTP on 127.0.0.1). The page itself (`page/`: HTML, CSS and
//! JavaScript, no libraries) is compiled into the program, so it works with no network.

pub mod api;
pub mod runs;
pub mod server;

pub use api::{Explorer, Reply};
pub use server::Server;
