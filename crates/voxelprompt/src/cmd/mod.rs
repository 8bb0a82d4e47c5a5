//! One module per subcommand.

pub mod baseline;
pub mod batch;
pub mod chat;
pub mod demo;
pub mod eval;
pub mod example;
pub mod exec;
pub mod exit;
pub mod info;
pub mod measure;
pub mod render;
pub mod run;
pub mod scan_input;
pub mod serve;
pub mod ship;
pub mod synth;
pub mod tasks;
pub mod train;
