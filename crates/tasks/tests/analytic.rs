//! Ground-truth programs measured against analytic phantoms. `programs.rs` checks each answer
//! against expected numbers that the family computed with the same `voxel::measure` calls the
//! program makes, so a measurement bug would pass there. Here each sampled task keeps its
//! program, inputs' grids and targets, but its truth and images are replaced by boxes of known
//! size, place and intensity: every number the program prints (volume, extents, mean intensity,
//! left-right asymmetry, centroid, change between sessions) must equal the value known from
//! the construction, to the printed precision.

mod common;

use common::catalogue;
use std::sync::Arc;
use tasks::checker::{parse_numbers, Quantity};
use tasks::program::{GenerateTarget, ModMeaning};
use tasks::truth::MaskDef;
use tasks::{run_with_oracle, Level, TaskSample};
use voxel::{Geometry, Image};

/// Samples per family.
const SEEDS: u64 = 3;
/// Intensity outside every box.
const BACKGROUND: f32 = 0.2;
/// Label of the anatomy outside every box (no target asks for it).
const FILLER: i32 = -1;

/// The box of target `t` in session `k`: voxel index ranges `[lo, lo + size)`.
#[derive(Clone, Copy, Debug)]
struct BoxRoi {
    lo: [usize; 3],
    size: [usize; 3],
}

impl BoxRoi {
    fn count(&self) -> usize {
        self.size.iter().product()
    }

    fn contains(&self, ijk: [usize; 3]) -> bool {
        (0..3).all(|a| ijk[a] >= self.lo[a] && ijk[a] < self.lo[a] + self.size[a])
    }
}

/// The analytic world of one sample: the grid (axis-aligned, as synth's grids are), and per
/// target and session its box and intensity.
struct Phantom {
    spacing_mm: [f64; 3],
    /// World x, y, z of voxel index 0 and the sign of each axis.
    origin_mm: [f64; 3],
    sign: [f64; 3],
    boxes: Vec<Vec<BoxRoi>>,
    values: Vec<Vec<f32>>,
}

impl Phantom {
    /// Target `t` is 3 + t voxels wide at baseline and one voxel wider per later session, 3 × 4
    /// voxels across; target 0 lies 30 mm to the subject's left of the grid centre, target 1
    /// as far to the right (so for `asymmetry` the left target is on the left), others at the
    /// centre.
    fn new(g: &Geometry, targets: usize, sessions: usize) -> Phantom {
        let a = g.affine().linear();
        for r in 0..3 {
            for c in 0..3 {
                assert!(
                    r == c || a[r][c] == 0.0,
                    "the analytic phantom needs an axis-aligned grid: {a:?}"
                );
            }
        }
        let spacing_mm = [0, 1, 2].map(|i| a[i][i].abs());
        let sign = [0, 1, 2].map(|i| a[i][i].signum());
        let origin_mm = g.voxel_to_world([0.0; 3]);
        let n = g.shape();
        let centre = g.voxel_to_world(n.map(|x| (x / 2) as f64));
        let boxes = (0..targets)
            .map(|t| {
                let x = match t {
                    0 => centre[0] - 30.0,
                    1 => centre[0] + 30.0,
                    _ => centre[0],
                };
                let c = g.world_to_voxel([x, centre[1], centre[2] + 8.0 * t as f64]);
                (0..sessions)
                    .map(|k| {
                        let size = [3 + t + k, 3, 4];
                        let lo = [0, 1, 2].map(|a| c[a].round() as usize - size[a] / 2);
                        assert!((0..3).all(|a| lo[a] + size[a] <= n[a]), "box off the grid");
                        BoxRoi { lo, size }
                    })
                    .collect()
            })
            .collect();
        let values = (0..targets)
            .map(|t| {
                (0..sessions)
                    .map(|k| 0.5 + 0.1 * t as f32 + 0.05 * k as f32)
                    .collect()
            })
            .collect();
        Phantom {
            spacing_mm,
            origin_mm,
            sign,
            boxes,
            values,
        }
    }

    fn voxel_ml(&self) -> f64 {
        self.spacing_mm.iter().product::<f64>() / 1000.0
    }

    fn volume_ml(&self, t: usize, k: usize) -> f64 {
        self.boxes[t][k].count() as f64 * self.voxel_ml()
    }

    /// Extents along world x, y, z: the box's voxels times the spacing.
    fn extents_mm(&self, t: usize, k: usize) -> [f64; 3] {
        let b = self.boxes[t][k];
        [0, 1, 2].map(|a| b.size[a] as f64 * self.spacing_mm[a])
    }

    /// World centre of the box: the middle of its first and last voxel centres.
    fn centroid_mm(&self, t: usize, k: usize) -> [f64; 3] {
        let b = self.boxes[t][k];
        [0, 1, 2].map(|a| {
            let mid = b.lo[a] as f64 + (b.size[a] as f64 - 1.0) / 2.0;
            self.origin_mm[a] + self.sign[a] * self.spacing_mm[a] * mid
        })
    }

