//! Descriptor-targeted segmentation in subjects with two lesions: the one picked out by its
//! hemisphere, lobe, size, signal or relative position. The subject is accepted only when the
//! descriptor singles out exactly one lesion (sides and lobes differ, volumes differ by 1.5×,
//! positions by 10 mm, exactly one lesion has the asked signal).

use super::segmentation::missing;
use super::{done, encode_step};
use crate::catalogue::Catalogue;
use crate::checker::{ExpectedOutput, OutputKind, Quantity};
use crate::error::Result;
use crate::family::{
    bind_inputs, pick_contrasts, synthesize, Family, FamilyInfo, Group, Outcome, MIN_ROI_VOXELS,
};
use crate::program::{generate_first, ProgramBuilder, Reply};
use crate::scenario::{Direction, Intensity, Key, Lobe, Scenario, Side, Size};
use crate::truth::MaskDef;
use rand::rngs::StdRng;
use rand::Rng;
use synth::{Contrast, Hemisphere, LesionClass};

/// Least volume ratio between the two lesions for "the larger/smaller".
pub const SIZE_RATIO: f64 = 1.5;
/// Least distance between the two lesions along the asked direction, mm.
pub const POSITION_GAP_MM: f64 = 10.0;

/// The descriptor families.
pub fn families() -> Vec<Box<dyn Family>> {
    [
        Kind::Side,
        Kind::Lobe,
        Kind::Size,
        Kind::Signal,
        Kind::Position,
    ]
    .into_iter()
    .map(|k| Box::new(Descriptor(k)) as Box<dyn Family>)
    .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Side,
    Lobe,
    Size,
    Signal,
    Position,
}

/// Segment the lesion a descriptor picks out among two.
pub struct Descriptor(Kind);

const CLASS_TEMPLATES: &[&str] = &[
    "{req}{seg_verb} the {desc.adj} {lesion}{in_scan}{end}",
    "{req}{seg_verb} the {lesion} {desc.rel}{end}",
    "there are two {lesion.pl}; {seg_verb} the {desc.adj} one{end}",
    "there are two {lesion.pl}; {seg_verb} the one {desc.rel}{end}",
    "{can_you}{show_verb} the {lesion} {desc.rel}{qend}",
    "{i_want} a {seg_noun} of the {desc.adj} {lesion}{end}",
    "{where_q} the {desc.adj} {lesion}{qend}",
    "of the two {lesion.pl}, {seg_verb} the {desc.adj} one{end}",
];

const SIGNAL_TEMPLATES: &[&str] = &[
    "{req}{seg_verb} the {desc.adj} {lesion_word}{in_scan}{end}",
    "{req}{seg_verb} the {lesion_word} {desc.rel}{end}",
    "there are two {lesions_word}; {seg_verb} the {desc.adj} one{end}",
    "there are two {lesions_word}; {seg_verb} the one {desc.rel}{end}",
    "{can_you}{show_verb} the {lesion_word} {desc.rel}{qend}",
    "{i_want} a {seg_noun} of the {desc.adj} {lesion_word}{end}",
    "{where_q} the {desc.adj} {lesion_word}{qend}",
    "of the two {lesions_word}, {seg_verb} the one {desc.rel}{end}",
];

/// Contrasts a signal descriptor may name.
const SIGNAL_CONTRASTS: &[Contrast] = &[
    Contrast::T1,
    Contrast::T2,
    Contrast::Flair,
    Contrast::Dwi,
    Contrast::Adc,
    Contrast::T1c,
];

impl Family for Descriptor {
    fn info(&self) -> FamilyInfo {
        let (id, asks) = match self.0 {
            Kind::Side => ("segment_by_hemisphere", "a mask of the lesion in the named hemisphere, of two lesions"),
            Kind::Lobe => ("segment_by_lobe", "a mask of the lesion in the named lobe, of two lesions"),
            Kind::Size => ("segment_by_size", "a mask of the larger or smaller of two lesions"),
            Kind::Signal => ("segment_by_signal", "a mask of the one of two lesions (of different classes) that is hyper-/hypointense on a contrast"),
            Kind::Position => ("segment_by_position", "a mask of the more anterior/posterior/superior/inferior/medial/lateral of two lesions"),
        };
        FamilyInfo {
            id,
            group: Group::Descriptor,
            asks,
            inputs: if self.0 == Kind::Signal {
                "the named contrast and up to one more; one session; two lesions of different classes"
            } else {
                "1–2 contrasts the class is conspicuous on; one session; two lesions of one class"
            },
            program: "encode → read(e) → generate the described lesion → read(volume, centroid) → show + respond volume → stop",
            answer: "mask `segmentation` of the described lesion; `Segmented the D: V mL.`",
            tolerance: "Dice ≥ 0.7 with the described lesion (the other lesion fails); volume ±10 %",
        }
    }

