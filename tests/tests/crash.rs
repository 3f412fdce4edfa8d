//! R4: `kill -9` in the middle of writes loses no acknowledged change, and the store opens
//! cleanly every time. 50 kills here; `cargo xtask soak` runs 200.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use sanctuary_engine::{ChangeId, LayoutRng};
use sanctuary_net::Replica;

fn parse_id(line: &str) -> Option<ChangeId> {
    let line = line.trim();
    if line.len() != 64 {
        return None;
    }
    let mut id = [0u8; 32];
    for (byte, pair) in id.iter_mut().zip(line.as_bytes().chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(ChangeId(id))
}

#[test]
fn kill_nine_during_writes_loses_no_acknowledged_change() {
    let kills: usize = std::env::var("SANCTUARY_CRASH_KILLS").ok().and_then(|text| text.parse().ok()).unwrap_or(50);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rng = LayoutRng::new(0xdead);
    let mut acknowledged: HashSet<ChangeId> = HashSet::new();
    let mut torn_tails = 0;
    for round in 0..kills {
        let mut child = Command::new(env!("CARGO_BIN_EXE_world_writer"))
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the writer starts");
        let stdout = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout).lines().map_while(Result::ok).filter_map(|line| parse_id(&line)).collect::<Vec<_>>()
        });
        // Kill it somewhere between 5 and 60 ms in: while opening, or in the middle of writes.
        std::thread::sleep(Duration::from_millis(5 + rng.index(55) as u64));
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        let printed = reader.join().expect("reader");
        acknowledged.extend(printed);

        let (mut replica, report) = Replica::open(dir.path()).unwrap_or_else(|error| panic!("round {round}: {error}"));
        if report.cut_bytes > 0 {
            torn_tails += 1;
        }
        let world = replica.world();
        let lost: Vec<&ChangeId> = acknowledged.iter().filter(|id| !world.contains(id)).collect();
        assert!(lost.is_empty(), "round {round}: {} acknowledged changes lost", lost.len());
    }
    println!("{kills} kills, {} acknowledged changes kept, {torn_tails} torn tails cut", acknowledged.len());
    assert!(acknowledged.len() >= kills, "the writer wrote ({} changes)", acknowledged.len());
}
