//! Checking an answer against the synthetic truth: numbers parsed back from the response text
//! (with their units) and compared within stated tolerances, finite answers matched exactly
//! against their option set, and output volumes compared with the true masks.
//!
//! Two levels of strictness: [`Level::GroundTruth`] for programs run with the true masks
//! (numbers within 0.5 % or the last printed digit, masks identical), and [`Level::Model`]
//! for a model's own masks (the per-quantity tolerances of [`Quantity::model_tolerance`], Dice
//! or overlap ≥ 0.7). Finite answers are exact at both levels.
//!
//! ```
//! use tasks::checker::{parse_numbers, Unit};
//! let found = parse_numbers("Left hippocampus: 4.189 mL on 2021-03-04, asymmetry -2.500 %.");
//! assert_eq!(found, vec![(4.189, Unit::Ml), (-2.5, Unit::Percent)]);
//! ```

use crate::error::Result;
use crate::truth::MaskDef;
use runtime::{OutputData, OutputVolume};
use serde::Serialize;
use voxel::{Image, Mask};

/// Units the responses print after numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Millilitres.
    Ml,
    /// Millimetres.
    Mm,
    /// Percent.
    Percent,
    /// Hounsfield units.
    Hu,
    /// Apparent diffusion coefficient, 10⁻³ mm²/s.
    Adc,
    /// Arbitrary units of a normalised MR image.
    Au,
    /// No unit (ratios, SNR, counts).
    None,
}

impl Unit {
    /// The text printed after a number (without the separating space); empty for none.
    pub fn text(self) -> &'static str {
        match self {
            Unit::Ml => "mL",
            Unit::Mm => "mm",
            Unit::Percent => "%",
            Unit::Hu => "HU",
            Unit::Adc => "×10⁻³ mm²/s",
            Unit::Au => "a.u.",
            Unit::None => "",
        }
    }

    const PRINTED: [Unit; 6] = [
        Unit::Adc,
        Unit::Ml,
        Unit::Mm,
        Unit::Percent,
        Unit::Hu,
        Unit::Au,
    ];
}

/// `|got − want| ≤ max(abs, rel · scale)`, where the scale is the expected value's magnitude
/// or a stated reference (for changes: the volumes they are changes of).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Tolerance {
    /// Relative part.
    pub rel: f64,
    /// Absolute part, in the quantity's unit.
    pub abs: f64,
}

impl Tolerance {
    /// Whether `got` is within tolerance of `want`, relative to `scale`.
    pub fn accepts(&self, want: f64, got: f64, scale: f64) -> bool {
        got.is_finite() && (got - want).abs() <= self.abs.max(self.rel * scale.abs())
    }
}

/// The tolerance for programs run with ground-truth masks: 0.5 %, or the last printed digit.
pub const GROUND_TRUTH: Tolerance = Tolerance {
    rel: 0.005,
    abs: 0.0015,
};

/// Exact (integers, numbers copied from the prompt).
pub const EXACT: Tolerance = Tolerance {
    rel: 0.0,
    abs: 1e-9,
};

/// What a number in a response measures; fixes its unit and its tolerance for model answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Quantity {
    /// A volume in mL (model: ±10 % or 0.1 mL).
    VolumeMl,
    /// A length in mm (model: ±10 % or 3 mm).
    LengthMm,
    /// A margin copied from the prompt, mm (exact).
    MarginMm,
    /// Mean intensity of a normalised MR image (model: ±5 % or 0.02).
    IntensityAu,
    /// Mean attenuation, HU (model: ±5 HU).
    Hu,
    /// Mean ADC, 10⁻³ mm²/s (model: ±10 % or 0.05).
    Adc,
    /// Signal-to-noise ratio (model: ±10 % or 0.5).
    Snr,
    /// A ratio of volumes (model: ±10 %).
    Ratio,
    /// A volume as a percentage of another (model: ±10 % of the value).
    SharePercent,
    /// An asymmetry index in % (model: ±3 percentage points).
    AsymmetryPercent,
    /// A volume change in mL (model: ±10 % of the larger volume, or 0.1 mL).
    ChangeMl,
    /// A relative change in % (model: ±10 percentage points).
    ChangePercent,
    /// A change of mean intensity (model: ±0.03).
    ChangeAu,
    /// A count (exact with true masks; model: ±20 % or 1).
    Count,
}

