//! `cargo xtask bench frame`: the CPU time of a frame with N animated placeholder avatars,
//! headless (no window, no GPU): the client's logic, the crowd animation and transform
//! propagation, measured as the median of many frames.
//!
//! Options: `--frames N` frames per run (default 200), `--smoke` for a quick check that it runs.

use std::time::{Duration, Instant};

use bevy::app::{TaskPoolOptions, TaskPoolPlugin};
use bevy::prelude::*;
use sanctuary::{DrifterView, EnterRegion, WorldSettings};
use sanctuary_engine::RegionId;

/// P1 of TARGETS.md: 1,000 remote avatars within 2 ms of CPU per frame on one core.
const P1_BUDGET_MS: f64 = 2.0;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let smoke = args.iter().any(|arg| arg == "--smoke");
    let frames = match args.iter().position(|arg| arg == "--frames") {
        None if smoke => 5,
        None => 200,
        Some(index) => match args.get(index + 1).and_then(|text| text.parse::<usize>().ok()) {
            Some(frames) if (1..=1_000_000).contains(&frames) => frames,
            _ => {
                eprintln!("error: --frames takes a whole number from 1 to 1000000");
                std::process::exit(2);
            }
        },
    };
    let crowds: &[usize] = if smoke { &[100] } else { &[100, 1_000, 10_000] };
    println!("frame benchmark: headless client logic + crowd animation + transform propagation, one thread");
    println!("{frames} frames per run after 20 warm-up frames; median and 95th percentile of the frame time");
    println!("{:>8}  {:>12}  {:>12}", "avatars", "median (ms)", "p95 (ms)");
    for &n_avatars in crowds {
        let single = measure(n_avatars, frames);
        println!("{n_avatars:>8}  {:>12.3}  {:>12.3}", millis(single.median), millis(single.p95));
        if n_avatars == 1_000 {
            println!(
                "          P1 budget {P1_BUDGET_MS} ms on one core: {:.2} of the budget used by animation alone \
                 (receiving and verifying poses arrive with the network)",
                millis(single.median) / P1_BUDGET_MS
            );
        }
    }
}

struct Timing {
    median: Duration,
    p95: Duration,
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Bevy's task pools are global and made once per process, so every run uses the same single
/// thread, matching P1's "on one core".
fn measure(n_avatars: usize, frames: usize) -> Timing {
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins.set(TaskPoolPlugin { task_pool_options: TaskPoolOptions::with_num_threads(1) }),
        TransformPlugin,
    ))
    .insert_resource(WorldSettings { n_drifters: n_avatars, ..WorldSettings::default() })
    .add_plugins(sanctuary::logic_plugin);
    app.world_mut().write_message(EnterRegion(RegionId::Lobby));
    for _ in 0..20 {
        app.update();
    }
    let spawned = app.world_mut().query::<&DrifterView>().iter(app.world()).count();
    assert_eq!(spawned, n_avatars, "the lobby should hold every avatar asked for");
    let mut times: Vec<Duration> = (0..frames)
        .map(|_| {
            let start = Instant::now();
            app.update();
            start.elapsed()
        })
        .collect();
    times.sort();
    Timing { median: times[times.len() / 2], p95: times[(times.len() * 95 / 100).min(times.len() - 1)] }
}
