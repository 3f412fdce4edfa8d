//! A film read from its container, picture by picture: the first video track Sanctuary decodes
//! is found, its samples demuxed in order and decoded, and the pictures handed out in display
//! order with their times. A panic inside the demuxer or decoder (a file nobody foresaw) is
//! caught and the film refused from then on: the rest of the program goes on.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use symphonia::core::codecs::CodecParameters;
use symphonia::core::codecs::video::well_known::extra_data::VIDEO_EXTRA_DATA_ID_AVC_DECODER_CONFIG;
use symphonia::core::codecs::video::well_known::{CODEC_ID_AV1, CODEC_ID_H264};
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, SeekMode, SeekTo};
use symphonia::core::io::{MediaSource, MediaSourceStream, ReadOnlySource};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::packet::Packet;
use symphonia::core::units::Time;

use rust_h264::decoder::Frame;

use crate::audio::{AudioCodec, Decoder, Sound};
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
    /// Its sound's coding; `None` for a silent film, or one whose sound is not decoded.
    pub audio: Option<AudioCodec>,
    /// Why the film plays without sound although it has some, to tell the person.
    pub silent_because: Option<String>,
}

/// A film's sound track being decoded.
struct SoundTrack {
    track: u32,
    decoder: Decoder,
    seconds_per_tick: f64,
}

/// A film being decoded.
pub struct Film {
    reader: Box<dyn FormatReader>,
    /// Where the film can be read again from its start, when its reader can no longer seek
    /// (Symphonia's MP4 reader cannot once it has read to the end).
    again: Option<Again>,
    track: u32,
    /// The track's `avcC` record, to start the decoder again after a seek.
    config: Vec<u8>,
    /// A sample read while seeking, to decode first.
    pending: Option<Packet>,
    /// After a seek, the time sought: pictures before the one due then are decoded, not handed out.
    sought: Option<f64>,
    /// After a seek, the latest picture decoded that is due by the time sought.
    held: Option<(Frame, f64)>,
    /// Seconds per timestamp unit.
    seconds_per_tick: f64,
    decoder: H264,
    info: FilmInfo,
    limits: Limits,
    ready: VecDeque<Picture>,
    ended: bool,
    /// Why the film can no longer be read, once it cannot.
    failed: Option<FilmError>,
    sound: Option<SoundTrack>,
    /// Sound decoded and not yet taken, oldest first.
    sounds: VecDeque<Sound>,
}

impl Film {
    /// The film in `bytes` (a whole file, or as much of it as has arrived).
    ///
    /// # Errors
    ///
    /// A [`FilmError`] saying why it cannot be played: not a container Sanctuary reads, no video
    /// it decodes, larger than `limits`, or damaged.
    pub fn from_bytes(bytes: Vec<u8>, limits: Limits) -> Result<Self, FilmError> {
        let again = Again::Bytes(Arc::from(bytes));
        let mut film = Self::open(again.source()?, limits)?;
        film.again = Some(again);
        Ok(film)
    }