    fn mean(&self, t: usize, k: usize) -> f64 {
        self.values[t][k] as f64
    }
}

/// The generate targets of `s`, in program order, without repeats.
fn targets(s: &TaskSample) -> Vec<GenerateTarget> {
    let mut out: Vec<GenerateTarget> = Vec::new();
    for m in s.mods() {
        if let ModMeaning::Generate { target } = m {
            if !out.iter().any(|t| t.name == target.name) {
                out.push(target.clone());
            }
        }
    }
    out
}

/// `s` with its truth and input images replaced by the phantom's boxes.
fn transplant(s: &TaskSample, targets: &[GenerateTarget], ph: &Phantom) -> TaskSample {
    let mut truth = (*s.truth).clone();
    for (k, session) in truth.sessions.iter_mut().enumerate() {
        let g = session.labels.geometry().clone();
        let mut labels = vec![FILLER; g.num_voxels()];
        let mut lesions = vec![0i32; g.num_voxels()];
        let mut owner = vec![0i32; g.num_voxels()];
        for idx in 0..g.num_voxels() {
            let ijk = g.coords(idx);
            for (t, target) in targets.iter().enumerate() {
                if !ph.boxes[t][k].contains(ijk) {
                    continue;
                }
                match &target.mask {
                    MaskDef::Anatomy { ids } => labels[idx] = ids[0],
                    MaskDef::Lesion { lesion, components } => {
                        lesions[idx] = components[0];
                        owner[idx] = *lesion as i32 + 1;
                    }
                    // A class the subject lacks (the presence family's healthy subjects): its
                    // mask counts only lesions of the class, and there is none to paint.
                    MaskDef::AnyLesion { .. } => {}
                    other => panic!("{}: no analytic phantom for {other:?}", s.family),
                }
            }
        }
        session.labels = session.labels.with_data(labels).unwrap();
        session.lesions = session.lesions.with_data(lesions).unwrap();
        session.owner = session.owner.with_data(owner).unwrap();
    }
    let mut out = s.clone();
    out.truth = Arc::new(truth);
    for input in &mut out.inputs {
        let g = input.image.geometry().clone();
        let k = input.session;
        let data: Vec<f32> = (0..g.num_voxels())
            .map(|idx| {
                let ijk = g.coords(idx);
                (0..targets.len())
                    .find(|&t| ph.boxes[t][k].contains(ijk))
                    .map_or(BACKGROUND, |t| ph.values[t][k])
            })
            .collect();
        input.image = Arc::new(Image::new(g, data).unwrap());
    }
    out
}

/// The numbers the answer to `family` must contain for the phantom, with their quantities, in
/// the order of the reply.
fn analytic_numbers(family: &str, ph: &Phantom, sessions: usize) -> Vec<(Quantity, f64)> {
    use Quantity::*;
    let last = sessions - 1;
    let pct = |a: f64, b: f64| 100.0 * (b - a) / a.abs();
    match family {
        "volume" => vec![(VolumeMl, ph.volume_ml(0, 0))],
        "bounding_box" => ph.extents_mm(0, 0).map(|x| (LengthMm, x)).to_vec(),
        "mean_intensity" => vec![(IntensityAu, ph.mean(0, 0))],
        "asymmetry" => {
            let (l, r) = (ph.volume_ml(0, 0), ph.volume_ml(1, 0));
            vec![
                (VolumeMl, l),
                (VolumeMl, r),
                (AsymmetryPercent, 100.0 * (l - r) / ((l + r) / 2.0)),
            ]
        }
        "segment_by_position" => vec![(VolumeMl, ph.volume_ml(0, 0))],
        "lesion_volume_change" => {
            let (a, b) = (ph.volume_ml(0, 0), ph.volume_ml(0, last));
            vec![(VolumeMl, a), (VolumeMl, b), (ChangeMl, b - a)]
        }
        "lesion_percent_change" => {
            let (a, b) = (ph.volume_ml(0, 0), ph.volume_ml(0, last));
            vec![(VolumeMl, a), (VolumeMl, b), (ChangePercent, pct(a, b))]
        }
        "ventricular_growth" => {
            let (a, b) = (ph.volume_ml(0, 0), ph.volume_ml(0, last));
            vec![
                (VolumeMl, a),
                (VolumeMl, b),
                (ChangeMl, b - a),
                (ChangePercent, pct(a, b)),
            ]
        }
        "intensity_change" => {
            let (a, b) = (ph.mean(0, 0), ph.mean(0, last));
            vec![
                (IntensityAu, a),
                (IntensityAu, b),
                (ChangeAu, b - a),
                (ChangePercent, pct(a, b)),
            ]
        }
        other => panic!("no analytic answer for {other}"),
    }
}

