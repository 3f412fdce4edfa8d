//! Opus in VoIP mode, 20 ms frames, with in-band FEC (each packet carries a coarse copy of the
//! one before, for a receiver that lost it) and DTX (silence sends almost nothing).

use ropus::{Application, Bitrate, Channels, DecodeMode, Decoder, Encoder, InbandFec, Signal};

use crate::packet::MAX_PAYLOAD;
use crate::{FRAME_SAMPLES, Frame, SAMPLE_RATE};

/// The bit rate voice is sent at: clear wideband speech with room for FEC (P11: ≤ 32 kbit/s).
pub const BITRATE: u32 = 24_000;
/// The loss the encoder plans its FEC for.
pub const EXPECTED_LOSS_PERCENT: u8 = 10;

/// What went wrong in the codec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The encoder or decoder could not be made or refused a frame.
    #[error("the voice codec failed: {0}")]
    Opus(String),
}

fn opus(error: impl std::fmt::Debug) -> CodecError {
    CodecError::Opus(format!("{error:?}"))
}

/// Turns 20 ms frames of microphone into Opus packets.
pub struct VoiceEncoder {
    encoder: Encoder,
    output: Vec<u8>,
}

impl VoiceEncoder {
    /// An encoder for voice at [`BITRATE`], FEC planned for [`EXPECTED_LOSS_PERCENT`], DTX on.
    pub fn new() -> Result<Self, CodecError> {
        let encoder = Encoder::builder(SAMPLE_RATE, Channels::Mono, Application::Voip)
            .bitrate(Bitrate::Bits(BITRATE))
            .signal(Signal::Voice)
            .inband_fec(InbandFec::Enabled)
            .packet_loss_perc(EXPECTED_LOSS_PERCENT)
            .dtx(true)
            .build()
            .map_err(opus)?;
        Ok(Self { encoder, output: vec![0; MAX_PAYLOAD] })
    }

    /// Encodes one frame; `None` when it need not be sent (silence under DTX: the decoder fills
    /// it with comfort noise).
    pub fn encode(&mut self, frame: &Frame) -> Result<Option<Vec<u8>>, CodecError> {
        let length = self.encoder.encode_float(frame, &mut self.output).map_err(opus)?;
        // Opus: "if the return value is 2 bytes or less, then the packet does not need to be
        // transmitted (DTX)".
        Ok((length > 2).then(|| self.output[..length].to_vec()))
    }
}

impl std::fmt::Debug for VoiceEncoder {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("VoiceEncoder").finish_non_exhaustive()
    }
}

/// Turns one speaker's packets back into 20 ms frames, filling in for lost ones.
pub struct VoiceDecoder {
    decoder: Decoder,
}

impl std::fmt::Debug for VoiceDecoder {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("VoiceDecoder").finish_non_exhaustive()
    }
}

impl VoiceDecoder {
    /// A decoder for one speaker.
    pub fn new() -> Result<Self, CodecError> {
        Ok(Self { decoder: Decoder::new(SAMPLE_RATE, Channels::Mono).map_err(opus)? })
    }

    /// Decodes a packet into `out`. A packet that is not 20 ms of valid Opus (anything from the
    /// network) is an error, and `out` is then concealment instead.
    pub fn decode(&mut self, payload: &[u8], out: &mut Frame) -> Result<(), CodecError> {
        self.run(payload, out, DecodeMode::Normal)
    }

    /// Recovers the frame before `next_payload` from the FEC copy it carries.
    pub fn recover(&mut self, next_payload: &[u8], out: &mut Frame) -> Result<(), CodecError> {
        self.run(next_payload, out, DecodeMode::Fec)
    }

    /// Fills `out` with the decoder's guess for a lost frame (or comfort noise in silence).
    pub fn conceal(&mut self, out: &mut Frame) {
        if self.run(&[], out, DecodeMode::Normal).is_err() {
            out.fill(0.0);
        }
    }

    fn run(&mut self, payload: &[u8], out: &mut Frame, mode: DecodeMode) -> Result<(), CodecError> {
        // The port is fuzzed upstream and here (`cargo xtask fuzz`); should it still panic on
        // some packet, that packet is refused instead of taking the audio thread down.
        let decoded =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.decoder.decode_float(payload, out, mode)));
        match decoded {
            Ok(Ok(samples)) if samples == FRAME_SAMPLES => Ok(()),
            Ok(Ok(samples)) => {
                out.fill(0.0);
                Err(CodecError::Opus(format!("a packet of {samples} samples, not {FRAME_SAMPLES}")))
            }
            Ok(Err(error)) => {
                out.fill(0.0);
                Err(opus(error))
            }
            Err(_) => {
                // The decoder's state may be broken: start a fresh one.
                out.fill(0.0);
                if let Ok(fresh) = Decoder::new(SAMPLE_RATE, Channels::Mono) {
                    self.decoder = fresh;
                }
                Err(CodecError::Opus("the decoder panicked on a packet".into()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(frame: usize) -> Frame {
        std::array::from_fn(|index| {
            let t = (frame * FRAME_SAMPLES + index) as f32 / SAMPLE_RATE as f32;
            0.3 * (t * 440.0 * std::f32::consts::TAU).sin() + 0.2 * (t * 1250.0 * std::f32::consts::TAU).sin()
        })
    }

    #[test]
    fn a_tone_survives_the_codec_and_silence_costs_almost_nothing() {
        let mut encoder = VoiceEncoder::new().expect("encoder");
        let mut decoder = VoiceDecoder::new().expect("decoder");
        let mut bytes = 0;
        let mut energy = 0.0;
        for frame in 0..50 {
            let packet = encoder.encode(&tone(frame)).expect("encodes").expect("a tone is sent");
            bytes += packet.len();
            let mut out = [0.0; FRAME_SAMPLES];
            decoder.decode(&packet, &mut out).expect("decodes");
            if frame > 5 {
                energy += out.iter().map(|sample| sample * sample).sum::<f32>();
            }
        }
        let kbit = bytes as f64 * 8.0 / 1000.0;
        assert!(kbit <= 32.0 * 1.1, "{kbit} kbit in one second");
        assert!(energy / (44.0 * FRAME_SAMPLES as f32) > 0.02, "the tone came out too quiet: {energy}");
        // Silence: once DTX has settled (a few hundred ms), next to nothing is sent.
        for _ in 0..50 {
            encoder.encode(&[0.0; FRAME_SAMPLES]).expect("encodes");
        }
        let sent = (0..50).filter_map(|_| encoder.encode(&[0.0; FRAME_SAMPLES]).expect("encodes")).count();
        assert!(sent <= 5, "{sent} packets sent in a second of silence");
    }

    #[test]
    fn garbage_is_an_error_and_the_decoder_goes_on() {
        let mut decoder = VoiceDecoder::new().expect("decoder");
        let mut out = [1.0; FRAME_SAMPLES];
        // A packet claiming 120 ms (code 0, config 31 is CELT 20 ms; 0xff asks for many frames).
        for garbage in [vec![0xff; 300], vec![0x00], vec![0xfc, 0xff, 0xff, 0xff]] {
            let _ = decoder.decode(&garbage, &mut out);
            assert!(out.iter().all(|sample| sample.is_finite()));
        }
        let mut encoder = VoiceEncoder::new().expect("encoder");
        let packet = encoder.encode(&tone(0)).expect("encodes").expect("sent");
        decoder.decode(&packet, &mut out).expect("a good packet after garbage decodes");
        decoder.conceal(&mut out);
        assert!(out.iter().all(|sample| sample.is_finite()));
    }
}
