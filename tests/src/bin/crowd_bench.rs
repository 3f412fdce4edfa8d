//! `cargo xtask bench crowd`: a real crowd on loopback, one OS process per person. One of them,
//! the observer, floats in the lobby's atrium and measures what taking in the crowd costs it:
//! its process's CPU, its traffic up and down, how late poses arrive from the near (datagrams)
//! and from the rest of its block of cells (signed presence on gossip), and how many of the
//! crowd it sees each way. The others float around their own spots, chat now and then, and
//! leave and come back (half of them saying goodbye, half killed).
//!
//! Usage: `crowd_bench [--peers N] [--seconds S] [--smoke]`. The same binary runs each person
//! (`--peer ...`, `--observer ...`); those are for the orchestrator, not for people.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use glam::{Quat, Vec3};
use sanctuary_engine::{PublicKey, RegionId};
use sanctuary_net::cells::{Block, Cell};
use sanctuary_net::{Command, Event, NodeConfig, PoseFrame, QuantisedTransform, RelayChoice, Ticket, spawn_node};

/// Where the observer floats: in the middle of the atrium, 100 m up.
const OBSERVER_AT: Vec3 = Vec3::new(0.0, 100.0, 0.0);
/// People within this of the observer's spot get its near datagrams (and it theirs).
const NEAR_GROUP: usize = 8;
/// Measuring starts this long after the last person started.
const WARM_UP: Duration = Duration::from_secs(15);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("--peer") => person(&args[1..], false),
        Some("--observer") => person(&args[1..], true),
        _ => orchestrate(&args),
    };
    if let Err(error) = result {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

fn wall_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_micros() as u64).unwrap_or(0)
}

/// The process's CPU time so far (user and system), from /proc; `None` off Linux.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command's closing parenthesis; utime and stime are the 14th and 15th
    // of the whole line, in clock ticks (100 a second on Linux).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Where person `index` of `crowd` floats: the first [`NEAR_GROUP`] within 10 m of the
/// observer; of the rest, two in five elsewhere in its block of cells (16 to 40 m off) and the
/// others in cells above it, up to 480 m.
fn home(index: usize, crowd: usize) -> Vec3 {
    let turn = index as f32 * 2.399_963;
    if index < NEAR_GROUP {
        return OBSERVER_AT + Vec3::new(turn.cos() * 6.0, (index % 3) as f32 * 2.0 - 2.0, turn.sin() * 6.0);
    }
    let rest = index - NEAR_GROUP;
    let in_block = (crowd - NEAR_GROUP) * 2 / 5;
    if rest < in_block {
        // Around the observer within its block (x and z in [-48, 48), y in [48, 144)), beyond
        // the near distance.
        let radius = 20.0 + (rest % 5) as f32 * 4.0;
        return Vec3::new(turn.cos() * radius, 70.0 + (rest % 7) as f32 * 9.0, turn.sin() * radius * 0.9);
    }
    let far = rest - in_block;
    let radius = 10.0 + (far % 5) as f32 * 10.0;
    Vec3::new(turn.cos() * radius, 160.0 + (far % 7) as f32 * 48.0, turn.sin() * radius)
}

fn floating(head: Vec3, yaw: f32) -> PoseFrame {
    let turn = Quat::from_rotation_y(yaw);
    let hand = |side: f32| QuantisedTransform::new(head + turn * Vec3::new(side, -0.6, 0.1), turn);
    PoseFrame { head: QuantisedTransform::new(head, turn), left_hand: hand(-0.3), right_hand: hand(0.3) }
}

