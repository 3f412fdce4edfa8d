//! Spatial playback through kira: a listener at the head, one spatial track per speaker, each
//! playing a [`SpeakerSound`] that runs that speaker's jitter buffer and decoder on the audio
//! thread, so that playout follows the sound card's clock (not the frame rate). Datagrams reach
//! the sound through a lock-free ring; the sound's level is shared back for a speaking
//! indicator. kira attenuates by distance (full within [`NEAR`], silent at [`FAR`], falling
//! slowly near and fast far: about 20 dB from 3 m to 15 m, close to how a voice fades in air)
//! and pans by direction from the listener's ears, smoothly as positions
//! change.
//!
//! Bounds: at most [`MAX_VOICES`] speakers at once (more are not played); [`DATAGRAM_RING`]
//! datagrams waiting per speaker (a fuller ring drops new ones); a speaker whose sound went
//! quiet for [`crate::jitter::IDLE_AFTER`] is removed by [`VoiceMixer::forget_quiet`].

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use kira::backend::Backend;
use kira::sound::static_sound::StaticSoundHandle;
use kira::sound::{Sound, SoundData};
use kira::track::{MainTrackBuilder, SpatialTrackBuilder, SpatialTrackHandle};
use kira::{AudioManager, AudioManagerSettings, Decibels, Easing, Frame as KiraFrame, Tween};

use crate::clip::Clip;
use crate::film_sound::{FILM_FAR, FILM_NEAR, FilmFeed, FilmSoundData, film_sound};
use crate::processing::{EchoReference, echo_tap};
use crate::stream::{FrameKind, Speaker};
use crate::{FRAME_SAMPLES, Frame, SAMPLE_RATE};

/// The most speakers played at once.
pub const MAX_VOICES: usize = 32;
/// Datagrams waiting for one speaker's sound (a second of voice).
pub const DATAGRAM_RING: usize = 50;
/// Within this distance (m) a voice is at full volume.
pub const NEAR: f32 = 1.0;
/// At this distance (m) a voice is silent.
pub const FAR: f32 = 25.0;
/// How far the output's clock may fall behind the wall clock before it is caught up.
const STALL: Duration = Duration::from_millis(200);
/// How quickly a speaker's position follows their avatar.
const GLIDE: Duration = Duration::from_millis(50);
/// The loudest a person can be turned up: twice as loud as they speak (+6 dB).
pub const MAX_VOLUME: f32 = 2.0;
/// People whose volume is remembered.
pub const MAX_VOLUMES: usize = 4_096;
/// How long one region's ambience takes to fade into the next.
pub const AMBIENCE_FADE: Duration = Duration::from_millis(1_500);

/// A gain (0 silent, 1 unchanged) in kira's decibels.
fn decibels(gain: f32) -> Decibels {
    if gain <= 0.001 { Decibels::SILENCE } else { Decibels(20.0 * gain.log10()) }
}

/// Why playback could not start or a voice could not be played.
#[derive(Debug, thiserror::Error)]
pub enum PlaybackError {
    /// The audio output could not be opened.
    #[error("the audio output could not be opened: {0}")]
    Output(String),
    /// kira had no room for another listener, track or sound.
    #[error("no room for another voice: {0}")]
    Full(String),
    /// The voice decoder could not be made.
    #[error(transparent)]
    Codec(#[from] crate::codec::CodecError),
}

fn vector(position: [f32; 3]) -> mint::Vector3<f32> {
    mint::Vector3::from(position)
}

/// A datagram on its way to a speaker's sound, with when it arrived.
type Arrival = (Vec<u8>, Instant);

/// One speaker's voice as a kira sound: datagrams in through a ring, their jitter buffer and
/// decoder run as the sound card asks for samples, resampled from 48 kHz to the card's rate.
pub struct SpeakerSound {
    speaker: Speaker,
    datagrams: rtrb::Consumer<Arrival>,
    /// When the sound's clock started: playout time is this plus the samples rendered.
    origin: Instant,
    rendered: u64,
    /// Time added to the output's clock to catch up with the wall clock after stalls.
    caught_up: Duration,
    frame: Frame,
    /// The next sample of `frame` to read.
    read: usize,
    /// Between `previous` (0.0) and `current` (1.0): where the output sample falls.
    phase: f64,
    previous: f32,
    current: f32,
    level: Arc<AtomicU32>,
    /// Set when the speaker is forgotten: the sound finishes.
    stopped: Arc<AtomicBool>,
}

impl std::fmt::Debug for SpeakerSound {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("SpeakerSound").field("rendered", &self.rendered).finish_non_exhaustive()
    }
}

