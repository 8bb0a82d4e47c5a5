//! Each library function against `voxel` ground truth on the phantom (and, where the phantom
//! makes it exact, against the analytic value).

mod common;
use common::*;
use runtime::Limits;
use voxel::measure;

fn segmented() -> (Phantom, runtime::Session) {
    let p = phantom();
    let mut s = session(&p, Limits::default());
    ok(&mut s, SEGMENT);
    (p, s)
}

#[test]
fn generate_by_name_returns_the_label_masks() {
    let (p, s) = segmented();
    for (var, label) in [("left", LEFT), ("right", RIGHT), ("boxed", BOX)] {
        assert_eq!(mask(&s, var).data(), p.mask(label).data(), "{var}");
    }
}

#[test]
fn volume_is_voxel_volume_ml_and_close_to_the_sphere() {
    let (p, mut s) = segmented();
    ok(
        &mut s,
        "let v = volume(left); let vb = volume(boxed); let v0 = volume(subtract(left, left));",
    );
    assert_eq!(float(&s, "v"), measure::volume_ml(&p.mask(LEFT)));
    // A 7 mm sphere on a 1x1x2 mm grid: voxelisation error of a few percent at most.
    let analytic = 4.0 / 3.0 * std::f64::consts::PI * 343.0 / 1000.0;
    assert!(
        (float(&s, "v") - analytic).abs() / analytic < 0.05,
        "{} vs {analytic}",
        float(&s, "v")
    );
    // The box [-5,5]x[-20,-12]x[-10,10] holds 10x8x10 voxel centres of 2 mm³ each... in x and y
    // the centres are at half-integers, so 10 per axis in x, 8 in y; z centres at odd mm.
    assert_eq!(float(&s, "vb"), measure::volume_ml(&p.mask(BOX)));
    assert_eq!(float(&s, "v0"), 0.0);
}

#[test]
fn extents_bbox_and_centroid_match_voxel() {
    let (p, mut s) = segmented();
    ok(&mut s, "let x = extents(boxed); let c = centroid(left); let b = bbox(boxed); let lo = b.min; let hi = b.max;");
    let b = p.mask(BOX);
    assert_eq!(floats(&s, "x"), measure::extents_mm(&b).unwrap().to_vec());
    // Box centres span x -4.5..4.5 (+1 mm of voxel), y -19.5..-12.5, z -9..9 (+2 mm).
    assert_eq!(floats(&s, "x"), vec![10.0, 8.0, 20.0]);
    let wb = measure::bounding_box_mm(&b).unwrap();
    assert_eq!(floats(&s, "lo"), wb.min_mm.to_vec());
    assert_eq!(floats(&s, "hi"), wb.max_mm.to_vec());
    let c = floats(&s, "c");
    let want = measure::centroid_mm(&p.mask(LEFT)).unwrap();
    assert!(
        (0..3).all(|a| close(c[a], want[a], 1e-9)),
        "{c:?} vs {want:?}"
    );
    assert!(
        close(c[0], -10.0, 0.3) && close(c[1], 0.0, 0.3) && close(c[2], 0.0, 0.3),
        "{c:?}"
    );
}

#[test]
fn mean_std_and_snr_match_voxel_and_the_known_intensities() {
    let (p, mut s) = segmented();
    ok(
        &mut s,
        "let ml = mean(scan_1, left); let sl = std(scan_1, left); let mb = mean(scan_1, bg); let sb = std(scan_1, bg);
         let mall = mean(scan_1); let sall = std(scan_1); let q = snr(scan_1, left, bg); let q1 = snr(scan_1, bg);",
    );
    assert!(close(float(&s, "ml"), 0.8, 1e-6));
    assert!(close(float(&s, "sl"), 0.0, 1e-6));
    assert!(close(float(&s, "mb"), BACKGROUND as f64, 1e-3));
    assert!(close(float(&s, "sb"), RIPPLE as f64, 1e-3));
    let all = voxel::Volume::filled(p.geometry().clone(), true);
    let (m, sd) = measure::mean_std(&p.image, &all).unwrap();
    // Parallel sums may add in a different order on each call: equal to rounding, not bits.
    let same = |a: f64, b: f64| close(a, b, 1e-12 * b.abs().max(1.0));
    assert!(same(float(&s, "mall"), m) && same(float(&s, "sall"), sd));
    let bg = p.mask(0);
    let q = measure::snr(&p.image, &p.mask(LEFT), Some(&bg)).unwrap();
    assert!(same(float(&s, "q"), q));
    assert!(same(
        float(&s, "q1"),
        measure::snr(&p.image, &bg, None).unwrap()
    ));
    assert!(close(float(&s, "q"), 0.8 / RIPPLE as f64, 0.5));
}

