//! The one rule for tests that need something outside the repository (the anatomy cache,
//! python3 with nibabel): without it they skip with a message, unless
//! [`REQUIRE_DATA_VAR`]` = 1` is set (as `.ci/run` does), where a missing dependency fails the
//! test with the reason and the fix, so a CI run cannot pass by skipping.

/// Environment variable that turns a missing test dependency from a skip into a failure.
pub const REQUIRE_DATA_VAR: &str = "VOXELPROMPT_REQUIRE_DATA";

/// Whether missing test dependencies must fail the test: [`REQUIRE_DATA_VAR`] is `1`, or the
/// run is a CI run (`CI` set to anything but `false`/`0`), so CI can never pass by skipping.
pub fn data_required() -> bool {
    std::env::var(REQUIRE_DATA_VAR).is_ok_and(|v| v.trim() == "1")
        || std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// Reports that the test cannot run because `what` is missing, `fix` saying how to get it:
/// panics when [`data_required`], else prints a skip line. The caller returns right after.
///
/// ```should_panic
/// std::env::set_var(voxel::test_support::REQUIRE_DATA_VAR, "1");
/// voxel::test_support::skip_missing("the anatomy cache", "run python3 scripts/fetch_anatomy.py");
/// ```
pub fn skip_missing(what: &str, fix: &str) {
    if data_required() {
        panic!("{what} is missing and {REQUIRE_DATA_VAR}=1 requires it: {fix}");
    }
    println!("skipping: {what} is missing ({fix}; set {REQUIRE_DATA_VAR}=1 to fail instead)");
}

/// Whether `python3` can import every module of `modules` (e.g. `["nibabel"]`).
pub fn python_has(modules: &[&str]) -> bool {
    std::process::Command::new("python3")
        .args(["-c", &format!("import {}", modules.join(", "))])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
