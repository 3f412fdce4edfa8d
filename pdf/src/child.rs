//! The renderer as a child process: the parent's side ([`render_in_child`], [`run_limited`])
//! and the child's own limits ([`limit_self`]).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::page_file;

/// The renderer's address space at most (a 1920-pixel page is 15 MB; a PDF that asks for far
/// more fails to allocate, and the child stops).
pub const CHILD_MEMORY_BYTES: u64 = 2 << 30;
/// The renderer's CPU time, in seconds (the system stops it after that).
pub const CHILD_CPU_SECONDS: u64 = 120;
/// What is kept of each of the child's outputs.
const OUTPUT_CAP: u64 = 64 * 1024;

/// Why the child's work came to nothing.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    /// It could not be started.
    #[error("cannot start the PDF renderer: {0}")]
    Start(std::io::Error),
    /// It ran past the wall-clock limit and was stopped.
    #[error("the PDF took longer than {0:?} to draw and was given up")]
    TimedOut(Duration),
    /// Waiting for it failed.
    #[error("lost the PDF renderer: {0}")]
    Wait(std::io::Error),
}

/// A child that ended by itself: its status and the first [`OUTPUT_CAP`] bytes of each output.
#[derive(Debug)]
pub struct Finished {
    /// How it ended.
    pub status: ExitStatus,
    /// What it printed.
    pub stdout: String,
    /// What it complained of.
    pub stderr: String,
}

/// Runs `command` (its input empty, its outputs read) and waits at most `wall` for it to end;
/// past that it is killed.
pub fn run_limited(mut command: Command, wall: Duration) -> Result<Finished, ChildError> {
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().map_err(ChildError::Start)?;
    let read = |stream: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut kept = Vec::new();
            if let Some(mut stream) = stream {
                let _ = stream.by_ref().take(OUTPUT_CAP).read_to_end(&mut kept);
                // The rest is read and dropped, so that the child never blocks on a full pipe.
                let _ = std::io::copy(&mut stream, &mut std::io::sink());
            }
            String::from_utf8_lossy(&kept).into_owned()
        })
    };
    let stdout = read(child.stdout.take().map(|stream| Box::new(stream) as Box<dyn Read + Send>));
    let stderr = read(child.stderr.take().map(|stream| Box::new(stream) as Box<dyn Read + Send>));
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= wall => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(ChildError::TimedOut(wall));
            }
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(error) => {
                let _ = child.kill();
                return Err(ChildError::Wait(error));
            }
        }
    };
    let joined = |reader: thread::JoinHandle<String>| reader.join().unwrap_or_default();
    Ok(Finished { status, stdout: joined(stdout), stderr: joined(stderr) })
}

/// Draws the PDF at `pdf` into the folder `out` with `renderer render-pdf PDF OUT
/// --memory-mib N` (the program's own executable), within `wall` and `memory` bytes; the
/// pictures, in page order. Earlier pages in `out` are removed first, so a shorter deck never
/// picks up a longer one's tail.
pub fn render_in_child(
    renderer: &Path,
    pdf: &Path,
    out: &Path,
    wall: Duration,
    memory: u64,
) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(out).map_err(|error| format!("{}: {error}", out.display()))?;
    clear_pages(out);
    let mut command = Command::new(renderer);
    // `--` first: a file named like an option (`-x.pdf`) is still a file.
    command.arg("render-pdf").arg("--memory-mib").arg((memory >> 20).max(1).to_string()).arg("--").arg(pdf).arg(out);
    let finished = run_limited(command, wall).map_err(|error| error.to_string())?;
    if !finished.status.success() {
        let said = finished.stderr.lines().rev().find(|line| !line.trim().is_empty()).map(str::trim);
        let problem = match (finished.status.code(), said) {
            (Some(_), Some(said)) => said.strip_prefix("error: ").unwrap_or(said).to_owned(),
            (Some(code), None) => format!("the PDF renderer failed (exit code {code})"),
            // Killed by a signal: its memory or CPU limit, or a crash on a hostile file.
            (None, _) => "the PDF renderer was stopped: the PDF needs more memory or time than a slide may".into(),
        };
        clear_pages(out);
        return Err(problem);
    }
    let pages = finished
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("pages ").and_then(|count| count.trim().parse::<usize>().ok()))
        .ok_or("the PDF renderer said nothing of its pages")?;
    let files: Vec<PathBuf> = (0..pages).map(|index| page_file(out, index)).collect();
    if let Some(missing) = files.iter().find(|file| !file.is_file()) {
        return Err(format!("the PDF renderer did not write {}", missing.display()));
    }
    Ok(files)
}

/// Removes the page pictures (`page-NNN.png`) in `dir`, and nothing else.
pub(crate) fn clear_pages(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten().take(4096) {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let is_page = name
            .strip_prefix("page-")
            .and_then(|rest| rest.strip_suffix(".png"))
            .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit()));
        if is_page {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Caps this process's address space at `memory` bytes and its CPU time at `cpu_seconds`
/// (never raising a limit already lower). Elsewhere than Unix there is nothing to set, and the
/// parent's wall-clock limit alone holds.
pub fn limit_self(memory: u64, cpu_seconds: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        for (resource, cap) in [(Resource::As, memory), (Resource::Cpu, cpu_seconds)] {
            let now = getrlimit(resource);
            let lower = |limit: Option<u64>| Some(limit.map_or(cap, |limit| limit.min(cap)));
            setrlimit(resource, Rlimit { current: lower(now.current), maximum: lower(now.maximum) })?;
        }
    }
    #[cfg(not(unix))]
    let _ = (memory, cpu_seconds);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_past_its_time_is_killed() {
        let mut command = Command::new("sleep");
        command.arg("30");
        let started = Instant::now();
        let outcome = run_limited(command, Duration::from_millis(300));
        assert!(matches!(outcome, Err(ChildError::TimedOut(_))), "{outcome:?}");
        assert!(started.elapsed() < Duration::from_secs(10), "killed, not waited for");
    }

    #[test]
    fn a_child_that_ends_is_heard_and_a_missing_one_is_an_error() {
        let mut command = Command::new("sh");
        command.args(["-c", "echo pages 2; echo oops >&2; exit 3"]);
        let finished = run_limited(command, Duration::from_secs(20)).expect("runs");
        assert_eq!(finished.status.code(), Some(3));
        assert_eq!((finished.stdout.trim(), finished.stderr.trim()), ("pages 2", "oops"));
        let outcome = run_limited(Command::new("/no/such/renderer"), Duration::from_secs(1));
        assert!(matches!(outcome, Err(ChildError::Start(_))), "{outcome:?}");
    }

    #[test]
    fn only_page_pictures_are_cleared() {
        let dir = tempfile::tempdir().expect("temp dir");
        for name in ["page-001.png", "page-012.png", "page-.png", "page-1a.png", "notes.txt", "photo.png"] {
            std::fs::write(dir.path().join(name), "x").expect("writes");
        }
        clear_pages(dir.path());
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .expect("reads")
            .map(|entry| entry.expect("an entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["notes.txt", "page-.png", "page-1a.png", "photo.png"]);
    }
}