#[test]
fn mask_algebra_matches_set_operations() {
    let (p, mut s) = segmented();
    ok(
        &mut s,
        "let u = union(left, right); let i = intersect(u, left); let d = subtract(u, left);
         let n = count_components(u); let n_big = count_components(u, 1.0); let big = largest_component(u);",
    );
    let (l, r) = (p.mask(LEFT), p.mask(RIGHT));
    let u = l.zip_map(&r, |a, b| a || b).unwrap();
    assert_eq!(mask(&s, "u").data(), u.data());
    assert_eq!(mask(&s, "i").data(), l.data());
    assert_eq!(mask(&s, "d").data(), r.data());
    assert_eq!(int(&s, "n"), 2);
    // The right sphere (r = 5 mm, ~0.52 mL) is under 1 mL, the left (~1.44 mL) is not.
    assert_eq!(int(&s, "n_big"), 1);
    assert_eq!(mask(&s, "big").data(), l.data());
    assert_eq!(
        voxel::components::count_components(&u, runtime::library::mask_algebra::CONNECTIVITY, None)
            .unwrap(),
        2
    );
}

#[test]
fn grids_must_match_for_mask_algebra() {
    let (_, mut s) = segmented();
    let out = s
        .step("let c = crop_to(left, left); union(c, left)", &[])
        .unwrap();
    let e = out.error.expect("different grids are refused");
    assert_eq!(e.kind, runtime::StepErrorKind::Library);
    assert!(e.message.contains("different grids"), "{}", e.message);
}

#[test]
fn crop_to_matches_voxel_crop_to_mask() {
    let (p, mut s) = segmented();
    ok(&mut s, "let c0 = crop_to(scan_1, left); let c4 = crop_to(scan_1, left, 4); let cm = crop_to(right, right, 2.5);");
    let l = p.mask(LEFT);
    for (var, margin) in [("c0", 0.0), ("c4", 4.0)] {
        let want = voxel::crop::crop_to_mask(&*p.image, &l, margin).unwrap();
        let got = image(&s, var);
        assert_eq!(got.geometry(), want.geometry(), "{var}");
        assert_eq!(got.data(), want.data(), "{var}");
    }
    // 7 mm sphere: 14 voxel centres across in x and y; a 4 mm margin adds 4 voxels (x, y) and
    // 2 slices (z, 2 mm) per side.
    let (c0, c4) = (image(&s, "c0").shape(), image(&s, "c4").shape());
    assert_eq!((c0[0], c0[1]), (14, 14));
    assert_eq!(c4, [c0[0] + 8, c0[1] + 8, c0[2] + 4]);
    let r = p.mask(RIGHT);
    assert_eq!(
        mask(&s, "cm").data(),
        voxel::crop::crop_to_mask(&r, &r, 2.5).unwrap().data()
    );
}

#[test]
fn mask_image_and_remove_keep_and_blank_the_region() {
    let (p, mut s) = segmented();
    ok(
        &mut s,
        "let k = mask_image(scan_1, left); let r = remove(scan_1, left);
         let mk = mean(k, left); let zk = mean(k, right); let mr = mean(r, right); let zr = mean(r, left);",
    );
    assert!(close(float(&s, "mk"), 0.8, 1e-6));
    assert_eq!(float(&s, "zk"), 0.0);
    assert!(close(float(&s, "mr"), 0.6, 1e-6));
    assert_eq!(float(&s, "zr"), 0.0);
    let l = p.mask(LEFT);
    let want = p.image.zip_map(&l, |v, m| if m { v } else { 0.0 }).unwrap();
    assert_eq!(image(&s, "k").data(), want.data());
}

