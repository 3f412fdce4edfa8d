//! Voice in the client: the microphone (or a WAV file) through echo cancellation, noise
//! suppression and gain control to the people in hearing range, and their voices played where
//! they stand, each as loud as the listener set them, through the sound card (or into a WAV
//! file). Push-to-talk is `V` (not while typing); `F4` mutes, `F5` switches between
//! push-to-talk and the open microphone; the others see who is muted. `/mic` and `/speaker`
//! list and choose devices. Without a microphone or an output (or when one is unplugged) the
//! client says why and goes on: text chat needs neither. The home node never opens audio.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bevy::prelude::*;
use sanctuary_engine::PublicKey;
use sanctuary_net::{Command, MicState, VoiceDatagram, VoiceSender};
use sanctuary_voice::capture::MicControl;
use sanctuary_voice::playback::{MAX_VOLUMES, Mix};
use tokio::sync::mpsc;

use crate::Frame;
use crate::actions::Actions;
use crate::network::{ChatInput, NetLink, RemoteAvatarView, Social};
use crate::panels::{PanelAction, PanelPressed};
use crate::player::Player;
use crate::sounds::{WorldSounds, play_world_sounds};
pub use crate::voice_devices::VoiceOptions;
use crate::voice_devices::{Direction, Microphone, list, open_microphone, open_output, pick};

/// Voice datagrams played per frame at most (a burst never stalls a frame).
const PER_FRAME: usize = 512;
/// A speaker louder than this (RMS) is shown speaking.
pub const SPEAKING_LEVEL: f32 = 0.01;
/// How long someone is shown speaking after their voice was last loud (so that the ring does
/// not flicker between words).
pub const SPEAKING_HOLD: Duration = Duration::from_millis(400);
/// One step of the avatar menu's volume buttons.
pub const VOLUME_STEP: f32 = 0.25;

/// What the person and the HUD know about voice.
#[derive(Resource, Debug)]
pub struct VoiceState {
    /// Push-to-talk, open microphone, mute, and the microphone's level.
    pub control: Arc<MicControl>,
    /// The microphone in use, or why there is none.
    pub microphone: Result<String, String>,
    /// The output in use, or why there is none.
    pub output: Result<String, String>,
    /// Why the microphone stopped while in use (unplugged), set by its stream.
    pub lost: Arc<Mutex<Option<String>>>,
    /// How loud each person we hear was over the last frame (their loudest 20 ms).
    pub levels: HashMap<PublicKey, f32>,
    /// When each person we hear was last loud enough to be shown speaking.
    loud_at: HashMap<PublicKey, Instant>,
    /// How loud the person chose to hear each other person (1.0 unless changed).
    volumes: HashMap<PublicKey, f32>,
    /// Volumes changed since playback last took them.
    volumes_changed: Vec<PublicKey>,
    /// What the voice shield does to each person's volume (1.0 unless it turns them down).
    shielded: HashMap<PublicKey, f32>,
    /// The devices chosen.
    pub options: VoiceOptions,
}

impl VoiceState {
    /// Nothing opened yet, the microphone set as `options` say (open, muted).
    fn new(options: VoiceOptions) -> Self {
        let control = Arc::new(MicControl::default());
        control.open.store(options.open_mic, Ordering::Relaxed);
        control.muted.store(options.muted, Ordering::Relaxed);
        Self {
            control,
            microphone: Err("not opened yet".into()),
            output: Err("not opened yet".into()),
            lost: Arc::default(),
            levels: HashMap::new(),
            loud_at: HashMap::new(),
            volumes: HashMap::new(),
            volumes_changed: Vec::new(),
            shielded: HashMap::new(),
            options,
        }
    }

