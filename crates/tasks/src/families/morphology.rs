//! Size of a region: volume, bounding-box dimensions, or one dimension (width, depth, height,
//! largest diameter).

use super::segmentation::missing;
use super::{
    done, encode_step, maybe_skull_strip, roi_case_any_contrasts, roi_feasible, roi_space,
    scenario_roi,
};
use crate::catalogue::Catalogue;
use crate::checker::Quantity;
use crate::error::Result;
use crate::family::{Family, FamilyInfo, Group, Outcome};
use crate::grammar::GrammarBuilder;
use crate::program::{generate_first, ProgramBuilder, Reply};
use crate::scenario::{Dimension, Key, Scenario};
use rand::rngs::StdRng;

/// The morphology families.
pub fn families() -> Vec<Box<dyn Family>> {
    [Measure::Volume, Measure::Extents, Measure::Dimension]
        .into_iter()
        .map(|m| Box::new(Morphology(m)) as Box<dyn Family>)
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Measure {
    Volume,
    Extents,
    Dimension,
}

/// A size measurement of a region.
pub struct Morphology(Measure);

impl Family for Morphology {
    fn info(&self) -> FamilyInfo {
        match self.0 {
            Measure::Volume => FamilyInfo {
                id: "volume",
                group: Group::Morphology,
                asks: "the volume of a region (anatomy or lesion)",
                inputs: "1–2 contrasts of one session",
                program: "encode → read(e) → generate region → volume → read → respond → stop",
                answer: "`Volume of the X: V mL.`",
                tolerance: "±10 % or 0.1 mL",
            },
            Measure::Extents => FamilyInfo {
                id: "bounding_box",
                group: Group::Morphology,
                asks: "the bounding-box dimensions of a region along left-right, anterior-posterior, superior-inferior",
                inputs: "1–2 contrasts of one session",
                program: "encode → read(e) → generate region → extents → read → respond → stop",
                answer: "`The X spans A mm left-right, B mm anterior-posterior and C mm superior-inferior.`",
                tolerance: "each ±10 % or 3 mm",
            },
            Measure::Dimension => FamilyInfo {
                id: "dimension",
                group: Group::Morphology,
                asks: "one size of a region: width (L-R), depth (A-P), height (S-I) or largest diameter",
                inputs: "1–2 contrasts of one session",
                program: "encode → read(e) → generate region → extents → pick / max → read → respond → stop",
                answer: "`The D of the X is L mm.`",
                tolerance: "±10 % or 3 mm",
            },
        }
    }

    fn templates(&self) -> &'static [&'static str] {
        match self.0 {
            Measure::Volume => &[
                "{what_is} the volume of the {roi}{qend}",
                "how {big_word} is the {roi}{qend}",
                "{req}{measure_verb} the {roi} volume{in_scan}{end}",
                "{roi} volume{qend}",
                "{can_you}{measure_verb} the size of the {roi} in mL{qend}",
                "{i_need} the volume of the {roi} in millilitres{end}",
                "how many mL is the {roi}{qend}",
                "{req}run volumetry on the {roi}{end}",
            ],
            Measure::Extents => &[
                "{what_is} the bounding box size of the {roi}{qend}",
                "{req}{measure_verb} the dimensions of the {roi}{end}",
                "how large is the {roi} in each direction{qend}",
                "{roi} extents in mm{qend}",
                "{can_you}{measure_verb} the three dimensions of the {roi}{qend}",
                "{i_need} the left-right, anteroposterior and craniocaudal size of the {roi}{end}",
                "{req}give the bounding box of the {roi} in millimetres{end}",
            ],
            Measure::Dimension => &[
                "{what_is} the {dim} of the {roi}{qend}",
                "{req}{measure_verb} the {dim} of the {roi}{end}",
                "{roi} {dim}{qend}",
                "{can_you}{measure_verb} the {roi}'s {dim}{qend}",
                "{i_need} the {dim} of the {roi} in mm{end}",
                "{roi}: {dim} in millimetres{please_suffix}",
                "{req}{measure_verb} the {dim} of the {roi} on {the_scan}{end}",
            ],
        }
    }

    fn rules(&self, g: &mut GrammarBuilder) {
        g.rule("big_word", &["big", "large", "voluminous"]);
    }

    fn space(&self, cat: &Catalogue) -> Result<Vec<Scenario>> {
        let rois = roi_space(cat, |_| true, |_| true);
        let mut out = Vec::new();
        for r in rois {
            let base = Scenario::new().with("roi", Key::Roi(r));
            if self.0 == Measure::Dimension {
                for d in Dimension::ALL {
                    out.push(base.clone().with("dim", Key::Dimension(d)));
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
        let name = case.name.clone();
        let mut p = ProgramBuilder::new();
        p.target("roi", &name, case.def.clone());
        p.step(encode_step(&case.inputs));
        let m = generate_first("e", "roi", case.inputs.len());
        let ext = voxel::measure::extents_mm(&case.mask)?;
        let reply = match self.0 {
            Measure::Volume => {
                p.step(format!("let m = {m};\nlet v = volume(m);\nread(v);"));
                Reply::new()
                    .text(&format!("Volume of the {name}: "))
                    .number(
                        "v",
                        voxel::measure::volume_ml(&case.mask),
                        Quantity::VolumeMl,
                        &format!("volume of the {name}"),
                    )
                    .text(".")
            }
            Measure::Extents => {
                p.step(format!("let m = {m};\nlet x = extents(m);\nread(x);"));
                let what = |axis: &str| format!("{axis} size of the {name}");
                Reply::new()
                    .text(&format!("The {name} spans "))
                    .number("x[0]", ext[0], Quantity::LengthMm, &what("left-right"))
                    .text(" left-right, ")
                    .number(
                        "x[1]",
                        ext[1],
                        Quantity::LengthMm,
                        &what("anterior-posterior"),
                    )
                    .text(" anterior-posterior and ")
                    .number(
                        "x[2]",
                        ext[2],
                        Quantity::LengthMm,
                        &what("superior-inferior"),
                    )
                    .text(" superior-inferior.")
            }
            Measure::Dimension => {
                let Some(Key::Dimension(d)) = s.get("dim") else {
                    return Err(missing(id, "dim"));
                };
                let (code, value) = match d {
                    Dimension::Width => ("x[0]", ext[0]),
                    Dimension::Depth => ("x[1]", ext[1]),
                    Dimension::Height => ("x[2]", ext[2]),
                    Dimension::LargestDiameter => {
                        ("max(x[0], max(x[1], x[2]))", ext[0].max(ext[1]).max(ext[2]))
                    }
                };
                p.step(format!(
                    "let m = {m};\nlet x = extents(m);\nlet d = {code};\nread(d);"
                ));
                Reply::new()
                    .text(&format!("The {} of the {name} is ", d.word()))
                    .number(
                        "d",
                        value,
                        Quantity::LengthMm,
                        &format!("{} of the {name}", d.word()),
                    )
                    .text(".")
            }
        };
        p.step(format!("{}\nstop();", reply.code()));
        done(&p, case.inputs, &case.synth, &[reply], vec![], vec![])
    }
}
