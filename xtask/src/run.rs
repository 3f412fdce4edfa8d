//! `cargo xtask run`: build and start the desktop client.

use anyhow::Result;

use crate::setup::{self, Needs};

/// Checks the build's packages, then runs `sanctuary` with `args` (a leading `--` is dropped).
pub fn run(args: &[String]) -> Result<()> {
    setup::run(Needs::Build)?;
    let args = match args.first().map(String::as_str) {
        Some("--") => &args[1..],
        _ => args,
    };
    crate::run_command(crate::cargo().args(["run", "--package", "sanctuary", "--bin", "sanctuary", "--"]).args(args))
}
