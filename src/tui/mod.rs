//! The interactive terminal UI: one app loop owning all state, fed by input, sources and signals
//! through bounded channels; keymaps and themes are data.

pub mod action;
