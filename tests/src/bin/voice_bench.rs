//! `cargo xtask bench voice`: P10 and P11 of TARGETS.md.
//!
//! - Mouth to ear on loopback: two nodes in this process; one speaks a sentence from espeak-ng
//!   in real time (encoded every 20 ms, sent as datagrams), the other plays what arrives every
//!   20 ms through its jitter buffer. The delay from a sound entering the sender's microphone
//!   buffer to it leaving the receiver's playback buffer is found by aligning what was said with
//!   what was played, over half-second windows: p50 and p95 (target p95 ≤ 150 ms).
//! - CPU: encoding a frame; taking in one incoming stream (parse, jitter buffer, decode) per
//!   frame; sixteen speakers decoded and mixed to stereo per frame (target ≤ 5 ms on one core).
//! - Bandwidth per stream up and down.
//!
//! `--smoke` runs a short sentence and fewer rounds.

use std::time::{Duration, Instant};

use glam::{Quat, Vec3};
use sanctuary_net::{Command, Event, NodeConfig, NodeHandle, PoseFrame, QuantisedTransform, RelayChoice, spawn_node};
use sanctuary_voice::codec::VoiceEncoder;
use sanctuary_voice::lab::{align, envelope, speak};
use sanctuary_voice::packet::VoicePacket;
use sanctuary_voice::processing::VoiceProcessor;
use sanctuary_voice::stream::{Speaker, frames};
use sanctuary_voice::{FRAME, FRAME_SAMPLES, Frame, SAMPLE_RATE, wav};

/// P10: mouth to ear, p95.
const P10_MS: f64 = 150.0;
/// P11: sixteen speakers per 20 ms frame, on one core.
const P11_MS: f64 = 5.0;
/// P11: bit rate per stream.
const P11_KBIT: f64 = 32.0;

fn median(values: &mut [f64]) -> f64 {
    percentile(values, 0.5)
}

fn percentile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let smoke = std::env::args().any(|arg| arg == "--smoke");
    if let Err(error) = run(smoke) {
        eprintln!("error: the voice benchmark could not run: {error}");
        std::process::exit(1);
    }
}

