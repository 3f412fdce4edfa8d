//! A film read from its container, picture by picture: the first video track Sanctuary decodes
//! is found, its samples demuxed in order and decoded, and the pictures handed out in display
//! order with their times. A panic inside the demuxer or decoder (a file nobody foresaw) is
//! caught and the film refused from then on: the rest of the program goes on.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};

use symphonia::core::codecs::CodecParameters;
use symphonia::core::codecs::video::well_known::extra_data::VIDEO_EXTRA_DATA_ID_AVC_DECODER_CONFIG;
use symphonia::core::codecs::video::well_known::{CODEC_ID_AV1, CODEC_ID_H264};
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::{MediaSource, MediaSourceStream, ReadOnlySource};
use symphonia::core::meta::MetadataOptions;

use crate::h264::{H264, check_size, to_rgba};
use crate::{FilmError, Limits, Picture};

/// How a film's pictures are coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    /// H.264 / AVC.
    H264,
}

impl std::fmt::Debug for Film {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Film")
            .field("info", &self.info)
            .field("track", &self.track)
            .field("ended", &self.ended)
            .finish()
    }
}

/// What a film's container says of it.
#[derive(Debug, Clone, PartialEq)]
pub struct FilmInfo {
    /// The video's coding.
    pub codec: VideoCodec,
    /// Picture width in pixels, as the container says (the pictures themselves are checked too).
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
    /// The film's length in seconds, when the container says.
    pub duration: Option<f64>,
}

/// A film being decoded.
pub struct Film {
    reader: Box<dyn FormatReader>,
    track: u32,
    /// Seconds per timestamp unit.
    seconds_per_tick: f64,
    decoder: H264,
    info: FilmInfo,
    limits: Limits,
    ready: VecDeque<Picture>,
    ended: bool,
    /// Why the film can no longer be read, once it cannot.
    failed: Option<FilmError>,
}

impl Film {
    /// The film in `bytes` (a whole file, or as much of it as has arrived).
    ///
    /// # Errors
    ///
    /// A [`FilmError`] saying why it cannot be played: not a container Sanctuary reads, no video
    /// it decodes, larger than `limits`, or damaged.
    pub fn from_bytes(bytes: Vec<u8>, limits: Limits) -> Result<Self, FilmError> {
        Self::open(Box::new(std::io::Cursor::new(bytes)), limits)
    }

    /// The film `reader` gives, read once from its start as it arrives (not seekable, its length
    /// unknown): Matroska and WebM as they are, MP4 when its index comes first ("faststart").
    ///
    /// # Errors
    ///
    /// As [`Film::from_bytes`].
    pub fn from_stream(reader: impl std::io::Read + Send + Sync + 'static, limits: Limits) -> Result<Self, FilmError> {
        Self::open(Box::new(ReadOnlySource::new(reader)), limits)
    }

    /// The film `source` reads.
    ///
    /// # Errors
    ///
    /// As [`Film::from_bytes`].
    pub fn open(source: Box<dyn MediaSource>, limits: Limits) -> Result<Self, FilmError> {
        let stream = MediaSourceStream::new(source, Default::default());
        let probed = guarded(|| {
            symphonia::default::get_probe().probe(
                &Hint::new(),
                stream,
                FormatOptions::default(),
                MetadataOptions::default(),
            )
        })?;
        let reader = probed.map_err(|error| FilmError::NotAFilm(error.to_string()))?;
        let mut found = None;
        let mut seen = Vec::new();
        for track in reader.tracks() {
            let Some(CodecParameters::Video(video)) = &track.codec_params else { continue };
            if video.codec == CODEC_ID_H264 {
                found = Some((track, video));
                break;
            }
            seen.push(if video.codec == CODEC_ID_AV1 { "AV1".to_owned() } else { format!("{}", video.codec) });
        }
        let Some((track, video)) = found else {
            return Err(FilmError::Unsupported(if seen.is_empty() {
                "it has no video".into()
            } else {
                format!("its video is {}, and only H.264 is decoded so far", seen.join(", "))
            }));
        };
        let width = u32::from(video.width.unwrap_or(0));
        let height = u32::from(video.height.unwrap_or(0));
        check_size(width, height, &limits)?;
        let config = video
            .extra_data
            .iter()
            .find(|extra| extra.id == VIDEO_EXTRA_DATA_ID_AVC_DECODER_CONFIG)
            .ok_or_else(|| FilmError::Unsupported("its H.264 track has no decoder configuration (avcC)".into()))?;
        let decoder = guarded(|| H264::new(&config.data, limits))??;
        let seconds_per_tick =
            track.time_base.map_or(0.0, |base| f64::from(base.numer.get()) / f64::from(base.denom.get()));
        let duration = track.duration.map(|ticks| ticks.get() as f64 * seconds_per_tick);
        let info = FilmInfo { codec: VideoCodec::H264, width, height, duration };
        let track = track.id;
        Ok(Self {
            reader,
            track,
            seconds_per_tick,
            decoder,
            info,
            limits,
            ready: VecDeque::new(),
            ended: false,
            failed: None,
        })
    }

    /// What the container says of the film.
    pub fn info(&self) -> &FilmInfo {
        &self.info
    }

    /// The next picture in display order; `None` at the end of the film.
    ///
    /// # Errors
    ///
    /// A [`FilmError`] when the film is damaged where it was read (and from then on).
    pub fn next_picture(&mut self) -> Result<Option<Picture>, FilmError> {
        if let Some(failed) = &self.failed {
            return Err(failed.clone());
        }
        match self.fill() {
            Ok(()) => Ok(self.ready.pop_front()),
            Err(error) => {
                self.failed = Some(error.clone());
                Err(error)
            }
        }
    }

    /// Reads and decodes samples until a picture is ready or the film ends.
    fn fill(&mut self) -> Result<(), FilmError> {
        while self.ready.is_empty() && !self.ended {
            let packet = guarded(|| self.reader.next_packet())?;
            let frames = match packet {
                Ok(Some(packet)) if packet.track_id == self.track => {
                    let pts = packet.pts.get();
                    guarded(|| self.decoder.decode(&packet.data, pts))??
                }
                Ok(Some(_)) => continue,
                Ok(None) => {
                    self.ended = true;
                    guarded(|| self.decoder.flush())?
                }
                // A file cut short ends where it is cut, as a player would.
                Err(symphonia::core::errors::Error::IoError(error))
                    if error.kind() == std::io::ErrorKind::UnexpectedEof =>
                {
                    self.ended = true;
                    guarded(|| self.decoder.flush())?
                }
                Err(error) => return Err(FilmError::Broken(error.to_string())),
            };
            for (frame, pts) in frames {
                let rgba = to_rgba(&frame, &self.limits)?;
                let time = pts as f64 * self.seconds_per_tick;
                self.ready.push_back(Picture { width: frame.width, height: frame.height, rgba, time });
            }
        }
        Ok(())
    }
}

/// Runs `work`, a call into a demuxer or decoder; a panic in it becomes a refusal.
fn guarded<T>(work: impl FnOnce() -> T) -> Result<T, FilmError> {
    catch_unwind(AssertUnwindSafe(work))
        .map_err(|_| FilmError::Broken("the decoder failed on it (a fault in the file it did not expect)".into()))
}
