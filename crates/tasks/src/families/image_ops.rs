//! Image operations around a region: remove it (set it to 0), extract it (keep only it), or
//! crop the field of view to it with a margin.

use super::segmentation::missing;
use super::{
    done, encode_step, maybe_skull_strip, roi_case_any_contrasts, roi_feasible, roi_space,
    scenario_roi,
};
use crate::catalogue::Catalogue;
use crate::checker::{ExpectedOutput, OutputKind, Quantity};
use crate::error::Result;
use crate::family::{Family, FamilyInfo, Group, Outcome};
use crate::grammar::GrammarBuilder;
use crate::program::{generate_first, ProgramBuilder, Reply};
use crate::scenario::{Key, Roi, Scenario};
use rand::rngs::StdRng;

/// Margin used when the prompt names none, mm.
pub const DEFAULT_MARGIN_MM: u32 = 10;

/// Margins prompts may name, mm.
const MARGINS_MM: &[u32] = &[5, 10, 15, 20, 25, 30];

/// The image-operation families.
pub fn families() -> Vec<Box<dyn Family>> {
    vec![
        Box::new(ImageOp(Op::Remove)),
        Box::new(ImageOp(Op::Extract)),
        Box::new(ImageOp(Op::Crop)),
        Box::new(ImageOp(Op::SkullStrip)),
    ]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Remove,
    Extract,
    Crop,
    /// Extract with the region fixed to the brain mask, asked in skull-stripping words.
    SkullStrip,
}

/// The vocabulary target skull stripping keeps (docs/vocabulary.md, "Everyday meanings").
pub const SKULL_STRIP_TARGET: &str = "brain mask";

/// Remove, extract or crop around a region of interest.
pub struct ImageOp(Op);

impl Family for ImageOp {
    fn info(&self) -> FamilyInfo {
        let (id, asks, answer) = match self.0 {
            Op::Remove => (
                "remove_roi",
                "the scan with a region (anatomy or lesion) set to 0",
                "volume `removed` = remove(scan_1, roi); `Removed the X (V mL) from scan_1.`",
            ),
            Op::Extract => (
                "extract_roi",
                "the scan inside a region only (e.g. keep only the hippocampus; \"extract the brain\" is skull_strip)",
                "volume `extracted` = mask_image(scan_1, roi); `Extracted the X (V mL) from scan_1.`",
            ),
            Op::SkullStrip => (
                "skull_strip",
                "the scan skull-stripped: everything outside the brain mask (the brain with its ventricles) set to 0",
                "volume `brain` = mask_image(scan_1, brain mask); `Skull-stripped scan_1: the brain mask is V mL.`",
            ),
            Op::Crop => (
                "crop_to_roi",
                "the scan cropped to a region's bounding box plus a margin (default 10 mm)",
                "volume `cropped` = crop_to(scan_1, roi, M); `Cropped scan_1 to the X (V mL) with a M mm margin.`",
            ),
        };
        FamilyInfo {
            id,
            group: Group::ImageOps,
            asks,
            inputs: "1–2 contrasts of one session; a lesion when the region is one",
            program: "encode → read(e) → generate region → read(volume) → remove / mask_image / crop_to on scan_1 → show + respond → stop",
            answer,
            tolerance: "region of the output overlaps the true one with Dice ≥ 0.7, intensities copied from scan_1; volume ±10 %; margin exact",
        }
    }