#[test]
fn change_and_ratio_helpers() {
    let (p, mut s) = segmented();
    ok(
        &mut s,
        "let l = volume(left); let r = volume(right);
         let c = change(l, r); let pc = percent_change(l, r); let q = ratio(l, r); let a = asymmetry(l, r);
         let pi = percent_change(4, 5); let qi = ratio(1, 4.0);",
    );
    let (l, r) = (
        measure::volume_ml(&p.mask(LEFT)),
        measure::volume_ml(&p.mask(RIGHT)),
    );
    assert_eq!(float(&s, "c"), r - l);
    assert!(close(float(&s, "pc"), 100.0 * (r - l) / l, 1e-12));
    assert!(close(float(&s, "q"), l / r, 1e-12));
    assert!(close(
        float(&s, "a"),
        100.0 * measure::asymmetry_index(l, r).unwrap(),
        1e-12
    ));
    assert!(float(&s, "a") > 0.0, "the left blob is larger");
    assert_eq!(float(&s, "pi"), 25.0);
    assert_eq!(float(&s, "qi"), 0.25);
    for code in ["percent_change(0, 1)", "ratio(1, 0)", "asymmetry(0, 0.0)"] {
        let out = s.step(code, &[]).unwrap();
        assert_eq!(
            out.error.expect(code).kind,
            runtime::StepErrorKind::Library,
            "{code}"
        );
    }
}

#[test]
fn measurements_of_an_empty_mask_are_refused_not_nan() {
    let (_, mut s) = segmented();
    ok(&mut s, "let none = subtract(left, left);");
    for f in [
        "extents(none)",
        "centroid(none)",
        "bbox(none)",
        "mean(scan_1, none)",
        "crop_to(scan_1, none)",
    ] {
        let out = s.step(f, &[]).unwrap();
        let e = out.error.unwrap_or_else(|| panic!("{f} should be refused"));
        assert_eq!(
            e.kind,
            runtime::StepErrorKind::Library,
            "{f}: {}",
            e.message
        );
        // Typed, so an answer can end on it without reading the message.
        let function = f.split('(').next().unwrap_or_default();
        assert_eq!(e.empty_mask_in.as_deref(), Some(function), "{f}");
    }
    // Inside a script function the refusal is still known as one.
    let out = s.step("fn f(m) { centroid(m) } f(none)", &[]).unwrap();
    assert_eq!(
        out.error.and_then(|e| e.empty_mask_in).as_deref(),
        Some("centroid")
    );
    // A zero denominator is an undefined value, typed too (also from a script function); other
    // refusals are neither.
    for (code, function) in [
        ("ratio(1, 0)", "ratio"),
        ("percent_change(0, 3)", "percent_change"),
        ("asymmetry(0.0, 0.0)", "asymmetry"),
        ("fn r(a, b) { ratio(a, b) } r(2, volume(none))", "ratio"),
    ] {
        let e = s.step(code, &[]).unwrap().error.expect("refused");
        assert_eq!(e.empty_mask_in, None, "{code}");
        assert_eq!(e.undefined_in.as_deref(), Some(function), "{code}");
    }
    let e = s
        .step("ratio(\"a\", 1)", &[])
        .unwrap()
        .error
        .expect("refused");
    assert_eq!(
        (e.empty_mask_in, e.undefined_in),
        (None, None),
        "{}",
        e.message
    );
    // …but a program can handle the refusal itself.
    let out = ok(
        &mut s,
        "let c = []; try { c = centroid(none); } catch (e) { read(e); }",
    );
    assert!(
        out.feedback_text().starts_with("error (library): centroid"),
        "{}",
        out.feedback_text()
    );
}

