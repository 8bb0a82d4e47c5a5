//! The vocabulary of anatomical and pathological targets: canonical names, synonyms,
//! hemisphere, parent groups, arterial territory, and the label ids that define each target in
//! each label source. The table is data (`configs/synth/vocabulary.toml`, compiled in); this
//! module expands bilateral entries into left/right/both targets and resolves group ids.

use crate::error::{Result, SynthError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The vocabulary file shipped with the crate.
pub const VOCABULARY_TOML: &str = include_str!("../../../configs/synth/vocabulary.toml");

/// Which side of the head a target (or lesion) lies on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hemisphere {
    /// The subject's left.
    Left,
    /// The subject's right.
    Right,
    /// A midline structure, or both sides of a bilateral one.
    Both,
}

/// A label map a target's ids can be looked up in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// FreeSurfer `fsaverage/mri/aseg.mgz` (cortex is one label per side, 3/42).
    FsAseg,
    /// FreeSurfer `fsaverage/mri/aparc+aseg.mgz` (cortex split into Desikan–Killiany parcels).
    FsAparcAseg,
    /// The CAT12 neuromorphometrics atlas remapped by `configs/synth/neuromorphometrics.toml`:
    /// aseg ids where FreeSurfer has the structure, `1000 + x` / `2000 + x` for its cortical
    /// parcels and basal forebrain (x = the atlas id of the left structure), 630–632 for the
    /// vermis.
    Neuromorphometrics,
    /// Labels the synth head model adds to either FreeSurfer map (extracerebral CSF, skull,
    /// scalp).
    HeadModel,
    /// The lesion-component map written next to the anatomy label map.
    LesionMap,
}

/// Arterial territory of a structure: the anterior, middle or posterior cerebral artery, or the
/// vertebrobasilar system for infratentorial structures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Territory {
    /// Anterior cerebral artery.
    ACA,
    /// Middle cerebral artery (including the lenticulostriate branches to the basal ganglia).
    MCA,
    /// Posterior cerebral artery (occipital lobe, inferomedial temporal lobe, thalamus).
    PCA,
    /// Vertebrobasilar system (brainstem, cerebellum).
    VB,
}

/// One target a prompt can name ("left hippocampus", "frontal lobe", "edema").
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Target {
    /// Canonical lower-case name, e.g. `left superior frontal gyrus`.
    pub name: String,
    /// Other names and abbreviations, side-prefixed for lateral targets.
    pub synonyms: Vec<String>,
    /// Side of the target.
    pub hemisphere: Hemisphere,
    /// Canonical names of the targets this one is part of (same side, and the both-sides one).
    pub parents: Vec<String>,
    /// Arterial territory, where one is defined.
    pub territory: Option<Territory>,
    /// Lobe or compartment a lesion centred here is reported in (`frontal lobe`, `infratentorial`).
    pub site: Option<String>,
    /// Label ids defining the target, per source (groups: the union over their children).
    pub labels: BTreeMap<Source, Vec<i32>>,
    /// Whether the entry is a group of other entries rather than a single structure.
    pub is_group: bool,
    /// What users mean by the word, where that needs saying (`brain mask`: the brain with the
    /// ventricles, as skull-stripping tools give it).
    pub definition: Option<String>,
}

impl Target {
    /// The ids of this target in `source` (empty when the source does not have it).
    pub fn ids_in(&self, source: Source) -> &[i32] {
        self.labels
            .get(&source)
            .map(|v| v.as_slice())
            .unwrap_or(&[])
    }

    /// All anatomical ids (every anatomy source and the head model), sorted and unique; a label
    /// map from any anatomy source is measured with these (the sources agree on every id they
    /// share, and a target a source lacks has none of that source's ids).
    pub fn anatomy_ids(&self) -> Vec<i32> {
        let mut ids: BTreeSet<i32> = BTreeSet::new();
        for s in ANATOMY_SOURCES {
            ids.extend(self.ids_in(s));
        }
        ids.into_iter().collect()
    }
}

/// The sources anatomy label maps are built from, plus the head model's labels.
const ANATOMY_SOURCES: [Source; 4] = [
    Source::FsAseg,
    Source::FsAparcAseg,
    Source::Neuromorphometrics,
    Source::HeadModel,
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    #[serde(default)]
    synonyms: Vec<String>,
    bilateral: bool,
    #[serde(default)]
    aseg: Vec<i32>,
    aparc: Option<i32>,
    #[serde(default)]
    nmm: Vec<i32>,
    nmm_parcel: Option<i32>,
    #[serde(default)]
    head: Vec<i32>,
    #[serde(default)]
    lesion: Vec<i32>,
    #[serde(default)]
    groups: Vec<String>,
    territory: Option<Territory>,
    site: Option<String>,
    /// What the word means to users when it differs from a naive reading (documented in
    /// docs/vocabulary.md, "Everyday meanings").
    definition: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    structure: Vec<Entry>,
    group: Vec<Entry>,
}

