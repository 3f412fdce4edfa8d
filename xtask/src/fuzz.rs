//! `cargo xtask fuzz [N]`: every decoder of network or disk bytes over N random and mutated
//! inputs (default 100,000 each), on the stable toolchain (`tests/src/bin/fuzz.rs`).

use anyhow::{Context, Result};

/// Inputs per decoder in the short pass `cargo xtask test` runs.
pub const CI_INPUTS: u64 = 20_000;

/// Builds the fuzzer and runs it over `inputs` inputs per decoder.
pub fn run(inputs: u64) -> Result<()> {
    let fuzz = crate::build_executable("fuzz")?;
    crate::run_command(std::process::Command::new(fuzz).arg(inputs.to_string())).context(
        "a decoder panicked or accepted a forgery: the lines above name it and the input; \
         add that input to the decoder's tests, then fix the decoder",
    )
}

/// `cargo xtask fuzz [N]`.
pub fn command(args: &[String]) -> Result<()> {
    let inputs = match args.first() {
        None => 100_000,
        Some(text) => text
            .replace(['_', ','], "")
            .parse()
            .map_err(|_| anyhow::anyhow!("fuzz takes a number of inputs per decoder, not '{text}'"))?,
    };
    run(inputs)
}