    /// One line for the HUD.
    pub fn summary(&self) -> String {
        let control = &self.control;
        let lost = self.lost.lock().ok().and_then(|lost| lost.clone());
        let mic = match (&self.microphone, lost) {
            (Err(why), _) => format!("no microphone ({why})"),
            (Ok(_), Some(why)) => format!("microphone lost ({why}); /mic chooses another"),
            (Ok(_), None) if control.muted.load(Ordering::Relaxed) => "muted (F4)".to_owned(),
            (Ok(_), None) if control.sending() => "speaking".to_owned(),
            (Ok(_), None) if control.open.load(Ordering::Relaxed) => "open mic (F5: push-to-talk)".to_owned(),
            (Ok(_), None) => "hold V to talk (F5: open mic)".to_owned(),
        };
        let output = match &self.output {
            Ok(_) => String::new(),
            Err(why) => format!(" | no sound ({why})"),
        };
        let speaking = self.loud_at.keys().filter(|person| self.speaking(person)).count();
        let others = if speaking > 0 { format!(" | {speaking} speaking") } else { String::new() };
        format!("voice: {mic}{output}{others}")
    }

    /// Whether `person` is speaking (was loud within [`SPEAKING_HOLD`]).
    pub fn speaking(&self, person: &PublicKey) -> bool {
        self.loud_at.get(person).is_some_and(|at| at.elapsed() < SPEAKING_HOLD)
    }

    /// What the others are told of our microphone.
    pub fn mic_state(&self) -> MicState {
        let lost = self.lost.lock().map_or(true, |lost| lost.is_some());
        match &self.microphone {
            Err(_) => MicState::Off,
            Ok(_) if lost => MicState::Off,
            Ok(_) if self.control.muted.load(Ordering::Relaxed) => MicState::Muted,
            Ok(_) => MicState::Live,
        }
    }

    /// The microphone as the VR menu shows it; `talk` names what to hold to talk.
    pub fn menu(&self, talk: &str) -> MicMenu {
        let lost = self.lost.lock().map_or(true, |lost| lost.is_some());
        let muted = self.control.muted.load(Ordering::Relaxed);
        let open = self.control.open.load(Ordering::Relaxed);
        let line = match &self.microphone {
            Err(why) => format!("no microphone ({why})"),
            Ok(name) if lost => format!("microphone lost ({name}); /mic chooses another"),
            Ok(_) if muted => "microphone muted".to_owned(),
            Ok(_) if open => "open microphone: it sends when you speak".to_owned(),
            Ok(_) => format!("hold {talk} to talk"),
        };
        let name = |device: &Result<String, String>| device.as_deref().unwrap_or("none").to_owned();
        let devices = format!("microphone: {} | output: {}", name(&self.microphone), name(&self.output));
        MicMenu { line, muted, open, usable: self.microphone.is_ok() && !lost, devices }
    }

    /// How loud `person` is played (1.0 unless changed).
    pub fn volume(&self, person: &PublicKey) -> f32 {
        self.volumes.get(person).copied().unwrap_or(1.0)
    }

    /// What the voice shield makes of `person`'s volume, as a factor (0 to 1); kept for the
    /// people shown, at most [`MAX_VOLUMES`].
    pub fn set_shield_factor(&mut self, person: PublicKey, factor: f32) {
        let factor = if factor.is_finite() { factor.clamp(0.0, 1.0) } else { 1.0 };
        if self.shielded.get(&person).copied().unwrap_or(1.0) == factor {
            return;
        }
        if self.shielded.len() >= MAX_VOLUMES && !self.shielded.contains_key(&person) {
            self.shielded.retain(|_, kept| *kept != 1.0);
            if self.shielded.len() >= MAX_VOLUMES {
                return;
            }
        }
        self.shielded.insert(person, factor);
        if !self.volumes_changed.contains(&person) {
            self.volumes_changed.push(person);
        }
    }

    /// How loud `person` is played after the voice shield: the person's own setting for them
    /// times the shield's factor.
    pub fn played_volume(&self, person: &PublicKey) -> f32 {
        self.volume(person) * self.shielded.get(person).copied().unwrap_or(1.0)
    }