/// The expanded table of targets, indexed by canonical name and synonyms.
#[derive(Clone, Debug)]
pub struct Vocabulary {
    targets: Vec<Target>,
    /// Lower-case name or synonym → index into `targets`.
    index: BTreeMap<String, usize>,
    /// Anatomical label id → index of the most specific structure target that contains it.
    by_label: BTreeMap<i32, usize>,
}

/// FreeSurfer ids that exist in aseg.mgz but not in aparc+aseg.mgz (the cortex, split there).
const ASEG_ONLY: [i32; 2] = [3, 42];

impl Vocabulary {
    /// The vocabulary compiled into the crate from `configs/synth/vocabulary.toml`.
    pub fn builtin() -> Result<Vocabulary> {
        Vocabulary::parse(VOCABULARY_TOML, "configs/synth/vocabulary.toml")
    }

    /// Parses a vocabulary file; `what` names it in errors.
    pub fn parse(text: &str, what: &str) -> Result<Vocabulary> {
        let err = |problem: String| SynthError::Config {
            what: what.to_string(),
            problem,
        };
        let file: File = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        let mut targets: Vec<Target> = Vec::new();
        let mut bilateral_both: Vec<bool> = Vec::new();
        let mut entries: Vec<(&Entry, bool)> = file.structure.iter().map(|e| (e, false)).collect();
        entries.extend(file.group.iter().map(|e| (e, true)));
        let entry_names: BTreeSet<&str> = entries.iter().map(|(e, _)| e.name.as_str()).collect();
        for (e, is_group) in &entries {
            for g in &e.groups {
                if !entry_names.contains(g.as_str()) {
                    return Err(err(format!("{}: unknown parent group {g:?}", e.name)));
                }
            }
            let sides: Vec<Hemisphere> = if e.bilateral {
                vec![Hemisphere::Left, Hemisphere::Right, Hemisphere::Both]
            } else {
                vec![Hemisphere::Both]
            };
            for side in sides {
                let mut labels: BTreeMap<Source, Vec<i32>> = BTreeMap::new();
                let pick = |ids: &[i32]| -> Result<Vec<i32>> {
                    match (e.bilateral, ids.len(), side) {
                        (_, 0, _) => Ok(vec![]),
                        (true, 2, Hemisphere::Left) => Ok(vec![ids[0]]),
                        (true, 2, Hemisphere::Right) => Ok(vec![ids[1]]),
                        (true, 2, Hemisphere::Both) => Ok(ids.to_vec()),
                        (false, _, _) => Ok(ids.to_vec()),
                        _ => Err(err(format!(
                            "{}: a bilateral entry needs [left, right] ids",
                            e.name
                        ))),
                    }
                };
                let aseg = pick(&e.aseg)?;
                let aseg_both: Vec<i32> = aseg
                    .iter()
                    .copied()
                    .filter(|i| !ASEG_ONLY.contains(i))
                    .collect();
                if !aseg.is_empty() {
                    labels.insert(Source::FsAseg, aseg.clone());
                }
                let mut aparc_ids = aseg_both;
                if let Some(x) = e.aparc {
                    match side {
                        Hemisphere::Left => aparc_ids.push(1000 + x),
                        Hemisphere::Right => aparc_ids.push(2000 + x),
                        Hemisphere::Both => aparc_ids.extend([1000 + x, 2000 + x]),
                    }
                }
                if !aparc_ids.is_empty() {
                    labels.insert(Source::FsAparcAseg, aparc_ids);
                }
                let mut nmm_ids = pick(&e.nmm)?;
                if let Some(x) = e.nmm_parcel {
                    if !(36..1000).contains(&x) {
                        return Err(err(format!(
                            "{}: nmm_parcel {x} outside 36..1000 (ids 1000 + x / 2000 + x must \
                             stay clear of the Desikan-Killiany parcels)",
                            e.name
                        )));
                    }
                    match side {
                        Hemisphere::Left => nmm_ids.push(1000 + x),
                        Hemisphere::Right => nmm_ids.push(2000 + x),
                        Hemisphere::Both => nmm_ids.extend([1000 + x, 2000 + x]),
                    }
                }
                if !nmm_ids.is_empty() {
                    labels.insert(Source::Neuromorphometrics, nmm_ids);
                }
                if !e.head.is_empty() {
                    labels.insert(Source::HeadModel, e.head.clone());
                }
                if !e.lesion.is_empty() {
                    labels.insert(Source::LesionMap, e.lesion.clone());
                }
                let prefix = match side {
                    Hemisphere::Left => "left ",
                    Hemisphere::Right => "right ",
                    Hemisphere::Both => "",
                };
                let short = match side {
                    Hemisphere::Left => "l ",
                    Hemisphere::Right => "r ",
                    Hemisphere::Both => "",
                };
                let mut synonyms: Vec<String> = Vec::new();
                for s in &e.synonyms {
                    synonyms.push(format!("{prefix}{s}"));
                    if !short.is_empty()
                        && s.chars()
                            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                    {
                        synonyms.push(format!("{short}{s}"));
                    }
                }
                if side != Hemisphere::Both {
                    let word = if side == Hemisphere::Left {
                        "left"
                    } else {
                        "right"
                    };
                    synonyms.push(format!("{} ({word})", e.name));
                }
                let mut parents: Vec<String> = Vec::new();
                for g in &e.groups {
                    let bilateral_parent = entries.iter().any(|(p, _)| &p.name == g && p.bilateral);
                    if bilateral_parent && side != Hemisphere::Both {
                        parents.push(format!("{prefix}{g}"));
                    } else {
                        parents.push(g.clone());
                    }
                }
                if side != Hemisphere::Both {
                    parents.push(e.name.clone());
                }
                bilateral_both.push(e.bilateral && side == Hemisphere::Both);
                targets.push(Target {
                    name: format!("{prefix}{}", e.name),
                    synonyms,
                    hemisphere: side,
                    parents,
                    territory: e.territory,
                    site: e.site.clone(),
                    labels,
                    is_group: *is_group,
                    definition: e.definition.clone(),
                });
            }
        }
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        for (i, t) in targets.iter().enumerate() {
            for key in std::iter::once(&t.name).chain(t.synonyms.iter()) {
                let k = key.to_lowercase();
                if let Some(&j) = index.get(&k) {
                    if j != i {
                        return Err(err(format!(
                            "{key:?} names both {:?} and {:?}",
                            targets[j].name, t.name
                        )));
                    }
                }
                index.insert(k, i);
            }
        }
        // Label → most specific structure, from each structure's own ids (before groups add
        // their children's); the both-sides target of a bilateral structure is skipped so that
        // 17 maps to "left hippocampus", not "hippocampus".
        let mut by_label = BTreeMap::new();
        for (i, t) in targets.iter().enumerate() {
            if t.is_group || (t.hemisphere == Hemisphere::Both && bilateral_both[i]) {
                continue;
            }
            for id in t.anatomy_ids() {
                by_label.entry(id).or_insert(i);
            }
        }
        resolve_groups(&mut targets, &index).map_err(err)?;
        Ok(Vocabulary {
            targets,
            index,
            by_label,
        })
    }

