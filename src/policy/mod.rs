//! Calico policy: resource types, selectors, conversion of every supported kind into Calico's own
//! model, the compiled `PolicySet`, and the pure evaluator. No I/O except `load`, which reads files.

pub mod admin;
pub mod calico;
pub mod compare;
pub mod endpoint;
pub mod eval;
pub mod explain;
pub mod kubernetes;
pub mod load;
pub mod model;
pub mod resources;
pub mod selector;
pub mod set;

pub use eval::{Evaluation, Evaluator, Mode, Outcome, SetHandle};
pub use load::{load_named, load_paths, load_str, with_staged, Diagnostic, LoadReport};
pub use model::{Direction, Policy, Rule, Tier};
pub use set::PolicySet;
