//! A phantom subject shared by the runtime's integration tests: an anisotropic grid (1 × 1 ×
//! 2 mm) with two spheres, a box and a constant-intensity background with a checkerboard of
//! known amplitude, plus the ground-truth backend that answers `generate` from its labels.
#![allow(dead_code)]

use runtime::{GroundTruthBackend, Limits, Session, StepOutcome, StructureTable};
use std::sync::Arc;
use voxel::phantom::{box_mask, sphere_mask};
use voxel::{Geometry, Image, LabelMap, Mask};

/// Labels and their constant intensities.
pub const LEFT: i32 = 1;
pub const RIGHT: i32 = 2;
pub const BOX: i32 = 3;
pub const INTENSITY: [(i32, f32); 3] = [(LEFT, 0.8), (RIGHT, 0.6), (BOX, 0.4)];
/// Background mean and the checkerboard amplitude around it.
pub const BACKGROUND: f32 = 0.1;
pub const RIPPLE: f32 = 0.05;

pub struct Phantom {
    pub image: Arc<Image>,
    pub labels: LabelMap,
    pub structures: StructureTable,
}

impl Phantom {
    pub fn mask(&self, label: i32) -> Mask {
        self.labels.mask_of(label)
    }
    pub fn geometry(&self) -> &Geometry {
        self.labels.geometry()
    }
}

pub fn geometry() -> Geometry {
    // World origin at the grid centre; +x is the subject's right (RAS).
    Geometry::from_spacing([48, 48, 24], [1.0, 1.0, 2.0], [-23.5, -23.5, -23.0])
        .expect("valid grid")
}

pub fn phantom() -> Phantom {
    let g = geometry();
    let left = sphere_mask(&g, [-10.0, 0.0, 0.0], 7.0);
    let right = sphere_mask(&g, [11.0, 2.0, 0.0], 5.0);
    let boxed = box_mask(&g, [-5.0, -20.0, -10.0], [5.0, -12.0, 10.0]);
    let mut labels = vec![0i32; g.num_voxels()];
    for (i, l) in labels.iter_mut().enumerate() {
        if left.data()[i] {
            *l = LEFT;
        } else if right.data()[i] {
            *l = RIGHT;
        } else if boxed.data()[i] {
            *l = BOX;
        }
    }
    let labels = LabelMap::new(g.clone(), labels).expect("labels fit the grid");
    let data: Vec<f32> = labels
        .data()
        .iter()
        .enumerate()
        .map(|(i, &l)| match INTENSITY.iter().find(|(id, _)| *id == l) {
            Some((_, v)) => *v,
            None => {
                let c = g.coords(i);
                if (c[0] + c[1] + c[2]) & 1 == 0 {
                    BACKGROUND + RIPPLE
                } else {
                    BACKGROUND - RIPPLE
                }
            }
        })
        .collect();
    let image = Arc::new(Image::new(g, data).expect("image fits the grid"));
    let structures = StructureTable::new()
        .with_group("Left-Blob", &[LEFT])
        .with_group("Right-Blob", &[RIGHT])
        .with_group("Box", &[BOX])
        .with_group("Background", &[0])
        .with_group("Blobs", &[LEFT, RIGHT]);
    Phantom {
        image,
        labels,
        structures,
    }
}

pub fn backend(p: &Phantom) -> GroundTruthBackend {
    GroundTruthBackend::new(p.structures.clone()).with_labels(p.labels.clone())
}

pub fn session(p: &Phantom, limits: Limits) -> Session {
    Session::new(
        vec![("scan_1".into(), p.image.clone())],
        Arc::new(backend(p)),
        limits,
    )
    .expect("session")
}

/// Runs a step that must succeed.
pub fn ok(s: &mut Session, code: &str) -> StepOutcome {
    let out = s.step(code, &[]).expect("session accepts the step");
    assert!(
        out.error.is_none(),
        "step failed: {code}\n{}",
        out.feedback_text()
    );
    out
}

pub fn float(s: &Session, name: &str) -> f64 {
    let v = s
        .variable(name)
        .unwrap_or_else(|| panic!("no variable {name}"));
    v.as_float()
        .unwrap_or_else(|_| panic!("{name} is a {}, not a number", v.type_name()))
}

pub fn int(s: &Session, name: &str) -> i64 {
    let v = s
        .variable(name)
        .unwrap_or_else(|| panic!("no variable {name}"));
    v.as_int()
        .unwrap_or_else(|_| panic!("{name} is a {}, not an integer", v.type_name()))
}

pub fn floats(s: &Session, name: &str) -> Vec<f64> {
    let v = s
        .variable(name)
        .unwrap_or_else(|| panic!("no variable {name}"));
    v.into_array()
        .unwrap_or_else(|t| panic!("{name} is a {t}, not an array"))
        .into_iter()
        .map(|x| x.as_float().expect("array of numbers"))
        .collect()
}

pub fn mask(s: &Session, name: &str) -> Arc<Mask> {
    let v = s
        .variable(name)
        .unwrap_or_else(|| panic!("no variable {name}"));
    v.try_cast::<runtime::MaskHandle>().expect("a Mask").0
}

pub fn image(s: &Session, name: &str) -> Arc<Image> {
    let v = s
        .variable(name)
        .unwrap_or_else(|| panic!("no variable {name}"));
    v.try_cast::<runtime::VolumeHandle>().expect("a Volume").0
}

/// The masks of the phantom's structures as program variables `left`, `right`, `boxed`.
pub const SEGMENT: &str = r#"
let e = encode(scan_1);
let left = generate(e, "Left-Blob");
let right = generate(e, "Right-Blob");
let boxed = generate(e, "Box");
let bg = generate(e, "Background");
"#;

pub fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}