    fn templates(&self) -> &'static [&'static str] {
        if self.0 == Kind::Signal {
            SIGNAL_TEMPLATES
        } else {
            CLASS_TEMPLATES
        }
    }

    fn space(&self, cat: &Catalogue) -> Result<Vec<Scenario>> {
        let descs: Vec<Key> = match self.0 {
            Kind::Side => vec![Key::Side(Side::Left), Key::Side(Side::Right)],
            Kind::Lobe => Lobe::ALL.iter().map(|&l| Key::Lobe(l)).collect(),
            Kind::Size => vec![Key::Size(Size::Larger), Key::Size(Size::Smaller)],
            Kind::Position => Direction::ALL.iter().map(|&d| Key::Position(d)).collect(),
            Kind::Signal => {
                let mut v = Vec::new();
                for &c in SIGNAL_CONTRASTS {
                    for i in [Intensity::Hyper, Intensity::Hypo] {
                        v.push(Key::Signal(c, i));
                    }
                }
                return Ok(v
                    .into_iter()
                    .map(|d| Scenario::new().with("desc", d))
                    .collect());
            }
        };
        let mut out = Vec::new();
        for (c, class) in cat.classes().iter().enumerate() {
            if !(class.entry.focal && class.entry.multiple) {
                continue;
            }
            for &d in &descs {
                out.push(
                    Scenario::new()
                        .with("lesion", Key::Class(c))
                        .with("desc", d),
                );
            }
        }
        Ok(out)
    }

    fn subject_attempts(&self) -> usize {
        12
    }

    fn realise(&self, cat: &Catalogue, s: &Scenario, rng: &mut StdRng) -> Result<Outcome> {
        let id = self.info().id;
        let desc = s.get("desc").ok_or_else(|| missing(id, "desc"))?;
        // The two lesions' classes (as table indices) and the contrasts to render.
        let (classes, contrasts): (Vec<usize>, Vec<Contrast>) = match (self.0, desc) {
            (Kind::Signal, Key::Signal(c, _)) => {
                let focal: Vec<usize> = cat
                    .classes()
                    .iter()
                    .enumerate()
                    .filter(|(_, x)| x.entry.focal)
                    .map(|(i, _)| i)
                    .collect();
                if focal.len() < 2 {
                    return Ok(Outcome::Rejected(
                        "fewer than two focal lesion classes".into(),
                    ));
                }
                let a = focal[rng.random_range(0..focal.len())];
                let others: Vec<usize> = focal.iter().copied().filter(|&x| x != a).collect();
                let b = others[rng.random_range(0..others.len())];
                let n = rng.random_range(1..=2);
                (
                    vec![a, b],
                    pick_contrasts(
                        Some(c),
                        &[Contrast::Flair, Contrast::T2, Contrast::T1],
                        n,
                        rng,
                    ),
                )
            }
            _ => {
                let Some(Key::Class(c)) = s.get("lesion") else {
                    return Err(missing(id, "lesion"));
                };
                let pool = cat.class(c)?.entry.contrasts;
                let n = rng.random_range(1..=2);
                let first = pool[rng.random_range(0..pool.len())];
                (vec![c, c], pick_contrasts(Some(first), pool, n, rng))
            }
        };
        let lesions: Vec<LesionClass> = classes
            .iter()
            .map(|&c| cat.class(c).map(|x| x.class))
            .collect::<Result<_>>()?;
        let synth = match synthesize(cat, &contrasts, &lesions, 1, rng)? {
            Ok(s) => s,
            Err(why) => return Ok(Outcome::Rejected(why)),
        };
        let session = synth.truth.session(0)?;
        let defs: Vec<MaskDef> = classes
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                cat.class(c).map(|x| MaskDef::Lesion {
                    lesion: i,
                    components: x.entry.proper.to_vec(),
                })
            })
            .collect::<Result<_>>()?;
        let masks = defs
            .iter()
            .map(|d| synth.truth.mask(d, 0))
            .collect::<Result<Vec<_>>>()?;
        if let Some(m) = masks.iter().find(|m| m.count() < MIN_ROI_VOXELS) {
            return Ok(Outcome::Rejected(format!(
                "a lesion has {} voxels",
                m.count()
            )));
        }
        let pick = |ok: &dyn Fn(usize) -> bool| -> Option<usize> {
            let hits: Vec<usize> = (0..2).filter(|&i| ok(i)).collect();
            (hits.len() == 1).then(|| hits[0])
        };
        let rec = &session.records;
        let target = match desc {
            Key::Side(side) => {
                let want = match side {
                    Side::Left => Hemisphere::Left,
                    Side::Right => Hemisphere::Right,
                };
                let sided = rec.iter().all(|r| r.hemisphere != Hemisphere::Both);
                pick(&|i| rec[i].hemisphere == want).filter(|_| sided)
            }
            Key::Lobe(l) => pick(&|i| rec[i].lobe == l.site()),
            Key::Size(size) => {
                let v: Vec<f64> = masks.iter().map(voxel::measure::volume_ml).collect();
                let (big, small) = if v[0] >= v[1] { (0, 1) } else { (1, 0) };
                (v[big] >= SIZE_RATIO * v[small]).then_some(match size {
                    Size::Larger => big,
                    Size::Smaller => small,
                })
            }
            Key::Position(d) => {
                let c: Vec<[f64; 3]> = masks
                    .iter()
                    .map(voxel::measure::centroid_mm)
                    .collect::<voxel::Result<_>>()?;
                let (a, b) = (d.score(c[0]), d.score(c[1]));
                ((a - b).abs() >= POSITION_GAP_MM).then_some(if a > b { 0 } else { 1 })
            }
            Key::Signal(c, want) => {
                pick(&|i| rec[i].intensity.get(&c).copied().map(Intensity::of) == Some(want))
            }
            _ => return Err(missing(id, "desc")),
        };
        let Some(target) = target else {
            return Ok(Outcome::Rejected(format!(
                "the descriptor {desc:?} does not single out one lesion"
            )));
        };
        let class = cat.class(classes[target])?.entry;
        let name = match desc {
            Key::Side(side) => format!(
                "{} {}",
                crate::phrases::describe(cat, &Key::Side(side))?,
                class.canonical
            ),
            Key::Lobe(l) => format!(
                "{} {}",
                crate::phrases::describe(cat, &Key::Lobe(l))?,
                class.canonical
            ),
            Key::Size(_) | Key::Position(_) => {
                format!(
                    "{} {}",
                    crate::phrases::describe(cat, &desc)?,
                    class.canonical
                )
            }
            _ => format!("lesion that is {}", crate::phrases::describe(cat, &desc)?),
        };
        let images: Vec<(usize, Contrast)> = contrasts.iter().map(|&c| (0, c)).collect();
        let inputs = bind_inputs(&synth.subject, &images)?;
        let def = defs[target].clone();
        let mut p = ProgramBuilder::new();
        p.target("target", &name, def.clone());
        p.step(encode_step(&inputs));
        p.step(format!(
            "let m = {};\nread(volume(m));\nread(centroid(m));",
            generate_first("e", "target", inputs.len())
        ));
        let reply = Reply::new()
            .text(&format!("Segmented the {name}: "))
            .number(
                "volume(m)",
                voxel::measure::volume_ml(&masks[target]),
                Quantity::VolumeMl,
                &format!("volume of the {name}"),
            )
            .text(".");
        p.step(format!(
            "show(m, \"segmentation\");\n{}\nstop();",
            reply.code()
        ));
        let output = ExpectedOutput {
            name: "segmentation".into(),
            input: "scan_1".into(),
            session: 0,
            target: def,
            kind: OutputKind::Mask,
        };
        done(&p, inputs, &synth, &[reply], vec![], vec![output])
    }
}