impl SpeakerSound {
    /// The next 48 kHz sample: from the current frame, decoding the next one when it is used
    /// up.
    fn next_sample(&mut self) -> f32 {
        if self.read >= FRAME_SAMPLES {
            while let Ok((bytes, arrival)) = self.datagrams.pop() {
                let _ = self.speaker.push_datagram(&bytes, arrival.saturating_duration_since(self.origin));
            }
            // Playout follows the output's clock (the samples it took), caught up with the
            // wall clock (on which arrivals are stamped) whenever the output fell behind it, as
            // after a stall; an output that runs ahead (rendering faster than real time in a
            // test) keeps its own clock.
            let card = Duration::from_secs_f64(self.rendered as f64 / f64::from(SAMPLE_RATE)) + self.caught_up;
            let wall = self.origin.elapsed();
            if wall > card + STALL {
                self.caught_up += wall - card;
            }
            let now = Duration::from_secs_f64(self.rendered as f64 / f64::from(SAMPLE_RATE)) + self.caught_up;
            let kind = self.speaker.next_frame(now, &mut self.frame);
            let level = match kind {
                FrameKind::Silent => 0.0,
                _ => (self.frame.iter().map(|sample| sample * sample).sum::<f32>() / FRAME_SAMPLES as f32).sqrt(),
            };
            // The loudest frame since the level was last taken (levels are never negative, so
            // their bits order as they do).
            self.level.fetch_max(level.to_bits(), Ordering::Relaxed);
            self.read = 0;
        }
        let sample = self.frame[self.read];
        self.read += 1;
        self.rendered += 1;
        sample
    }
}

impl Sound for SpeakerSound {
    fn process(&mut self, out: &mut [KiraFrame], dt: f64, _info: &kira::info::Info) {
        // Input samples per output sample (1.0 when the card runs at 48 kHz).
        let step = f64::from(SAMPLE_RATE) * dt;
        for frame in out {
            self.phase += step;
            while self.phase >= 1.0 {
                self.previous = self.current;
                self.current = self.next_sample();
                self.phase -= 1.0;
            }
            let sample = self.previous + (self.current - self.previous) * self.phase as f32;
            *frame = KiraFrame::from_mono(sample);
        }
    }

    fn finished(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }
}

/// Hands a [`SpeakerSound`] to kira.
struct SpeakerSoundData(SpeakerSound);

impl SoundData for SpeakerSoundData {
    type Error = std::convert::Infallible;
    type Handle = ();

    fn into_sound(self) -> Result<(Box<dyn Sound>, Self::Handle), Self::Error> {
        Ok((Box::new(self.0), ()))
    }
}

/// A speaker being played.
struct Voice {
    track: SpatialTrackHandle,
    datagrams: rtrb::Producer<Arrival>,
    level: Arc<AtomicU32>,
    stopped: Arc<AtomicBool>,
    last_heard: Instant,
}

/// Everyone's voices, placed around the listener.
pub struct VoiceMixer<B: Backend> {
    manager: AudioManager<B>,
    listener: kira::listener::ListenerHandle,
    voices: HashMap<[u8; 32], Voice>,
    /// Each person's volume as the listener set it (1.0 when not set).
    volumes: HashMap<[u8; 32], f32>,
    /// What the speakers play, for the microphone's echo canceller, until taken.
    echo: Option<EchoReference>,
    /// The region's ambience playing now.
    ambience: Option<StaticSoundHandle>,
    /// The film's sound, from the screen.
    film: Option<SpatialTrackHandle>,
    dropped: u64,
}

impl<B: Backend> std::fmt::Debug for VoiceMixer<B> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("VoiceMixer").field("voices", &self.voices.len()).finish_non_exhaustive()
    }
}

