//! `sanctuary`: the desktop client. `sanctuary --help` lists the options.

use std::process::ExitCode;

use bevy::prelude::AppExit;
use clap::Parser;
use sanctuary::cli::Args;

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(path) = &args.screenshot {
        if let Err(problem) = sanctuary::ScreenshotPlan::check_path(path) {
            eprintln!("error: {problem}");
            return ExitCode::from(2);
        }
    }
    println!("{}", sanctuary::xr::startup_message(args.flat));
    match sanctuary::desktop_app(&args).run() {
        AppExit::Success => ExitCode::SUCCESS,
        AppExit::Error(code) => ExitCode::from(code.get()),
    }
}
