//! Sanctuary's voice without devices or network: what a speaker's machine does with 20 ms of
//! microphone ([`codec::VoiceEncoder`], [`packet::VoicePacket`]) and what a listener's machine
//! does with the datagrams that arrive ([`stream::Speaker`]: an adaptive
//! [`jitter::JitterBuffer`], Opus decoding with loss concealment and FEC recovery). WAV files
//! stand in for a microphone and a speaker ([`wav`]), so that all of it is tested on machines
//! without a sound card.
//!
//! Audio is 48 kHz mono, in frames of 20 ms ([`FRAME_SAMPLES`] samples), as `f32` in −1..1.

pub mod capture;
pub mod clip;
pub mod codec;
pub mod film_sound;
pub mod jitter;
pub mod lab;
pub mod output;
pub mod packet;
pub mod playback;
pub mod processing;
pub mod resample;
pub mod stream;
pub mod wav;

use std::time::Duration;

/// Samples a second, everywhere in the voice path.
pub const SAMPLE_RATE: u32 = 48_000;
/// Samples in one frame (20 ms): what is encoded into one packet and played per step.
pub const FRAME_SAMPLES: usize = 960;
/// The length of one frame.
pub const FRAME: Duration = Duration::from_millis(20);
/// One frame of audio.
pub type Frame = [f32; FRAME_SAMPLES];
