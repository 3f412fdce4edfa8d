//! `cargo xtask bench <name>`: benchmarks that print medians.

use anyhow::{Result, bail};

use crate::setup::{self, Needs};

/// Runs the named benchmark.
pub fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("frame") => {
            setup::run(Needs::Build)?;
            let bench = crate::build_executable("frame_bench")?;
            crate::run_command(std::process::Command::new(bench).args(&args[1..]))
        }
        Some("net") => {
            setup::run(Needs::Build)?;
            let bench = crate::build_executable("net_bench")?;
            crate::run_command(std::process::Command::new(bench).args(&args[1..]))?;
            let hostile = crate::build_executable("hostile_bench")?;
            crate::run_command(std::process::Command::new(hostile).args(&args[1..]))
        }
        Some("hostile") => {
            setup::run(Needs::Build)?;
            let bench = crate::build_executable("hostile_bench")?;
            crate::run_command(std::process::Command::new(bench).args(&args[1..]))
        }
        Some("world") => {
            setup::run(Needs::Build)?;
            let bench = crate::build_executable("world_bench")?;
            crate::run_command(std::process::Command::new(bench).args(&args[1..]))
        }
        Some("voice") => {
            // espeak-ng and sox make the speech.
            setup::run(Needs::All)?;
            let bench = crate::build_executable("voice_bench")?;
            crate::run_command(std::process::Command::new(bench).args(&args[1..]))
        }
        Some("trust") => {
            let bench = crate::build_executable("trust_bench")?;
            crate::run_command(std::process::Command::new(bench).args(&args[1..]))
        }
        Some("xr") => {
            let bench = crate::build_executable("xr_bench")?;
            crate::run_command(std::process::Command::new(bench).args(&args[1..]))
        }
        Some(other) => bail!("unknown benchmark '{other}'; available: frame, net, hostile, world, voice, trust, xr"),
        None => bail!("name a benchmark: cargo xtask bench frame | net | hostile | world | voice | trust | xr"),
    }
}
