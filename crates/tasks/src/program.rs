//! Ground-truth programs φ*: steps of Rhai code as the agent writes them, with `<mod>` markers
//! whose meanings are recorded in order, and response lines whose numbers are also the
//! expected answer.
//!
//! Families write their code with named markers: `encode(scan_1 <mod>)` for an encoder stream
//! and `generate(e <mod:roi>)` for a generator call steered towards target `roi`.
//! [`ProgramBuilder::build`] turns every named marker into a plain `<mod>` (a generator's
//! preceded by its target in a comment, [`target_note`]) and records, marker by marker, what it
//! means, so the meanings line up with the ϕ vectors by construction.
//!
//! ```
//! use tasks::program::{ModMeaning, ProgramBuilder};
//! use tasks::truth::MaskDef;
//! let mut p = ProgramBuilder::new();
//! p.target("roi", "left hippocampus", MaskDef::Anatomy { ids: vec![17] });
//! p.step("let e = encode(scan_1 <mod>); let m = generate(e <mod:roi>); read(volume(m));");
//! let steps = p.build().unwrap();
//! assert_eq!(
//!     steps[0].code,
//!     "let e = encode(scan_1 <mod>); let m = generate(e /* left hippocampus */ <mod>); read(volume(m));"
//! );
//! assert!(matches!(&steps[0].mods[0], ModMeaning::Encode { volume } if volume == "scan_1"));
//! assert!(matches!(&steps[0].mods[1], ModMeaning::Generate { target } if target.name == "roi"));
//! ```

use crate::checker::{ExpectedNumber, Quantity};
use crate::error::{Result, TaskError};
use crate::truth::MaskDef;
use serde::Serialize;
use std::collections::BTreeMap;

/// What the vision network should produce for a `generate` call.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GenerateTarget {
    /// The name used in the program's marker (`roi` in `<mod:roi>`).
    pub name: String,
    /// The target in words, e.g. `left hippocampus` or `the larger metastasis`.
    pub description: String,
    /// The true mask, evaluated on the session of each encoded stream.
    pub mask: MaskDef,
}

/// What one `<mod>` marker stands for.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModMeaning {
    /// An encoder stream: the volume passed just before the marker.
    Encode {
        /// The program variable encoded (an input name such as `scan_1`).
        volume: String,
    },
    /// A generator call and the mask it should produce for each stream.
    Generate {
        /// The target.
        target: GenerateTarget,
    },
}

/// One step of a program.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProgramStep {
    /// The code as the agent writes it, with plain `<mod>` markers.
    pub code: String,
    /// The meaning of each marker of `code`, in order.
    pub mods: Vec<ModMeaning>,
}

/// Builds a program step by step (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct ProgramBuilder {
    steps: Vec<String>,
    targets: BTreeMap<String, GenerateTarget>,
}

impl ProgramBuilder {
    /// An empty program.
    pub fn new() -> ProgramBuilder {
        ProgramBuilder::default()
    }

    /// Declares the generate target `name` (used as `<mod:name>`).
    pub fn target(&mut self, name: &str, description: &str, mask: MaskDef) -> &mut ProgramBuilder {
        self.targets.insert(
            name.to_string(),
            GenerateTarget {
                name: name.to_string(),
                description: description.to_string(),
                mask,
            },
        );
        self
    }

    /// Appends a step.
    pub fn step(&mut self, code: impl Into<String>) -> &mut ProgramBuilder {
        self.steps.push(code.into());
        self
    }

    /// The steps with plain markers and their meanings.
    pub fn build(&self) -> Result<Vec<ProgramStep>> {
        let bad = |problem: String| TaskError::Program {
            family: "(builder)".into(),
            problem,
        };
        let mut out = Vec::with_capacity(self.steps.len());
        for code in &self.steps {
            let mut plain = String::with_capacity(code.len());
            let mut mods = Vec::new();
            let mut rest = code.as_str();
            while let Some(p) = rest.find("<mod") {
                let before = &rest[..p];
                plain.push_str(before);
                let after = &rest[p + 4..];
                let close = after
                    .find('>')
                    .ok_or_else(|| bad(format!("unclosed <mod in {code:?}")))?;
                let name = &after[..close];
                if name.is_empty() {
                    let volume: String = plain
                        .trim_end()
                        .chars()
                        .rev()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect();
                    if volume.is_empty() {
                        return Err(bad(format!(
                            "an encoder <mod> must follow a variable name in {code:?}"
                        )));
                    }
                    mods.push(ModMeaning::Encode { volume });
                } else {
                    let name = name
                        .strip_prefix(':')
                        .ok_or_else(|| bad(format!("bad marker <mod{name}> in {code:?}")))?;
                    let target = self
                        .targets
                        .get(name)
                        .ok_or_else(|| bad(format!("undeclared target {name:?} in {code:?}")))?;
                    plain.push_str(&target_note(&target.description));
                    mods.push(ModMeaning::Generate {
                        target: target.clone(),
                    });
                }
                plain.push_str(runtime::MOD_MARKER);
                rest = &after[close + 1..];
            }
            plain.push_str(rest);
            out.push(ProgramStep { code: plain, mods });
        }
        Ok(out)
    }
}

