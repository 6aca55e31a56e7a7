//! Flows, endpoints, labels and policy hits: plain data shared by every module. No I/O.

mod flow;
mod hit;
mod labels;
mod observed;
pub mod time;

pub use flow::{Endpoint, EndpointType, Flow, Protocol, Reporter, Service};
pub use hit::{
    qualified_name, HitAction, PolicyHit, PolicyKind, PolicyTrace, Verdict, PROFILE_TIER,
};
pub use labels::Labels;
pub use observed::{Counters, ObservedFlow};

/// The value of the first of `names` that `text` spells in any case (parsing this way allocates
/// nothing: it runs for every flow record).
fn by_name_ignoring_case<T: Copy>(text: &str, names: &[(&str, T)]) -> Option<T> {
    names
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(text))
        .map(|&(_, value)| value)
}
