//! `fuzz [N]`: every decoder of network or disk bytes, over N random and mutated inputs each
//! (default 100,000), on the stable toolchain. Prints inputs per second, inputs accepted, panics
//! and forgeries accepted per decoder; exits with an error if any decoder panicked or accepted a
//! forgery. `cargo xtask fuzz [N]` builds and runs it.
//!
//! Inputs: a quarter are random bytes; the rest are seeds (valid encodings made in code)
//! mutated: bytes flipped or overwritten, runs inserted, deleted or duplicated, cut short or
//! extended, length fields set to extremes, spliced with another seed.

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;
use std::time::Instant;

use sanctuary_engine::{Change, ModelLimits, Op, PublicKey, Verifier, home_parcel, inspect_model};
use sanctuary_net::fuzz::Decoder;

/// xorshift64*: small, fast and reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

/// One mutated or random input.
fn input(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let longest = seeds.iter().map(Vec::len).max().unwrap_or(64).max(16);
    if rng.below(4) == 0 || seeds.is_empty() {
        let len = rng.below(longest * 2);
        return (0..len).map(|_| rng.byte()).collect();
    }
    let mut bytes = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(4) {
        let len = bytes.len();
        match rng.below(9) {
            0 if len > 0 => {
                let at = rng.below(len);
                bytes[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                bytes[at] = rng.byte();
            }
            2 => {
                let at = rng.below(len + 1);
                let run: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.byte()).collect();
                bytes.splice(at..at, run);
            }
            3 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(16)).min(len);
                bytes.drain(at..end);
            }
            4 => bytes.truncate(rng.below(len + 1)),
            5 => bytes.extend((0..1 + rng.below(64)).map(|_| rng.byte())),
            6 if len >= 4 => {
                // A length field (or anything) set to an extreme.
                let at = rng.below(len - 3);
                let value: [u8; 4] = match rng.below(4) {
                    0 => [0xff; 4],
                    1 => [0; 4],
                    2 => [0xff, 0xff, 0xff, 0x7f],
                    _ => (len as u32).to_le_bytes(),
                };
                bytes[at..at + 4].copy_from_slice(&value);
            }
            7 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(32)).min(len);
                let copy = bytes[at..end].to_vec();
                let to = rng.below(len + 1);
                bytes.splice(to..to, copy);
            }
            _ => {
                let other = &seeds[rng.below(seeds.len())];
                let cut = rng.below(bytes.len() + 1);
                let from = rng.below(other.len() + 1);
                bytes.truncate(cut);
                bytes.extend_from_slice(&other[from..]);
            }
        }
    }
    bytes
}

/// A voice datagram and the Opus frame inside it, as a listener's decoder sees them.
fn voice_seeds() -> Vec<Vec<u8>> {
    use sanctuary_voice::{FRAME_SAMPLES, codec::VoiceEncoder, packet::VoicePacket};
    let Ok(mut encoder) = VoiceEncoder::new() else { return Vec::new() };
    (0..20)
        .filter_map(|index| {
            let frame: [f32; FRAME_SAMPLES] =
                std::array::from_fn(|sample| 0.3 * ((index * FRAME_SAMPLES + sample) as f32 * 0.0576).sin());
            let payload = encoder.encode(&frame).ok()??;
            Some(VoicePacket { sequence: index as u32, timestamp: (index * FRAME_SAMPLES) as u32, payload }.to_bytes())
        })
        .collect()
}