impl Quantity {
    /// The unit printed after it.
    pub fn unit(self) -> Unit {
        match self {
            Quantity::VolumeMl | Quantity::ChangeMl => Unit::Ml,
            Quantity::LengthMm | Quantity::MarginMm => Unit::Mm,
            Quantity::IntensityAu | Quantity::ChangeAu => Unit::Au,
            Quantity::Hu => Unit::Hu,
            Quantity::Adc => Unit::Adc,
            Quantity::SharePercent | Quantity::AsymmetryPercent | Quantity::ChangePercent => {
                Unit::Percent
            }
            Quantity::Snr | Quantity::Ratio | Quantity::Count => Unit::None,
        }
    }

    /// Tolerance for a program run with ground-truth masks.
    pub fn ground_truth_tolerance(self) -> Tolerance {
        match self {
            Quantity::Count | Quantity::MarginMm => EXACT,
            _ => GROUND_TRUTH,
        }
    }

    /// Tolerance for a model's answer (stated in docs/tasks.md).
    pub fn model_tolerance(self) -> Tolerance {
        let t = |rel, abs| Tolerance { rel, abs };
        match self {
            Quantity::VolumeMl | Quantity::ChangeMl => t(0.10, 0.1),
            Quantity::LengthMm => t(0.10, 3.0),
            Quantity::MarginMm => EXACT,
            Quantity::IntensityAu => t(0.05, 0.02),
            Quantity::Hu => t(0.0, 5.0),
            Quantity::Adc => t(0.10, 0.05),
            Quantity::Snr => t(0.10, 0.5),
            Quantity::Ratio | Quantity::SharePercent => t(0.10, 1e-3),
            Quantity::AsymmetryPercent => t(0.0, 3.0),
            Quantity::ChangePercent => t(0.0, 10.0),
            Quantity::ChangeAu => t(0.0, 0.03),
            Quantity::Count => t(0.20, 1.0),
        }
    }
}

/// A number the response must contain.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExpectedNumber {
    /// What it is, e.g. `volume of the left hippocampus`.
    pub what: String,
    /// The true value.
    pub value: f64,
    /// What kind of quantity (unit and tolerances).
    pub quantity: Quantity,
    /// Scale for relative tolerances when it is not the value itself (changes: the larger of
    /// the two volumes).
    pub reference: Option<f64>,
}

/// One option of a finite answer, with the phrases that count as giving it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChoiceOption {
    /// Canonical name.
    pub name: String,
    /// Lower-case phrases matched as whole words.
    pub phrases: Vec<String>,
}

/// A finite answer: the response must name the right option and no other.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExpectedChoice {
    /// What is asked, e.g. `signal on FLAIR`.
    pub what: String,
    /// The right option's name.
    pub answer: String,
    /// All options.
    pub options: Vec<ChoiceOption>,
}

/// How an output volume relates to its input and the true region.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    /// A mask of the region.
    Mask,
    /// The input with the region set to 0.
    Removed,
    /// The input inside the region, 0 outside.
    Extracted,
    /// The input cropped to the region's box plus a margin (shown in the input's grid).
    Cropped {
        /// Margin in mm.
        margin_mm: f64,
    },
}

/// An output volume the program must `show`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExpectedOutput {
    /// The name given to `show`.
    pub name: String,
    /// The input variable it derives from (its grid and intensities).
    pub input: String,
    /// The session of that input.
    pub session: usize,
    /// The true region.
    pub target: MaskDef,
    /// The relation to the input.
    pub kind: OutputKind,
}

/// Least overlap score (Dice) an output needs with ground-truth masks.
pub const GROUND_TRUTH_MIN_OVERLAP: f64 = 0.999;
/// Least overlap score (Dice) an output needs from a model.
pub const MODEL_MIN_OVERLAP: f64 = 0.7;

/// Everything a correct answer contains.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Expected {
    /// Numbers, in the order the response gives them.
    pub numbers: Vec<ExpectedNumber>,
    /// Finite answers.
    pub choices: Vec<ExpectedChoice>,
    /// Output volumes.
    pub outputs: Vec<ExpectedOutput>,
}

/// Which tolerances apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// The program ran with ground-truth masks.
    GroundTruth,
    /// A model produced the masks (and maybe the program).
    Model,
}

/// One verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckItem {
    /// What was checked.
    pub what: String,
    /// Whether it passed.
    pub passed: bool,
    /// Expected and found, in words.
    pub detail: String,
}

/// All verdicts of one answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckReport {
    /// True when every item passed.
    pub passed: bool,
    /// The items.
    pub items: Vec<CheckItem>,
}

