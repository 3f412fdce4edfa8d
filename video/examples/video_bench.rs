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

/// Milliseconds a picture took over one pass through the film, and how many pictures it has.
/// (A picture at a time would mislead: the decoder hands pictures out in bursts, as B-frames
/// come back into display order, so single calls are either a burst's cost or nothing.)
fn pass(bytes: &[u8]) -> (f64, usize) {
    let start = Instant::now();
    let mut film = Film::from_bytes(bytes.to_vec(), Limits::default()).expect("the film opens");
    let mut count = 0;
    while film.next_picture().expect("the film decodes").is_some() {
        count += 1;
    }
    (start.elapsed().as_secs_f64() * 1000.0 / count.max(1) as f64, count)
}

fn main() {
    let smoke = std::env::args().any(|arg| arg == "--smoke");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let sizes: &[(&str, &str)] =
        if smoke { &[("smoke", "320x240")] } else { &[("720p", "1280x720"), ("1080p", "1920x1080")] };
    let seconds = if smoke { "0.5" } else { "4" };
    println!("H.264 decode to RGBA, one core (x264 medium, crf 23, 24 fps, {seconds} s of testsrc2)");
    let passes = if smoke { 1 } else { 7 };
    println!("milliseconds a picture, over {passes} passes through each film:");
    println!("{:>6}  {:>8}  {:>11}  {:>12}  {:>14}", "size", "pictures", "median (ms)", "slowest (ms)", "of 41.7 ms");
    for (name, size) in sizes {
        let path = dir.path().join(format!("{name}.mp4"));
        make_film(&path, size, seconds);
        let bytes = std::fs::read(&path).expect("made");
        // The first pass warms caches and allocations; the rest are measured.
        let (_, count) = pass(&bytes);
        assert!(count > 0, "the film has pictures");
        let mut times: Vec<f64> = (0..passes).map(|_| pass(&bytes).0).collect();
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let slowest = times[times.len() - 1];
        println!("{name:>6}  {count:>8}  {median:>11.2}  {slowest:>12.2}  {:>13.2}x", median / BUDGET_MS);
    }
}
