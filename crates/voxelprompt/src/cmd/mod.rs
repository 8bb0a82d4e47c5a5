//! One module per subcommand.

pub mod baseline;
pub mod example;
pub mod exec;
pub mod info;
pub mod measure;
pub mod render;
pub mod synth;
pub mod tasks;
pub mod train;