/// The comment that names a generator's target just before its marker, as in
/// `generate(e /* left hippocampus */ <mod>)`.
///
/// The agent writes it from the prompt (a plain text target, learned by cross-entropy like
/// every program token), and the ϕ of the marker is read from the hidden state right after
/// it, so ϕ only has to carry what the preceding words say instead of finding the target in
/// the prompt by itself. The user reads what each mask was asked to be; the runtime ignores
/// the comment.
pub fn target_note(description: &str) -> String {
    // A `*/` inside would end the comment early.
    format!("/* {} */ ", description.replace("*/", "* /"))
}

/// `encode(a <mod>, b <mod>, ...)` of the given variables.
pub fn encode_call(volumes: &[String]) -> String {
    let args: Vec<String> = volumes.iter().map(|v| format!("{v} <mod>")).collect();
    format!("encode({})", args.join(", "))
}

/// `generate(enc <mod:target>)`, indexed with `[0]` when the encoding has several streams of
/// one session (all of its masks are the same region).
pub fn generate_first(encoding: &str, target: &str, streams: usize) -> String {
    if streams > 1 {
        format!("generate({encoding} <mod:{target}>)[0]")
    } else {
        format!("generate({encoding} <mod:{target}>)")
    }
}

/// A Rhai string literal.
pub fn rhai_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

enum ReplyPart {
    Text(String),
    Expr(String),
}

/// One response line: literal text and numbers computed by the program. Gives both the Rhai
/// `respond(...)` call and the text it prints when every number equals its true value, plus
/// the expected numbers for the checker.
///
/// ```
/// use tasks::program::Reply;
/// use tasks::checker::Quantity;
/// let r = Reply::new()
///     .text("Volume of the left hippocampus: ")
///     .number("volume(m)", 4.18879, Quantity::VolumeMl, "volume")
///     .text(".");
/// assert_eq!(r.code(), "respond(\"Volume of the left hippocampus: \" + volume(m) + \" mL.\");");
/// assert_eq!(r.expected_text(), "Volume of the left hippocampus: 4.189 mL.");
/// ```
#[derive(Default)]
pub struct Reply {
    parts: Vec<ReplyPart>,
    text: String,
    numbers: Vec<ExpectedNumber>,
}

impl Reply {
    /// An empty line.
    pub fn new() -> Reply {
        Reply::default()
    }

    /// Appends literal text (a leading `.` after a unit that ends in one, `a.u.`, is dropped).
    pub fn text(mut self, s: &str) -> Reply {
        let s = match s.strip_prefix('.') {
            Some(rest) if self.text.ends_with('.') => rest,
            _ => s,
        };
        if s.is_empty() {
            return self;
        }
        self.text.push_str(s);
        match self.parts.last_mut() {
            Some(ReplyPart::Text(t)) => t.push_str(s),
            _ => self.parts.push(ReplyPart::Text(s.to_string())),
        }
        self
    }

    /// Appends the number the Rhai expression `expr` computes (true value `value`) and its
    /// unit.
    pub fn number(self, expr: &str, value: f64, quantity: Quantity, what: &str) -> Reply {
        self.number_with_reference(expr, value, quantity, what, None)
    }

    /// [`Reply::number`] with a reference magnitude for relative tolerances.
    pub fn number_with_reference(
        mut self,
        expr: &str,
        value: f64,
        quantity: Quantity,
        what: &str,
        reference: Option<f64>,
    ) -> Reply {
        self.parts.push(ReplyPart::Expr(expr.to_string()));
        if quantity == Quantity::Count {
            self.text.push_str(&format!("{}", value.round() as i64));
        } else {
            self.text.push_str(&runtime::format_number(value));
        }
        self.numbers.push(ExpectedNumber {
            what: what.to_string(),
            value,
            quantity,
            reference,
        });
        let unit = quantity.unit().text();
        if unit.is_empty() {
            self
        } else {
            self.text(&format!(" {unit}"))
        }
    }

    /// The `respond(...);` statement.
    pub fn code(&self) -> String {
        let mut pieces: Vec<String> = Vec::new();
        if !matches!(self.parts.first(), Some(ReplyPart::Text(_))) {
            pieces.push("\"\"".into());
        }
        for p in &self.parts {
            pieces.push(match p {
                ReplyPart::Text(t) => rhai_string(t),
                ReplyPart::Expr(e) => e.clone(),
            });
        }
        format!("respond({});", pieces.join(" + "))
    }

    /// The line as printed with the true values.
    pub fn expected_text(&self) -> &str {
        &self.text
    }

    /// The numbers, in order.
    pub fn numbers(&self) -> &[ExpectedNumber] {
        &self.numbers
    }
}