    /// Plays `person` at `volume` (0 to [`sanctuary_voice::playback::MAX_VOLUME`]) from now
    /// on.
    pub fn set_volume(&mut self, person: PublicKey, volume: f32) {
        let volume = volume.clamp(0.0, sanctuary_voice::playback::MAX_VOLUME);
        if self.volumes.len() >= MAX_VOLUMES && !self.volumes.contains_key(&person) {
            // The person at normal volume is the one to forget first.
            let normal = self.volumes.iter().find(|(_, volume)| **volume == 1.0).map(|(key, _)| *key);
            match normal {
                Some(key) => {
                    self.volumes.remove(&key);
                }
                None => return,
            }
        }
        self.volumes.insert(person, volume);
        if !self.volumes_changed.contains(&person) {
            self.volumes_changed.push(person);
        }
    }
}

/// The microphone as the VR menu shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MicMenu {
    /// What it is doing, or why there is none.
    pub line: String,
    /// Muted.
    pub muted: bool,
    /// The open microphone (otherwise push-to-talk).
    pub open: bool,
    /// There is a microphone to mute or open.
    pub usable: bool,
    /// The microphone and output in use.
    pub devices: String,
}

/// The audio side, on the main thread (sound card streams need not be `Send`).
pub(crate) struct VoiceIo {
    /// Everyone's voices and the world's sounds, when there is an output.
    pub(crate) mixer: Option<Box<dyn Mix>>,
    microphone: Option<Microphone>,
    arrivals: Option<mpsc::Receiver<VoiceDatagram>>,
    sender: VoiceSender,
}

impl VoiceIo {
    /// Audio with this output and no microphone or network (tests).
    #[cfg(test)]
    pub(crate) fn with_mixer(mixer: Box<dyn Mix>) -> Self {
        Self { mixer: Some(mixer), microphone: None, arrivals: None, sender: VoiceSender::default() }
    }
}

/// Opens voice for the node behind `link`: called once by the windowed client, never by the
/// home node or the headless tests (which have no sound).
pub fn start(app: &mut App, options: &VoiceOptions, link: &mut NetLink) {
    let mut state = VoiceState::new(options.clone());
    let mut io = VoiceIo { mixer: None, microphone: None, arrivals: link.take_voice(), sender: link.voice_sender() };
    reopen(&mut io, &mut state, true, true);
    app.insert_non_send(io).insert_resource(state).add_systems(
        Update,
        (
            (talk_keys, audio_commands, take_kept_volumes).in_set(Frame::Input),
            (play_voices, tell_mic_state).in_set(Frame::Animate),
        ),
    );
    match WorldSounds::load() {
        Ok(sounds) => {
            app.insert_non_send(sounds).add_systems(Update, play_world_sounds.in_set(Frame::Animate));
        }
        Err(why) => warn!("the world's sounds could not be read: {why}"),
    }
}

/// Volumes and mutes kept from before (the node reads them at its start) are played from now.
fn take_kept_volumes(mut social: ResMut<Social>, mut state: ResMut<VoiceState>) {
    for (person, volume) in std::mem::take(&mut social.kept_volumes) {
        state.set_volume(person, volume);
    }
}

/// (Re)opens the output and/or the microphone as `state.options` say. A new output needs a
/// new microphone too: the echo canceller listens to the output.
fn reopen(io: &mut VoiceIo, state: &mut VoiceState, output: bool, microphone: bool) {
    if output {
        io.mixer = None;
        match open_output(&state.options) {
            Ok((mut mixer, name)) => {
                for (person, volume) in &state.volumes {
                    mixer.set_volume(*person.as_bytes(), *volume);
                }
                io.mixer = Some(mixer);
                state.output = Ok(name);
            }
            Err(why) => {
                warn!("voice: no sound output: {why}; others' voices are not played");
                state.output = Err(why);
            }
        }
    }
    if output || microphone {
        io.microphone = None;
        if let Ok(mut lost) = state.lost.lock() {
            *lost = None;
        }
        let echo = io.mixer.as_mut().and_then(|mixer| mixer.take_echo_reference());
        let opened =
            open_microphone(&state.options, state.control.clone(), io.sender.clone(), echo, state.lost.clone());
        match opened {
            Ok((stream, name)) => {
                io.microphone = Some(stream);
                state.microphone = Ok(name);
            }
            Err(why) => {
                warn!("voice: no microphone: {why}; text chat goes on");
                state.microphone = Err(why);
            }
        }
    }
}

