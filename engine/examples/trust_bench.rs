//! `cargo xtask bench trust`: the time to compute one person's trust in everyone, for a world
//! of 10,000 keys and 100,000 statements (target ≤ 50 ms), with the median and p95 of repeated
//! runs; `--smoke` makes a small world once, to check that it runs.

use std::time::Instant;

use sanctuary_engine::trust::{Statement, TrustContext, TrustGraph, TrustLevel};
use sanctuary_engine::{LayoutRng, PublicKey};

/// The target: one person's trust in 10,000 keys from 100,000 statements.
const TARGET_MS: f64 = 50.0;

fn key(n: u32) -> PublicKey {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&n.to_le_bytes());
    PublicKey::from_secret_seed(&seed)
}

fn main() {
    let smoke = std::env::args().any(|arg| arg == "--smoke");
    let (keys, per_key, runs) = if smoke { (500u32, 10u32, 3) } else { (10_000, 10, 21) };
    let people: Vec<PublicKey> = (0..keys).map(key).collect();
    let mut rng = LayoutRng::new(0x7275_7374);
    let mut graph = TrustGraph::new();
    let made = Instant::now();
    for author in 0..keys {
        for step in 0..per_key {
            let subject = (rng.next_u64() % u64::from(keys)) as u32;
            let level = match rng.next_u64() % 10 {
                0 => TrustLevel::Distrust,
                1..=5 => TrustLevel::Acquaintance,
                6..=8 => TrustLevel::Friend,
                _ => TrustLevel::CloseFriend,
            };
            let statement = Statement {
                author: people[author as usize],
                subject: people[subject as usize],
                context: TrustContext::People,
                level: Some(level),
                sequence: u64::from(step) + 1,
            };
            let _ = graph.insert(statement);
        }
    }
    println!(
        "trust: {} keys, {} statements (made in {:.0} ms)",
        keys,
        graph.len(),
        made.elapsed().as_secs_f64() * 1000.0
    );
    // Each run follows a new statement (so the numbering is made again, as after any change),
    // then asks again with nothing changed.
    let mut times = Vec::with_capacity(runs);
    let mut again = Vec::with_capacity(runs);
    let mut reached = 0;
    for run in 0..runs {
        let me = &people[run % people.len()];
        let fresh = Statement {
            author: people[(run + 1) % people.len()],
            subject: people[(run + 2) % people.len()],
            context: TrustContext::People,
            level: Some(TrustLevel::Friend),
            sequence: 1_000 + run as u64,
        };
        let _ = graph.insert(fresh);
        let started = Instant::now();
        let trust = graph.trust_for(me, TrustContext::People);
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        reached = trust.scores().filter(|(_, score)| *score > 0.0).count();
        let started = Instant::now();
        std::hint::black_box(graph.trust_for(me, TrustContext::People));
        again.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    again.sort_by(f64::total_cmp);
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let p95 = times[((times.len() as f64 * 0.95).ceil() as usize).saturating_sub(1).min(times.len() - 1)];
    let verdict = if median <= TARGET_MS { "met" } else { "MISSED" };
    println!(
        "P12 one person's trust in everyone after a change: median {median:.1} ms, p95 {p95:.1} ms over {runs} runs \
         (target ≤ {TARGET_MS} ms: {verdict}); {reached} keys reached"
    );
    println!("  asked again with nothing changed (the numbering kept): median {:.1} ms", again[again.len() / 2]);
}
