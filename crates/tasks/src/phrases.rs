//! The phrase bank: grammar rules shared by all families (politeness, verbs, question frames)
//! and the phrases of scenario keys (target names and synonyms, contrasts, sides, lobes, ...).

use crate::catalogue::Catalogue;
use crate::error::{Result, TaskError};
use crate::grammar::GrammarBuilder;
use crate::scenario::{Dimension, Direction, Intensity, Key, Lobe, Roi, Side, Size};
use synth::Contrast;

/// Adds the rules every family may use.
pub fn common_rules(g: &mut GrammarBuilder) {
    g.weighted(
        "req",
        &[
            (4.0, ""),
            (1.0, "please "),
            (1.0, "can you "),
            (1.0, "could you "),
            (1.0, "would you "),
            (1.0, "kindly "),
            (1.0, "I need you to "),
            (1.0, "I'd like you to "),
            (1.0, "go ahead and "),
        ],
    );
    g.weighted(
        "end",
        &[
            (3.0, ""),
            (3.0, "."),
            (1.0, " for me."),
            (1.0, ", thanks."),
            (1.0, ", thank you."),
            (1.0, " please."),
            (1.0, "!"),
        ],
    );
    g.weighted(
        "qend",
        &[
            (6.0, "?"),
            (1.0, " ?"),
            (1.0, "? Thanks."),
            (1.0, "? Thank you."),
            (1.0, "??"),
        ],
    );
    g.weighted(
        "in_scan",
        &[
            (4.0, ""),
            (1.0, " in this scan"),
            (1.0, " in the scan"),
            (1.0, " in this image"),
            (1.0, " in the image"),
            (1.0, " on this scan"),
            (1.0, " in this volume"),
            (1.0, " in this study"),
            (1.0, " on the images"),
        ],
    );
    g.rule(
        "seg_verb",
        &[
            "segment",
            "delineate",
            "outline",
            "contour",
            "label",
            "mask",
            "draw a mask of",
            "draw the outline of",
            "paint a label on",
            "mark",
            "highlight",
            "find and segment",
        ],
    );
    g.rule(
        "seg_noun",
        &[
            "segmentation",
            "mask",
            "label map",
            "outline",
            "contour",
            "ROI",
            "binary mask",
        ],
    );
    g.rule(
        "i_want",
        &[
            "I need",
            "I want",
            "I'd like",
            "I would like",
            "give me",
            "generate",
            "produce",
            "create",
            "make",
            "provide",
        ],
    );
    g.rule(
        "i_need",
        &[
            "I need",
            "I want",
            "I'd like",
            "I would like",
            "please provide",
            "provide",
            "I'm looking for",
        ],
    );
    g.rule(
        "can_you",
        &[
            "can you ",
            "could you ",
            "would you ",
            "will you ",
            "are you able to ",
            "is it possible to ",
        ],
    );
    g.rule(
        "measure_verb",
        &[
            "measure",
            "calculate",
            "compute",
            "quantify",
            "estimate",
            "determine",
            "report",
            "give me",
            "tell me",
            "get",
        ],
    );
    g.rule(
        "what_is",
        &["what is", "what's", "tell me", "give me", "report", "find"],
    );
    g.rule(
        "the_scan",
        &[
            "the scan",
            "this scan",
            "the image",
            "this image",
            "the volume",
            "the study",
            "the input",
        ],
    );
    g.weighted(
        "lead",
        &[
            (5.0, ""),
            (1.0, "quick question: "),
            (1.0, "in this patient, "),
            (1.0, "based on the images, "),
            (1.0, "looking at the scan, "),
            (1.0, "from the imaging, "),
        ],
    );
    g.rule(
        "please_suffix",
        &["", " please", ", please", " pls", " asap", ", thanks"],
    );
    g.rule(
        "show_verb",
        &[
            "show",
            "show me",
            "highlight",
            "find",
            "locate",
            "mark",
            "identify",
            "pick out",
        ],
    );
    g.rule(
        "where_q",
        &[
            "where is",
            "where's",
            "which voxels belong to",
            "what region is",
            "can you point out",
        ],
    );
    g.rule(
        "lesion_word",
        &["lesion", "abnormality", "focus", "finding"],
    );
    g.rule(
        "lesions_word",
        &["lesions", "abnormalities", "foci", "findings"],
    );
}

/// The name the metadata line and responses use for a contrast: `T1w`, `FLAIR`, `CT`, ...
pub fn modality_name(c: Contrast) -> &'static str {
    match c {
        Contrast::T1 => "T1w",
        Contrast::T2 => "T2w",
        Contrast::Flair => "FLAIR",
        Contrast::Pd => "PD",
        Contrast::Gre => "GRE",
        Contrast::Dwi => "DWI",
        Contrast::Adc => "ADC",
        Contrast::T1c => "T1w post-contrast",
        Contrast::Ct => "CT",
    }
}