impl<B: Backend> VoiceMixer<B>
where
    B::Error: std::fmt::Display,
{
    /// Opens the output `settings` describe, with the listener at the origin facing −Z.
    pub fn new(settings: B::Settings) -> Result<Self, PlaybackError> {
        let (tap, echo) = echo_tap();
        let settings = AudioManagerSettings::<B> {
            capacities: Default::default(),
            main_track_builder: MainTrackBuilder::new().with_effect(tap),
            internal_buffer_size: 128,
            backend_settings: settings,
        };
        let mut manager = AudioManager::<B>::new(settings).map_err(|error| PlaybackError::Output(error.to_string()))?;
        let listener = manager
            .add_listener(vector([0.0; 3]), mint::Quaternion::from([0.0, 0.0, 0.0, 1.0]))
            .map_err(|error| PlaybackError::Full(error.to_string()))?;
        Ok(Self {
            manager,
            listener,
            voices: HashMap::new(),
            volumes: HashMap::new(),
            echo: Some(echo),
            ambience: None,
            film: None,
            dropped: 0,
        })
    }
}

impl<B: Backend> VoiceMixer<B> {
    /// Moves the listener (the head: the camera, or the headset in VR). `orientation` is a
    /// quaternion `[x, y, z, w]`; with none, the listener faces −Z with +X to the right.
    pub fn set_listener(&mut self, position: [f32; 3], orientation: [f32; 4]) {
        let tween = Tween { duration: GLIDE, ..Default::default() };
        self.listener.set_position(vector(position), tween);
        self.listener.set_orientation(mint::Quaternion::from(orientation), tween);
    }

    /// Takes a datagram from `speaker`, standing (their head) at `position`. A speaker not
    /// heard before gets a track, while there is room for one.
    pub fn heard(
        &mut self,
        speaker: [u8; 32],
        position: [f32; 3],
        datagram: &[u8],
        arrival: Instant,
    ) -> Result<(), PlaybackError> {
        if !self.voices.contains_key(&speaker) {
            if self.voices.len() >= MAX_VOICES {
                self.dropped += 1;
                return Err(PlaybackError::Full(format!("{MAX_VOICES} voices are playing")));
            }
            let mut voice = self.add_voice(position)?;
            if let Some(volume) = self.volumes.get(&speaker) {
                voice.track.set_volume(decibels(*volume), Tween::default());
            }
            self.voices.insert(speaker, voice);
        }
        let Some(voice) = self.voices.get_mut(&speaker) else { return Ok(()) };
        voice.last_heard = Instant::now();
        if voice.datagrams.push((datagram.to_vec(), arrival)).is_err() {
            self.dropped += 1;
        }
        Ok(())
    }

    /// Plays a film's sound from `position` (the screen), in place of any film before; the feed
    /// returned fills it (see [`crate::film_sound`]).
    pub fn play_film(&mut self, position: [f32; 3]) -> Result<FilmFeed, PlaybackError> {
        self.film = None;
        let builder = SpatialTrackBuilder::new()
            .distances((FILM_NEAR, FILM_FAR))
            .attenuation_function(Some(Easing::Linear))
            .spatialization_strength(0.5);
        let mut track = self
            .manager
            .add_spatial_sub_track(&self.listener, vector(position), builder)
            .map_err(|error| PlaybackError::Full(error.to_string()))?;
        let (sound, feed) = film_sound();
        track.play(FilmSoundData(sound)).map_err(|error| PlaybackError::Full(error.to_string()))?;
        self.film = Some(track);
        Ok(feed)
    }

    fn add_voice(&mut self, position: [f32; 3]) -> Result<Voice, PlaybackError> {
        let builder = SpatialTrackBuilder::new()
            .distances((NEAR, FAR))
            .attenuation_function(Some(Easing::OutPowi(2)))
            .spatialization_strength(0.75);
        let mut track = self
            .manager
            .add_spatial_sub_track(&self.listener, vector(position), builder)
            .map_err(|error| PlaybackError::Full(error.to_string()))?;
        let (producer, consumer) = rtrb::RingBuffer::new(DATAGRAM_RING);
        let level = Arc::new(AtomicU32::new(0));
        let stopped = Arc::new(AtomicBool::new(false));
        let sound = SpeakerSound {
            speaker: Speaker::new()?,
            datagrams: consumer,
            origin: Instant::now(),
            rendered: 0,
            caught_up: Duration::ZERO,
            frame: [0.0; FRAME_SAMPLES],
            read: FRAME_SAMPLES,
            phase: 0.0,
            previous: 0.0,
            current: 0.0,
            level: level.clone(),
            stopped: stopped.clone(),
        };
        track.play(SpeakerSoundData(sound)).map_err(|error| PlaybackError::Full(error.to_string()))?;
        Ok(Voice { track, datagrams: producer, level, stopped, last_heard: Instant::now() })
    }

