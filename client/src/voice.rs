//! Voice in the client: the microphone (or a WAV file) through a transmitter to the people in
//! hearing range, and their voices played where they stand, through the sound card (or into a
//! WAV file). Push-to-talk is `V` (not while typing); `F4` mutes, `F5` switches between
//! push-to-talk and the open microphone. Without a microphone or an output the client says why
//! and goes on: text chat needs neither. The home node never opens audio.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bevy::prelude::*;
use sanctuary_engine::PublicKey;
use sanctuary_net::{VoiceDatagram, VoiceSender};
use sanctuary_voice::capture::{MicControl, Transmitter, WavMicrophone};
use sanctuary_voice::output::{WavFileBackend, WavFileSettings};
use sanctuary_voice::playback::{Mix, VoiceMixer};
use sanctuary_voice::resample::ToVoiceRate;
use tokio::sync::mpsc;

use crate::Frame;
use crate::network::{ChatInput, NetLink, RemoteAvatarView};
use crate::player::Player;

/// Voice datagrams played per frame at most (a burst never stalls a frame).
const PER_FRAME: usize = 512;
/// A speaker louder than this (RMS) is shown speaking.
pub const SPEAKING_LEVEL: f32 = 0.01;

/// Where voice comes from and goes to (the command line's `--voice-input`, `--voice-output`,
/// `--open-mic`).
#[derive(Debug, Clone, Default)]
pub struct VoiceOptions {
    /// A 48 kHz WAV file played as the microphone, over and over.
    pub input: Option<PathBuf>,
    /// A WAV file to write what would come out of the speakers into.
    pub output: Option<PathBuf>,
    /// Start with the open microphone instead of push-to-talk.
    pub open_mic: bool,
}

/// What the person and the HUD know about voice.
#[derive(Resource, Debug)]
pub struct VoiceState {
    /// Push-to-talk, open microphone, mute, and the microphone's level.
    pub control: Arc<MicControl>,
    /// The microphone in use, or why there is none.
    pub microphone: Result<String, String>,
    /// The output in use, or why there is none.
    pub output: Result<String, String>,
    /// How loud each person we hear is right now.
    pub levels: HashMap<PublicKey, f32>,
}

impl VoiceState {
    /// One line for the HUD.
    pub fn summary(&self) -> String {
        let control = &self.control;
        let mic = match &self.microphone {
            Err(why) => format!("no microphone ({why})"),
            Ok(_) if control.muted.load(Ordering::Relaxed) => "muted (F4)".to_owned(),
            Ok(_) if control.sending() => "speaking".to_owned(),
            Ok(_) if control.open.load(Ordering::Relaxed) => "open mic (F5: push-to-talk)".to_owned(),
            Ok(_) => "hold V to talk (F5: open mic)".to_owned(),
        };
        let output = match &self.output {
            Ok(_) => String::new(),
            Err(why) => format!(" | no sound ({why})"),
        };
        let speaking = self.levels.values().filter(|level| **level > SPEAKING_LEVEL).count();
        let others = if speaking > 0 { format!(" | {speaking} speaking") } else { String::new() };
        format!("voice: {mic}{output}{others}")
    }
}

