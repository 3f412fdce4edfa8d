//! `sanctuary agent`: runs the AI agents of a behaviour script headless (see
//! `sanctuary-agents`), prints who they are and the ticket to join them, and stops cleanly on
//! Ctrl-C or after `--seconds`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use sanctuary_agents::{Agents, Config, Report, Script};
use sanctuary_net::NetRuntime;

use crate::cli::AgentArgs;

/// How often the agents move on.
const TICK: Duration = Duration::from_millis(100);

/// Runs the agents until Ctrl-C or `--seconds`.
pub fn run(args: &AgentArgs) -> ExitCode {
    let script = match &args.script {
        None => Script::lobby(),
        Some(path) => match std::fs::read(path) {
            Ok(bytes) if bytes.len() > sanctuary_agents::script::MAX_SCRIPT_BYTES => {
                Err(sanctuary_agents::ScriptError::TooLarge(bytes.len()))
            }
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => Script::parse(&text),
                Err(_) => Err(sanctuary_agents::ScriptError::Syntax("the file is not UTF-8 text".into())),
            },
            Err(error) => {
                eprintln!("error: cannot read the script {}: {error}", path.display());
                return ExitCode::from(2);
            }
        },
    };
    let script = match script {
        Ok(script) => script,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let node = match args.network.node_config(Vec::new()) {
        Ok(Some(node)) => node,
        Ok(None) => {
            eprintln!("error: agents are peers: --no-network leaves them nobody to meet");
            return ExitCode::from(2);
        }
        Err(problem) => {
            eprintln!("error: {problem}");
            return ExitCode::from(2);
        }
    };
    let runtime = match NetRuntime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the network runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let config = Config {
        data_dir: node.data_dir,
        script,
        relays: node.relays,
        lan_discovery: node.lan_discovery,
        join: node.join,
    };
    let mut agents = match Agents::start(config, runtime.handle()) {
        Ok(agents) => agents,
        Err(problem) => {
            eprintln!("error: {problem}");
            return ExitCode::FAILURE;
        }
    };
    let (stop, mut stopped) = tokio::sync::mpsc::unbounded_channel();
    if let Err(error) = ctrlc::set_handler(move || {
        let _ = stop.send(());
    }) {
        eprintln!("warning: Ctrl-C cannot be caught ({error}); it ends the agents at once");
    }
    println!("running {} AI agents, labelled as yours", agents.len());
    let deadline = args.seconds.map(|seconds| Instant::now() + Duration::from_secs(seconds));
    let mut running = agents.len();
    let mut told_ticket = false;
    runtime.block_on(async {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = stopped.recv() => break,
                _ = tick.tick() => {}
            }
            for report in agents.tick() {
                match report {
                    Report::Started { name, key, .. } => println!("agent {name}: {key}"),
                    Report::Notice(notice) => eprintln!("{notice}"),
                    Report::Stopped { name, reason } => {
                        eprintln!("agent {name} stopped: {reason}");
                        running = running.saturating_sub(1);
                    }
                }
            }
            if !told_ticket && let Some(ticket) = agents.ticket() {
                println!("ticket {ticket}");
                told_ticket = true;
            }
            if running == 0 || deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                break;
            }
        }
        agents.stop().await;
    });
    if running == 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