    /// Moves a speaker's voice to where their head is now.
    pub fn place(&mut self, speaker: &[u8; 32], position: [f32; 3]) {
        if let Some(voice) = self.voices.get_mut(speaker) {
            voice.track.set_position(vector(position), Tween { duration: GLIDE, ..Default::default() });
        }
    }

    /// Sets how loud `speaker` is played, from 0 (silent) through 1 (as they speak) to
    /// [`MAX_VOLUME`]; kept for when they speak next. At most [`MAX_VOLUMES`] people are
    /// remembered (the oldest setting for someone not playing makes room).
    pub fn set_volume(&mut self, speaker: [u8; 32], volume: f32) {
        let volume = if volume.is_finite() { volume.clamp(0.0, MAX_VOLUME) } else { 1.0 };
        if let Some(voice) = self.voices.get_mut(&speaker) {
            voice.track.set_volume(decibels(volume), Tween { duration: GLIDE, ..Default::default() });
        }
        if self.volumes.len() >= MAX_VOLUMES && !self.volumes.contains_key(&speaker) {
            let spare = self.volumes.keys().find(|key| !self.voices.contains_key(*key)).copied();
            match spare {
                Some(spare) => {
                    self.volumes.remove(&spare);
                }
                None => return,
            }
        }
        self.volumes.insert(speaker, volume);
    }

    /// How loud `speaker` is set to be played (1.0 unless changed).
    pub fn volume(&self, speaker: &[u8; 32]) -> f32 {
        self.volumes.get(speaker).copied().unwrap_or(1.0)
    }

    /// Plays `clip` once, at `volume` (1.0 as made), not placed anywhere (the person's own
    /// doings: a portal taken, a build placed, a payment sent).
    pub fn play_clip(&mut self, clip: &Clip, volume: f32) -> Result<(), PlaybackError> {
        let data = clip.data().volume(decibels(volume));
        self.manager.play(data).map(|_| ()).map_err(|error| PlaybackError::Full(error.to_string()))
    }

    /// Fades out the ambience playing and fades in `clip` (looped, see [`Clip::looped`]) at
    /// `volume`; `None` leaves silence.
    pub fn set_ambience(&mut self, clip: Option<&Clip>, volume: f32) {
        let fade = Tween { duration: AMBIENCE_FADE, ..Default::default() };
        if let Some(mut playing) = self.ambience.take() {
            playing.stop(fade);
        }
        if let Some(clip) = clip {
            let data = clip.data().volume(decibels(volume)).fade_in_tween(fade);
            self.ambience = self.manager.play(data).ok();
        }
    }

    /// What the speakers play, for the microphone's [`crate::processing::VoiceProcessor`]
    /// (once: the first caller takes it).
    pub fn take_echo_reference(&mut self) -> Option<EchoReference> {
        self.echo.take()
    }

    /// How loud `speaker` was since this was last asked: the RMS of their loudest 20 ms (0
    /// when quiet or unknown). Taking the loudest, not the last, means a program drawing one
    /// frame a second still sees everyone who spoke in it.
    pub fn take_level(&self, speaker: &[u8; 32]) -> f32 {
        self.voices.get(speaker).map_or(0.0, |voice| f32::from_bits(voice.level.swap(0, Ordering::Relaxed)))
    }

    /// The speakers being played.
    pub fn speakers(&self) -> impl Iterator<Item = &[u8; 32]> {
        self.voices.keys()
    }

