//! Intensity statistics in a region: mean MR intensity on a named contrast, mean attenuation on
//! CT (HU), mean ADC (10⁻³ mm²/s), and SNR with the noise measured in the background air.

use super::segmentation::missing;
use super::{done, encode_step, input_of, roi_case, roi_feasible, roi_space, scenario_roi};
use crate::catalogue::Catalogue;
use crate::checker::Quantity;
use crate::error::{Result, TaskError};
use crate::family::{pick_contrasts, Family, FamilyInfo, Group, Outcome};
use crate::grammar::GrammarBuilder;
use crate::phrases::modality_name;
use crate::program::{generate_first, ProgramBuilder, Reply};
use crate::scenario::{Key, Roi, Scenario};
use crate::truth::MaskDef;
use rand::rngs::StdRng;
use rand::Rng;
use synth::Contrast;

/// The statistics families.
pub fn families() -> Vec<Box<dyn Family>> {
    [Stat::Mean, Stat::Hu, Stat::Adc, Stat::Snr]
        .into_iter()
        .map(|s| Box::new(RoiStat(s)) as Box<dyn Family>)
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stat {
    Mean,
    Hu,
    Adc,
    Snr,
}

/// MR contrasts mean-intensity questions name.
const MEAN_CONTRASTS: &[Contrast] = &[
    Contrast::T1,
    Contrast::T2,
    Contrast::Flair,
    Contrast::Pd,
    Contrast::Gre,
    Contrast::T1c,
    Contrast::Dwi,
];

/// MR contrasts SNR questions name.
const SNR_CONTRASTS: &[Contrast] = &[Contrast::T1, Contrast::T2, Contrast::Flair, Contrast::Pd];

/// A statistic of the intensities in a region.
pub struct RoiStat(Stat);

impl Family for RoiStat {
    fn info(&self) -> FamilyInfo {
        match self.0 {
            Stat::Mean => FamilyInfo {
                id: "mean_intensity",
                group: Group::Statistics,
                asks: "the mean intensity of a region (anatomy or lesion) on a named MR contrast",
                inputs: "the named contrast and up to one more; one session",
                program: "encode → read(e) → generate region → mean(scan_k, m) on the named contrast → respond → stop",
                answer: "`Mean M intensity in the X: I a.u.`",
                tolerance: "±5 % or 0.02 a.u.",
            },
            Stat::Hu => FamilyInfo {
                id: "mean_hu",
                group: Group::Statistics,
                asks: "the mean attenuation of a region on CT, in Hounsfield units",
                inputs: "CT in HU; one session",
                program: "encode → read(e) → generate region → mean(scan_1, m) → respond → stop",
                answer: "`Mean attenuation of the X: A HU.`",
                tolerance: "±5 HU",
            },
            Stat::Adc => FamilyInfo {
                id: "mean_adc",
                group: Group::Statistics,
                asks: "the mean ADC of a region, in 10⁻³ mm²/s",
                inputs: "ADC map in 10⁻³ mm²/s, with DWI half the time; one session",
                program: "encode → read(e) → generate region → mean(adc, m) → respond → stop",
                answer: "`Mean ADC of the X: D ×10⁻³ mm²/s.`",
                tolerance: "±10 % or 0.05",
            },
            Stat::Snr => FamilyInfo {
                id: "snr",
                group: Group::Statistics,
                asks: "the SNR of a brain region on a named MR contrast, noise from the background air",
                inputs: "the named contrast and up to one more; one session",
                program: "encode → read(e) → generate region and background air → snr(scan_k, m, air) → respond → stop",
                answer: "`SNR of the X on M: S (noise measured in the background air).`",
                tolerance: "±10 % or 0.5",
            },
        }
    }

    fn templates(&self) -> &'static [&'static str] {
        match self.0 {
            Stat::Mean => &[
                "{what_is} the mean {contrast} intensity {of_in} the {roi}{qend}",
                "{req}{measure_verb} the average {contrast} signal in the {roi}{end}",
                "mean {contrast} signal of the {roi}{qend}",
                "how bright is the {roi} on {contrast}, on average{qend}",
                "{can_you}{measure_verb} the mean intensity of the {roi} on the {contrast}{qend}",
                "{i_need} the average {contrast} intensity {of_in} the {roi}{end}",
                "{roi}: mean {contrast} intensity{qend}",
            ],
            Stat::Hu => &[
                "{what_is} the mean {hu_word} of the {roi}{qend}",
                "{req}{measure_verb} the average {hu_word} in the {roi}{end}",
                "how dense is the {roi} on CT{qend}",
                "mean {hu_word} {of_in} the {roi}{qend}",
                "{can_you}{measure_verb} the {roi} attenuation in HU{qend}",
                "{i_need} the average CT density of the {roi}{end}",
                "{roi} HU{please_suffix}",
            ],
            Stat::Adc => &[
                "{what_is} the mean {adc_word} of the {roi}{qend}",
                "{req}{measure_verb} the average {adc_word} in the {roi}{end}",
                "mean {adc_word} {of_in} the {roi}{qend}",
                "how fast is diffusion in the {roi}{qend}",
                "{can_you}{measure_verb} the {roi} {adc_word}{qend}",
                "{i_need} the average {adc_word} {of_in} the {roi} in 10^-3 mm2/s{end}",
                "{roi}: mean {adc_word}{please_suffix}",
            ],
            Stat::Snr => &[
                "{what_is} the {snr_word} of the {roi} on {contrast}{qend}",
                "{req}{measure_verb} the {snr_word} in the {roi} on the {contrast}{end}",
                "{snr_word} of the {roi} ({contrast}){qend}",
                "how noisy is the {contrast}? {measure_verb} the {snr_word} of the {roi}{end}",
                "{can_you}{measure_verb} the {contrast} {snr_word} {of_in} the {roi}{qend}",
                "{i_need} the {snr_word} for the {roi} on {contrast}, noise from the background{end}",
                "{roi} {snr_word} on {contrast}{please_suffix}",
            ],
        }
    }

    fn rules(&self, g: &mut GrammarBuilder) {
        g.rule("of_in", &["of", "in", "within", "inside"]);
        g.rule(
            "hu_word",
            &[
                "HU",
                "Hounsfield units",
                "attenuation",
                "density",
                "CT number",
            ],
        );
        g.rule(
            "adc_word",
            &[
                "ADC",
                "apparent diffusion coefficient",
                "ADC value",
                "diffusivity",
            ],
        );
        g.rule(
            "snr_word",
            &[
                "SNR",
                "signal-to-noise ratio",
                "signal to noise",
                "signal-to-noise",
            ],
        );
    }

    fn space(&self, cat: &Catalogue) -> Result<Vec<Scenario>> {
        let within = |t: &synth::Target, group: &str| {
            t.name != group && cat.vocab().is_within(&t.name, group)
        };
        let (rois, contrasts): (Vec<Roi>, &[Contrast]) = match self.0 {
            Stat::Mean => (roi_space(cat, |_| true, |_| true), MEAN_CONTRASTS),
            Stat::Hu => (roi_space(cat, |_| true, |c| c.entry.focal), &[]),
            Stat::Adc => (
                roi_space(cat, |t| within(t, "intracranial volume"), |_| true),
                &[],
            ),
            Stat::Snr => (
                roi_space(cat, |t| within(t, "brain"), |_| false),
                SNR_CONTRASTS,
            ),
        };
        let mut out = Vec::new();
        for r in rois {
            let base = Scenario::new().with("roi", Key::Roi(r));
            if contrasts.is_empty() {
                out.push(base.clone());
            }
            for &c in contrasts {
                out.push(base.clone().with("contrast", Key::Contrast(c)));
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
        let asked = match (self.0, s.get("contrast")) {
            (Stat::Hu, _) => Contrast::Ct,
            (Stat::Adc, _) => Contrast::Adc,
            (_, Some(Key::Contrast(c))) => c,
            _ => return Err(missing(id, "contrast")),
        };
        let contrasts = match self.0 {
            Stat::Hu => vec![Contrast::Ct],
            Stat::Adc => {
                let n = rng.random_range(1..=2);
                pick_contrasts(Some(Contrast::Adc), &[Contrast::Dwi], n, rng)
            }
            _ => {
                let n = rng.random_range(1..=2);
                pick_contrasts(
                    Some(asked),
                    &[Contrast::T1, Contrast::T2, Contrast::Flair],
                    n,
                    rng,
                )
            }
        };
        let case = match roi_case(cat, roi, &contrasts, rng)? {
            Ok(c) => c,
            Err(why) => return Ok(Outcome::Rejected(why)),
        };
        let input = input_of(&case.inputs, asked).ok_or_else(|| TaskError::Program {
            family: id.into(),
            problem: format!("no {} input", asked.name()),
        })?;
        let scan = input.name.clone();
        let name = case.name.clone();
        let mut p = ProgramBuilder::new();
        p.target("roi", &name, case.def.clone());
        p.step(encode_step(&case.inputs));
        let generate = generate_first("e", "roi", case.inputs.len());
        let reply = match self.0 {
            Stat::Snr => {
                let air_def = MaskDef::Anatomy { ids: vec![0] };
                p.target("air", "background air around the head", air_def.clone());
                let air = case.synth.truth.mask(&air_def, 0)?;
                let value = voxel::measure::snr(&input.image, &case.mask, Some(&air))?;
                p.step(format!(
                    "let m = {generate};\nlet air = {};\nlet s = snr({scan}, m, air);\nread(s);",
                    generate_first("e", "air", case.inputs.len())
                ));
                Reply::new()
                    .text(&format!("SNR of the {name} on {}: ", modality_name(asked)))
                    .number("s", value, Quantity::Snr, &format!("SNR of the {name}"))
                    .text(" (noise measured in the background air).")
            }
            stat => {
                let (value, _) = voxel::measure::mean_std(&input.image, &case.mask)?;
                p.step(format!(
                    "let m = {generate};\nlet mu = mean({scan}, m);\nread(mu);"
                ));
                let (lead, quantity) = match stat {
                    Stat::Hu => (format!("Mean attenuation of the {name}: "), Quantity::Hu),
                    Stat::Adc => (format!("Mean ADC of the {name}: "), Quantity::Adc),
                    _ => (
                        format!("Mean {} intensity in the {name}: ", modality_name(asked)),
                        Quantity::IntensityAu,
                    ),
                };
                Reply::new()
                    .text(&lead)
                    .number("mu", value, quantity, &format!("mean of the {name}"))
                    .text(".")
            }
        };
        p.step(format!("{}\nstop();", reply.code()));
        done(&p, case.inputs, &case.synth, &[reply], vec![], vec![])
    }
}