    /// All targets, structures first, in file order.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// The target called `name` (canonical or synonym, case-insensitive).
    pub fn get(&self, name: &str) -> Option<&Target> {
        self.index
            .get(&name.trim().to_lowercase())
            .map(|&i| &self.targets[i])
    }

    /// The target called `name`, or an error naming it.
    pub fn require(&self, name: &str) -> Result<&Target> {
        self.get(name).ok_or_else(|| {
            SynthError::InvalidArgument(format!("{name:?} is not in the vocabulary"))
        })
    }

    /// The most specific structure whose ids include anatomical label `id` (e.g. 1028 → left
    /// superior frontal gyrus).
    pub fn structure_of_label(&self, id: i32) -> Option<&Target> {
        self.by_label.get(&id).map(|&i| &self.targets[i])
    }

    /// Whether target `name` (or a parent of it, transitively) is `ancestor`.
    pub fn is_within(&self, name: &str, ancestor: &str) -> bool {
        let mut stack = vec![name.to_string()];
        let mut seen = BTreeSet::new();
        while let Some(n) = stack.pop() {
            if n == ancestor {
                return true;
            }
            if !seen.insert(n.clone()) {
                continue;
            }
            if let Some(t) = self.get(&n) {
                stack.extend(t.parents.iter().cloned());
            }
        }
        false
    }
}