/// Push-to-talk held (`V` unless the chat box has the keys, or the other hand's trigger) talks;
/// `F4` or the VR menu's button mutes; `F5` or its button switches the open microphone on and
/// off.
fn talk_keys(
    keys: Res<ButtonInput<KeyCode>>,
    actions: Res<Actions>,
    mut pressed: MessageReader<PanelPressed>,
    state: Res<VoiceState>,
) {
    let control = &state.control;
    control.talking.store(actions.talk, Ordering::Relaxed);
    let buttons: Vec<PanelAction> = pressed.read().map(|PanelPressed(action)| *action).collect();
    if keys.just_pressed(KeyCode::F4) || buttons.contains(&PanelAction::ToggleMute) {
        control.muted.fetch_xor(true, Ordering::Relaxed);
    }
    if keys.just_pressed(KeyCode::F5) || buttons.contains(&PanelAction::ToggleOpenMic) {
        control.open.fetch_xor(true, Ordering::Relaxed);
    }
}

/// `/mic` and `/speaker`: with nothing after, list the devices; with a number or a name, use
/// that one; `default` goes back to the system's choice. The VR menu's Next microphone and
/// Next output take the next one listed.
fn audio_commands(
    mut input: ResMut<ChatInput>,
    mut social: ResMut<Social>,
    mut state: ResMut<VoiceState>,
    mut io: NonSendMut<VoiceIo>,
    mut pressed: MessageReader<PanelPressed>,
) {
    for line in std::mem::take(&mut input.audio_commands) {
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let direction = if word == "/speaker" { Direction::Output } else { Direction::Input };
        let notice = device_command(&mut io, &mut state, direction, rest.trim());
        social.notice(notice);
    }
    for PanelPressed(action) in pressed.read() {
        let direction = match action {
            PanelAction::NextMicrophone => Direction::Input,
            PanelAction::NextOutput => Direction::Output,
            _ => continue,
        };
        let current = match direction {
            Direction::Input => state.microphone.as_ref().ok(),
            Direction::Output => state.output.as_ref().ok(),
        };
        let notice = match list(direction) {
            Ok(names) if names.is_empty() => "no devices found".to_owned(),
            Ok(names) => {
                let next = next_device(&names, current.map(String::as_str));
                device_command(&mut io, &mut state, direction, &next.to_string())
            }
            Err(why) => format!("the devices cannot be listed ({why})"),
        };
        social.notice(notice);
    }
}

/// The number (from 1) of the device after `current` in `names`, round to the first.
fn next_device(names: &[String], current: Option<&str>) -> usize {
    let at = current.and_then(|current| names.iter().position(|name| name == current));
    at.map_or(0, |at| (at + 1) % names.len().max(1)) + 1
}

/// Carries out one `/mic` or `/speaker`; returns what to tell the person.
fn device_command(io: &mut VoiceIo, state: &mut VoiceState, direction: Direction, wanted: &str) -> String {
    let (word, current) = match direction {
        Direction::Input => ("/mic", &state.microphone),
        Direction::Output => ("/speaker", &state.output),
    };
    let current = match current {
        Ok(name) => format!("using {name}"),
        Err(why) => format!("none open ({why})"),
    };
    let names = match list(direction) {
        Ok(names) => names,
        Err(why) => return format!("{word}: the devices cannot be listed ({why}); {current}"),
    };
    if wanted.is_empty() {
        let listed: Vec<String> =
            names.iter().enumerate().map(|(index, name)| format!("{}. {name}", index + 1)).collect();
        let listed = if listed.is_empty() { "none found".to_owned() } else { listed.join(", ") };
        return format!(
            "{word}: {current}. Devices: {listed}. {word} NUMBER or NAME chooses, {word} default the system's"
        );
    }
    let chosen = if wanted.eq_ignore_ascii_case("default") {
        None
    } else {
        match pick(&names, wanted) {
            Some(name) => Some(name.to_owned()),
            None => return format!("{word}: no device matches \"{wanted}\"; {word} lists them"),
        }
    };
    match direction {
        Direction::Input => {
            state.options.input = None;
            state.options.microphone = chosen;
            reopen(io, state, false, true);
        }
        Direction::Output => {
            state.options.output = None;
            state.options.speaker = chosen;
            reopen(io, state, true, false);
        }
    }
    let result = match direction {
        Direction::Input => &state.microphone,
        Direction::Output => &state.output,
    };
    match result {
        Ok(name) => format!("{word}: now using {name}"),
        Err(why) => format!("{word}: could not open it ({why})"),
    }
}

