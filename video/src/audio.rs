//! A film's sound: AAC (Symphonia's decoder, AAC-LC) or Opus (`ropus`, mono or stereo) decoded
//! into interleaved `f32` samples at the track's own rate, each block with the time it starts.
//! A sound track Sanctuary cannot decode leaves the film silent, said in its info; a block that
//! does not decode is skipped, as a player would; a panic in a decoder silences the film.

use symphonia::core::codecs::audio::well_known::{CODEC_ID_AAC, CODEC_ID_OPUS};
use symphonia::core::codecs::audio::{AudioCodecParameters, AudioDecoder, AudioDecoderOptions};
use symphonia::core::packet::Packet;

/// A block of a film's sound.
#[derive(Debug, Clone, PartialEq)]
pub struct Sound {
    /// Samples a second, per channel.
    pub rate: u32,
    /// Channels, interleaved in `samples`.
    pub channels: u16,
    /// The samples, channel after channel for each instant, between −1 and 1.
    pub samples: Vec<f32>,
    /// Seconds from the start of the film at which the first sample plays.
    pub time: f64,
}

/// How a film's sound is coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    /// AAC (Low Complexity).
    Aac,
    /// Opus.
    Opus,
}

/// The most samples one Opus packet gives per channel (120 ms at 48 kHz).
const OPUS_MAX_FRAME: usize = 5760;

/// A sound track's decoder.
pub(crate) enum Decoder {
    Aac(Box<dyn AudioDecoder>),
    Opus { decoder: Box<ropus::Decoder>, channels: u16, skip: usize },
}

impl Decoder {
    /// The decoder for a track, or why its sound cannot be played.
    pub(crate) fn for_track(params: &AudioCodecParameters) -> Result<(AudioCodec, Self), String> {
        if params.codec == CODEC_ID_AAC {
            let decoder = symphonia::default::get_codecs()
                .make_audio_decoder(params, &AudioDecoderOptions::default())
                .map_err(|error| format!("its AAC sound cannot be decoded ({error})"))?;
            return Ok((AudioCodec::Aac, Decoder::Aac(decoder)));
        }
        if params.codec == CODEC_ID_OPUS {
            // The OpusHead record: its channel count and the samples to skip at the start.
            let head = params.extra_data.as_deref().filter(|head| head.starts_with(b"OpusHead"));
            let channels = head
                .and_then(|head| head.get(9).copied())
                .map(u16::from)
                .or_else(|| params.channels.as_ref().map(|channels| channels.count() as u16))
                .unwrap_or(2);
            let skip = head
                .and_then(|head| head.get(10..12))
                .map_or(0, |pair| usize::from(u16::from_le_bytes([pair[0], pair[1]])));
            let layout = match channels {
                1 => ropus::Channels::Mono,
                2 => ropus::Channels::Stereo,
                other => return Err(format!("its Opus sound has {other} channels; only mono and stereo are decoded")),
            };
            let decoder = ropus::Decoder::new(48_000, layout)
                .map_err(|error| format!("its Opus sound cannot be decoded ({error:?})"))?;
            return Ok((AudioCodec::Opus, Decoder::Opus { decoder: Box::new(decoder), channels, skip }));
        }
        Err(format!("its sound is {}, which is not decoded (AAC and Opus are)", params.codec))
    }

    /// One packet's samples: rate, channels, samples; `None` when it does not decode.
    pub(crate) fn decode(&mut self, packet: &Packet) -> Option<(u32, u16, Vec<f32>)> {
        match self {
            Decoder::Aac(decoder) => {
                let decoded = decoder.decode(packet).ok()?;
                let rate = decoded.spec().rate();
                let channels = u16::try_from(decoded.spec().channels().count()).ok()?;
                let mut samples = Vec::new();
                decoded.copy_to_vec_interleaved::<f32>(&mut samples);
                Some((rate, channels, samples))
            }
            Decoder::Opus { decoder, channels, skip } => {
                let width = usize::from(*channels);
                let mut out = vec![0.0f32; OPUS_MAX_FRAME * width];
                let frames = decoder.decode_float(&packet.data, &mut out, ropus::DecodeMode::Normal).ok()?;
                out.truncate(frames * width);
                let skipped = (*skip).min(frames);
                *skip -= skipped;
                out.drain(..skipped * width);
                Some((48_000, *channels, out))
            }
        }
    }

    /// Starts again, as after a seek.
    pub(crate) fn reset(&mut self) {
        match self {
            Decoder::Aac(decoder) => decoder.reset(),
            Decoder::Opus { decoder, channels, .. } => {
                let layout = if *channels == 1 { ropus::Channels::Mono } else { ropus::Channels::Stereo };
                if let Ok(fresh) = ropus::Decoder::new(48_000, layout) {
                    **decoder = fresh;
                }
            }
        }
    }
}
