//! Measuring voice without devices or a network: speech from espeak-ng, a simulated link that
//! delays, jitters and drops datagrams, and the measures that compare what a listener heard with
//! what was said. Used by the tests and by `cargo xtask bench voice`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::codec::{CodecError, VoiceEncoder};
use crate::packet::VoicePacket;
use crate::stream::{FrameKind, Speaker, frames};
use crate::{FRAME, FRAME_SAMPLES};

/// Speaks `text` into a 48 kHz mono WAV file with espeak-ng and sox (Debian packages that
/// `cargo xtask setup` installs).
pub fn speak(dir: &Path, text: &str) -> Result<PathBuf, String> {
    let raw = dir.join("raw.wav");
    let speech = dir.join("speech.wav");
    let spoke = Command::new("espeak-ng").arg("-w").arg(&raw).arg(text).status();
    if !spoke.is_ok_and(|status| status.success()) {
        return Err("espeak-ng did not speak: `cargo xtask setup` installs it".into());
    }
    let converted = Command::new("sox").arg(&raw).args(["-r", "48000", "-c", "1", "-b", "16"]).arg(&speech).status();
    if !converted.is_ok_and(|status| status.success()) {
        return Err("sox did not convert the speech: `cargo xtask setup` installs it".into());
    }
    Ok(speech)
}

/// A small deterministic random source (xorshift64*), so that every run drops the same packets.
#[derive(Debug)]
pub struct Dice(pub u64);

impl Dice {
    /// A number in 0..1.
    pub fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A link: every datagram is delayed by `base` plus up to `jitter`, and lost with `loss`.
#[derive(Debug, Clone, Copy)]
pub struct Link {
    /// The delay every datagram has.
    pub base: Duration,
    /// Up to this much more, uniformly.
    pub jitter: Duration,
    /// The share of datagrams lost.
    pub loss: f64,
}

/// What came out, frame by frame.
#[derive(Debug)]
pub struct Heard {
    /// The listener's output.
    pub samples: Vec<f32>,
    /// What each frame of it was.
    pub kinds: Vec<FrameKind>,
    /// Datagram bytes sent (header and payload).
    pub sent_bytes: usize,
    /// Datagrams sent.
    pub sent_packets: usize,
}

/// Sends `speech` over `link` and plays it out at the listener, 20 ms at a time.
pub fn send(speech: &[f32], link: &Link, seed: u64) -> Result<Heard, CodecError> {
    let mut encoder = VoiceEncoder::new()?;
    let mut dice = Dice(seed);
    let start_timestamp = 4_000_000_000u32; // wraps during the test
    let mut arrivals: Vec<(Duration, Vec<u8>)> = Vec::new();
    let mut sequence = 0u32;
    let (mut sent_bytes, mut sent_packets) = (0, 0);
    let input = frames(speech);
    for (index, frame) in input.iter().enumerate() {
        let Some(payload) = encoder.encode(frame)? else { continue };
        let packet =
            VoicePacket { sequence, timestamp: start_timestamp.wrapping_add((index * FRAME_SAMPLES) as u32), payload };
        sequence += 1;
        let bytes = packet.to_bytes();
        sent_bytes += bytes.len();
        sent_packets += 1;
        if dice.unit() < link.loss {
            continue;
        }
        let sent_at = FRAME * index as u32;
        arrivals.push((sent_at + link.base + link.jitter.mul_f64(dice.unit()), bytes));
    }
    arrivals.sort_by_key(|(at, _)| *at);
    let mut speaker = Speaker::new()?;
    let mut pending = arrivals.into_iter().peekable();
    let (mut samples, mut kinds) = (Vec::new(), Vec::new());
    // The listener's playback runs on its own phase, 7 ms off the sender's.
    let ticks = input.len() + 50;
    for tick in 0..ticks {
        let now = FRAME * tick as u32 + Duration::from_millis(7);
        while let Some((_, bytes)) = pending.next_if(|(at, _)| *at <= now) {
            speaker.push_datagram(&bytes, now).ok();
        }
        let mut out = [0.0; FRAME_SAMPLES];
        kinds.push(speaker.next_frame(now, &mut out));
        samples.extend_from_slice(&out);
    }
    Ok(Heard { samples, kinds, sent_bytes, sent_packets })
}

/// Normalised cross-correlation of `a` against `b` shifted by `lag` samples (b[i + lag] ~ a[i]).
pub fn correlation(a: &[f32], b: &[f32], lag: usize) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b.iter().skip(lag)) {
        ab += f64::from(*x) * f64::from(*y);
        aa += f64::from(*x) * f64::from(*x);
        bb += f64::from(*y) * f64::from(*y);
    }
    if aa == 0.0 || bb == 0.0 { 0.0 } else { ab / (aa * bb).sqrt() }
}

/// RMS per 10 ms.
pub fn envelope(samples: &[f32]) -> Vec<f32> {
    samples
        .chunks(480)
        .map(|chunk| (chunk.iter().map(|sample| sample * sample).sum::<f32>() / chunk.len() as f32).sqrt())
        .collect()
}

/// The lag (in samples) at which `received` best matches `sent`, and the waveforms' correlation
/// there: coarse on envelopes, then sample by sample around it.
pub fn align(sent: &[f32], received: &[f32]) -> (usize, f64) {
    let (sent_envelope, received_envelope) = (envelope(sent), envelope(received));
    let coarse = (0..30).max_by(|a, b| {
        correlation(&sent_envelope, &received_envelope, *a).total_cmp(&correlation(
            &sent_envelope,
            &received_envelope,
            *b,
        ))
    });
    let coarse = coarse.unwrap_or(0) * 480;
    let lags = coarse.saturating_sub(960)..coarse + 960;
    lags.map(|lag| (lag, correlation(sent, received, lag))).max_by(|a, b| a.1.total_cmp(&b.1)).unwrap_or((0, 0.0))
}

/// The longest run of frames without voice (concealed or silent) where the speaker was
/// speaking (the sent frame, `lag` earlier, was louder than −40 dBFS).
pub fn longest_gap(sent: &[f32], heard: &Heard, lag: usize) -> usize {
    let lag_frames = lag.div_ceil(FRAME_SAMPLES);
    let loud: Vec<bool> = frames(sent)
        .iter()
        .map(|frame| (frame.iter().map(|sample| sample * sample).sum::<f32>() / FRAME_SAMPLES as f32).sqrt() > 0.01)
        .collect();
    let (mut longest, mut run) = (0, 0);
    for (index, kind) in heard.kinds.iter().enumerate() {
        let speaking = index.checked_sub(lag_frames).and_then(|source| loud.get(source)).copied().unwrap_or(false);
        if speaking && matches!(kind, FrameKind::Concealed | FrameKind::Silent) {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest
}
