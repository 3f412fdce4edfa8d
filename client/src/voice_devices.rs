//! The microphone and the speakers: the sound card's devices (or WAV files instead), listed and
//! chosen by number or by name, and opened with what voice needs: the microphone through echo
//! cancellation, noise suppression and gain control into a transmitter, the speakers through a
//! mixer whose output the canceller hears. No Bevy here: `crate::voice` drives it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use sanctuary_net::VoiceSender;
use sanctuary_voice::capture::{MicControl, Transmitter, WavMicrophone};
use sanctuary_voice::output::{WavFileBackend, WavFileSettings};
use sanctuary_voice::playback::{Mix, VoiceMixer};
use sanctuary_voice::processing::{EchoReference, VoiceProcessor};
use sanctuary_voice::resample::ToVoiceRate;

/// Devices listed at most (a machine with more shows the first ones).
pub const MAX_LISTED: usize = 32;
/// Datagrams waiting between the audio thread and the thread that sends them (a second of
/// voice); when full, new ones are dropped.
const RELAY_QUEUE: usize = 50;

/// Where voice comes from and goes to (the command line's `--voice-input`, `--voice-output`,
/// `--mic`, `--speaker`, `--open-mic`; `/mic` and `/speaker` change the devices).
#[derive(Debug, Clone, Default)]
pub struct VoiceOptions {
    /// A 48 kHz WAV file played as the microphone, over and over.
    pub input: Option<PathBuf>,
    /// A WAV file to write what would come out of the speakers into.
    pub output: Option<PathBuf>,
    /// The microphone to use, by name (the system's default when `None`).
    pub microphone: Option<String>,
    /// The speakers to use, by name (the system's default when `None`).
    pub speaker: Option<String>,
    /// Start with the open microphone instead of push-to-talk.
    pub open_mic: bool,
    /// Start muted.
    pub muted: bool,
}

/// Microphones or speakers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Microphones.
    Input,
    /// Speakers and headphones.
    Output,
}

impl Direction {
    fn noun(self) -> &'static str {
        match self {
            Direction::Input => "microphone",
            Direction::Output => "output",
        }
    }
}

/// The microphone's stream or file player; dropping it stops capturing.
pub enum Microphone {
    /// A WAV file played in real time.
    File(#[allow(dead_code)] WavMicrophone),
    /// The sound card's input.
    Device(#[allow(dead_code)] cpal::Stream),
}

impl std::fmt::Debug for Microphone {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            Microphone::File(_) => "Microphone::File",
            Microphone::Device(_) => "Microphone::Device",
        })
    }
}

fn devices(direction: Direction) -> Result<Vec<cpal::Device>, String> {
    let host = cpal::default_host();
    let found: Vec<cpal::Device> = match direction {
        Direction::Input => host.input_devices().map_err(|error| error.to_string())?.take(MAX_LISTED).collect(),
        Direction::Output => host.output_devices().map_err(|error| error.to_string())?.take(MAX_LISTED).collect(),
    };
    Ok(found)
}

fn name_of(device: &cpal::Device) -> String {
    device.description().map(|description| description.name().to_owned()).unwrap_or_else(|_| "unnamed device".into())
}

/// The names of this machine's microphones or outputs, in the order `/mic N` counts them.
pub fn list(direction: Direction) -> Result<Vec<String>, String> {
    Ok(devices(direction)?.iter().map(name_of).collect())
}

/// Which listed name `wanted` means: a number from [`list`] (from 1), else the first name
/// that contains it (ignoring case).
pub fn pick<'a>(names: &'a [String], wanted: &str) -> Option<&'a str> {
    let wanted = wanted.trim();
    if let Ok(number) = wanted.parse::<usize>() {
        return number.checked_sub(1).and_then(|index| names.get(index)).map(String::as_str);
    }
    let lower = wanted.to_lowercase();
    if lower.is_empty() {
        return None;
    }
    names
        .iter()
        .find(|name| name.to_lowercase() == lower)
        .or_else(|| names.iter().find(|name| name.to_lowercase().contains(&lower)))
        .map(String::as_str)
}

/// The device `wanted` means (see [`pick`]), or the default when `None`.
fn device(direction: Direction, wanted: Option<&str>) -> Result<cpal::Device, String> {
    let host = cpal::default_host();
    let Some(wanted) = wanted else {
        return match direction {
            Direction::Input => host.default_input_device().ok_or("this machine has no microphone".to_owned()),
            Direction::Output => host.default_output_device().ok_or("this machine has no sound output".to_owned()),
        };
    };
    let found = devices(direction)?;
    let names: Vec<String> = found.iter().map(name_of).collect();
    let index = pick(&names, wanted).and_then(|name| names.iter().position(|listed| listed == name));
    let command = if direction == Direction::Input { "/mic" } else { "/speaker" };
    index
        .and_then(|index| found.into_iter().nth(index))
        .ok_or_else(|| format!("no {} called {wanted} ({command} lists them)", direction.noun()))
}