/// How prompts name a contrast.
pub fn contrast_phrases(c: Contrast) -> &'static [&'static str] {
    match c {
        Contrast::T1 => &[
            "T1",
            "T1w",
            "T1-weighted",
            "T1-weighted image",
            "MPRAGE",
            "pre-contrast T1",
        ],
        Contrast::T2 => &["T2", "T2w", "T2-weighted", "T2-weighted image", "T2 scan"],
        Contrast::Flair => &[
            "FLAIR",
            "T2-FLAIR",
            "FLAIR image",
            "FLAIR scan",
            "fluid-attenuated inversion recovery",
        ],
        Contrast::Pd => &[
            "PD",
            "PDw",
            "proton density",
            "PD-weighted",
            "proton-density image",
        ],
        Contrast::Gre => &["GRE", "T2*", "gradient echo", "T2*-weighted", "GRE image"],
        Contrast::Dwi => &[
            "DWI",
            "diffusion-weighted image",
            "trace DWI",
            "b1000",
            "diffusion",
        ],
        Contrast::Adc => &[
            "ADC",
            "ADC map",
            "apparent diffusion coefficient map",
            "ADC image",
        ],
        Contrast::T1c => &[
            "post-contrast T1",
            "T1 post-gad",
            "T1+C",
            "contrast-enhanced T1",
            "T1c",
            "post-gadolinium T1",
        ],
        Contrast::Ct => &["CT", "head CT", "non-contrast CT", "CT scan", "NCCT"],
    }
}

fn side_word(s: Side) -> &'static str {
    match s {
        Side::Left => "left",
        Side::Right => "right",
    }
}

fn intensity_phrases(i: Intensity) -> [&'static str; 3] {
    match i {
        Intensity::Hyper => ["hyperintense", "bright", "high signal"],
        Intensity::Hypo => ["hypointense", "dark", "low signal"],
        Intensity::Iso => ["isointense", "iso", "similar signal"],
    }
}

