//! `cargo xtask bench video`: how long one core takes to decode a film's picture into RGBA, at
//! 720p and 1080p, against the 41.7 ms a 24 fps film gives each picture. The films are made by
//! Debian's `ffmpeg` (x264, its default settings, from its `testsrc2` pattern, which moves).
//!
//! `--smoke` decodes a few small pictures only, to show that the benchmark still runs.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use sanctuary_video::{Film, Limits};

/// Seconds a 24 fps film gives each picture.
const BUDGET_MS: f64 = 1000.0 / 24.0;

fn make_film(path: &Path, size: &str, seconds: &str) {
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={size}:rate=24"))
        .args(["-t", seconds, "-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "medium", "-crf", "23"])
        .arg(path)
        .status()
        .unwrap_or_else(|error| panic!("ffmpeg could not start ({error}); `cargo xtask setup` installs it"));
    assert!(status.success(), "ffmpeg could not make the {size} film");
}

/// Milliseconds each picture took, in order.
fn decode_times(bytes: &[u8]) -> Vec<f64> {
    let mut film = Film::from_bytes(bytes.to_vec(), Limits::default()).expect("the film opens");
    let mut times = Vec::new();
    loop {
        let start = Instant::now();
        match film.next_picture().expect("the film decodes") {
            Some(_) => times.push(start.elapsed().as_secs_f64() * 1000.0),
            None => break,
        }
    }
    times
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    let at = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted.get(at).copied().unwrap_or(f64::NAN)
}

fn main() {
    let smoke = std::env::args().any(|arg| arg == "--smoke");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let sizes: &[(&str, &str)] =
        if smoke { &[("smoke", "320x240")] } else { &[("720p", "1280x720"), ("1080p", "1920x1080")] };
    let seconds = if smoke { "0.5" } else { "4" };
    println!("H.264 decode to RGBA, one core (x264 medium, crf 23, 24 fps, {seconds} s of testsrc2)");
    println!("{:>6}  {:>8}  {:>11}  {:>8}  {:>14}", "size", "pictures", "median (ms)", "p95 (ms)", "of 41.7 ms");
    for (name, size) in sizes {
        let path = dir.path().join(format!("{name}.mp4"));
        make_film(&path, size, seconds);
        let bytes = std::fs::read(&path).expect("made");
        // The first pass warms caches and allocations; the second is measured.
        decode_times(&bytes);
        let mut times = decode_times(&bytes);
        assert!(!times.is_empty(), "the film has pictures");
        let count = times.len();
        times.sort_by(f64::total_cmp);
        let median = percentile(&times, 0.5);
        println!(
            "{name:>6}  {count:>8}  {median:>11.2}  {:>8.2}  {:>13.2}x",
            percentile(&times, 0.95),
            median / BUDGET_MS
        );
    }
}
