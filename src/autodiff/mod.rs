//! Reverse-mode automatic differentiation: the tape ([`graph`]), its ops ([`ops`]), the
//! buffer pool that makes steps allocation-free ([`buffers`]), the gradient checker
//! ([`grad_check`](mod@grad_check)), and the per-op timer ([`profile`]) that watches the tape
//! through [`observe`].

pub mod buffers;
pub mod catalog;
pub mod grad_check;
pub mod graph;
pub mod observe;
pub mod ops;
pub mod profile;

pub use grad_check::{check_catalog, grad_check, grad_check_report, InputCheck, Tolerance};
pub use graph::{Backward, BackwardCtx, Grads, Graph, ParamId, Pass, Place, Var};
pub use observe::TapeObserver;
pub use ops::activation::Activation;
pub use ops::loss::Reduction;
pub use profile::{ProfileRow, TraceRow};
