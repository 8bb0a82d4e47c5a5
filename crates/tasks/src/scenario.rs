//! Scenarios: the prompt-relevant choices of one task instance (which target, which contrast,
//! which descriptor, ...), as a map from slot key to a typed [`Key`]. Templates refer to them
//! as `{key}` or `{key.kind}` (the same choice phrased differently, e.g. `{side.adj}` "left" and
//! `{side.loc}` "in the left hemisphere"); [`crate::phrases`] turns keys into phrases.

use serde::Serialize;
use std::collections::BTreeMap;
use synth::Contrast;

/// Side of the head a prompt asks about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The subject's left.
    Left,
    /// The subject's right.
    Right,
}

/// A cerebral lobe a prompt can use as a descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lobe {
    /// Frontal lobe.
    Frontal,
    /// Parietal lobe.
    Parietal,
    /// Temporal lobe.
    Temporal,
    /// Occipital lobe.
    Occipital,
}

impl Lobe {
    /// Every lobe.
    pub const ALL: [Lobe; 4] = [
        Lobe::Frontal,
        Lobe::Parietal,
        Lobe::Temporal,
        Lobe::Occipital,
    ];

    /// The name `synth` records in `LesionRecord::lobe`.
    pub fn site(self) -> &'static str {
        match self {
            Lobe::Frontal => "frontal lobe",
            Lobe::Parietal => "parietal lobe",
            Lobe::Temporal => "temporal lobe",
            Lobe::Occipital => "occipital lobe",
        }
    }
}

/// "The larger" or "the smaller" of two lesions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Size {
    /// The larger one.
    Larger,
    /// The smaller one.
    Smaller,
}

/// Signal relative to the surrounding tissue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Intensity {
    /// Brighter.
    Hyper,
    /// Darker.
    Hypo,
    /// Similar.
    Iso,
}

impl Intensity {
    /// Every class.
    pub const ALL: [Intensity; 3] = [Intensity::Hyper, Intensity::Hypo, Intensity::Iso];

    /// The adjective in answers: `hyperintense`, `hypointense`, `isointense`.
    pub fn word(self) -> &'static str {
        match self {
            Intensity::Hyper => "hyperintense",
            Intensity::Hypo => "hypointense",
            Intensity::Iso => "isointense",
        }
    }

    /// From `synth`'s record.
    pub fn of(c: synth::lesion::IntensityClass) -> Intensity {
        match c {
            synth::lesion::IntensityClass::Hyper => Intensity::Hyper,
            synth::lesion::IntensityClass::Hypo => Intensity::Hypo,
            synth::lesion::IntensityClass::Iso => Intensity::Iso,
        }
    }
}

/// A direction for relative-position descriptors ("the more anterior lesion").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Larger y (RAS).
    Anterior,
    /// Smaller y.
    Posterior,
    /// Larger z.
    Superior,
    /// Smaller z.
    Inferior,
    /// Closer to the midline (smaller |x|).
    Medial,
    /// Further from the midline.
    Lateral,
}

impl Direction {
    /// Every direction.
    pub const ALL: [Direction; 6] = [
        Direction::Anterior,
        Direction::Posterior,
        Direction::Superior,
        Direction::Inferior,
        Direction::Medial,
        Direction::Lateral,
    ];

    /// How far in this direction a point (RAS mm) lies: the larger, the more anterior,
    /// superior, medial, ...
    pub fn score(self, p: [f64; 3]) -> f64 {
        match self {
            Direction::Anterior => p[1],
            Direction::Posterior => -p[1],
            Direction::Superior => p[2],
            Direction::Inferior => -p[2],
            Direction::Medial => -p[0].abs(),
            Direction::Lateral => p[0].abs(),
        }
    }

    /// `anterior`, `posterior`, ...
    pub fn word(self) -> &'static str {
        match self {
            Direction::Anterior => "anterior",
            Direction::Posterior => "posterior",
            Direction::Superior => "superior",
            Direction::Inferior => "inferior",
            Direction::Medial => "medial",
            Direction::Lateral => "lateral",
        }
    }
}

/// A single size of a region, from `extents` (L-R, A-P, S-I).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// Left-right size.
    Width,
    /// Anterior-posterior size.
    Depth,
    /// Superior-inferior size.
    Height,
    /// The largest of the three.
    LargestDiameter,
}

impl Dimension {
    /// Every dimension.
    pub const ALL: [Dimension; 4] = [
        Dimension::Width,
        Dimension::Depth,
        Dimension::Height,
        Dimension::LargestDiameter,
    ];

    /// The name in answers.
    pub fn word(self) -> &'static str {
        match self {
            Dimension::Width => "width (left-right)",
            Dimension::Depth => "depth (anterior-posterior)",
            Dimension::Height => "height (superior-inferior)",
            Dimension::LargestDiameter => "largest diameter",
        }
    }
}

/// A region of interest: an anatomical target or a lesion (its proper part).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Roi {
    /// Index into the vocabulary's targets.
    Anatomy(usize),
    /// Index into the active lesion classes.
    Lesion(usize),
}

/// One prompt-relevant choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Key {
    /// A region of interest.
    Roi(Roi),
    /// A lesion class (index into the active classes).
    Class(usize),
    /// A component of a lesion class (class index, component index).
    Component(usize, usize),
    /// An imaging contrast.
    Contrast(Contrast),
    /// A side.
    Side(Side),
    /// A lobe.
    Lobe(Lobe),
    /// A size descriptor.
    Size(Size),
    /// A signal descriptor: intensity on a contrast.
    Signal(Contrast, Intensity),
    /// A relative-position descriptor.
    Position(Direction),
    /// A crop margin in mm, or the default margin when the prompt names none.
    Margin(Option<u32>),
    /// A size of a region.
    Dimension(Dimension),
    /// Two anatomical targets (numerator, denominator).
    Pair(usize, usize),
    /// Number of sessions in a longitudinal question.
    Sessions(usize),
}

/// The choices of one task instance, by slot key.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Scenario {
    keys: BTreeMap<String, Key>,
}

impl Scenario {
    /// An empty scenario.
    pub fn new() -> Scenario {
        Scenario::default()
    }

    /// With `slot` set to `key`.
    pub fn with(mut self, slot: &str, key: Key) -> Scenario {
        self.keys.insert(slot.to_string(), key);
        self
    }

    /// The key of `slot`.
    pub fn get(&self, slot: &str) -> Option<Key> {
        self.keys.get(slot).copied()
    }

    /// All keys.
    pub fn keys(&self) -> &BTreeMap<String, Key> {
        &self.keys
    }
}

/// The scenario key a placeholder refers to: `side` for `{side.adj}`.
pub fn slot_key(placeholder: &str) -> &str {
    placeholder.split('.').next().unwrap_or(placeholder)
}

/// The phrasing kind of a placeholder: `adj` for `{side.adj}`, empty for `{side}`.
pub fn slot_kind(placeholder: &str) -> &str {
    placeholder.split_once('.').map_or("", |(_, k)| k)
}
