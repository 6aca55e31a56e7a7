//! Fakes shared by the integration tests.

pub mod goldmane;
pub mod running;
pub mod whisker;
