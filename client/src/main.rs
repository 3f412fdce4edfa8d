//! `sanctuary`: the desktop client. `sanctuary --help` lists the options.

use std::process::ExitCode;

use bevy::prelude::AppExit;
use clap::Parser;
use sanctuary::cli::{ArchiveArgs, Args, Mode, NodeArgs};
use sanctuary_engine::RegionId;
use sanctuary_net::{Event, NetRuntime, spawn_node};

fn main() -> ExitCode {
    let args = Args::parse();
    match &args.mode {
        Some(Mode::Node(node)) => return run_home_node(node),
        Some(Mode::Export(archive)) => return run_archive(archive, true),
        Some(Mode::Import(archive)) => return run_archive(archive, false),
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

/// `sanctuary export` (`export` true) or `sanctuary import`.
fn run_archive(args: &ArchiveArgs, export: bool) -> ExitCode {
    let Some(data_dir) = args.data_dir.clone().or_else(sanctuary::cli::default_data_dir) else {
        eprintln!("error: there is no home directory; pass --data-dir DIR");
        return ExitCode::from(2);
    };
    let passphrase = match archive_passphrase(args, export) {
        Ok(passphrase) => passphrase,
        Err(problem) => {
            eprintln!("error: {problem}");
            return ExitCode::from(2);
        }
    };
    let runtime = match NetRuntime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        if export {
            sanctuary_net::export::export(&data_dir, &args.file, &passphrase).await
        } else {
            sanctuary_net::export::import(&args.file, &data_dir, &passphrase).await
        }
    });
    match outcome {
        Ok(report) => {
            let mib = report.bytes as f64 / f64::from(1 << 20);
            let what = format!(
                "{} files, {mib:.1} MiB: {} world changes ({} yours), {} blobs of your models and avatar",
                report.files, report.changes, report.own_changes, report.blobs
            );
            if export {
                println!("exported {} from {} into {}", report.key, data_dir.display(), args.file.display());
                println!("{what}");
                if report.models_missing > 0 {
                    println!(
                        "{} of your models were not held here in full and are not in the archive",
                        report.models_missing
                    );
                }
                println!("keep it private: chats and private messages are in it in the clear");
            } else {
                println!("imported {} into {}", report.key, data_dir.display());
                println!("{what}");
                println!("start it with: sanctuary --data-dir {}", data_dir.display());
            }
            ExitCode::SUCCESS
        }
        Err(problem) => {
            eprintln!("error: {problem}");
            ExitCode::FAILURE
        }
    }
}

/// The archive's passphrase: from `--passphrase-file`, `SANCTUARY_PASSPHRASE`, or typed (twice
/// for an export) without echo.
fn archive_passphrase(args: &ArchiveArgs, export: bool) -> Result<String, String> {
    let passphrase = if let Some(path) = &args.passphrase_file {
        let text = std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))?;
        text.lines().next().unwrap_or_default().to_owned()
    } else if let Ok(passphrase) = std::env::var("SANCTUARY_PASSPHRASE") {
        passphrase
    } else {
        let typed = rpassword::prompt_password("passphrase for the archive: ")
            .map_err(|error| format!("cannot read the passphrase ({error}); use --passphrase-file"))?;
        if export && rpassword::prompt_password("the same passphrase again: ").ok().as_deref() != Some(typed.as_str()) {
            return Err("the two passphrases differ".into());
        }
        typed
    };
    if export && passphrase.chars().count() < 8 {
        return Err("the passphrase seals your identity: use at least 8 characters".into());
    }
    Ok(passphrase)
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
