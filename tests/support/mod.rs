//! Fakes shared by the integration tests.

pub mod goldmane;
pub mod kube_api;
pub mod process;
pub mod running;
pub mod tmux;
pub mod whisker;