/// The decoders outside `net`: world changes and the model inspector (engine), the wallet's log
/// and its sealed seed, voice datagrams and Opus (voice), films (video).
fn other_decoders() -> Vec<Decoder> {
    let seed = [7u8; 32];
    let author = PublicKey::from_secret_seed(&seed);
    let parcel = home_parcel(&author);
    let change = |seq: u64, op: Op| Change { author, seq, op }.sign(&seed).to_bytes();
    let (glb, _) = sanctuary_tests::models::crystal_glb();
    let sealed = sanctuary_wallet::Seed::restore(
        "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
        "",
    )
    .ok()
    .and_then(|seed| seed.seal("fuzzing").ok())
    .map(|sealed| sealed.to_bytes())
    .into_iter()
    .collect();
    let voice = voice_seeds();
    vec![
        Decoder {
            name: "voice datagram",
            signed: false,
            seeds: voice.clone(),
            run: |bytes| {
                let packet = sanctuary_voice::packet::VoicePacket::parse(bytes).ok()?;
                Some(*blake3::hash(&packet.to_bytes()).as_bytes())
            },
        },
        Decoder {
            // The port itself, unguarded (the program catches a panic in it; here it counts).
            name: "voice frame (Opus, ropus)",
            signed: false,
            seeds: voice.iter().map(|datagram| datagram[sanctuary_voice::packet::HEADER_BYTES..].to_vec()).collect(),
            run: |bytes| {
                let mut decoder = ropus::Decoder::new(48_000, ropus::Channels::Mono).ok()?;
                let mut out = [0.0f32; sanctuary_voice::FRAME_SAMPLES];
                let mode = if bytes.first().is_some_and(|byte| byte & 1 == 1) {
                    ropus::DecodeMode::Fec
                } else {
                    ropus::DecodeMode::Normal
                };
                decoder.decode_float(bytes, &mut out, mode).ok()?;
                let pcm: Vec<u8> = out.iter().flat_map(|sample| sample.to_le_bytes()).collect();
                Some(*blake3::hash(&pcm).as_bytes())
            },
        },
        Decoder {
            name: "world change (signed)",
            signed: true,
            seeds: vec![change(1, Op::Claim { parcel }), change(2, Op::Remove { parcel, epoch: 0, id: 9 })],
            run: |bytes| {
                let verified = Verifier.verify(bytes).ok()?;
                Some(verified.id.0)
            },
        },
        Decoder {
            name: "model inspector (glTF/GLB)",
            signed: false,
            seeds: vec![glb],
            run: |bytes| {
                let limits = ModelLimits { max_bytes: 1 << 20, ..ModelLimits::default() };
                inspect_model(bytes, &|_| None, &limits)
                    .ok()
                    .map(|summary| *blake3::hash(format!("{summary:?}").as_bytes()).as_bytes())
            },
        },
        Decoder {
            // Demuxer and decoder together, as a viewer runs them on a shared film: a panic
            // inside is caught and refuses the film, so here one counts only if it escapes.
            name: "film (MP4/MKV, H.264, audio)",
            signed: false,
            seeds: vec![include_bytes!("../../data/film.mp4").to_vec(), include_bytes!("../../data/film.mkv").to_vec()],
            run: |bytes| {
                let mut film =
                    sanctuary_video::Film::from_bytes(bytes.to_vec(), sanctuary_video::Limits::default()).ok()?;
                let mut hasher = blake3::Hasher::new();
                while let Ok(Some(picture)) = film.next_picture() {
                    hasher.update(&picture.rgba);
                    while let Some(sound) = film.take_sound() {
                        hasher.update(&sound.time.to_le_bytes());
                    }
                }
                Some(*hasher.finalize().as_bytes())
            },
        },
        Decoder {
            name: "wallet log (disk)",
            signed: false,
            seeds: vec![sanctuary_wallet::store::example_log()],
            run: |bytes| {
                let (_, good) = sanctuary_wallet::store::parse_log(bytes).ok()?;
                (good > 0).then(|| *blake3::hash(&bytes[..good]).as_bytes())
            },
        },
        Decoder {
            name: "sealed seed (disk)",
            signed: false,
            seeds: sealed,
            run: |bytes| {
                sanctuary_wallet::SealedSeed::from_bytes(bytes)
                    .ok()
                    .map(|sealed| *blake3::hash(&sealed.to_bytes()).as_bytes())
            },
        },
    ]
}

/// What one decoder did.
struct Outcome {
    inputs: u64,
    accepted: u64,
    panics: u64,
    forged: u64,
    seconds: f64,
}

fn run(decoder: &Decoder, inputs: u64, rng: &mut Rng) -> Outcome {
    let believed: HashSet<[u8; 32]> = decoder.seeds.iter().filter_map(|seed| (decoder.run)(seed)).collect();
    let seed_bytes: HashSet<&Vec<u8>> = decoder.seeds.iter().collect();
    let mut outcome = Outcome { inputs, accepted: 0, panics: 0, forged: 0, seconds: 0.0 };
    let started = Instant::now();
    for _ in 0..inputs {
        let bytes = input(rng, &decoder.seeds);
        match catch_unwind(AssertUnwindSafe(|| (decoder.run)(&bytes))) {
            Ok(Some(digest)) => {
                outcome.accepted += 1;
                if decoder.signed && !believed.contains(&digest) && !seed_bytes.contains(&bytes) {
                    outcome.forged += 1;
                    eprintln!("{}: a forgery was accepted: {bytes:02x?}", decoder.name);
                }
            }
            Ok(None) => {}
            Err(_) => {
                outcome.panics += 1;
                if outcome.panics <= 3 {
                    eprintln!("{}: panicked on {bytes:02x?}", decoder.name);
                }
            }
        }
    }
    outcome.seconds = started.elapsed().as_secs_f64();
    outcome
}

fn main() -> ExitCode {
    let inputs: u64 = match std::env::args().nth(1).map(|arg| arg.replace(['_', ','], "").parse()) {
        None => 100_000,
        Some(Ok(inputs)) => inputs,
        Some(Err(_)) => {
            eprintln!("usage: fuzz [INPUTS_PER_DECODER]");
            return ExitCode::from(2);
        }
    };
    // Panics are caught and counted; their messages would only flood the terminal.
    std::panic::set_hook(Box::new(|_| {}));
    let mut decoders = sanctuary_net::fuzz::decoders();
    decoders.extend(other_decoders());
    let mut rng = Rng(0x5eed_5a4c_7a41_2026);
    println!("{inputs} inputs per decoder");
    println!("{:<30} {:>12} {:>10} {:>8} {:>8}", "decoder", "inputs/s", "accepted", "panics", "forged");
    let mut failed = false;
    for decoder in &decoders {
        let outcome = run(decoder, inputs, &mut rng);
        let rate = outcome.inputs as f64 / outcome.seconds.max(1e-9);
        println!(
            "{:<30} {:>12.0} {:>10} {:>8} {:>8}",
            decoder.name, rate, outcome.accepted, outcome.panics, outcome.forged
        );
        failed |= outcome.panics > 0 || outcome.forged > 0;
    }
    if failed {
        eprintln!("a decoder panicked or accepted a forgery: see above");
        ExitCode::FAILURE
    } else {
        println!("0 panics, 0 forgeries accepted");
        ExitCode::SUCCESS
    }
}
