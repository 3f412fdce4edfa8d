//! One speaker as a listener hears them: datagrams in, 20 ms frames of decoded voice out.

use std::time::Duration;

use crate::codec::{CodecError, VoiceDecoder};
use crate::jitter::{JitterBuffer, JitterStats, Playout};
use crate::packet::{PacketError, VoicePacket};
use crate::{FRAME_SAMPLES, Frame};

/// What a frame out of [`Speaker::next_frame`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// Nothing: the speaker is quiet (the frame is silence).
    Silent,
    /// Their voice, from its own packet.
    Voice,
    /// Their voice, recovered from the next packet's FEC copy.
    Recovered,
    /// The decoder's guess for a frame that did not arrive (or comfort noise in a pause).
    Concealed,
}

/// One speaker: a jitter buffer and a decoder.
#[derive(Debug)]
pub struct Speaker {
    buffer: JitterBuffer,
    decoder: VoiceDecoder,
    refused: u64,
}

impl Speaker {
    /// A speaker not heard yet.
    pub fn new() -> Result<Self, CodecError> {
        Ok(Self { buffer: JitterBuffer::new(), decoder: VoiceDecoder::new()?, refused: 0 })
    }

    /// Takes a datagram that arrived at `arrival` (any monotonic clock of the receiver).
    pub fn push_datagram(&mut self, bytes: &[u8], arrival: Duration) -> Result<(), PacketError> {
        match VoicePacket::parse(bytes) {
            Ok(packet) => {
                self.buffer.push(packet, arrival);
                Ok(())
            }
            Err(error) => {
                self.refused += 1;
                Err(error)
            }
        }
    }

    /// Fills `out` with the 20 ms starting at `now`.
    pub fn next_frame(&mut self, now: Duration, out: &mut Frame) -> FrameKind {
        match self.buffer.pop(now) {
            Playout::Silence => {
                out.fill(0.0);
                FrameKind::Silent
            }
            Playout::Packet(payload) => match self.decoder.decode(&payload, out) {
                Ok(()) => FrameKind::Voice,
                Err(_) => {
                    self.refused += 1;
                    self.decoder.conceal(out);
                    FrameKind::Concealed
                }
            },
            Playout::Recover(next) => match self.decoder.recover(&next, out) {
                Ok(()) => FrameKind::Recovered,
                Err(_) => {
                    self.decoder.conceal(out);
                    FrameKind::Concealed
                }
            },
            Playout::Conceal => {
                self.decoder.conceal(out);
                FrameKind::Concealed
            }
        }
    }

    /// Whether the speaker is quiet and may be forgotten.
    pub fn is_idle(&self) -> bool {
        self.buffer.is_idle()
    }

    /// The delay the jitter buffer aims for now.
    pub fn target_delay(&self) -> Duration {
        self.buffer.target_delay()
    }

    /// What the jitter buffer did.
    pub fn stats(&self) -> JitterStats {
        self.buffer.stats()
    }

    /// Datagrams or packets refused as malformed.
    pub fn refused(&self) -> u64 {
        self.refused
    }
}

/// Cuts mono audio into frames, the last padded with silence.
pub fn frames(samples: &[f32]) -> Vec<Frame> {
    samples
        .chunks(FRAME_SAMPLES)
        .map(|chunk| {
            let mut frame = [0.0; FRAME_SAMPLES];
            frame[..chunk.len()].copy_from_slice(chunk);
            frame
        })
        .collect()
}
