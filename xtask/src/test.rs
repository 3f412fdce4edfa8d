//! `cargo xtask test`: everything CI runs, in the order that fails fastest.

use anyhow::{Context, Result};

use crate::setup::{self, Needs};

/// Formatting, then every test of every crate, rendering tests included.
pub fn run() -> Result<()> {
    setup::run(Needs::All)?;
    if setup::command_exists("rustfmt") {
        crate::run_command(crate::cargo().args(["fmt", "--all", "--check"]))
            .context("the code is not formatted: run `cargo fmt --all` and commit the result")?;
    } else {
        eprintln!("note: rustfmt is not installed, so formatting is not checked (rustup component add rustfmt)");
    }
    crate::run_command(crate::cargo().args(["test", "--workspace", "--no-fail-fast"]))
        .context("some tests failed: the output above names them")?;
    // The example the frame benchmark runs must keep building and running.
    let bench = crate::build_executable("frame_bench")?;
    crate::run_command(std::process::Command::new(bench).arg("--smoke"))
        .context("the frame benchmark no longer runs: `cargo xtask bench frame` shows the error")?;
    Ok(())
}