#[test]
fn read_formats_numbers_and_values_by_the_documented_rule() {
    let (_, mut s) = segmented();
    let out = ok(
        &mut s,
        r#"read(volume(left)); read(1.0 / 3); read(42); read(0.0001234); read([1.5, 2, "a"]); read(#{b: 1, a: -0.0});
           read(`v = ${2.0/3} mL`); read("v = " + 2.0/3 + " mL"); read(fmt(12.0)); read(0.0/0.0); read(left);"#,
    );
    let lines: Vec<String> = out.feedback_text().lines().map(String::from).collect();
    let v = runtime::format_number(measure::volume_ml(&mask(&s, "left")));
    assert_eq!(lines[0], v);
    assert_eq!(
        &lines[1..10],
        &[
            "0.333",
            "42",
            "1.23e-4",
            "[1.500, 2, \"a\"]",
            "{a: 0.000, b: 1}",
            "v = 0.667 mL",
            "v = 0.667 mL",
            "12.000",
            "nan"
        ]
    );
    assert!(
        lines[10].starts_with("Mask 48x48x24 at 1.000x1.000x2.000 mm, "),
        "{}",
        lines[10]
    );
}

#[test]
fn respond_show_and_stop_produce_the_outputs() {
    let (p, mut s) = segmented();
    let out = ok(
        &mut s,
        r#"respond("left: " + volume(left) + " mL"); respond(volume(right));
           show(left, "left_blob"); show(crop_to(scan_1, right, 2), "right-crop.t1"); show(right, "left_blob");"#,
    );
    assert!(!out.stopped);
    let out = s.step("stop(); respond(\"never\");", &[]).unwrap();
    assert!(out.stopped && out.error.is_none());
    assert!(matches!(
        s.step("read(1)", &[]),
        Err(runtime::RuntimeError::Stopped)
    ));
    let run = s.finish();
    let l = measure::volume_ml(&p.mask(LEFT));
    let r = measure::volume_ml(&p.mask(RIGHT));
    assert_eq!(
        run.response,
        format!(
            "left: {} mL\n{}",
            runtime::format_number(l),
            runtime::format_number(r)
        )
    );
    assert!(run.stopped);
    assert_eq!(run.outputs.len(), 2);
    // The latest `show` of a name wins; outputs keep the order of their first `show`.
    assert_eq!(run.outputs[0].name, "left_blob");
    match &run.outputs[0].data {
        runtime::OutputData::Mask(m) => assert_eq!(m.data(), p.mask(RIGHT).data()),
        other => panic!("expected a mask, got {other:?}"),
    }
    // A crop is put back into the scan's grid, zero outside the crop.
    let crop = &run.outputs[1];
    assert_eq!(
        (crop.name.as_str(), crop.grid_of.as_str()),
        ("right-crop.t1", "scan_1")
    );
    match &crop.data {
        runtime::OutputData::Image(img) => {
            assert_eq!(img.geometry(), p.geometry());
            let near = voxel::crop::crop_to_mask(&*p.image, &p.mask(RIGHT), 2.0).unwrap();
            let placed_sum: f64 = img.data().iter().map(|&v| v as f64).sum();
            let crop_sum: f64 = near.data().iter().map(|&v| v as f64).sum();
            assert!(close(placed_sum, crop_sum, 1e-3));
            assert!(close(mean_in(img, &p.mask(RIGHT)) as f64, 0.6, 1e-6));
        }
        other => panic!("expected an image, got {other:?}"),
    }
}

fn mean_in(img: &voxel::Image, m: &voxel::Mask) -> f32 {
    measure::mean_std(img, m).unwrap().0 as f32
}

#[test]
fn every_library_function_is_documented_with_an_example() {
    let doc = include_str!("../../../docs/runtime-library.md");
    for f in runtime::library::LIBRARY {
        assert!(
            doc.contains(&format!("### `{}`", f.name)),
            "docs/runtime-library.md lacks a section for {}",
            f.name
        );
        assert!(
            doc.contains(&format!("{}(", f.name)),
            "docs/runtime-library.md has no example calling {}",
            f.name
        );
    }
}