    fn templates(&self) -> &'static [&'static str] {
        match self.0 {
            Op::Remove => &[
                "{req}{remove_verb} the {roi} from {the_scan}{end}",
                "{req}{remove_verb} the {roi}{end}",
                "{can_you}{remove_verb} the {roi} from {the_scan}{qend}",
                "{i_want} {the_scan} without the {roi}{end}",
                "{req}set the {roi} to zero in {the_scan}{end}",
                "{the_scan} with the {roi} {removed_adj}{please_suffix}",
                "{req}make a copy of {the_scan} with the {roi} {removed_adj}{end}",
            ],
            Op::Extract => &[
                "{req}{extract_verb} the {roi} from {the_scan}{end}",
                "{req}{extract_verb} the {roi}{end}",
                "{can_you}{extract_verb} the {roi}{qend}",
                "{i_want} an image of only the {roi}{end}",
                "{req}keep only the {roi}{in_scan} and zero the rest{end}",
                "{the_scan} restricted to the {roi}{please_suffix}",
                "{req}mask {the_scan} to the {roi}{end}",
            ],
            Op::SkullStrip => &[
                "{req}{strip_verb} {the_scan}{end}",
                "{req}{strip_verb}{end}",
                "{can_you}{strip_verb} {the_scan}{qend}",
                "{req}remove the skull and everything outside the brain{in_scan}{end}",
                "{i_want} {the_scan} {stripped_adj}{end}",
                "{req}brain extraction{in_scan}{please_suffix}",
                "{req}extract the brain from {the_scan}{end}",
            ],
            Op::Crop => &[
                "{req}{crop_verb} {the_scan} to the {roi}{margin}{end}",
                "{req}{crop_verb} around the {roi}{margin}{end}",
                "{can_you}{crop_verb} {the_scan} to the {roi}{margin}{qend}",
                "{req}zoom in on the {roi}{margin}{end}",
                "{req}restrict the field of view to the {roi}{margin}{end}",
                "{i_want} a crop of {the_scan} around the {roi}{margin}{end}",
                "{req}cut a box around the {roi}{margin}{end}",
            ],
        }
    }

    fn rules(&self, g: &mut GrammarBuilder) {
        g.rule(
            "remove_verb",
            &[
                "remove",
                "blank out",
                "zero out",
                "mask out",
                "erase",
                "strip",
                "cut out",
                "delete",
                "black out",
            ],
        );
        g.rule(
            "removed_adj",
            &["removed", "blanked out", "zeroed", "masked out", "erased"],
        );
        g.rule(
            "extract_verb",
            &[
                "extract",
                "isolate",
                "pull out",
                "separate out",
                "segment out and keep",
            ],
        );
        g.rule("crop_verb", &["crop", "trim", "cut down", "reduce"]);
        g.rule(
            "strip_verb",
            &[
                "skull strip",
                "skull-strip",
                "strip the skull from",
                "do brain extraction on",
                "run BET on",
                "remove the non-brain tissue from",
            ],
        );
        g.rule(
            "stripped_adj",
            &[
                "skull stripped",
                "skull-stripped",
                "brain-extracted",
                "with the skull removed",
            ],
        );
    }

    fn space(&self, cat: &Catalogue) -> Result<Vec<Scenario>> {
        let rois = match self.0 {
            Op::SkullStrip => vec![Roi::Anatomy(cat.target_index(SKULL_STRIP_TARGET)?)],
            // "Extract the brain" means skull stripping (the brain mask), not the parenchyma.
            Op::Extract => roi_space(cat, |t| t.name != "brain", |_| true),
            _ => roi_space(cat, |_| true, |_| true),
        };
        let mut out = Vec::new();
        for r in rois {
            let base = Scenario::new().with("roi", Key::Roi(r));
            if self.0 == Op::Crop {
                out.push(base.clone().with("margin", Key::Margin(None)));
                for &m in MARGINS_MM {
                    out.push(base.clone().with("margin", Key::Margin(Some(m))));
                }
            } else {
                out.push(base);
            }
        }
        Ok(out)
    }

    fn feasible(&self, cat: &Catalogue, s: &Scenario) -> bool {
        scenario_roi(s, "roi").is_some_and(|r| roi_feasible(cat, r))
    }

    fn realise(&self, cat: &Catalogue, s: &Scenario, rng: &mut StdRng) -> Result<Outcome> {
        let id = self.info().id;
        let roi = scenario_roi(s, "roi").ok_or_else(|| missing(id, "roi"))?;
        let mut case = match roi_case_any_contrasts(cat, roi, rng)? {
            Ok(c) => c,
            Err(why) => return Ok(Outcome::Rejected(why)),
        };
        maybe_skull_strip(cat, &mut case, rng)?;
        let name = &case.name;
        let ml = voxel::measure::volume_ml(&case.mask);
        let mut p = ProgramBuilder::new();
        p.target("roi", name, case.def.clone());
        p.step(encode_step(&case.inputs));
        p.step(format!(
            "let m = {};\nread(volume(m));",
            generate_first("e", "roi", case.inputs.len())
        ));
        let what = format!("volume of the {name}");
        let (output, kind, reply) = match self.0 {
            Op::Remove => (
                "removed",
                OutputKind::Removed,
                Reply::new()
                    .text(&format!("Removed the {name} ("))
                    .number("volume(m)", ml, Quantity::VolumeMl, &what)
                    .text(") from scan_1."),
            ),
            Op::Extract => (
                "extracted",
                OutputKind::Extracted,
                Reply::new()
                    .text(&format!("Extracted the {name} ("))
                    .number("volume(m)", ml, Quantity::VolumeMl, &what)
                    .text(") from scan_1."),
            ),
            Op::SkullStrip => (
                "brain",
                OutputKind::Extracted,
                Reply::new()
                    .text(&format!("Skull-stripped scan_1: the {name} is "))
                    .number("volume(m)", ml, Quantity::VolumeMl, &what)
                    .text("."),
            ),
            Op::Crop => {
                let Some(Key::Margin(m)) = s.get("margin") else {
                    return Err(missing(id, "margin"));
                };
                let margin = m.unwrap_or(DEFAULT_MARGIN_MM);
                (
                    "cropped",
                    OutputKind::Cropped {
                        margin_mm: f64::from(margin),
                    },
                    Reply::new()
                        .text(&format!("Cropped scan_1 to the {name} ("))
                        .number("volume(m)", ml, Quantity::VolumeMl, &what)
                        .text(") with a ")
                        .number(
                            &format!("{margin}.0"),
                            f64::from(margin),
                            Quantity::MarginMm,
                            "margin",
                        )
                        .text(" margin."),
                )
            }
        };
        let call = match kind {
            OutputKind::Removed => "remove(scan_1, m)".to_string(),
            OutputKind::Extracted => "mask_image(scan_1, m)".to_string(),
            OutputKind::Cropped { margin_mm } => {
                format!("crop_to(scan_1, m, {})", margin_mm as u32)
            }
            OutputKind::Mask => "m".to_string(),
        };
        p.step(format!(
            "let out = {call};\nshow(out, \"{output}\");\n{}\nstop();",
            reply.code()
        ));
        let expected = ExpectedOutput {
            name: output.into(),
            input: "scan_1".into(),
            session: 0,
            target: case.def.clone(),
            kind,
        };
        done(
            &p,
            case.inputs,
            &case.synth,
            &[reply],
            vec![],
            vec![expected],
        )
    }
}