/// Adds to every target the ids of all targets that name it as a parent, transitively.
fn resolve_groups(
    targets: &mut [Target],
    index: &BTreeMap<String, usize>,
) -> std::result::Result<(), String> {
    let n = targets.len();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, t) in targets.iter().enumerate() {
        for p in &t.parents {
            let j = *index
                .get(&p.to_lowercase())
                .ok_or_else(|| format!("{}: parent {p:?} does not exist", t.name))?;
            if j != i {
                children[j].push(i);
            }
        }
    }
    // Depth-first with cycle detection; memoised per target.
    fn collect(
        i: usize,
        children: &[Vec<usize>],
        targets: &[Target],
        state: &mut [u8],
        memo: &mut [Option<BTreeMap<Source, BTreeSet<i32>>>],
    ) -> std::result::Result<BTreeMap<Source, BTreeSet<i32>>, String> {
        if let Some(m) = &memo[i] {
            return Ok(m.clone());
        }
        if state[i] == 1 {
            return Err(format!("{} is its own ancestor", targets[i].name));
        }
        state[i] = 1;
        let mut acc: BTreeMap<Source, BTreeSet<i32>> = BTreeMap::new();
        for (s, ids) in &targets[i].labels {
            acc.entry(*s).or_default().extend(ids.iter().copied());
        }
        for &c in &children[i] {
            for (s, ids) in collect(c, children, targets, state, memo)? {
                acc.entry(s).or_default().extend(ids);
            }
        }
        state[i] = 2;
        memo[i] = Some(acc.clone());
        Ok(acc)
    }
    let mut state = vec![0u8; n];
    let mut memo = vec![None; n];
    let mut resolved = Vec::with_capacity(n);
    for i in 0..n {
        resolved.push(collect(i, &children, targets, &mut state, &mut memo)?);
    }
    for (t, r) in targets.iter_mut().zip(resolved) {
        t.labels = r
            .into_iter()
            .map(|(s, ids)| (s, ids.into_iter().collect()))
            .collect();
    }
    Ok(())
}

/// The vocabulary as a Markdown table (for `docs/vocabulary.md`).
pub fn to_markdown(vocabulary: &Vocabulary) -> String {
    let mut out = String::from(
        "# Vocabulary of targets\n\nGenerated from `configs/synth/vocabulary.toml` by \
         `cargo test -p synth --test vocabulary` (set `VOXELPROMPT_WRITE_DOCS=1` to rewrite). \
         Ids: `aseg` = FreeSurfer aseg.mgz, `aparc+aseg` = FreeSurfer aparc+aseg.mgz, `nmm` = \
         the CAT12 neuromorphometrics atlas remapped by `configs/synth/neuromorphometrics.toml`, \
         `head` = labels added by the synth head model, `lesion` = the lesion-component map. \
         An empty cell: the source does not have the target.\n\n\
         | target | hemisphere | kind | parents | territory | synonyms | aseg | aparc+aseg | nmm | head | lesion |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let ids = |t: &Target, s: Source| -> String {
        let v = t.ids_in(s);
        if v.len() > 12 {
            format!("{} ids", v.len())
        } else {
            v.iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        }
    };
    let defined: Vec<&Target> = vocabulary
        .targets()
        .iter()
        .filter(|t| t.definition.is_some() && t.hemisphere == Hemisphere::Both)
        .collect();
    if !defined.is_empty() {
        let mut section = String::from(
            "## Everyday meanings\n\nWords whose meaning users take from their tools, and what \
             VoxelPrompt segments for them (the `definition` of the entry in \
             `configs/synth/vocabulary.toml`; training, the task grammar and the checker use the \
             same ids).\n\n| target | also asked as | means |\n|---|---|---|\n",
        );
        for t in defined {
            section.push_str(&format!(
                "| {} | {} | {} |\n",
                t.name,
                t.synonyms.join(", "),
                t.definition.as_deref().unwrap_or_default()
            ));
        }
        section.push_str("\n## All targets\n\n");
        let at = out.find("| target | hemisphere").unwrap_or(out.len());
        out.insert_str(at, &section);
    }
    for t in vocabulary.targets() {
        out.push_str(&format!(
            "| {} | {:?} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            t.name,
            t.hemisphere,
            if t.is_group { "group" } else { "structure" },
            t.parents.join(", "),
            t.territory.map(|x| format!("{x:?}")).unwrap_or_default(),
            t.synonyms.join(", "),
            ids(t, Source::FsAseg),
            ids(t, Source::FsAparcAseg),
            ids(t, Source::Neuromorphometrics),
            ids(t, Source::HeadModel),
            ids(t, Source::LesionMap),
        ));
    }
    out.push_str(&format!("\n{} targets.\n", vocabulary.targets().len()));
    out
}
