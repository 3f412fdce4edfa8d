//! `cargo xtask`: Sanctuary's automation. One subcommand per file; `test` runs what CI runs.

mod avatars;
mod bench;
mod fuzz;
mod run;
mod setup;
mod test;

use std::process::ExitCode;

const USAGE: &str = "\
cargo xtask <command> [args]

Commands:
  setup            check the system packages the build and tests need; install them if possible
  run [-- ARGS]    build and start the desktop client (ARGS go to `sanctuary`, e.g. -- --help)
  test             run every test CI runs, rendering tests included
  avatars          make the default avatars in assets/avatars/ (VRM 1.0, from code)
  bench frame      median CPU frame time with 100, 1,000 and 10,000 animated avatars (headless)
  bench net        pose bytes, gossip delivery p50/p95 with 8 and 32 peers, CPU to take in 1,000 avatars, then bench hostile
  bench crowd      a crowd of OS processes on loopback: one observer's CPU, traffic and delivery near and far
  bench hostile    R6: delivery under a one-key and a 1,000-key flood; R3: time to converge after a partition heals
  bench voice      P10/P11: voice mouth to ear on loopback, CPU per stream and for 16 speakers, kbit/s per stream
  bench pay        Lightning payments on loopback, pay to settled: invoice and offer, direct and one hop (p95 <= 1 s)
  bench trust      P12: one person's trust in 10,000 keys from 100,000 statements
  bench world      64 MiB blob vs TCP, a late joiner on 100,000 changes, changes verified per second
  bench xr         CPU time of a VR frame with simulated controllers (P9), beside the same frame in flat mode
  soak [KILLS]     kill -9 the world store's writer KILLS times (default 200); no acknowledged change lost
  fuzz [N]         every decoder of network or disk bytes over N random and mutated inputs (default 100,000)
";

/// The crash test at soak length: `kill -9` the writer `kills` times.
fn soak(kills: Option<&str>) -> anyhow::Result<()> {
    let kills: u32 = kills.unwrap_or("200").parse().map_err(|_| anyhow::anyhow!("soak takes a number of kills"))?;
    run_command(
        cargo()
            .args(["test", "--workspace", "--test", "crash", "--", "--nocapture"])
            .env("SANCTUARY_CRASH_KILLS", kills.to_string()),
    )
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup::run(setup::Needs::All),
        Some("run") => run::run(&args[1..]),
        Some("test") => test::run(),
        Some("bench") => bench::run(&args[1..]),
        Some("avatars") => avatars::make(),
        Some("soak") => soak(args.get(1).map(String::as_str)),
        Some("fuzz") => fuzz::command(&args[1..]),
        Some("help" | "--help" | "-h") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(anyhow::anyhow!("unknown command '{other}'\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a command, streaming its output, and fails with the command line if it fails.
fn run_command(command: &mut std::process::Command) -> anyhow::Result<()> {
    let status = command.status().map_err(|error| anyhow::anyhow!("could not start {command:?}: {error}"))?;
    if status.success() { Ok(()) } else { Err(anyhow::anyhow!("{command:?} failed ({status})")) }
}

/// The `cargo` that runs this xtask, so that the same toolchain builds everything.
fn cargo() -> std::process::Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = std::process::Command::new(cargo);
    command.current_dir(workspace_root());
    command
}

/// Builds the workspace's binaries and examples and returns the path of the executable `name`.
///
/// Everything is built with `--workspace` and with dev-dependencies active (examples need them),
/// the same selection as `cargo test --workspace`. Cargo unifies features per invocation, so any
/// other selection (`cargo run -p sanctuary`, say) would compile Bevy a second time with a
/// slightly different feature set.
fn build_executable(name: &str) -> anyhow::Result<std::path::PathBuf> {
    let output = cargo()
        .args(["build", "--workspace", "--bins", "--examples", "--message-format=json-render-diagnostics"])
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|error| anyhow::anyhow!("could not start cargo: {error}"))?;
    if !output.status.success() {
        anyhow::bail!("the build failed; the errors are above");
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .filter(|line| {
            line.contains("\"reason\":\"compiler-artifact\"") && line.contains(&format!("\"name\":\"{name}\""))
        })
        .find_map(|line| {
            let start = line.find("\"executable\":\"")? + "\"executable\":\"".len();
            let end = line[start..].find('"')? + start;
            Some(std::path::PathBuf::from(&line[start..end]))
        })
        .ok_or_else(|| anyhow::anyhow!("the build made no executable named '{name}'"))
}

/// The workspace root, found at run time: the nearest folder at or above the current one whose
/// Cargo.toml declares a `[workspace]`.
///
/// Not `env!("CARGO_MANIFEST_DIR")`: with a target directory shared between clones (as CI's is),
/// an xtask binary built from one clone can be reused from another, and would then work on the
/// wrong tree.
fn workspace_root() -> std::path::PathBuf {
    let start = std::env::current_dir().unwrap_or_else(|_| std::path::PathBuf::from("."));
    start
        .ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml")).is_ok_and(|manifest| manifest.contains("[workspace]"))
        })
        .map(std::path::Path::to_path_buf)
        .unwrap_or(start)
}
