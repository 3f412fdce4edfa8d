//! `sanctuary node` as a service manager runs it: started, then stopped with SIGTERM (launchd,
//! `docker stop`, `timeout`) or SIGINT (Ctrl-C, the README's systemd unit). Either way it stops
//! cleanly: it says goodbye to its peers and exits with success.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Starts an offline home node in `dir`, waits for its ticket, sends `signal`, and returns
/// what it printed and how it exited.
fn stop_with(signal: &str, dir: &std::path::Path) -> (String, std::process::ExitStatus) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sanctuary"))
        .args(["node", "--offline", "--status-port", "0", "--data-dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the node starts");
    let stdout = child.stdout.take().expect("its output");
    let (lines, printed) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    loop {
        match printed.recv_timeout(Duration::from_secs(120)) {
            Ok(line) => {
                let started = line.starts_with("ticket:");
                seen.push(line);
                if started {
                    break;
                }
            }
            Err(_) => {
                let _ = child.kill();
                panic!("the node never printed its ticket; it printed {seen:?}");
            }
        }
    }
    let killed = Command::new("kill").args([signal, &child.id().to_string()]).status().expect("kill runs");
    assert!(killed.success());
    let status = child.wait().expect("the node ends");
    seen.extend(printed.try_iter());
    while let Ok(line) = printed.recv_timeout(Duration::from_millis(200)) {
        seen.push(line);
    }
    (seen.join("\n"), status)
}

#[test]
fn the_home_node_stops_cleanly_on_sigterm_and_sigint() {
    for signal in ["-TERM", "-INT"] {
        let dir = tempfile::tempdir().expect("temp dir");
        let (printed, status) = stop_with(signal, dir.path());
        assert!(status.success(), "{signal}: exited with {status}; printed:\n{printed}");
        assert!(
            printed.contains("stopping: saying goodbye to peers...") && printed.contains("stopped cleanly"),
            "{signal}: {printed}"
        );
    }
}