    /// The film in the file at `path`, read from the disk as it plays (never held whole).
    ///
    /// # Errors
    ///
    /// As [`Film::from_bytes`], and [`FilmError::Unreadable`] when the file cannot be opened.
    pub fn from_file(path: &Path, limits: Limits) -> Result<Self, FilmError> {
        let again = Again::File(path.to_owned());
        let mut film = Self::open(again.source()?, limits)?;
        film.again = Some(again);
        Ok(film)
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

    /// The film `open` reads, a source that seeks (a film streaming in, whose reader waits for
    /// the parts it needs) of `len` bytes; `open` is called again when the film must be read
    /// from its start anew.
    ///
    /// # Errors
    ///
    /// As [`Film::from_bytes`].
    pub fn from_seekable<R>(
        open: impl Fn() -> R + Send + Sync + 'static,
        len: u64,
        limits: Limits,
    ) -> Result<Self, FilmError>
    where
        R: std::io::Read + std::io::Seek + Send + Sync + 'static,
    {
        let again = Again::Opener(Arc::new(move || Box::new(Seekable { reader: open(), len }) as Box<dyn MediaSource>));
        let mut film = Self::open(again.source()?, limits)?;
        film.again = Some(again);
        Ok(film)
    }

    /// The film `source` reads.
    ///
    /// # Errors
    ///
    /// As [`Film::from_bytes`].
    pub fn open(source: Box<dyn MediaSource>, limits: Limits) -> Result<Self, FilmError> {
        let reader = probe(source)?;
        let mut found = None;
        let mut seen = Vec::new();
        for track in reader.tracks() {
            let Some(CodecParameters::Video(video)) = &track.codec_params else { continue };
            if video.codec == CODEC_ID_H264 {
                found = Some((track, video));
                break;
            }
            if seen.len() < 4 {
                seen.push(if video.codec == CODEC_ID_AV1 { "AV1".to_owned() } else { format!("{}", video.codec) });
            }
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
        let config = config.data.to_vec();
        let decoder = guarded(|| H264::new(&config, limits))??;
        let seconds_per_tick =
            track.time_base.map_or(0.0, |base| f64::from(base.numer.get()) / f64::from(base.denom.get()));
        let duration = track.duration.map(|ticks| ticks.get() as f64 * seconds_per_tick);
        // The first sound track, decoded if it can be.
        let mut audio = None;
        let mut silent_because = None;
        let mut sound = None;
        let first_audio = reader.tracks().iter().find_map(|track| match &track.codec_params {
            Some(CodecParameters::Audio(params)) => Some((track, params)),
            _ => None,
        });
        if let Some((audio_track, params)) = first_audio {
            match guarded(|| Decoder::for_track(params))? {
                Ok((codec, decoder)) => {
                    audio = Some(codec);
                    let seconds_per_tick = audio_track
                        .time_base
                        .map_or(0.0, |base| f64::from(base.numer.get()) / f64::from(base.denom.get()));
                    sound = Some(SoundTrack { track: audio_track.id, decoder, seconds_per_tick });
                }
                Err(reason) => silent_because = Some(reason),
            }
        }
        let info = FilmInfo { codec: VideoCodec::H264, width, height, duration, audio, silent_because };
        let track = track.id;
        Ok(Self {
            reader,
            again: None,
            track,
            config,
            pending: None,
            sought: None,
            held: None,
            seconds_per_tick,
            decoder,
            info,
            limits,
            ready: VecDeque::new(),
            ended: false,
            failed: None,
            sound,
            sounds: VecDeque::new(),
        })
    }

    /// The oldest block of sound decoded and not yet taken. Sound is decoded as the pictures
    /// are (it is interleaved with them in the file), at most [`crate::MAX_SOUND_SECONDS`] ahead.
    pub fn take_sound(&mut self) -> Option<Sound> {
        self.sounds.pop_front()
    }

    /// What the container says of the film.
    pub fn info(&self) -> &FilmInfo {
        &self.info
    }

    /// The limits it is played within.
    pub fn limits(&self) -> Limits {
        self.limits
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

    /// Goes to `to` seconds from the start: the next picture is the one shown then (or the
    /// film's end). Decoding starts again from the key picture at or before it, found by stepping
    /// back from `to` until a seek lands on one (MP4 seeks to the very sample asked for,
    /// Matroska to the cue point before it).
    ///
    /// # Errors
    ///
    /// A [`FilmError`] when the film cannot be read there (and from then on).
    pub fn seek(&mut self, to: f64) -> Result<(), FilmError> {
        if let Some(failed) = &self.failed {
            return Err(failed.clone());
        }
        let result = self.seek_inner(if to.is_finite() { to.max(0.0) } else { 0.0 });
        if let Err(error) = &result {
            self.failed = Some(error.clone());
        }
        result
    }

    fn seek_inner(&mut self, to: f64) -> Result<(), FilmError> {
        self.decoder = guarded(|| H264::new(&self.config, self.limits))??;
        // A reader that has read to the end cannot always seek back (Symphonia's MP4 reader
        // loses its place): a whole file is read again from its start instead.
        if self.ended
            && let Some(again) = &self.again
        {
            self.reader = probe(again.source()?)?;
        }
        self.ready.clear();
        self.sounds.clear();
        if let Some(sound) = &mut self.sound {
            sound.decoder.reset();
        }
        self.pending = None;
        self.held = None;
        self.ended = false;
        self.sought = Some(to);
        for back in [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, f64::INFINITY] {
            let at = (to - back).max(0.0);
            let time = Time::try_from_secs_f64(at).unwrap_or(Time::ZERO);
            let track_id = Some(self.track);
            let mut sought = guarded(|| self.reader.seek(SeekMode::Coarse, SeekTo::Time { time, track_id }))?;
            if let (Err(error), Some(again)) = (&sought, &self.again)
                && !matches!(error, symphonia::core::errors::Error::SeekError(_))
            {
                self.reader = probe(again.source()?)?;
                sought = guarded(|| self.reader.seek(SeekMode::Coarse, SeekTo::Time { time, track_id }))?;
            }
            match sought {
                Ok(_) => {}
                Err(symphonia::core::errors::Error::SeekError(_)) if at > 0.0 => continue,
                Err(error) => return Err(FilmError::Broken(format!("it cannot be read from {at:.1} s: {error}"))),
            }
            // The first sample of the film's track there: a key picture, or step further back.
            let first = loop {
                match guarded(|| self.reader.next_packet())? {
                    Ok(Some(packet)) if packet.track_id == self.track => break Some(packet),
                    Ok(Some(_)) => {}
                    Ok(None) => break None,
                    Err(error) => return Err(FilmError::Broken(error.to_string())),
                }
            };
            let Some(first) = first else {
                self.ended = true;
                return Ok(());
            };
            // Matroska lands on the cue point after the time asked for when it is near one.
            let landed = first.pts.get() as f64 * self.seconds_per_tick;
            if at == 0.0 || (landed <= to + 1e-6 && guarded(|| self.decoder.is_key(&first.data))?) {
                self.pending = Some(first);
                return Ok(());
            }
        }
        Ok(())
    }

    /// Reads and decodes samples until a picture is ready or the film ends.
    fn fill(&mut self) -> Result<(), FilmError> {
        while self.ready.is_empty() && !self.ended {
            let packet = match self.pending.take() {
                Some(pending) => Ok(Ok(Some(pending))),
                None => guarded(|| self.reader.next_packet()),
            }?;
            let frames = match packet {
                Ok(Some(packet)) if packet.track_id == self.track => {
                    let pts = packet.pts.get();
                    guarded(|| self.decoder.decode(&packet.data, pts))??
                }
                Ok(Some(packet)) => {
                    self.hear(&packet);
                    continue;
                }
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
                let time = pts as f64 * self.seconds_per_tick;
                if let Some(sought) = self.sought {
                    if time <= sought + 1e-6 {
                        self.held = Some((frame, time));
                        continue;
                    }
                    // The first picture after the time sought: the one before it was due then.
                    self.sought = None;
                    if let Some((held, held_time)) = self.held.take() {
                        self.hand_out(&held, held_time)?;
                    }
                }
                self.hand_out(&frame, time)?;
            }
            if self.ended
                && let Some((held, held_time)) = self.held.take()
            {
                // The film ends before the time sought: its last picture is due then.
                self.sought = None;
                self.hand_out(&held, held_time)?;
            }
        }
        Ok(())
    }

    /// Decodes `packet` if it is of the sound track. Sound before a time sought is not kept; a
    /// block that does not decode is skipped; a panic in the decoder silences the film.
    fn hear(&mut self, packet: &Packet) {
        let Some(sound) = &mut self.sound else { return };
        if packet.track_id != sound.track {
            return;
        }
        let time = packet.pts.get() as f64 * sound.seconds_per_tick;
        let decoded = match guarded(|| sound.decoder.decode(packet)) {
            Ok(decoded) => decoded,
            Err(_) => {
                self.sound = None;
                self.info.silent_because = Some("its sound decoder failed on it".into());
                return;
            }
        };
        let Some((rate, channels, samples)) = decoded else { return };
        if samples.is_empty() || rate == 0 || channels == 0 || self.sought.is_some_and(|sought| time < sought - 0.1) {
            return;
        }
        // Bounded: the oldest go when nobody takes them.
        crate::keep_sound(&mut self.sounds, Sound { rate, channels, samples, time });
    }

    fn hand_out(&mut self, frame: &Frame, time: f64) -> Result<(), FilmError> {
        let rgba = to_rgba(frame, &self.limits)?;
        self.ready.push_back(Picture { width: frame.width, height: frame.height, rgba, time });
        Ok(())
    }
}

/// Where a film can be read again from its start.
enum Again {
    /// The whole file, in memory.
    Bytes(Arc<[u8]>),
    /// A file on the disk.
    File(PathBuf),
    /// A source opened anew each time.
    Opener(Arc<dyn Fn() -> Box<dyn MediaSource> + Send + Sync>),
}

impl std::fmt::Debug for Again {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Again::Bytes(bytes) => write!(formatter, "Bytes({})", bytes.len()),
            Again::File(path) => write!(formatter, "File({})", path.display()),
            Again::Opener(_) => formatter.write_str("Opener"),
        }
    }
}

/// A reader that seeks, of a known length, as Symphonia wants it.
struct Seekable<R> {
    reader: R,
    len: u64,
}

impl<R: std::io::Read> std::io::Read for Seekable<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        self.reader.read(buffer)
    }
}

