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
    let client = crate::build_executable("sanctuary")?;
    crate::run_command(std::process::Command::new(client).args(args))
}
