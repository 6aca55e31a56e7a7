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