fn owned(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The phrases of `key` in the phrasing `kind` (empty for the default).
pub fn phrases(cat: &Catalogue, key: &Key, kind: &str) -> Result<Vec<String>> {
    let unknown = || {
        TaskError::Grammar(format!(
            "no phrasing {kind:?} for {key:?}; check the family's templates"
        ))
    };
    Ok(match (key, kind) {
        (Key::Roi(Roi::Anatomy(t)), "") => target_phrases(cat, *t)?,
        (Key::Roi(Roi::Lesion(c)), "") | (Key::Class(c), "") => owned(cat.class(*c)?.entry.phrases),
        (Key::Class(c), "pl") => owned(cat.class(*c)?.entry.plurals),
        (Key::Component(c, k), "") => {
            let e = cat.class(*c)?.entry;
            let comp = e.components.get(*k).ok_or_else(unknown)?;
            owned(comp.phrases)
        }
        (Key::Contrast(c), "") => owned(contrast_phrases(*c)),
        (Key::Side(s), "adj") => {
            let w = side_word(*s);
            vec![
                w.to_string(),
                format!("{w}-sided"),
                format!("{w} hemispheric"),
            ]
        }
        (Key::Side(s), "rel") => {
            let w = side_word(*s);
            vec![
                format!("in the {w} hemisphere"),
                format!("on the {w}"),
                format!("on the {w} side"),
                format!("in the {w} cerebral hemisphere"),
                format!("on the {w} side of the brain"),
            ]
        }
        (Key::Lobe(l), "adj") => {
            let w = lobe_word(*l);
            vec![w.to_string(), format!("{w} lobe")]
        }
        (Key::Lobe(l), "rel") => {
            let w = lobe_word(*l);
            vec![
                format!("in the {w} lobe"),
                format!("within the {w} lobe"),
                format!("located in the {w} lobe"),
                format!("in {w} cortex"),
            ]
        }
        (Key::Size(s), "adj") => owned(match s {
            Size::Larger => &["larger", "bigger", "largest", "biggest", "dominant"],
            Size::Smaller => &["smaller", "smallest", "tinier", "lesser"],
        }),
        (Key::Size(s), "rel") => owned(match s {
            Size::Larger => &[
                "with the larger volume",
                "that is bigger",
                "that is larger",
                "of greater size",
            ],
            Size::Smaller => &[
                "with the smaller volume",
                "that is smaller",
                "of lesser size",
                "that is tinier",
            ],
        }),
        (Key::Signal(c, i), "rel") => {
            let mut out = Vec::new();
            for ip in intensity_phrases(*i) {
                for cp in contrast_phrases(*c) {
                    out.push(format!("that is {ip} on {cp}"));
                }
            }
            out
        }
        (Key::Signal(c, i), "adj") => {
            let mut out = Vec::new();
            for ip in &intensity_phrases(*i)[..2] {
                for cp in contrast_phrases(*c)
                    .iter()
                    .filter(|p| !p.contains(' '))
                    .take(3)
                {
                    out.push(format!("{cp}-{ip}"));
                }
            }
            out
        }
        (Key::Position(d), "adj") => {
            let w = d.word();
            vec![
                format!("more {w}"),
                format!("most {w}"),
                format!("{w}-most"),
            ]
        }
        (Key::Position(d), "rel") => owned(match d {
            Direction::Anterior => &[
                "closer to the front",
                "lying more anteriorly",
                "further forward",
            ],
            Direction::Posterior => &[
                "closer to the back",
                "lying more posteriorly",
                "further back",
            ],
            Direction::Superior => &["higher up", "lying more superiorly", "closer to the vertex"],
            Direction::Inferior => &[
                "lower down",
                "lying more inferiorly",
                "closer to the skull base",
            ],
            Direction::Medial => &[
                "closer to the midline",
                "lying more medially",
                "nearer the midline",
            ],
            Direction::Lateral => &[
                "further from the midline",
                "lying more laterally",
                "closer to the skull",
            ],
        }),
        (Key::Margin(m), "") => match m {
            None => vec![String::new()],
            Some(mm) => vec![
                format!(" with a {mm} mm margin"),
                format!(" with {mm} mm of margin"),
                format!(" plus {mm} mm on each side"),
                format!(" leaving {mm} mm around it"),
                format!(" with a margin of {mm} mm"),
            ],
        },
        (Key::Dimension(d), "") => owned(match d {
            Dimension::Width => &[
                "width",
                "left-right extent",
                "transverse size",
                "left-to-right size",
            ],
            Dimension::Depth => &[
                "depth",
                "anteroposterior extent",
                "AP dimension",
                "front-to-back size",
            ],
            Dimension::Height => &[
                "height",
                "craniocaudal extent",
                "superior-inferior extent",
                "vertical size",
            ],
            Dimension::LargestDiameter => &[
                "largest diameter",
                "maximum diameter",
                "greatest dimension",
                "longest axis",
            ],
        }),
        (Key::Pair(a, _), "a") => target_phrases(cat, *a)?,
        (Key::Pair(_, b), "b") => target_phrases(cat, *b)?,
        (Key::Sessions(n), "") => match n {
            2 => owned(&[
                "the two scans",
                "both scans",
                "the two visits",
                "the baseline and follow-up scans",
                "the two sessions",
            ]),
            _ => vec![
                format!("the {} scans", number_word(*n)),
                format!("all {} visits", number_word(*n)),
                format!("the {} sessions", number_word(*n)),
                "the first and last scans".to_string(),
                "baseline and the last follow-up".to_string(),
            ],
        },
        _ => return Err(unknown()),
    })
}

fn number_word(n: usize) -> String {
    match n {
        2 => "two".into(),
        3 => "three".into(),
        4 => "four".into(),
        5 => "five".into(),
        _ => n.to_string(),
    }
}

fn lobe_word(l: Lobe) -> &'static str {
    match l {
        Lobe::Frontal => "frontal",
        Lobe::Parietal => "parietal",
        Lobe::Temporal => "temporal",
        Lobe::Occipital => "occipital",
    }
}

/// The names of vocabulary target `t`: canonical name and synonyms.
pub fn target_phrases(cat: &Catalogue, t: usize) -> Result<Vec<String>> {
    let target = cat.target(t)?;
    let mut out = vec![target.name.clone()];
    for s in &target.synonyms {
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    Ok(out)
}

/// A canonical description of `key` for responses and target descriptions.
pub fn describe(cat: &Catalogue, key: &Key) -> Result<String> {
    Ok(match key {
        Key::Roi(Roi::Anatomy(t)) => cat.target(*t)?.name.clone(),
        Key::Roi(Roi::Lesion(c)) | Key::Class(c) => cat.class(*c)?.entry.canonical.to_string(),
        Key::Component(c, k) => {
            let e = cat.class(*c)?.entry;
            let comp = e.components.get(*k).ok_or_else(|| {
                TaskError::Grammar(format!("class {} has no component {k}", e.name))
            })?;
            format!("{} of the {}", comp.name, e.canonical)
        }
        Key::Contrast(c) => modality_name(*c).to_string(),
        Key::Side(s) => side_word(*s).to_string(),
        Key::Lobe(l) => format!("{} lobe", lobe_word(*l)),
        Key::Size(s) => match s {
            Size::Larger => "larger".into(),
            Size::Smaller => "smaller".into(),
        },
        Key::Signal(c, i) => format!("{} on {}", i.word(), modality_name(*c)),
        Key::Position(d) => format!("more {}", d.word()),
        Key::Margin(m) => format!(
            "{} mm",
            m.unwrap_or(crate::families::image_ops::DEFAULT_MARGIN_MM)
        ),
        Key::Dimension(d) => d.word().to_string(),
        Key::Pair(a, b) => format!("{} / {}", cat.target(*a)?.name, cat.target(*b)?.name),
        Key::Sessions(n) => format!("{n} sessions"),
    })
}
