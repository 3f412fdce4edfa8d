//! `sanctuary`: the desktop client. `sanctuary --help` lists the options.

use std::process::ExitCode;

use bevy::prelude::AppExit;
use clap::Parser;
use sanctuary::cli::{Args, Mode, NodeArgs};
use sanctuary_engine::RegionId;
use sanctuary_net::{Event, NetRuntime, spawn_node};

fn main() -> ExitCode {
    let args = Args::parse();
    match &args.mode {
        Some(Mode::Node(node)) => return run_home_node(node),
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

/// `sanctuary node`: the network node alone, until Ctrl-C.
fn run_home_node(args: &NodeArgs) -> ExitCode {
    let regions = if args.regions.is_empty() { vec![RegionId::Lobby, RegionId::City] } else { args.regions.clone() };
    let config = match args.network.node_config(regions.clone()) {
        Ok(Some(config)) => config,
        Ok(None) => {
            eprintln!("error: a home node is nothing without the network; drop --no-network");
            return ExitCode::from(2);
        }
        Err(problem) => {
            eprintln!("error: {problem}");
            return ExitCode::from(2);
        }
    };
    let mut config = config;
    if args.model_quota_mib > 0 {
        config.keep_models = Some(args.model_quota_mib.saturating_mul(1024 * 1024));
    }
    let data_dir = config.data_dir.clone();
    let runtime = match NetRuntime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the network runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut node = spawn_node(runtime.handle(), config);
    let (stop, mut stopped) = tokio::sync::mpsc::unbounded_channel();
    if let Err(error) = ctrlc::set_handler(move || {
        let _ = stop.send(());
    }) {
        eprintln!("warning: Ctrl-C cannot be caught ({error}); stop the node with SIGKILL only as a last resort");
    }
    let names: Vec<&str> = regions.iter().map(|region| region.slug()).collect();
    let outcome = runtime.block_on(async {
        loop {
            tokio::select! {
                _ = stopped.recv() => return None,
                event = node.next_event() => match event {
                    Some(Event::Started { id, ticket, profile, .. }) => {
                        println!("home node {id} ({}) keeping {}", profile.name, data_dir.display());
                        println!("regions: {}", names.join(", "));
                        println!("ticket: {ticket}");
                    }
                    Some(Event::Ticket(ticket)) => println!("ticket: {ticket}"),
                    Some(Event::Status(status)) => {
                        println!("{} peers known, {} neighbours", status.known_peers, status.neighbours);
                    }
                    Some(Event::Chat(line)) => println!("[{}] {}: {}", line.region, line.name, line.text),
                    Some(Event::Notice(notice)) => println!("{notice}"),
                    Some(Event::Failed(error)) => return Some(error),
                    Some(_) => {}
                    None => return Some("the node stopped by itself".to_owned()),
                },
            }
        }
    });
    match outcome {
        None => {
            println!("stopping: saying goodbye to peers...");
            runtime.block_on(node.shutdown());
            println!("stopped cleanly");
            ExitCode::SUCCESS
        }
        Some(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
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