/// Opens the speakers (or the output file) that `options` name.
pub fn open_output(options: &VoiceOptions) -> Result<(Box<dyn Mix>, String), String> {
    if let Some(path) = &options.output {
        let mixer = VoiceMixer::<WavFileBackend>::new(WavFileSettings { path: path.clone() })
            .map_err(|error| error.to_string())?;
        return Ok((Box::new(mixer), path.display().to_string()));
    }
    let device = device(Direction::Output, options.speaker.as_deref())?;
    let name = name_of(&device);
    let settings = kira::backend::cpal::CpalBackendSettings { device: Some(device), config: None };
    let mixer = VoiceMixer::<kira::backend::cpal::CpalBackend>::new(settings).map_err(|error| error.to_string())?;
    Ok((Box::new(mixer), name))
}

/// Opens the microphone (or the input file) that `options` name, cleaned against `echo` (what
/// the speakers play), sending through `sender`. Should the device fail later (unplugged), why
/// is put in `lost`.
pub fn open_microphone(
    options: &VoiceOptions,
    control: Arc<MicControl>,
    sender: VoiceSender,
    echo: Option<EchoReference>,
    lost: Arc<Mutex<Option<String>>>,
) -> Result<(Microphone, String), String> {
    let processor = VoiceProcessor::new(echo);
    if let Some(path) = &options.input {
        let microphone = WavMicrophone::start(path, control, Some(processor), move |datagram| {
            sender.send(datagram);
        })
        .map_err(|error| error.to_string())?;
        return Ok((Microphone::File(microphone), path.display().to_string()));
    }
    let device = device(Direction::Input, options.microphone.as_deref())?;
    let name = name_of(&device);
    let config = device.default_input_config().map_err(|error| error.to_string())?;
    let mut converter = ToVoiceRate::new(config.sample_rate(), config.channels());
    let mut transmitter = Transmitter::new(control).map_err(|error| error.to_string())?.with_processor(processor);
    let mut converted = Vec::new();
    let mut send = relay(sender);
    let failed_name = name.clone();
    let stream = device
        .build_input_stream::<f32, _, _>(
            config.config(),
            move |samples: &[f32], _: &cpal::InputCallbackInfo| {
                converted.clear();
                converter.push(samples, &mut converted);
                transmitter.push(&converted, &mut send);
            },
            move |error| {
                if let Ok(mut lost) = lost.lock() {
                    *lost = Some(format!("{failed_name}: {error}"));
                }
            },
            None,
        )
        .map_err(|error| error.to_string())?;
    stream.play().map_err(|error| error.to_string())?;
    Ok((Microphone::Device(stream), name))
}

/// Hands datagrams from the audio thread to a thread of their own that sends them: sending
/// takes each connection's lock, which a sound card's callback must never wait on. The thread
/// ends when the returned function is dropped (with the stream). Should no thread start, the
/// datagrams are sent from the callback as before.
fn relay(sender: VoiceSender) -> impl FnMut(&[u8]) + Send + 'static {
    let (queue, datagrams) = std::sync::mpsc::sync_channel::<Vec<u8>>(RELAY_QUEUE);
    let thread_sender = sender.clone();
    let started = std::thread::Builder::new().name("voice send".into()).spawn(move || {
        while let Ok(datagram) = datagrams.recv() {
            thread_sender.send(&datagram);
        }
    });
    let relayed = started.is_ok();
    move |datagram: &[u8]| {
        if relayed {
            let _ = queue.try_send(datagram.to_vec());
        } else {
            sender.send(datagram);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_picked_by_number_or_by_name() {
        let names: Vec<String> = ["Built-in Microphone", "USB Headset", "USB Headset Pro"].map(String::from).into();
        assert_eq!(pick(&names, "2"), Some("USB Headset"));
        assert_eq!(pick(&names, "0"), None, "counted from 1");
        assert_eq!(pick(&names, "4"), None);
        assert_eq!(pick(&names, "usb headset pro"), Some("USB Headset Pro"));
        assert_eq!(pick(&names, "usb headset"), Some("USB Headset"), "an exact name before a longer one");
        assert_eq!(pick(&names, "built"), Some("Built-in Microphone"));
        assert_eq!(pick(&names, "bluetooth"), None);
        assert_eq!(pick(&names, "  "), None);
        assert_eq!(pick(&names, "99999999999999999999999"), None, "a number too large for anything");
    }

    #[test]
    fn a_missing_input_file_is_a_clear_error() {
        let options = VoiceOptions { input: Some("/nowhere/speech.wav".into()), ..VoiceOptions::default() };
        let control = Arc::new(MicControl::default());
        let sender = VoiceSender::default();
        let result = open_microphone(&options, control, sender, None, Arc::default());
        let Err(why) = result else { panic!("a file that is not there opened") };
        assert!(why.contains("/nowhere/speech.wav"), "{why}");
    }
}
