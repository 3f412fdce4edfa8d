//! `sanctuary`: the desktop client. `sanctuary --help` lists the options.

use std::process::ExitCode;

use bevy::prelude::AppExit;
use clap::Parser;
use sanctuary::cli::{Args, Mode};

fn main() -> ExitCode {
    let args = Args::parse();
    match &args.mode {
        Some(Mode::Node(node)) => return sanctuary::home_node::run(node),
        Some(Mode::Agent(agent)) => return sanctuary::agent_command::run(agent),
        Some(Mode::Export(archive)) => return sanctuary::archive_command::run(archive, true),
        Some(Mode::Import(archive)) => return sanctuary::archive_command::run(archive, false),
        Some(Mode::Receipts { data_dir, json }) => {
            return sanctuary::archive_command::receipts(data_dir.as_deref(), *json);
        }
        Some(Mode::RenderPdf { pdf, out, memory_mib }) => {
            return match sanctuary_pdf::render_command(pdf, out, memory_mib.saturating_mul(1 << 20)) {
                Ok(_) => ExitCode::SUCCESS,
                Err(problem) => {
                    eprintln!("error: {problem}");
                    ExitCode::FAILURE
                }
            };
        }
        None => {}
    }
    if let Some(Err(problem)) = args.screenshot.as_deref().map(sanctuary::ScreenshotPlan::check_path) {
        eprintln!("error: {problem}");
        return ExitCode::from(2);
    }
    if let Err(problem) = check_display() {
        eprintln!("error: {problem}");
        return ExitCode::from(2);
    }
    explain_device_failures();
    let vr = sanctuary::xr::probe(args.flat);
    println!("{}", sanctuary::xr::describe(&vr));
    if args.force_xr && !vr.use_headset() {
        println!("--force-xr: starting OpenXR anyway");
    }
    match sanctuary::client_app(&args, vr.use_headset() || args.force_xr).run() {
        AppExit::Success => ExitCode::SUCCESS,
        AppExit::Error(code) => ExitCode::from(code.get()),
    }
}

/// On Linux and the BSDs a window needs an X11 or Wayland display; say so before Bevy tries.
fn check_display() -> Result<(), String> {
    if cfg!(all(unix, not(target_os = "macos"), not(target_os = "android"))) {
        let has_display = ["DISPLAY", "WAYLAND_DISPLAY", "WAYLAND_SOCKET"]
            .iter()
            .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()));
        if !has_display {
            return Err("there is no display to open a window on (DISPLAY and WAYLAND_DISPLAY are not set). \
                 Start Sanctuary from a desktop session, or under `xvfb-run` for automated pictures."
                .to_owned());
        }
    }
    Ok(())
}

/// Bevy stops with a panic when it finds no usable graphics device. Keep its report and add
/// what the person can do about it.
fn explain_device_failures() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        let location = info.location().map(|location| location.file()).unwrap_or("");
        let graphics = ["GPU", "adapter", "surface", "Surface", "wgpu"].iter().any(|word| message.contains(word))
            || location.contains("bevy_render")
            || location.contains("wgpu");
        if message.contains("event loop") {
            eprintln!("\nerror: Sanctuary could not open a window: {message}");
        } else if graphics {
            eprintln!(
                "\nerror: Sanctuary found no graphics device it can draw with. Install your GPU's Vulkan \
                 driver, or Mesa's software renderer (`sudo apt-get install mesa-vulkan-drivers`)."
            );
        }
    }));
}
