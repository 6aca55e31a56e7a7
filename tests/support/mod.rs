//! Fakes shared by the integration tests.

pub mod goldmane;
/// The fake Goldmane's server side, generated from the reference protos by
/// `tests/goldmane_codegen.rs`.
#[allow(clippy::all)]
#[rustfmt::skip]
pub mod goldmane_server {
    pub mod v3_30;
    pub mod v3_32;
}
pub mod kube_api;
pub mod process;
pub mod running;
pub mod tmux;
pub mod whisker;
