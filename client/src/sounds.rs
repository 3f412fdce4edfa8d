//! The world's own sounds: each region's ambience, and a sound for a portal taken, a build
//! placed and a payment sent. Made with sox by `assets/sounds/make.sh` (CC0) and built into the
//! program, so nothing is looked for on disk. Played through voice's output (so the echo
//! canceller hears them too); without an output there is nothing to play them on, and nothing
//! else changes.

use bevy::prelude::*;
use sanctuary_engine::RegionId;
use sanctuary_voice::clip::Clip;

use crate::cues::SoundCue;
use crate::voice::VoiceIo;
use crate::world::CurrentRegion;

/// How loud the ambience plays (its files are already quiet).
const AMBIENCE_VOLUME: f32 = 1.0;
/// How loud a cue plays.
const CUE_VOLUME: f32 = 0.7;
/// Cues played per frame at most.
const CUES_PER_FRAME: usize = 4;

/// Every sound, decoded once.
pub struct WorldSounds {
    portal: Clip,
    placed: Clip,
    paid: Clip,
    lobby: Clip,
    city: Clip,
    room: Clip,
}

impl std::fmt::Debug for WorldSounds {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("WorldSounds").finish_non_exhaustive()
    }
}

impl WorldSounds {
    /// Decodes the sounds built into the program.
    pub fn load() -> Result<Self, String> {
        let clip = |name: &str, bytes: &[u8]| Clip::from_wav(name, bytes).map_err(|error| error.to_string());
        let bed =
            |name: &str, bytes: &[u8]| clip(name, bytes).map(|clip| clip.looped(std::time::Duration::from_secs(1)));
        Ok(Self {
            portal: clip("portal.wav", include_bytes!("../../assets/sounds/portal.wav"))?,
            placed: clip("place.wav", include_bytes!("../../assets/sounds/place.wav"))?,
            paid: clip("payment.wav", include_bytes!("../../assets/sounds/payment.wav"))?,
            lobby: bed("lobby.wav", include_bytes!("../../assets/sounds/lobby.wav"))?,
            city: bed("city.wav", include_bytes!("../../assets/sounds/city.wav"))?,
            room: bed("room.wav", include_bytes!("../../assets/sounds/room.wav"))?,
        })
    }

    /// The sound for `cue`.
    pub fn cue(&self, cue: SoundCue) -> &Clip {
        match cue {
            SoundCue::Portal => &self.portal,
            SoundCue::Placed => &self.placed,
            SoundCue::Paid => &self.paid,
        }
    }

    /// The ambience of `region`.
    pub fn ambience(&self, region: RegionId) -> &Clip {
        match region {
            RegionId::Lobby => &self.lobby,
            RegionId::City => &self.city,
            RegionId::Room(_) => &self.room,
        }
    }
}

