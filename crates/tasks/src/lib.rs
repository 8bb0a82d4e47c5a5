//! `tasks`: the task catalogue of VoxelPrompt (DESIGN.md §7, paper §4.1–4.2): what the system
//! can be asked. Each family pairs a synthesized subject with a prompt from its grammar, a
//! ground-truth program φ* (steps of runtime code with `<mod>` markers and their meanings), the
//! expected answer from the synthetic truth, and a checker with stated tolerances.
//!
//! - [`Catalogue`]: the families; [`Catalogue::sample`] draws a whole [`TaskSample`],
//!   [`Catalogue::sample_prompt`] only a prompt, [`Catalogue::distinct_prompts`] counts them.
//! - [`grammar`]: templates, weighted phrase rules, exact counting, typos.
//! - [`program`]: φ* as steps with `<mod>` meanings, response lines with expected numbers.
//! - [`checker`]: parsing answers back and comparing them with the truth.
//! - [`oracle`]: a test-harness vision backend answering `generate` with the true masks.
//! - [`corpus`]: text for tokenizer training.
//!
//! The families and their tolerances are listed in `docs/tasks.md`.

#![warn(missing_docs)]

pub mod catalogue;
pub mod checker;
pub mod classes;
pub mod corpus;
pub mod error;
pub mod families;
pub mod family;
pub mod grammar;
pub mod names;
pub mod oracle;
pub mod phrases;
pub mod program;
pub mod sample;
pub mod scenario;
pub mod truth;

pub use catalogue::{Catalogue, TemplateSplit};
pub use checker::{CheckReport, Level};
pub use error::{Result, TaskError};
pub use family::{FamilyInfo, Group};
pub use oracle::{run_with_oracle, Execution};
pub use sample::{InputVolume, Prompt, TaskSample};