fn run(smoke: bool) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|error| error.to_string())?;
    let text = if smoke {
        "Testing voice."
    } else {
        "Good evening, and welcome to Sanctuary. Tonight in the cinema we watch a film together, and \
         afterwards there is music in the lobby. Bring a friend, and mind the portal on your way in."
    };
    let speech = wav::read_mono(&speak(dir.path(), text)?).map_err(|error| error.to_string())?;
    let input = frames(&speech);
    println!("voice: {:.1} s of speech from espeak-ng, 48 kHz mono, 20 ms frames", speech.len() as f64 / 48_000.0);

    // Encoding, and what it costs on the wire.
    let mut encoder = VoiceEncoder::new().map_err(|error| error.to_string())?;
    let mut encode_us = Vec::new();
    let mut packets = Vec::new();
    for (index, frame) in input.iter().enumerate() {
        let started = Instant::now();
        let payload = encoder.encode(frame).map_err(|error| error.to_string())?;
        encode_us.push(started.elapsed().as_secs_f64() * 1e6);
        if let Some(payload) = payload {
            packets.push(VoicePacket {
                sequence: packets.len() as u32,
                timestamp: (index * FRAME_SAMPLES) as u32,
                payload,
            });
        }
    }
    // Cleaning the microphone (echo cancellation against the speakers, noise suppression, gain
    // control), per frame, with the far end playing the same speech.
    let mut processor = VoiceProcessor::new(None);
    let mut process_us = Vec::new();
    for frame in &input {
        let mut microphone = *frame;
        let started = Instant::now();
        processor.far_end(frame);
        processor.process(&mut microphone);
        process_us.push(started.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(&microphone);
    }
    let seconds = speech.len() as f64 / f64::from(SAMPLE_RATE);
    let payload_kbit = packets.iter().map(|packet| packet.payload.len()).sum::<usize>() as f64 * 8.0 / seconds / 1000.0;
    let datagram_kbit =
        packets.iter().map(|packet| packet.to_bytes().len()).sum::<usize>() as f64 * 8.0 / seconds / 1000.0;
    // QUIC short header, datagram frame, AEAD tag, UDP and IPv4 headers: about 60 bytes.
    let wire_kbit = datagram_kbit + packets.len() as f64 * 60.0 * 8.0 / seconds / 1000.0;

    // One incoming stream: parse, jitter buffer, decode, per frame.
    let datagrams: Vec<Vec<u8>> = packets.iter().map(VoicePacket::to_bytes).collect();
    let mut one_us = Vec::new();
    let mut speaker = Speaker::new().map_err(|error| error.to_string())?;
    let mut out: Frame = [0.0; FRAME_SAMPLES];
    for (tick, datagram) in datagrams.iter().enumerate() {
        let now = FRAME * tick as u32;
        let started = Instant::now();
        let _ = speaker.push_datagram(datagram, now);
        speaker.next_frame(now, &mut out);
        one_us.push(started.elapsed().as_secs_f64() * 1e6);
    }

    // Sixteen speakers at once, mixed to stereo with a gain and a pan each.
    let rounds = if smoke { 50 } else { datagrams.len().min(500) };
    let mut speakers: Vec<Speaker> =
        (0..16).map(|_| Speaker::new().map_err(|error| error.to_string())).collect::<Result<_, _>>()?;
    let gains: Vec<(f32, f32)> = (0..16)
        .map(|index| {
            let pan = (index as f32 / 15.0) * std::f32::consts::FRAC_PI_2;
            let gain = 1.0 / (1.0 + index as f32 * 0.3);
            (gain * pan.cos(), gain * pan.sin())
        })
        .collect();
    let mut mixed = vec![[0.0f32; 2]; FRAME_SAMPLES];
    let mut sixteen_ms = Vec::new();
    for tick in 0..rounds {
        let now = FRAME * tick as u32;
        let started = Instant::now();
        mixed.iter_mut().for_each(|sample| *sample = [0.0; 2]);
        for (speaker, (left, right)) in speakers.iter_mut().zip(&gains) {
            if let Some(datagram) = datagrams.get(tick) {
                let _ = speaker.push_datagram(datagram, now);
            }
            speaker.next_frame(now, &mut out);
            for (sample, voice) in mixed.iter_mut().zip(out.iter()) {
                sample[0] += voice * left;
                sample[1] += voice * right;
            }
        }
        sixteen_ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    std::hint::black_box(&mixed);

    // Mouth to ear over iroh on loopback.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|error| error.to_string())?;
    let (latencies, network) = runtime.block_on(loopback(&speech, &input))?;
    let (mut latencies, mut network) = (latencies, network);

    println!("{:<58} {:>12} {:>12} {:>16}", "figure", "p50", "p95", "target");
    let row =
        |name: &str, p50: String, p95: String, target: String| println!("{name:<58} {p50:>12} {p95:>12} {target:>16}");
    let (p50, p95) = (median(&mut latencies), percentile(&mut latencies, 0.95));
    let verdict = if p95 <= P10_MS { "met" } else { "MISSED" };
    row(
        "P10 mouth to ear on loopback (capture → playback buffer)",
        format!("{p50:.1} ms"),
        format!("{p95:.1} ms"),
        format!("≤ {P10_MS} ms {verdict}"),
    );
    row(
        "  of which the network (datagram sent → arrived)",
        format!("{:.2} ms", median(&mut network)),
        format!("{:.2} ms", percentile(&mut network, 0.95)),
        String::new(),
    );
    row(
        "clean one frame of microphone (echo, noise, gain)",
        format!("{:.0} µs", median(&mut process_us)),
        format!("{:.0} µs", percentile(&mut process_us, 0.95)),
        String::new(),
    );
    row(
        "encode one frame (the sender)",
        format!("{:.0} µs", median(&mut encode_us)),
        format!("{:.0} µs", percentile(&mut encode_us, 0.95)),
        String::new(),
    );
    row(
        "one incoming stream per frame (parse, buffer, decode)",
        format!("{:.0} µs", median(&mut one_us)),
        format!("{:.0} µs", percentile(&mut one_us, 0.95)),
        String::new(),
    );
    let (p50, p95) = (median(&mut sixteen_ms), percentile(&mut sixteen_ms, 0.95));
    let verdict = if p95 <= P11_MS { "met" } else { "MISSED" };
    row(
        "P11 16 speakers decoded and mixed to stereo per frame",
        format!("{p50:.2} ms"),
        format!("{p95:.2} ms"),
        format!("≤ {P11_MS} ms {verdict}"),
    );
    let verdict = if payload_kbit <= P11_KBIT { "met" } else { "MISSED" };
    println!(
        "P11 per stream, up and down alike: Opus {payload_kbit:.1} kbit/s ({verdict}, target ≤ {P11_KBIT}); datagrams {datagram_kbit:.1} kbit/s; \
         about {wire_kbit:.1} kbit/s on the wire with QUIC, UDP and IPv4 headers; up for 16 listeners {:.0} kbit/s",
        wire_kbit * 16.0
    );
    println!(
        "  (one process on this machine; the mix is a gain and a pan per speaker; silence sends almost nothing (DTX))"
    );
    Ok(())
}

fn standing_at(x: f32) -> PoseFrame {
    let at = |dx: f32| QuantisedTransform::new(Vec3::new(x + dx, 1.7, -30.0), Quat::IDENTITY);
    PoseFrame { head: at(0.0), left_hand: at(-0.3), right_hand: at(0.3) }
}

async fn start(dir: &std::path::Path, name: &str, join: Option<String>) -> Result<(NodeHandle, String), String> {
    let mut config = NodeConfig::new(dir);
    config.relays = RelayChoice::Disabled;
    config.lan_discovery = false;
    config.name = Some(name.to_owned());
    if let Some(ticket) = join {
        config.join = vec![ticket.parse().map_err(|_| "a bad ticket".to_owned())?];
    }
    let mut handle = spawn_node(&tokio::runtime::Handle::current(), config);
    loop {
        match tokio::time::timeout(Duration::from_secs(20), handle.next_event()).await {
            Ok(Some(Event::Started { ticket, .. })) => return Ok((handle, ticket)),
            Ok(Some(Event::Failed(error))) => return Err(error),
            Ok(Some(_)) => {}
            _ => return Err("a node did not start".into()),
        }
    }
}

/// Sends `speech` from one node to another in real time; returns the mouth-to-ear delay of
/// each half second of speech and the network delay of each datagram, in ms.
async fn loopback(speech: &[f32], input: &[Frame]) -> Result<(Vec<f64>, Vec<f64>), String> {
    let (ada_dir, bo_dir) = (
        tempfile::tempdir().map_err(|error| error.to_string())?,
        tempfile::tempdir().map_err(|error| error.to_string())?,
    );
    let (mut ada, ticket) = start(ada_dir.path(), "Ada", None).await?;
    let (mut bo, _) = start(bo_dir.path(), "Bo", Some(ticket)).await?;
    let mut heard = bo.take_voice().ok_or("no voice receiver")?;
    ada.send(Command::Pose(standing_at(0.0)));
    bo.send(Command::Pose(standing_at(4.0)));
    let sender = ada.voice_sender();
    let ready = Instant::now();
    while sender.listeners() == 0 {
        if ready.elapsed() > Duration::from_secs(20) {
            return Err("the two nodes did not connect for voice".into());
        }
        while ada.try_event().is_some() {}
        while bo.try_event().is_some() {}
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut encoder = VoiceEncoder::new().map_err(|error| error.to_string())?;
    let start = Instant::now();
    let mut sent_at = Vec::new();
    // The listener plays every 20 ms on its own task, as an audio callback would.
    let total = input.len();
    let playing = tokio::spawn(async move {
        let mut speaker = Speaker::new().ok()?;
        let mut played = Vec::with_capacity((total + 50) * FRAME_SAMPLES);
        let mut arrivals = Vec::new();
        let mut out = [0.0; FRAME_SAMPLES];
        for tick in 0..total + 50 {
            // Half a frame after the sender's ticks: the two machines' audio clocks are not in step.
            tokio::time::sleep_until((start + FRAME * tick as u32 + Duration::from_millis(10)).into()).await;
            let now = Instant::now();
            while let Ok(datagram) = heard.try_recv() {
                arrivals.push(datagram.clone());
                let _ = speaker.push_datagram(&datagram.bytes, datagram.arrival.duration_since(start));
            }
            speaker.next_frame(now.duration_since(start), &mut out);
            played.extend_from_slice(&out);
        }
        Some((played, arrivals))
    });
    let mut sequence = 0u32;
    for (index, frame) in input.iter().enumerate() {
        // The frame is whole once its last sample is captured: 20 ms after its first.
        tokio::time::sleep_until((start + FRAME * (index as u32 + 1)).into()).await;
        let Some(payload) = encoder.encode(frame).map_err(|error| error.to_string())? else { continue };
        let packet = VoicePacket { sequence, timestamp: (index * FRAME_SAMPLES) as u32, payload };
        sequence += 1;
        sent_at.push(Instant::now());
        sender.send(&packet.to_bytes());
    }
    let (played, arrivals) = playing.await.map_err(|error| error.to_string())?.ok_or("the decoder did not start")?;
    let network: Vec<f64> = arrivals
        .iter()
        .filter_map(|datagram| {
            let packet = VoicePacket::parse(&datagram.bytes).ok()?;
            Some(datagram.arrival.duration_since(*sent_at.get(packet.sequence as usize)?).as_secs_f64() * 1000.0)
        })
        .collect();
    // Played sample i left the playback buffer at start + i / 48 kHz + 10 ms (its tick); said
    // sample j entered the microphone at start + j / 48 kHz. The lag between them, per window.
    let window = SAMPLE_RATE as usize / 2;
    let mut latencies = Vec::new();
    for begin in (0..speech.len().saturating_sub(window)).step_by(window) {
        let said = &speech[begin..begin + window];
        if envelope(said).iter().all(|level| *level < 0.02) {
            continue;
        }
        let played_from = &played[begin.min(played.len())..];
        let (lag, correlation) = align(said, played_from);
        if correlation > 0.5 {
            latencies.push(lag as f64 * 1000.0 / f64::from(SAMPLE_RATE) + 10.0);
        }
    }
    ada.shutdown().await;
    bo.shutdown().await;
    if latencies.is_empty() {
        return Err("nothing Bo played matched what Ada said".into());
    }
    Ok((latencies, network))
}
