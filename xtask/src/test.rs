//! `cargo xtask test`: everything CI runs, in the order that fails fastest.

use anyhow::{Context, Result};

use crate::setup::{self, Needs};

/// Crates that must never enter the build, with the reason (the same list as `deny.toml`).
const BANNED_CRATES: [(&str, &str); 4] = [
    ("openssl", "TLS is rustls only"),
    ("openssl-sys", "TLS is rustls only"),
    ("native-tls", "TLS is rustls only"),
    ("bincode", "wire and disk formats use postcard (bincode is unmaintained, RUSTSEC-2025-0141)"),
];

/// Formatting, banned crates, clippy, then every test of every crate, rendering tests included.
pub fn run() -> Result<()> {
    setup::run(Needs::All)?;
    check_banned_crates()?;
    if setup::command_exists("rustfmt") {
        crate::run_command(crate::cargo().args(["fmt", "--all", "--check"]))
            .context("the code is not formatted: run `cargo fmt --all` and commit the result")?;
    } else {
        eprintln!("note: rustfmt is not installed, so formatting is not checked (rustup component add rustfmt)");
    }
    if setup::command_exists("cargo-clippy") {
        crate::run_command(crate::cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--features",
            "sanctuary/xr",
            "--",
            "-D",
            "warnings",
        ]))
        .context(
            "clippy found problems: fix the lints above (`cargo clippy --fix --workspace` does the simple ones)",
        )?;
    } else {
        eprintln!("note: clippy is not installed, so lints are not checked (rustup component add clippy)");
    }
    let gltf_transform = setup::gltf_transform()?;
    let ktx2_tool = setup::ktx2_tool()?;
    crate::run_command(
        crate::cargo()
            .args(["test", "--workspace", "--features", "sanctuary/xr", "--no-fail-fast"])
            .env("SANCTUARY_GLTF_TRANSFORM", gltf_transform)
            .env("SANCTUARY_KTX2_TOOL", ktx2_tool),
    )
    .context("some tests failed: the output above names them")?;
    // The example the frame benchmark runs must keep building and running.
    let bench = crate::build_executable("frame_bench")?;
    crate::run_command(std::process::Command::new(bench).arg("--smoke"))
        .context("the frame benchmark no longer runs: `cargo xtask bench frame` shows the error")?;
    let bench = crate::build_executable("xr_bench")?;
    crate::run_command(std::process::Command::new(bench).arg("--smoke"))
        .context("the VR frame benchmark no longer runs: `cargo xtask bench xr` shows the error")?;
    let bench = crate::build_executable("net_bench")?;
    crate::run_command(std::process::Command::new(bench).arg("--smoke"))
        .context("the network benchmark no longer runs: `cargo xtask bench net` shows the error")?;
    // A short pass of the fuzzer over every decoder (`cargo xtask fuzz` runs the long one).
    crate::fuzz::run(crate::fuzz::CI_INPUTS)?;
    let bench = crate::build_executable("crowd_bench")?;
    crate::run_command(std::process::Command::new(bench).arg("--smoke"))
        .context("the multi-process crowd benchmark no longer runs: `cargo xtask bench crowd` shows the error")?;
    let bench = crate::build_executable("hostile_bench")?;
    crate::run_command(std::process::Command::new(bench).arg("--smoke"))
        .context("the flooding and partition benchmark no longer runs: `cargo xtask bench hostile` shows the error")?;
    let bench = crate::build_executable("world_bench")?;
    crate::run_command(std::process::Command::new(bench).arg("--smoke"))
        .context("the world benchmark no longer runs: `cargo xtask bench world` shows the error")?;
    let bench = crate::build_executable("pay_bench")?;
    crate::run_command(std::process::Command::new(bench).arg("--smoke"))
        .context("the payment benchmark no longer runs: `cargo xtask bench pay` shows the error")?;
    let bench = crate::build_executable("trust_bench")?;
    crate::run_command(std::process::Command::new(bench).arg("--smoke"))
        .context("the trust benchmark no longer runs: `cargo xtask bench trust` shows the error")?;
    let bench = crate::build_executable("voice_bench")?;
    crate::run_command(std::process::Command::new(bench).arg("--smoke"))
        .context("the voice benchmark no longer runs: `cargo xtask bench voice` shows the error")?;
    let bench = crate::build_executable("video_bench")?;
    crate::run_command(std::process::Command::new(bench).arg("--smoke"))
        .context("the video benchmark no longer runs: `cargo xtask bench video` shows the error")?;
    let bench = crate::build_executable("cinema_bench")?;
    crate::run_command(std::process::Command::new(bench).arg("--smoke"))
        .context("the cinema benchmark no longer runs: `cargo xtask bench video` shows the error")?;
    Ok(())
}

/// Fails if Cargo.lock holds a crate from [`BANNED_CRATES`].
fn check_banned_crates() -> Result<()> {
    let lock_path = crate::workspace_root().join("Cargo.lock");
    let lock = std::fs::read_to_string(&lock_path).with_context(|| format!("cannot read {}", lock_path.display()))?;
    let found: Vec<String> = BANNED_CRATES
        .iter()
        .filter(|(name, _)| lock.lines().any(|line| line.trim() == format!("name = \"{name}\"")))
        .map(|(name, reason)| format!("{name} ({reason})"))
        .collect();
    if !found.is_empty() {
        anyhow::bail!(
            "banned crates are in Cargo.lock: {}\nfind who pulls them in with `cargo tree -i <crate>` and \
             choose a feature or crate without them",
            found.join(", ")
        );
    }
    Ok(())
}