/// Samples `family`, swaps in the phantom, runs the program with the oracle, and checks every
/// printed number against the analytic value (to the three printed decimals); returns the
/// phantom and the run's feedback for further checks.
fn check_family(family: &str, seed: u64) -> (Phantom, Vec<String>) {
    let cat = catalogue();
    // The boxes need an axis-aligned grid; synth tilts some grids (oblique acquisitions), so
    // take the first untilted sample from `seed` on (seeds 1000 apart per call stay distinct).
    let (seed, s) = (0..50)
        .map(|k| seed + 1000 * k)
        .map(|seed| {
            let s = cat
                .sample(family, seed)
                .unwrap_or_else(|e| panic!("{family} seed {seed}: {e}"));
            (seed, s)
        })
        .find(|(_, s)| {
            let a = s.inputs[0].image.geometry().affine().linear();
            (0..3).all(|r| (0..3).all(|c| r == c || a[r][c] == 0.0))
        })
        .unwrap_or_else(|| panic!("{family}: no axis-aligned sample near seed {seed}"));
    let ctx = format!("{family} seed {seed} ({:?})", s.prompt.text);
    let targets = targets(&s);
    let sessions = s.truth.sessions.len();
    let grid = s.inputs[0].image.geometry().clone();
    let ph = Phantom::new(&grid, targets.len(), sessions);
    let mut t = transplant(&s, &targets, &ph);
    let want = analytic_numbers(family, &ph, sessions);
    let quantities: Vec<Quantity> = t.expected.numbers.iter().map(|n| n.quantity).collect();
    assert_eq!(
        quantities,
        want.iter().map(|w| w.0).collect::<Vec<_>>(),
        "{ctx}: the reply's numbers changed; update analytic_numbers"
    );
    let run = run_with_oracle(&t).unwrap();
    assert!(run.output.error.is_none(), "{ctx}: {:?}", run.output.error);
    // Every number as printed (3 decimals) equals the analytic value.
    let printed = parse_numbers(&run.output.response);
    let mut used = vec![false; printed.len()];
    for (q, value) in &want {
        let hit = printed
            .iter()
            .enumerate()
            .find(|(i, (_, u))| !used[*i] && *u == q.unit());
        let Some((i, (got, _))) = hit else {
            panic!("{ctx}: no {q:?} in {:?}", run.output.response)
        };
        used[i] = true;
        assert!(
            (got - value).abs() <= 0.0005 + 1e-9,
            "{ctx}: {q:?} printed {got}, analytic {value}; response: {}",
            run.output.response
        );
    }
    // The checker agrees when the expected numbers are the analytic ones.
    for (n, (_, value)) in t.expected.numbers.iter_mut().zip(&want) {
        n.value = *value;
        n.reference = None;
    }
    let report = t
        .check(
            &run.output.response,
            &run.output.outputs,
            Level::GroundTruth,
        )
        .unwrap();
    assert!(report.passed, "{ctx}:\n{}", report.failures());
    (ph, run.steps.into_iter().map(|s| s.feedback).collect())
}

#[test]
fn volume_and_extents_are_the_boxes() {
    for seed in 0..SEEDS {
        check_family("volume", seed);
        check_family("bounding_box", seed);
    }
}

#[test]
fn mean_intensity_is_the_boxes_value() {
    for seed in 0..SEEDS {
        check_family("mean_intensity", seed);
    }
}

#[test]
fn asymmetry_takes_left_minus_right() {
    // The left target lies left of the right one and is one voxel narrower: a negative index,
    // so a swapped subtraction or swapped targets would fail.
    for seed in 0..SEEDS {
        let (ph, _) = check_family("asymmetry", seed);
        assert!(ph.centroid_mm(0, 0)[0] < ph.centroid_mm(1, 0)[0]);
        assert!(ph.volume_ml(0, 0) < ph.volume_ml(1, 0));
    }
}

#[test]
fn centroid_is_the_box_centre() {
    for seed in 0..SEEDS {
        let (ph, feedback) = check_family("segment_by_position", seed);
        // The step that reads `volume(m)` and then `centroid(m)`: its last three numbers.
        let text = feedback
            .iter()
            .find(|f| f.contains('['))
            .expect("a centroid in the feedback");
        let numbers: Vec<f64> = parse_numbers(text).into_iter().map(|(x, _)| x).collect();
        let got = &numbers[numbers.len() - 3..];
        let want = ph.centroid_mm(0, 0);
        for a in 0..3 {
            assert!(
                (got[a] - want[a]).abs() <= 0.0005 + 1e-9,
                "seed {seed}: centroid {got:?}, analytic {want:?} ({text})"
            );
        }
    }
}

#[test]
fn longitudinal_changes_are_the_boxes_growth() {
    for seed in 0..SEEDS {
        for family in [
            "lesion_volume_change",
            "lesion_percent_change",
            "ventricular_growth",
            "intensity_change",
        ] {
            check_family(family, seed);
        }
    }
}
