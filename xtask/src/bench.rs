//! `cargo xtask bench <name>`: benchmarks that print medians.

use anyhow::{Result, bail};

use crate::setup::{self, Needs};

/// P8 of TARGETS.md: resident memory with the lobby and 1,000 avatars.
const P8_BUDGET_MIB: u64 = 1024;

/// P8: the client's peak resident memory in the lobby, alone and with 1,000 avatars, drawn by
/// Mesa's software Vulkan under Xvfb. Its GPU memory is then this process's own, so the figure
/// holds what a GPU would hold as well.
fn resident_memory() -> Result<()> {
    let Some(xvfb) = setup::find_on_path("xvfb-run") else {
        println!("P8 not measured: no xvfb-run (sudo apt-get install -y xvfb mesa-vulkan-drivers)");
        return Ok(());
    };
    let client = crate::build_executable("sanctuary")?;
    println!("resident memory (P8): the client drawing the lobby for 60 frames, 1280x720, software Vulkan");
    println!("{:>8}  {:>18}", "avatars", "peak resident (MiB)");
    for n_avatars in [0usize, 1_000] {
        let picture = std::env::temp_dir().join(format!("sanctuary-p8-{n_avatars}.png"));
        let output = std::process::Command::new(&xvfb)
            .args(["--auto-servernum", "--server-args=-screen 0 1280x720x24"])
            .arg(&client)
            .args([
                "--flat",
                "--no-network",
                "--region",
                "lobby",
                "--frames",
                "60",
                "--width",
                "1280",
                "--height",
                "720",
            ])
            .args(["--avatars", &n_avatars.to_string(), "--screenshot"])
            .arg(&picture)
            .output()?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
        let peak = text.lines().find_map(|line| {
            let rest = &line[line.find("peak resident memory: ")? + "peak resident memory: ".len()..];
            rest.split_whitespace().next()?.parse::<u64>().ok()
        });
        let Some(peak) = peak else {
            bail!("the client said nothing of its memory ({}); its output:\n{text}", output.status);
        };
        println!("{n_avatars:>8}  {peak:>18}");
        if n_avatars == 1_000 {
            println!("          P8 budget {P8_BUDGET_MIB} MiB: {:.2} of it", peak as f64 / P8_BUDGET_MIB as f64);
        }
    }
    Ok(())
}

/// Runs the named benchmark.
pub fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("frame") => {
            setup::run(Needs::Build)?;
            let bench = crate::build_executable("frame_bench")?;
            crate::run_command(std::process::Command::new(bench).args(&args[1..]))?;
            if args.iter().any(|arg| arg == "--smoke") { Ok(()) } else { resident_memory() }
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
        Some("crowd") => {
            setup::run(Needs::Build)?;
            let bench = crate::build_executable("crowd_bench")?;
            crate::run_command(std::process::Command::new(bench).args(&args[1..]))
        }
        Some("voice") => {
            // espeak-ng and sox make the speech.
            setup::run(Needs::All)?;
            let bench = crate::build_executable("voice_bench")?;
            crate::run_command(std::process::Command::new(bench).args(&args[1..]))
        }
        Some("pay") => {
            let bench = crate::build_executable("pay_bench")?;
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
        Some("video") => {
            // ffmpeg makes the films.
            setup::run(Needs::All)?;
            let bench = crate::build_executable("video_bench")?;
            crate::run_command(std::process::Command::new(bench).args(&args[1..]))?;
            let bench = crate::build_executable("cinema_bench")?;
            crate::run_command(std::process::Command::new(bench).args(&args[1..]))
        }
        Some(other) => {
            bail!("unknown benchmark '{other}'; available: frame, net, hostile, world, voice, pay, trust, xr, video")
        }
        None => bail!(
            "name a benchmark: cargo xtask bench frame | net | hostile | world | voice | pay | trust | xr | video"
        ),
    }
}
