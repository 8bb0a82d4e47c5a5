//! Writes synthetic subjects for looking at: `cargo run -p synth --example synth_subjects --
//! OUT_DIR [N] [SEED]` (all nine contrasts, a glioma and an acute infarct, two sessions, 2 mm).

use synth::contrast::Contrast;
use synth::lesion::LesionClass;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = std::path::PathBuf::from(
        args.next()
            .ok_or("usage: synth_subjects OUT_DIR [N] [SEED]")?,
    );
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    let seed: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    let t = std::time::Instant::now();
    let dirs = synth::write_subjects(
        &out,
        n,
        &Contrast::ALL,
        &[LesionClass::Glioma, LesionClass::AcuteInfarct],
        2,
        [2.0; 3],
        seed,
    )?;
    println!(
        "wrote {} subjects in {:.1} s: {dirs:?}",
        dirs.len(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