/// The microphone's stream or file player; dropping it stops capturing.
enum Microphone {
    File(#[allow(dead_code)] WavMicrophone),
    Device(#[allow(dead_code)] cpal::Stream),
}

/// The audio side, on the main thread (sound card streams need not be `Send`).
struct VoiceIo {
    mixer: Option<Box<dyn Mix>>,
    _microphone: Option<Microphone>,
    arrivals: Option<mpsc::Receiver<VoiceDatagram>>,
}

/// Opens voice for the node behind `link`: called once by the windowed client, never by the
/// home node or the headless tests (which have no sound).
pub fn start(app: &mut App, options: &VoiceOptions, link: &mut NetLink) {
    let control = Arc::new(MicControl::default());
    control.open.store(options.open_mic, Ordering::Relaxed);
    let sender = link.voice_sender();
    let (microphone, microphone_state) = match open_microphone(options, control.clone(), sender) {
        Ok((microphone, name)) => (Some(microphone), Ok(name)),
        Err(why) => {
            warn!("voice: no microphone: {why}; text chat goes on");
            (None, Err(why))
        }
    };
    let (mixer, output_state) = match open_output(options) {
        Ok((mixer, name)) => (Some(mixer), Ok(name)),
        Err(why) => {
            warn!("voice: no sound output: {why}; others' voices are not played");
            (None, Err(why))
        }
    };
    app.insert_non_send(VoiceIo { mixer, _microphone: microphone, arrivals: link.take_voice() })
        .insert_resource(VoiceState {
            control,
            microphone: microphone_state,
            output: output_state,
            levels: HashMap::new(),
        })
        .add_systems(Update, (talk_keys.in_set(Frame::Input), play_voices.in_set(Frame::Animate)));
}

fn open_microphone(
    options: &VoiceOptions,
    control: Arc<MicControl>,
    sender: VoiceSender,
) -> Result<(Microphone, String), String> {
    if let Some(path) = &options.input {
        let microphone = WavMicrophone::start(path, control, move |datagram| {
            sender.send(datagram);
        })
        .map_err(|error| error.to_string())?;
        return Ok((Microphone::File(microphone), path.display().to_string()));
    }
    use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
    let device = cpal::default_host().default_input_device().ok_or("this machine has no microphone")?;
    let name = device.description().map(|description| description.to_string()).unwrap_or_else(|_| "microphone".into());
    let config = device.default_input_config().map_err(|error| error.to_string())?;
    let mut converter = ToVoiceRate::new(config.sample_rate(), config.channels());
    let mut transmitter = Transmitter::new(control).map_err(|error| error.to_string())?;
    let mut converted = Vec::new();
    let stream = device
        .build_input_stream::<f32, _, _>(
            config.config(),
            move |samples: &[f32], _: &cpal::InputCallbackInfo| {
                converted.clear();
                converter.push(samples, &mut converted);
                transmitter.push(&converted, &mut |datagram| {
                    sender.send(datagram);
                });
            },
            |error| warn!("voice: the microphone failed: {error}"),
            None,
        )
        .map_err(|error| error.to_string())?;
    stream.play().map_err(|error| error.to_string())?;
    Ok((Microphone::Device(stream), name))
}

fn open_output(options: &VoiceOptions) -> Result<(Box<dyn Mix>, String), String> {
    if let Some(path) = &options.output {
        let mixer = VoiceMixer::<WavFileBackend>::new(WavFileSettings { path: path.clone() })
            .map_err(|error| error.to_string())?;
        return Ok((Box::new(mixer), path.display().to_string()));
    }
    let mixer =
        VoiceMixer::<kira::backend::cpal::CpalBackend>::new(Default::default()).map_err(|error| error.to_string())?;
    Ok((Box::new(mixer), "the default output".to_owned()))
}

/// `V` held talks (unless the chat box has the keys); `F4` mutes; `F5` switches the open
/// microphone on and off.
fn talk_keys(keys: Res<ButtonInput<KeyCode>>, chat: Option<Res<ChatInput>>, state: Res<VoiceState>) {
    let typing = chat.is_some_and(|chat| chat.open);
    let control = &state.control;
    control.talking.store(!typing && keys.pressed(KeyCode::KeyV), Ordering::Relaxed);
    if keys.just_pressed(KeyCode::F4) {
        control.muted.fetch_xor(true, Ordering::Relaxed);
    }
    if keys.just_pressed(KeyCode::F5) {
        control.open.fetch_xor(true, Ordering::Relaxed);
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
    for speaker in mixer.speaker_ids() {
        if let Some(position) = heads.get(&speaker) {
            mixer.place(&speaker, *position);
        }
        if let Ok(key) = PublicKey::from_bytes(speaker) {
            state.levels.insert(key, mixer.level(&speaker));
        }
    }
    mixer.forget_quiet();
}