impl CheckReport {
    /// The failed items as text, one per line.
    pub fn failures(&self) -> String {
        self.items
            .iter()
            .filter(|i| !i.passed)
            .map(|i| format!("{}: {}", i.what, i.detail))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The numbers of `text` in order, each with the unit printed right after it (one optional
/// space). Dates (`2021-03-04`) and digits inside words (`T1`, `scan_2`) are not numbers.
pub fn parse_numbers(text: &str) -> Vec<(f64, Unit)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let neg = b[i] == b'-' && i + 1 < b.len() && b[i + 1].is_ascii_digit();
        let starts = (b[i].is_ascii_digit() || neg)
            && (i == 0 || !(is_word_byte(b[i - 1]) || b[i - 1] == b'.' || b[i - 1] == b'-'));
        if !starts {
            i += 1;
            continue;
        }
        let start = i;
        let mut j = if neg { i + 1 } else { i };
        let digits = |j: &mut usize| {
            while *j < b.len() && b[*j].is_ascii_digit() {
                *j += 1;
            }
        };
        digits(&mut j);
        // A date: four digits, '-', two digits, '-', two digits.
        let is_date = !neg
            && j - start == 4
            && j + 6 <= b.len()
            && b[j] == b'-'
            && b[j + 1].is_ascii_digit()
            && b[j + 2].is_ascii_digit()
            && b[j + 3] == b'-'
            && b[j + 4].is_ascii_digit()
            && b[j + 5].is_ascii_digit();
        if is_date {
            i = j + 6;
            continue;
        }
        if j + 1 < b.len() && b[j] == b'.' && b[j + 1].is_ascii_digit() {
            j += 1;
            digits(&mut j);
        }
        if j + 1 < b.len() && (b[j] == b'e' || b[j] == b'E') {
            let mut k = j + 1;
            if k < b.len() && (b[k] == b'-' || b[k] == b'+') {
                k += 1;
            }
            if k < b.len() && b[k].is_ascii_digit() {
                digits(&mut k);
                j = k;
            }
        }
        if j < b.len() && is_word_byte(b[j]) {
            // Glued to a word ("3D", "2x"): not a measurement.
            i = j;
            while i < b.len() && is_word_byte(b[i]) {
                i += 1;
            }
            continue;
        }
        let Ok(value) = text[start..j].parse::<f64>() else {
            i = j;
            continue;
        };
        let mut unit = Unit::None;
        let mut end = j;
        let rest = text[j..].strip_prefix(' ').unwrap_or(&text[j..]);
        let offset = text.len() - rest.len();
        for u in Unit::PRINTED {
            let t = u.text();
            if let Some(after) = rest.strip_prefix(t) {
                let boundary = t.ends_with(|c: char| !c.is_ascii_alphanumeric())
                    || after.as_bytes().first().is_none_or(|&c| !is_word_byte(c));
                if boundary {
                    unit = u;
                    end = offset + t.len();
                    break;
                }
            }
        }
        out.push((value, unit));
        i = end.max(j);
    }
    out
}

/// Whether `phrase` occurs in `text` (both lower case) as whole words.
fn contains_words(text: &str, phrase: &str) -> bool {
    let t = text.as_bytes();
    let mut from = 0;
    while let Some(p) = text[from..].find(phrase) {
        let s = from + p;
        let e = s + phrase.len();
        let left = s == 0 || !is_word_byte(t[s - 1]);
        let right = e >= t.len() || !is_word_byte(t[e]);
        if left && right {
            return true;
        }
        from = s + phrase.len().max(1);
        if from >= text.len() {
            break;
        }
    }
    false
}

/// Checks the numbers and finite answers of `response` against `expected`.
pub fn check_text(expected: &Expected, response: &str, level: Level) -> Vec<CheckItem> {
    let mut items = Vec::new();
    let found = parse_numbers(response);
    let mut used = vec![false; found.len()];
    for n in &expected.numbers {
        let unit = n.quantity.unit();
        let tol = match level {
            Level::GroundTruth => n.quantity.ground_truth_tolerance(),
            Level::Model => n.quantity.model_tolerance(),
        };
        let scale = n.reference.unwrap_or(n.value);
        // The next unused number with this unit, in order.
        let hit = found
            .iter()
            .enumerate()
            .find(|(i, (_, u))| !used[*i] && *u == unit);
        let (passed, detail) = match hit {
            Some((i, (got, _))) => {
                used[i] = true;
                let ok = tol.accepts(n.value, *got, scale);
                (
                    ok,
                    format!(
                        "expected {} {}, found {} (tolerance ±max({}, {} %))",
                        runtime::format_number(n.value),
                        unit.text(),
                        runtime::format_number(*got),
                        tol.abs,
                        100.0 * tol.rel
                    ),
                )
            }
            None => (
                false,
                format!(
                    "expected {} {}, found no number with unit {:?}",
                    runtime::format_number(n.value),
                    unit.text(),
                    unit
                ),
            ),
        };
        items.push(CheckItem {
            what: n.what.clone(),
            passed,
            detail,
        });
    }
    let lower = response.to_lowercase();
    for c in &expected.choices {
        let named: Vec<&str> = c
            .options
            .iter()
            .filter(|o| o.phrases.iter().any(|p| contains_words(&lower, p)))
            .map(|o| o.name.as_str())
            .collect();
        items.push(CheckItem {
            what: c.what.clone(),
            passed: named == [c.answer.as_str()],
            detail: format!("expected {:?}, the response names {:?}", c.answer, named),
        });
    }
    items
}

/// How well `output` matches the expected output of `kind` derived from `input` and the true
/// region `truth` (all on the input's grid): the Dice of the region it shows (the mask; the
/// blanked voxels; the kept voxels; the cropped box) with the true one. 0 when the output is of
/// the wrong type or changed intensities it should have copied.
pub fn output_score(
    kind: OutputKind,
    input: &Image,
    truth: &Mask,
    output: &OutputVolume,
) -> Result<f64> {
    match (kind, &output.data) {
        (OutputKind::Mask, OutputData::Mask(m)) => Ok(voxel::metrics::dice(m, truth)?),
        (OutputKind::Mask, OutputData::Image(_)) => Ok(0.0),
        (_, OutputData::Mask(_)) => Ok(0.0),
        (kind, OutputData::Image(out)) => {
            let copies = out
                .data()
                .iter()
                .zip(input.data())
                .all(|(&o, &i)| o == 0.0 || (o - i).abs() <= 1e-6 * i.abs().max(1.0));
            if !copies {
                return Ok(0.0);
            }
            let nonzero_input = input.map(|v| v != 0.0);
            let (shown, want) = match kind {
                OutputKind::Removed => (
                    out.zip_map(input, |o, i| i != 0.0 && o == 0.0)?,
                    truth.zip_map(&nonzero_input, |t, i| t && i)?,
                ),
                OutputKind::Extracted => (
                    out.map(|o| o != 0.0),
                    truth.zip_map(&nonzero_input, |t, i| t && i)?,
                ),
                OutputKind::Cropped { margin_mm } => {
                    if truth.is_empty() {
                        return Ok(0.0);
                    }
                    let crop = voxel::crop::crop_to_mask(input, truth, margin_mm)?;
                    let placed = match runtime::grid::place_on_grid(&crop, input.geometry(), 0.0) {
                        Some(p) => p?,
                        None => return Ok(0.0),
                    };
                    (out.map(|o| o != 0.0), placed.map(|v| v != 0.0))
                }
                OutputKind::Mask => return Ok(0.0),
            };
            Ok(voxel::metrics::dice(&shown, &want)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_their_units_and_skip_names() {
        let t = "The T1 scan_2 volume is 12.345 mL (3 voxels), 4.19e-4 a.u., -7.000 HU, \
                 0.812 ×10⁻³ mm²/s, 20 mm; ratio 0.250.";
        assert_eq!(
            parse_numbers(t),
            vec![
                (12.345, Unit::Ml),
                (3.0, Unit::None),
                (4.19e-4, Unit::Au),
                (-7.0, Unit::Hu),
                (0.812, Unit::Adc),
                (20.0, Unit::Mm),
                (0.25, Unit::None)
            ]
        );
        assert_eq!(parse_numbers("left-right 3D mmm 5mmHg"), vec![]);
    }

    #[test]
    fn tolerances_accept_within_and_refuse_beyond() {
        let e = Expected {
            numbers: vec![ExpectedNumber {
                what: "volume".into(),
                value: 10.0,
                quantity: Quantity::VolumeMl,
                reference: None,
            }],
            choices: vec![ExpectedChoice {
                what: "side".into(),
                answer: "left".into(),
                options: vec![
                    ChoiceOption {
                        name: "left".into(),
                        phrases: vec!["left".into()],
                    },
                    ChoiceOption {
                        name: "right".into(),
                        phrases: vec!["right".into()],
                    },
                ],
            }],
            outputs: vec![],
        };
        let pass = |r: &str, l| check_text(&e, r, l).iter().all(|i| i.passed);
        assert!(pass("10.040 mL on the left (bright).", Level::GroundTruth));
        assert!(!pass("10.100 mL on the left.", Level::GroundTruth));
        assert!(pass("10.900 mL on the left.", Level::Model));
        assert!(!pass("12.000 mL on the left.", Level::Model));
        assert!(!pass("10.000 mL on the right.", Level::Model));
        assert!(!pass("10.000 mL, left or right.", Level::Model));
        assert!(!pass("10.000 on the left.", Level::Model), "unit missing");
    }
}
