//! Whether a scan shows a lesion of a class at all ("Is there a bleed?"): the first question of
//! most head scans, and the one a model that only ever saw the lesion it was asked about gets
//! wrong on every healthy scan. Half the subjects have one lesion of the class, half have none;
//! the program segments the class and reads its volume, and the answer is yes or no.

use super::characterisation::{asked_class, yes_no};
use super::{done, encode_step};
use crate::catalogue::Catalogue;
use crate::checker::{ChoiceOption, ExpectedChoice};
use crate::classes::CLASSES;
use crate::error::Result;
use crate::family::{
    bind_inputs, pick_contrasts, synthesize, Family, FamilyInfo, Group, Outcome, MIN_ROI_VOXELS,
};
use crate::program::{generate_first, ProgramBuilder, Reply};
use crate::scenario::{Key, Scenario};
use crate::truth::MaskDef;
use rand::rngs::StdRng;
use rand::Rng;

/// Share of the subjects that have the lesion asked about (the rest have no lesion).
pub const PRESENT_PROBABILITY: f64 = 0.5;

/// The presence family's id.
pub const FAMILY_ID: &str = "lesion_presence";

/// Whether an answer of this family says the lesion is present (`Yes: …`) or absent (`No: …`);
/// `None` for any other text.
pub fn answer_says_present(answer: &str) -> Option<bool> {
    if answer.starts_with(YES) {
        Some(true)
    } else if answer.starts_with(NO) {
        Some(false)
    } else {
        None
    }
}

/// The answer must name the class asked about and no other: "Yes: there is an abscess." is
/// wrong about a meningioma even where a lesion is there.
fn class_named(canonical: &str) -> ExpectedChoice {
    ExpectedChoice {
        what: "lesion class named".into(),
        answer: canonical.into(),
        options: CLASSES
            .iter()
            .map(|c| ChoiceOption {
                name: c.canonical.into(),
                phrases: vec![c.canonical.into()],
            })
            .collect(),
    }
}

const YES: &str = "Yes: ";
const NO: &str = "No: ";

/// The presence family.
pub fn families() -> Vec<Box<dyn Family>> {
    vec![Box::new(Presence)]
}

/// "Is there a …?": yes or no, for every lesion class.
pub struct Presence;

/// `a` or `an` before `word`.
fn article(word: &str) -> &'static str {
    match word.chars().next() {
        Some(c) if "aeiouAEIOU".contains(c) => "an",
        _ => "a",
    }
}

impl Family for Presence {
    fn info(&self) -> FamilyInfo {
        FamilyInfo {
            id: FAMILY_ID,
            group: Group::Characterisation,
            asks: "whether the scan shows a lesion of a named class at all (half the subjects have none)",
            inputs: "1–2 contrasts the class is conspicuous on; one session; one lesion of the class or none",
            program: "encode → read(e) → generate the class → read its volume → respond yes or no → stop",
            answer: "`Yes: there is a X.` / `No: there is no X.`",
            tolerance: "exact: yes or no, and the class asked about named, no other",
        }
    }

