//! Helpers shared by the command-line tests: running the binary, and a `tiny` model trained
//! for a few steps on the phantom anatomy with a 4 mm example head to ask it about.

// Each test file compiles this module on its own and uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_voxelprompt");

/// Runs the binary with `args` (no `$VOXELPROMPT_MODEL` from the caller's environment).
pub fn voxelprompt(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("VOXELPROMPT_MODEL")
        .output()
        .expect("binary runs")
}

/// Runs the binary with `args` and `stdin` written to its standard input.
pub fn voxelprompt_with_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("VOXELPROMPT_MODEL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    {
        use std::io::Write;
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(stdin.as_bytes())
            .expect("stdin takes the script");
    }
    child.wait_with_output().expect("binary runs")
}

/// Both output streams, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Standard output parsed as one JSON document (the whole of it: `--json` prints nothing else).
pub fn stdout_json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {}", text(o)))
}

/// A path as an argument.
pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Settings for a fast tiny run (few tokenizer samples, validation every 2 steps on one
/// sample, no accumulation), written to `dir/tiny.toml`.
pub fn tiny_settings(dir: &Path) -> PathBuf {
    let shipped = include_str!("../../../../configs/train/joint.toml");
    let mut lines: Vec<String> = shipped.lines().map(str::to_string).collect();
    for (key, value) in [
        ("tokenizer_samples", "40"),
        ("validate_every", "2"),
        ("validation_samples", "1"),
        ("accumulation", "1"),
    ] {
        let line = lines
            .iter_mut()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("configs/train/joint.toml has no `{key} = ` line"));
        *line = format!("{key} = {value}");
    }
    let path = dir.join("tiny.toml");
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

/// `train` of a `tiny` model for `steps` steps on the phantom (seed 1) into the run directory
/// `run`, with [`tiny_settings`] written beside it in `root`.
pub fn train_tiny(root: &Path, run: &Path, steps: usize) -> Output {
    let settings = tiny_settings(root);
    voxelprompt(&[
        "train",
        "--config",
        "tiny",
        "--anatomy",
        "phantom",
        "--settings",
        p(&settings),
        "--steps",
        &steps.to_string(),
        "--out",
        p(run),
        "--seed",
        "1",
    ])
}

/// `example --spacing 4` into `dir`; returns its T1 (the label map is `labels.nii.gz` beside).
pub fn example_head(dir: &Path) -> PathBuf {
    let o = voxelprompt(&["example", "--out", p(dir), "--spacing", "4"]);
    assert!(o.status.success(), "{}", text(&o));
    dir.join("t1.nii.gz")
}

/// A tiny model (3 steps) and a 4 mm example head.
pub struct Fixture {
    /// The model directory.
    pub model: PathBuf,
    /// The example head's T1.
    pub scan: PathBuf,
}

/// The [`Fixture`], made once per test process under the target's temporary directory.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{}_fixture", env!("CARGO_CRATE_NAME")));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let run = root.join("run");
        let o = train_tiny(&root, &run, 3);
        assert!(o.status.success(), "{}", text(&o));
        Fixture {
            model: run.join("checkpoint/model"),
            scan: example_head(&root.join("example")),
        }
    })
}
