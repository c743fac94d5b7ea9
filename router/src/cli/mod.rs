//! The CLI's output: kubectl's verbs and columns.

pub mod render;