    /// Removes the voices of speakers not heard for a while (their tracks and sounds end).
    pub fn forget_quiet(&mut self) {
        self.voices.retain(|_, voice| {
            let keep = voice.last_heard.elapsed() < crate::jitter::IDLE_AFTER * 3;
            if !keep {
                voice.stopped.store(true, Ordering::Relaxed);
            }
            keep
        });
    }

    /// Datagrams not played because too many voices were playing or a ring was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The output itself (a [`crate::output::CaptureBackend`] is driven through this).
    pub fn backend_mut(&mut self) -> &mut B {
        self.manager.backend_mut()
    }
}

/// A [`VoiceMixer`] whatever its output, for a program that picks the output at run time.
pub trait Mix {
    /// See [`VoiceMixer::set_listener`].
    fn set_listener(&mut self, position: [f32; 3], orientation: [f32; 4]);
    /// See [`VoiceMixer::heard`].
    fn heard(
        &mut self,
        speaker: [u8; 32],
        position: [f32; 3],
        datagram: &[u8],
        arrival: Instant,
    ) -> Result<(), PlaybackError>;
    /// See [`VoiceMixer::place`].
    fn place(&mut self, speaker: &[u8; 32], position: [f32; 3]);
    /// See [`VoiceMixer::take_level`].
    fn take_level(&self, speaker: &[u8; 32]) -> f32;
    /// The speakers being played.
    fn speaker_ids(&self) -> Vec<[u8; 32]>;
    /// See [`VoiceMixer::forget_quiet`].
    fn forget_quiet(&mut self);
    /// See [`VoiceMixer::set_volume`].
    fn set_volume(&mut self, speaker: [u8; 32], volume: f32);
    /// See [`VoiceMixer::volume`].
    fn volume(&self, speaker: &[u8; 32]) -> f32;
    /// See [`VoiceMixer::take_echo_reference`].
    fn take_echo_reference(&mut self) -> Option<EchoReference>;
    /// See [`VoiceMixer::play_clip`].
    fn play_clip(&mut self, clip: &Clip, volume: f32) -> Result<(), PlaybackError>;
    /// See [`VoiceMixer::set_ambience`].
    fn set_ambience(&mut self, clip: Option<&Clip>, volume: f32);
    /// See [`VoiceMixer::play_film`].
    fn play_film(&mut self, position: [f32; 3]) -> Result<FilmFeed, PlaybackError>;
}

impl<B: Backend> Mix for VoiceMixer<B> {
    fn set_listener(&mut self, position: [f32; 3], orientation: [f32; 4]) {
        VoiceMixer::set_listener(self, position, orientation);
    }

    fn heard(
        &mut self,
        speaker: [u8; 32],
        position: [f32; 3],
        datagram: &[u8],
        arrival: Instant,
    ) -> Result<(), PlaybackError> {
        VoiceMixer::heard(self, speaker, position, datagram, arrival)
    }

    fn place(&mut self, speaker: &[u8; 32], position: [f32; 3]) {
        VoiceMixer::place(self, speaker, position);
    }

    fn take_level(&self, speaker: &[u8; 32]) -> f32 {
        VoiceMixer::take_level(self, speaker)
    }

    fn speaker_ids(&self) -> Vec<[u8; 32]> {
        self.speakers().copied().collect()
    }

    fn forget_quiet(&mut self) {
        VoiceMixer::forget_quiet(self);
    }

    fn set_volume(&mut self, speaker: [u8; 32], volume: f32) {
        VoiceMixer::set_volume(self, speaker, volume);
    }

    fn volume(&self, speaker: &[u8; 32]) -> f32 {
        VoiceMixer::volume(self, speaker)
    }

    fn take_echo_reference(&mut self) -> Option<EchoReference> {
        VoiceMixer::take_echo_reference(self)
    }

    fn play_clip(&mut self, clip: &Clip, volume: f32) -> Result<(), PlaybackError> {
        VoiceMixer::play_clip(self, clip, volume)
    }

    fn set_ambience(&mut self, clip: Option<&Clip>, volume: f32) {
        VoiceMixer::set_ambience(self, clip, volume);
    }

    fn play_film(&mut self, position: [f32; 3]) -> Result<FilmFeed, PlaybackError> {
        VoiceMixer::play_film(self, position)
    }
}