impl<R: std::io::Seek> std::io::Seek for Seekable<R> {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        self.reader.seek(to)
    }
}

impl<R: std::io::Read + std::io::Seek + Send + Sync> MediaSource for Seekable<R> {
    fn is_seekable(&self) -> bool {
        true
    }

    fn byte_len(&self) -> Option<u64> {
        Some(self.len)
    }
}

impl Again {
    fn source(&self) -> Result<Box<dyn MediaSource>, FilmError> {
        match self {
            Again::Bytes(bytes) => Ok(Box::new(std::io::Cursor::new(bytes.clone()))),
            Again::File(path) => match std::fs::File::open(path) {
                Ok(file) => Ok(Box::new(file)),
                Err(error) => Err(FilmError::Unreadable(format!("{}: {error}", path.display()))),
            },
            Again::Opener(open) => Ok(open()),
        }
    }
}

/// The container `source` holds, its reader ready at its start.
fn probe(source: Box<dyn MediaSource>) -> Result<Box<dyn FormatReader>, FilmError> {
    let stream = MediaSourceStream::new(source, Default::default());
    let probed = guarded(|| {
        symphonia::default::get_probe().probe(
            &Hint::new(),
            stream,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
    })?;
    probed.map_err(|error| FilmError::NotAFilm(error.to_string()))
}

/// Runs `work`, a call into a demuxer or decoder; a panic in it becomes a refusal.
fn guarded<T>(work: impl FnOnce() -> T) -> Result<T, FilmError> {
    catch_unwind(AssertUnwindSafe(work))
        .map_err(|_| FilmError::Broken("the decoder failed on it (a fault in the file it did not expect)".into()))
}