    fn templates(&self) -> &'static [&'static str] {
        &[
            "{lead}is there any {lesion}{qend}",
            "{lead}does this scan show any {lesion}{qend}",
            "{req}rule out {lesion}{end}",
            "{lead}any sign of {lesion}{qend}",
            "{lead}{can_you}check the scan for {lesion}{qend}",
            "{lead}is {lesion} present{qend}",
            "{lesion}: present or absent{qend}",
        ]
    }

    fn space(&self, cat: &Catalogue) -> Result<Vec<Scenario>> {
        Ok((0..cat.classes().len())
            .map(|c| Scenario::new().with("lesion", Key::Class(c)))
            .collect())
    }

    fn realise(&self, cat: &Catalogue, s: &Scenario, rng: &mut StdRng) -> Result<Outcome> {
        let class = asked_class(cat, s, self.info().id)?;
        let canonical = class.entry.canonical;
        let present = rng.random_bool(PRESENT_PROBABILITY);
        let pool = class.entry.contrasts;
        let n = rng.random_range(1..=2);
        let contrasts = pick_contrasts(Some(pool[rng.random_range(0..pool.len())]), pool, n, rng);
        let lesions = if present { vec![class.class] } else { vec![] };
        let synth = match synthesize(cat, &contrasts, &lesions, 1, rng)? {
            Ok(s) => s,
            Err(why) => return Ok(Outcome::Rejected(why)),
        };
        // Without a lesion, the class's mask is empty in this subject: what the vision network
        // must learn to return when there is nothing to find.
        let target = if present {
            MaskDef::Lesion {
                lesion: 0,
                components: class.entry.proper.to_vec(),
            }
        } else {
            MaskDef::AnyLesion {
                class: class.class,
                components: class.entry.proper.to_vec(),
            }
        };
        let voxels = synth.truth.mask(&target, 0)?.count();
        if present && voxels < MIN_ROI_VOXELS {
            return Ok(Outcome::Rejected(format!(
                "the {canonical} has {voxels} voxels"
            )));
        }
        let images: Vec<(usize, _)> = contrasts.iter().map(|&k| (0, k)).collect();
        let inputs = bind_inputs(&synth.subject, &images)?;
        let mut p = ProgramBuilder::new();
        p.target("lesion", canonical, target);
        p.step(encode_step(&inputs));
        p.step(format!(
            "let m = {};\nread(volume(m));",
            generate_first("e", "lesion", inputs.len())
        ));
        // Diffuse classes are named in the plural ("white matter hyperintensities").
        let text = match (class.entry.focal, present) {
            (true, true) => format!("{YES}there is {} {canonical}.", article(canonical)),
            (true, false) => format!("{NO}there is no {canonical}."),
            (false, true) => format!("{YES}there are {canonical}."),
            (false, false) => format!("{NO}there are no {canonical}."),
        };
        let reply = Reply::new().text(&text);
        p.step(format!("{}\nstop();", reply.code()));
        done(
            &p,
            inputs,
            &synth,
            &[reply],
            vec![
                yes_no(&format!("{canonical} present"), present),
                class_named(canonical),
            ],
            vec![],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::{answer_says_present, article, class_named};
    use crate::checker::{check_text, Expected, Level};

    #[test]
    fn answers_say_present_or_absent() {
        assert_eq!(answer_says_present("Yes: there is a glioma."), Some(true));
        assert_eq!(
            answer_says_present("No: there are no white matter hyperintensities."),
            Some(false)
        );
        assert_eq!(answer_says_present("The glioma is 12 mL."), None);
    }

    #[test]
    fn the_answer_names_the_class_asked_about_and_no_other() {
        let expected = Expected {
            choices: vec![class_named("meningioma")],
            ..Expected::default()
        };
        let passed = |answer: &str| {
            check_text(&expected, answer, Level::Model)
                .iter()
                .all(|item| item.passed)
        };
        assert!(passed("Yes: there is a meningioma."));
        assert!(passed("No: there is no meningioma."));
        assert!(!passed("Yes: there is an abscess."));
        assert!(!passed("Yes: there is a meningioma and an abscess."));
        assert!(!passed("Yes."));
        // "acute infarct" is not also "chronic infarct".
        let infarct = Expected {
            choices: vec![class_named("acute infarct")],
            ..Expected::default()
        };
        assert!(
            check_text(&infarct, "Yes: there is an acute infarct.", Level::Model)
                .iter()
                .all(|item| item.passed)
        );
    }

    #[test]
    fn articles_follow_the_first_letter() {
        assert_eq!(article("acute infarct"), "an");
        assert_eq!(article("glioma"), "a");
        assert_eq!(article("intracerebral haemorrhage"), "an");
    }
}