/// One person: `DIR JOIN SECONDS INDEX CROWD` (JOIN is a ticket or `-`). The observer
/// measures from `WARM_UP` until the end and prints its figures as `figure NAME VALUE` lines.
fn person(args: &[String], observer: bool) -> Result<(), String> {
    let [dir, join, seconds, index, crowd] = args else {
        return Err("expected DIR JOIN SECONDS INDEX CROWD".into());
    };
    let seconds: u64 = seconds.parse().map_err(|_| "SECONDS is a number")?;
    let index: usize = index.parse().map_err(|_| "INDEX is a number")?;
    let crowd: usize = crowd.parse().map_err(|_| "CROWD is a number")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(if observer { 2 } else { 1 })
        .enable_all()
        .build()
        .map_err(|error| error.to_string())?;
    let mut config = NodeConfig::new(PathBuf::from(dir));
    config.relays = RelayChoice::Disabled;
    config.lan_discovery = false;
    config.name = Some(if observer { "Observer".into() } else { format!("Person {index}") });
    config.colour = Some([(index * 37 % 256) as u8, 120, (index * 91 % 256) as u8]);
    config.regions = vec![RegionId::Lobby];
    if join != "-" {
        config.join = vec![join.parse::<Ticket>().map_err(|error| error.to_string())?];
    }
    runtime.block_on(async move {
        let mut node = spawn_node(&tokio::runtime::Handle::current(), config);
        let spot = if observer { OBSERVER_AT } else { home(index, crowd) };
        let start = Instant::now();
        let end = start + Duration::from_secs(seconds);
        let measure_from = if observer { start + WARM_UP } else { end };
        let mut measure = Measure::default();
        let mut next_chat = start + Duration::from_secs(5 + (index as u64 * 7) % 30);
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        // The orchestrator closes our input to ask us to leave.
        let quit = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let asked = quit.clone();
        std::thread::spawn(move || {
            let mut sink = String::new();
            while std::io::stdin().read_line(&mut sink).is_ok_and(|read| read > 0) {}
            asked.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        while Instant::now() < end && !quit.load(std::sync::atomic::Ordering::Relaxed) {
            tick.tick().await;
            let now = Instant::now();
            let phase = now.duration_since(start).as_secs_f32() * 0.5 + index as f32;
            // Circling 2 m around the spot at 1 m/s; the observer stays still.
            let head = if observer { spot } else { spot + Vec3::new(phase.cos() * 2.0, 0.0, phase.sin() * 2.0) };
            node.send(Command::Pose(floating(head, phase)));
            if !observer && now >= next_chat {
                node.send(Command::Chat(format!("person {index} says hello at {}", wall_micros())));
                next_chat = now + Duration::from_secs(30);
            }
            let measuring = observer && now >= measure_from;
            if measuring && measure.started.is_none() {
                measure.begin();
            }
            while let Some(event) = node.try_event() {
                match event {
                    Event::Started { ticket, .. } => println!("ticket {ticket}"),
                    Event::Failed(error) => return Err(error),
                    Event::Status(status) => measure.status = Some((status.bytes_sent, status.bytes_received)),
                    _ if !measuring => {}
                    Event::Presence { author, sequence, .. } => {
                        measure.block.push(wall_micros().saturating_sub(sequence) as f64 / 1000.0);
                        measure.heard.insert(author, now);
                    }
                    Event::NearPose { author, stamp, .. } => {
                        measure.near.push(wall_micros().saturating_sub(stamp) as f64 / 1000.0);
                        measure.near_heard.insert(author, now);
                    }
                    Event::FarCrowd { dots, people, .. } => measure.far = (dots.len(), people),
                    Event::Chat(_) => measure.chat += 1,
                    _ => {}
                }
            }
        }
        if observer {
            measure.report();
        }
        node.shutdown().await;
        Ok(())
    })
}

/// What the observer measured.
#[derive(Default)]
struct Measure {
    started: Option<(Instant, Option<Duration>, Option<(u64, u64)>)>,
    status: Option<(u64, u64)>,
    block: Vec<f64>,
    near: Vec<f64>,
    heard: std::collections::HashMap<PublicKey, Instant>,
    near_heard: std::collections::HashMap<PublicKey, Instant>,
    far: (usize, u64),
    chat: usize,
}

impl Measure {
    fn begin(&mut self) {
        self.started = Some((Instant::now(), cpu_time(), self.status));
    }

    fn report(&mut self) {
        let Some((started, cpu_then, traffic_then)) = self.started else {
            println!("figure error the run ended before measuring began");
            return;
        };
        let wall = started.elapsed().as_secs_f64();
        if let (Some(then), Some(now)) = (cpu_then, cpu_time()) {
            println!("figure cpu_percent {:.1}", (now - then).as_secs_f64() / wall * 100.0);
        }
        if let (Some((sent_then, received_then)), Some((sent, received))) = (traffic_then, self.status) {
            let kbit = |bytes: u64| bytes as f64 * 8.0 / wall / 1000.0;
            println!("figure up_kbit {:.0}", kbit(sent.saturating_sub(sent_then)));
            println!("figure down_kbit {:.0}", kbit(received.saturating_sub(received_then)));
        }
        for (name, latencies) in [("near", &mut self.near), ("block", &mut self.block)] {
            latencies.sort_by(f64::total_cmp);
            if latencies.is_empty() {
                println!("figure {name}_count 0");
                continue;
            }
            let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
            println!("figure {name}_count {}", latencies.len());
            println!("figure {name}_p50_ms {:.1}", at(0.5));
            println!("figure {name}_p95_ms {:.1}", at(0.95));
        }
        let now = Instant::now();
        let lately = |heard: &std::collections::HashMap<PublicKey, Instant>, within: u64| {
            heard.values().filter(|at| now.duration_since(**at) < Duration::from_secs(within)).count()
        };
        println!("figure near_people {}", lately(&self.near_heard, 3));
        println!("figure block_people {}", lately(&self.heard, 7));
        println!("figure far_dots {}", self.far.0);
        println!("figure far_people {}", self.far.1);
        println!("figure chat_lines {}", self.chat);
        println!("figure seconds {wall:.0}");
    }
}

/// One person's process and how it is to be started again.
struct Member {
    index: usize,
    dir: PathBuf,
    join: String,
    child: Option<Child>,
    /// When it leaves next (it comes back 3 s later).
    leaves: Option<Instant>,
    back: Option<Instant>,
}

fn spawn(
    exe: &Path,
    role: &str,
    dir: &Path,
    join: &str,
    seconds: u64,
    index: usize,
    crowd: usize,
) -> Result<Child, String> {
    Process::new(exe)
        .arg(role)
        .arg(dir)
        .args([join, &seconds.to_string(), &index.to_string(), &crowd.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|error| format!("cannot start a person: {error}"))
}

/// Reads a child's first line, its ticket.
fn ticket_of(child: &mut Child) -> Result<String, String> {
    let stdout = child.stdout.as_mut().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).map_err(|error| error.to_string())?;
    line.trim().strip_prefix("ticket ").map(str::to_owned).ok_or_else(|| format!("no ticket: {line:?}"))
}

fn orchestrate(args: &[String]) -> Result<(), String> {
    let smoke = args.iter().any(|arg| arg == "--smoke");
    let number = |flag: &str, default: u64| -> Result<u64, String> {
        match args.iter().position(|arg| arg == flag) {
            None => Ok(default),
            Some(at) => args.get(at + 1).and_then(|text| text.parse().ok()).ok_or(format!("{flag} takes a number")),
        }
    };
    let crowd = number("--peers", if smoke { 12 } else { 48 })? as usize;
    let seconds = number("--seconds", if smoke { 25 } else { 75 })?;
    if !(NEAR_GROUP + 2..=500).contains(&crowd) || seconds < 20 {
        return Err(format!("--peers takes {} to 500 and --seconds at least 20", NEAR_GROUP + 2));
    }
    let exe = std::env::current_exe().map_err(|error| error.to_string())?;
    let root = tempfile::tempdir().map_err(|error| error.to_string())?;
    // Everyone starts within the first part of the run; the observer runs WARM_UP past the last.
    let total = seconds + WARM_UP.as_secs() + crowd as u64 / 4;
    println!(
        "crowd on loopback: 1 observer + {crowd} people, one process each, in the lobby; {} near the observer, {} \
         elsewhere in its block of cells, {} in cells above; measured for {seconds} s after a {} s warm-up",
        NEAR_GROUP,
        (crowd - NEAR_GROUP) * 2 / 5,
        crowd - NEAR_GROUP - (crowd - NEAR_GROUP) * 2 / 5,
        WARM_UP.as_secs()
    );
    let block = Block::around(RegionId::Lobby, OBSERVER_AT, None);
    let in_block = (0..crowd).filter(|index| block.contains(Cell::of(RegionId::Lobby, home(*index, crowd)))).count();
    let observer_dir = root.path().join("observer");
    let mut observer = spawn(&exe, "--observer", &observer_dir, "-", total, 0, crowd)?;
    // Held open until the end: closing it would ask the observer to leave.
    let _observer_input = observer.stdin.take();
    let first = ticket_of(&mut observer)?;
    let mut tickets = vec![first];
    let mut members: Vec<Member> = Vec::new();
    for index in 0..crowd {
        let dir = root.path().join(format!("person-{index}"));
        // Each joins through one of the first people (or the observer): a swarm without a hub.
        let join = tickets[index.saturating_sub(1) / 2 % tickets.len()].clone();
        let lifetime = total - crowd as u64 / 4;
        let mut child = spawn(&exe, "--peer", &dir, &join, lifetime + 10, index, crowd)?;
        if tickets.len() < 16 {
            tickets.push(ticket_of(&mut child)?);
        }
        // One in four beyond the near group leaves and comes back once, at its own time.
        let leaves = (index >= NEAR_GROUP && index % 4 == 0).then(|| {
            Instant::now() + Duration::from_secs(WARM_UP.as_secs() + 5 + (index as u64 * 13) % seconds.max(1))
        });
        members.push(Member { index, dir, join, child: Some(child), leaves, back: None });
        std::thread::sleep(Duration::from_millis(250));
    }
    let load = Instant::now();
    let end = load + Duration::from_secs(total - crowd as u64 / 4);
    let mut left = 0;
    while Instant::now() < end {
        let now = Instant::now();
        for member in &mut members {
            if member.leaves.is_some_and(|at| now >= at) {
                member.leaves = None;
                if let Some(mut child) = member.child.take() {
                    if member.index % 8 == 0 {
                        // Gone without a word: the others notice by its silence.
                        let _ = child.kill();
                    } else {
                        // Closing its input asks it to leave, saying goodbye.
                        drop(child.stdin.take());
                    }
                    let _ = child.wait();
                    left += 1;
                }
                member.back = Some(now + Duration::from_secs(3));
            }
            if member.back.is_some_and(|at| now >= at) {
                member.back = None;
                let remaining = end.saturating_duration_since(now).as_secs() + 10;
                member.child = spawn(&exe, "--peer", &member.dir, &member.join, remaining, member.index, crowd).ok();
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let output = observer.wait_with_output().map_err(|error| error.to_string())?;
    for member in &mut members {
        if let Some(mut child) = member.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let figure = |name: &str| -> String {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("figure {name} ")).map(str::to_owned))
            .unwrap_or_else(|| "-".into())
    };
    if text.contains("figure error") {
        return Err(format!("the observer measured nothing:\n{text}"));
    }
    println!("{left} people left and came back during the run");
    println!("{:>32}  {:>12}", "observer", "measured");
    let rows = [
        ("CPU, whole process (% of a core)", "cpu_percent"),
        ("up (kbit/s)", "up_kbit"),
        ("down (kbit/s)", "down_kbit"),
        ("near poses taken", "near_count"),
        ("near p50 (ms)", "near_p50_ms"),
        ("near p95 (ms)", "near_p95_ms"),
        ("block presences taken", "block_count"),
        ("block p50 (ms)", "block_p50_ms"),
        ("block p95 (ms)", "block_p95_ms"),
        ("near people at the end", "near_people"),
        ("block people at the end", "block_people"),
        ("far people (summaries)", "far_people"),
        ("far dots", "far_dots"),
        ("chat lines", "chat_lines"),
    ];
    for (label, name) in rows {
        println!("{label:>32}  {:>12}", figure(name));
    }
    println!(
        "  (of the {crowd}: {in_block} float in the observer's block, {} beyond it; P2 asks at most 1,000 kbit/s down)",
        crowd - in_block
    );
    if figure("block_count") == "-" || figure("block_count") == "0" {
        return Err("the observer took no presence from its block".into());
    }
    Ok(())
}
