//! The protocol between the agent (which writes program steps and reads their feedback) and the
//! runtime (which runs the steps and produces the feedback), defined once for `agent`,
//! `runtime` and `tasks`. A crate of its own so the runtime and the task catalogue need no
//! deep-learning framework to speak it.

#![warn(missing_docs)]

use serde::{Deserialize, Serialize};

/// The marker that program code uses for a modulation point (`encode(scan_1 <mod>)`): the
/// tokenizer's special token, the runtime's ϕ binding and the task programs all use this one.
pub const MOD_MARKER: &str = "<mod>";

/// The feedback token whose input embedding is an encoding's ε° (one per stream); traces show
/// encodings with it.
pub const VOL_MARKER: &str = "<vol>";

/// One item of a step's feedback, in the order the `read` calls ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackItem {
    /// Text appended as is (the runtime formats numbers with their fixed precision and units).
    Text(String),
    /// An encoding: one ε° vector per stream. The agent sees one `<vol>` slot per stream whose
    /// input embedding is the vector.
    Encoding {
        /// ε° of each stream, in stream order.
        streams: Vec<Vec<f32>>,
    },
}

impl FeedbackItem {
    /// The item as trace text: the text itself, or one `<vol>` per stream for an encoding.
    ///
    /// ```
    /// use protocol::FeedbackItem;
    /// let e = FeedbackItem::Encoding { streams: vec![vec![0.5; 4]; 2] };
    /// assert_eq!(e.as_text(), "<vol><vol>");
    /// assert_eq!(e.vol_slots(), 2);
    /// ```
    pub fn as_text(&self) -> String {
        match self {
            FeedbackItem::Text(t) => t.clone(),
            FeedbackItem::Encoding { streams } => VOL_MARKER.repeat(streams.len()),
        }
    }

    /// Number of `<vol>` slots the item takes.
    pub fn vol_slots(&self) -> usize {
        match self {
            FeedbackItem::Text(_) => 0,
            FeedbackItem::Encoding { streams } => streams.len(),
        }
    }
}