/// Plays the cues written this frame, and the ambience of the region the person is in (a
/// portal's sound when it changes).
pub(crate) fn play_world_sounds(
    mut io: NonSendMut<VoiceIo>,
    sounds: NonSend<WorldSounds>,
    region: Option<Res<CurrentRegion>>,
    mut cues: MessageReader<SoundCue>,
    mut playing: Local<Option<RegionId>>,
) {
    let Some(mixer) = io.mixer.as_mut() else {
        cues.clear();
        return;
    };
    let here = region.map(|region| region.id());
    if here != *playing {
        if playing.is_some() && here.is_some() {
            let _ = mixer.play_clip(sounds.cue(SoundCue::Portal), CUE_VOLUME);
        }
        mixer.set_ambience(here.map(|region| sounds.ambience(region)), AMBIENCE_VOLUME);
        *playing = here;
    }
    for cue in cues.read().take(CUES_PER_FRAME) {
        let _ = mixer.play_clip(sounds.cue(*cue), CUE_VOLUME);
    }
    cues.clear();
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use sanctuary_engine::{RegionLayout, RoomKind, WORLD_SEED};
    use sanctuary_voice::playback::{Mix, PlaybackError};
    use sanctuary_voice::processing::EchoReference;

    use super::*;

    #[test]
    fn the_built_in_sounds_decode_and_are_heard() {
        let sounds = WorldSounds::load().expect("the sounds built in decode");
        for cue in [SoundCue::Portal, SoundCue::Placed, SoundCue::Paid] {
            let clip = sounds.cue(cue);
            let peak = clip.frames().iter().map(|frame| frame.left.abs()).fold(0.0, f32::max);
            assert!(clip.duration().as_secs_f32() < 2.0, "{cue:?} is a short sound");
            assert!(peak > 0.2, "{cue:?} is audible (peak {peak})");
        }
        for region in [RegionId::Lobby, RegionId::City, RegionId::Room(RoomKind::Cinema)] {
            let clip = sounds.ambience(region);
            let frames = clip.frames();
            let rms = (frames.iter().map(|frame| frame.left * frame.left).sum::<f32>() / frames.len() as f32).sqrt();
            assert!(clip.duration().as_secs_f32() >= 5.0, "{region:?}'s ambience loops over seconds");
            assert!((0.003..0.1).contains(&rms), "{region:?}'s ambience is in the background (RMS {rms})");
        }
    }

    /// An output that writes down what it was asked to play: which clip (by where its samples
    /// are) and whether as ambience.
    #[derive(Default, Clone)]
    struct Spy(Arc<Mutex<Vec<(&'static str, usize)>>>);

    impl Spy {
        fn take(&self) -> Vec<(&'static str, usize)> {
            std::mem::take(&mut *self.0.lock().expect("lock"))
        }
    }

    impl Mix for Spy {
        fn set_listener(&mut self, _: [f32; 3], _: [f32; 4]) {}
        fn heard(&mut self, _: [u8; 32], _: [f32; 3], _: &[u8], _: Instant) -> Result<(), PlaybackError> {
            Ok(())
        }
        fn place(&mut self, _: &[u8; 32], _: [f32; 3]) {}
        fn take_level(&self, _: &[u8; 32]) -> f32 {
            0.0
        }
        fn speaker_ids(&self) -> Vec<[u8; 32]> {
            Vec::new()
        }
        fn forget_quiet(&mut self) {}
        fn set_volume(&mut self, _: [u8; 32], _: f32) {}
        fn volume(&self, _: &[u8; 32]) -> f32 {
            1.0
        }
        fn take_echo_reference(&mut self) -> Option<EchoReference> {
            None
        }
        fn play_clip(&mut self, clip: &Clip, _: f32) -> Result<(), PlaybackError> {
            self.0.lock().expect("lock").push(("once", clip.frames().as_ptr() as usize));
            Ok(())
        }
        fn set_ambience(&mut self, clip: Option<&Clip>, _: f32) {
            self.0.lock().expect("lock").push(("ambience", clip.map_or(0, |clip| clip.frames().as_ptr() as usize)));
        }
        fn play_film(&mut self, _: [f32; 3]) -> Result<sanctuary_voice::film_sound::FilmFeed, PlaybackError> {
            self.0.lock().expect("lock").push(("film", 0));
            Ok(sanctuary_voice::film_sound::film_sound().1)
        }
    }

    #[test]
    fn regions_have_their_ambience_and_cues_their_sounds() {
        let spy = Spy::default();
        let mut app = App::new();
        app.add_message::<SoundCue>()
            .insert_non_send(VoiceIo::with_mixer(Box::new(spy.clone())))
            .insert_non_send(WorldSounds::load().expect("decode"))
            .add_systems(Update, play_world_sounds);
        let id = |app: &App, pick: fn(&WorldSounds) -> &Clip| {
            pick(app.world().non_send::<WorldSounds>()).frames().as_ptr() as usize
        };
        let enter = |app: &mut App, region: RegionId| {
            let layout = RegionLayout::generate(region, WORLD_SEED, 0);
            app.insert_resource(CurrentRegion { layout, entered_at: 0.0 });
        };

        app.update();
        assert!(spy.take().is_empty(), "nothing before the first region");
        enter(&mut app, RegionId::Lobby);
        app.update();
        assert_eq!(spy.take(), vec![("ambience", id(&app, |sounds| &sounds.lobby))], "arriving: no portal");
        app.world_mut().write_message(SoundCue::Paid);
        app.world_mut().write_message(SoundCue::Placed);
        app.update();
        let (paid, placed) = (id(&app, |sounds| &sounds.paid), id(&app, |sounds| &sounds.placed));
        assert_eq!(spy.take(), vec![("once", paid), ("once", placed)]);
        app.update();
        assert!(spy.take().is_empty(), "each cue once");
        enter(&mut app, RegionId::City);
        app.update();
        let (portal, city) = (id(&app, |sounds| &sounds.portal), id(&app, |sounds| &sounds.city));
        assert_eq!(spy.take(), vec![("once", portal), ("ambience", city)], "through the portal");
        for _ in 0..100 {
            app.world_mut().write_message(SoundCue::Placed);
        }
        app.update();
        assert_eq!(spy.take().len(), CUES_PER_FRAME, "a burst of cues plays a few");
    }
}