/// Tells the others when our microphone goes on, off, or mute.
fn tell_mic_state(state: Res<VoiceState>, link: Option<Res<NetLink>>, mut told: Local<Option<MicState>>) {
    let Some(link) = link else { return };
    let now = state.mic_state();
    if *told != Some(now) && link.send(Command::Mic(now)) {
        *told = Some(now);
    }
}

/// Plays what arrived from where each speaker's head is, with the listener at ours.
fn play_voices(
    mut io: NonSendMut<VoiceIo>,
    mut state: ResMut<VoiceState>,
    player: Query<&GlobalTransform, With<Player>>,
    avatars: Query<(&RemoteAvatarView, &GlobalTransform)>,
) {
    let io = &mut *io;
    let heads: HashMap<[u8; 32], [f32; 3]> =
        avatars.iter().map(|(view, at)| (*view.key.as_bytes(), at.translation().to_array())).collect();
    let (Some(mixer), Some(arrivals)) = (&mut io.mixer, &mut io.arrivals) else { return };
    for person in std::mem::take(&mut state.volumes_changed) {
        mixer.set_volume(*person.as_bytes(), state.played_volume(&person));
    }
    if let Ok(head) = player.single() {
        let (_, rotation, translation) = head.to_scale_rotation_translation();
        mixer.set_listener(translation.to_array(), rotation.to_array());
    }
    for _ in 0..PER_FRAME {
        let Ok(datagram) = arrivals.try_recv() else { break };
        // Someone whose avatar we do not show (yet) is not played: we would not know where.
        let Some(position) = heads.get(datagram.from.as_bytes()) else { continue };
        let arrival = datagram.arrival;
        let _ = mixer.heard(*datagram.from.as_bytes(), *position, &datagram.bytes, arrival);
    }
    state.levels.clear();
    let now = Instant::now();
    for speaker in mixer.speaker_ids() {
        if let Some(position) = heads.get(&speaker) {
            mixer.place(&speaker, *position);
        }
        if let Ok(key) = PublicKey::from_bytes(speaker) {
            let level = mixer.take_level(&speaker);
            if level > SPEAKING_LEVEL {
                state.loud_at.insert(key, now);
            }
            state.levels.insert(key, level);
        }
    }
    // Only the people being played (at most the mixer's voices) are remembered.
    let VoiceState { levels, loud_at, .. } = &mut *state;
    loud_at.retain(|key, _| levels.contains_key(key));
    mixer.forget_quiet();
}

/// How loud a voice of `rms` looks, from 0 (at [`SPEAKING_LEVEL`], −40 dB, or quieter) to 1
/// (−10 dB or louder), even in decibels as hearing is.
pub fn loudness(rms: f32) -> f32 {
    if rms.is_nan() || rms <= SPEAKING_LEVEL {
        return 0.0;
    }
    ((20.0 * rms.log10() + 40.0) / 30.0).clamp(0.0, 1.0)
}

/// A glow at `current` moved toward `target` over `seconds`: quickly up as a syllable starts
/// (30 ms), slowly down after it (150 ms), as a mouth opens and closes.
pub fn follow(current: f32, target: f32, seconds: f32) -> f32 {
    let seconds = if seconds.is_finite() { seconds.clamp(0.0, 1.0) } else { 0.0 };
    let target = if target.is_finite() { target.clamp(0.0, 1.0) } else { 0.0 };
    let time_constant = if target > current { 0.03 } else { 0.15 };
    current + (target - current) * (1.0 - (-seconds / time_constant).exp())
}

