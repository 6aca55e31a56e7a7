//! The flow store and the view over it: a bounded, aggregated store of observed flows, and the
//! filter language that selects from it. Pure: no I/O.

pub mod filter;
pub mod flow_store;
pub mod redecide;
mod row_index;

pub use flow_store::{Decided, FlowStore, RowId, StoredFlow};