/// A voice state with a working microphone and output, for tests.
#[cfg(test)]
pub(crate) fn test_state() -> VoiceState {
    let mut state = VoiceState::new(VoiceOptions::default());
    state.microphone = Ok("test microphone".into());
    state.output = Ok("test output".into());
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> VoiceState {
        test_state()
    }

    #[test]
    fn a_voice_glows_with_its_loudness_quickly_up_and_slowly_down() {
        assert_eq!(loudness(0.0), 0.0);
        assert_eq!(loudness(SPEAKING_LEVEL), 0.0);
        assert_eq!(loudness(f32::NAN), 0.0);
        assert!((loudness(0.1) - 2.0 / 3.0).abs() < 1e-3, "-20 dB is two thirds");
        assert_eq!(loudness(1.0), 1.0);
        assert!(loudness(0.05) < loudness(0.2));
        // Up: most of the way within two 16 ms frames; down: still glowing after them.
        let mut glow = 0.0;
        for _ in 0..2 {
            glow = follow(glow, 1.0, 0.016);
        }
        assert!(glow > 0.6, "{glow}");
        let mut fading = 1.0;
        for _ in 0..2 {
            fading = follow(fading, 0.0, 0.016);
        }
        assert!(fading > 0.75, "{fading}");
        assert_eq!(follow(0.5, f32::NAN, 0.016), follow(0.5, 0.0, 0.016));
        assert_eq!(follow(0.5, 1.0, f32::INFINITY), 0.5);
        assert!((follow(0.0, 1.0, 1.0) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn next_goes_round_the_devices() {
        let names: Vec<String> = ["Built-in", "USB Headset", "HDMI"].map(String::from).into();
        assert_eq!(next_device(&names, Some("Built-in")), 2);
        assert_eq!(next_device(&names, Some("HDMI")), 1, "round to the first");
        assert_eq!(next_device(&names, None), 1, "nothing open: the first");
        assert_eq!(next_device(&names, Some("a file")), 1);
    }

    #[test]
    fn the_others_are_told_live_muted_or_off() {
        let mut state = state();
        assert_eq!(state.mic_state(), MicState::Live);
        state.control.muted.store(true, Ordering::Relaxed);
        assert_eq!(state.mic_state(), MicState::Muted);
        assert!(state.summary().contains("muted"));
        *state.lost.lock().expect("lock") = Some("USB Headset: the device is no longer available".into());
        assert_eq!(state.mic_state(), MicState::Off, "an unplugged microphone is off");
        assert!(state.summary().contains("microphone lost (USB Headset"), "{}", state.summary());
        state.microphone = Err("this machine has no microphone".into());
        assert_eq!(state.mic_state(), MicState::Off);
    }

    #[test]
    fn volumes_are_bounded_and_remembered() {
        let mut state = state();
        let ada = PublicKey::from_secret_seed(&[1; 32]);
        assert_eq!(state.volume(&ada), 1.0);
        state.set_volume(ada, 9.0);
        assert_eq!(state.volume(&ada), sanctuary_voice::playback::MAX_VOLUME);
        state.set_volume(ada, -1.0);
        assert_eq!(state.volume(&ada), 0.0);
        assert_eq!(state.volumes_changed, vec![ada], "one change to apply, however many steps");
        for seed in 0..MAX_VOLUMES + 10 {
            let mut bytes = [0u8; 32];
            bytes[..8].copy_from_slice(&(seed as u64 + 10).to_le_bytes());
            state.set_volume(PublicKey::from_secret_seed(&bytes), 0.5);
        }
        assert!(state.volumes.len() <= MAX_VOLUMES);
        assert_eq!(state.volume(&ada), 0.0, "a setting made earlier is not pushed out by strangers");
    }
}
