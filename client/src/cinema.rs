//! The cinema's screen in the client: the shared screen's state and the film showing come from
//! the node (`Event::Screen`, `Event::Film`); the film is opened off the main thread (opening
//! reads its index, which may still be arriving), decoded by a [`Player`] on its own thread,
//! and the picture due at the shared position goes onto the screen's texture each frame. A jump
//! in the shared position (a seek, a late start) seeks the player.
//!
//! `/play PATH` shares a film; `/screen play|pause|next|seek SECONDS` moves the screen for
//! whoever controls it.

use std::sync::mpsc::{Receiver, TryRecvError};

use bevy::asset::RenderAssetUsages;
use bevy::platform::cell::SyncCell;
use bevy::prelude::*;
use bevy::render::render_resource::{Extent3d, TextureDimension, TextureFormat};
use sanctuary_engine::Surface;
use std::collections::VecDeque;

use sanctuary_net::films::{FilmProgress, FilmSource};
use sanctuary_net::screen::ScreenAction;
use sanctuary_net::uploads::{UploadCounts, Uploads};
use sanctuary_net::{Command, Event, ScreenView};
use sanctuary_video::{Film, FilmError, Limits, Picture, Player, PlayerState, Sound};
use sanctuary_voice::film_sound::FilmFeed;

use crate::Frame;
use crate::materials::ScreenMaterial;
use crate::network::NetLink;
use crate::world::StructureView;

/// How far the player may be from the shared position before it seeks, in seconds.
const SEEK_WHEN_OFF_BY: f64 = 1.0;
/// How far ahead of the shared position a seek aims, so that the decoder arrives in time.
const SEEK_LEAD: f64 = 0.3;
/// The least time between two seeks of our own: a decoder that cannot keep up is not sent
/// seeking every frame.
const SEEK_EVERY: std::time::Duration = std::time::Duration::from_secs(3);

/// The screen as this client shows it.
#[derive(Resource, Default)]
pub struct Cinema {
    /// The shared state, as the node last said.
    pub view: Option<ScreenView>,
    /// The film showing.
    source: Option<FilmSource>,
    /// The film being opened off the main thread.
    opening: Option<SyncCell<Receiver<Result<Film, FilmError>>>>,
    player: Option<SyncCell<Player>>,
    /// Why the film cannot be shown, if it cannot.
    pub problem: Option<String>,
    /// The texture the screen shows, and its size.
    image: Option<(Handle<Image>, UVec2)>,
    /// The time of the picture on it.
    shown: Option<f64>,
    /// When we last sent the player seeking.
    sought: Option<std::time::Instant>,
    /// Where one's own view is paused, apart from the room's (`None`: following the room).
    own: Option<f64>,
    /// What our node uploads, counted per peer.
    uploads: Option<Uploads>,
    /// The film's sound decoded and not yet played, oldest first.
    sounds: VecDeque<Sound>,
    /// The film's sound as it goes to the speakers, and the film and seek it belongs to.
    feed: Option<(SyncCell<FilmFeed>, [u8; 32], Option<std::time::Instant>)>,
    /// The state version at which we (controlling the screen) last moved on from a film's end.
    moved_on_at: Option<u64>,
}

impl Cinema {
    /// Takes what the node says about the screen.
    pub fn take(&mut self, event: &Event) {
        match event {
            Event::Screen(view) => self.view = Some(view.clone()),
            Event::Film(source) => self.open(source.clone()),
            Event::Started { uploads, .. } => self.uploads = Some(uploads.clone()),
            _ => {}
        }
    }

    fn open(&mut self, source: FilmSource) {
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        let reading = source.clone();
        let started = std::thread::Builder::new().name("film opener".into()).spawn(move || {
            let size = reading.size();
            let _ = sender.send(Film::from_seekable(move || reading.reader(), size, Limits::default()));
        });
        self.problem = started.err().map(|error| format!("the film cannot be opened: {error}"));
        self.source = Some(source);
        self.opening = Some(SyncCell::new(receiver));
        self.player = None;
        self.shown = None;
        self.sought = None;
        self.own = None;
        self.sounds.clear();
    }

    /// When we control the screen and the film playing for the room has ended: the next film
    /// in the queue, or a pause at the end when none is queued. Once per state.
    pub fn at_the_end(&mut self) -> Option<ScreenAction> {
        let view = self.view.as_ref()?;
        if self.own.is_some() || self.moved_on_at == Some(view.state.version) {
            return None;
        }
        let ended = matches!(self.player.as_mut()?.get().state(), PlayerState::Ended);
        let action = move_on(view, ended)?;
        self.moved_on_at = Some(view.state.version);
        Some(action)
    }

    /// Where one's own view is paused, if it is.
    pub fn own_position(&self) -> Option<f64> {
        self.own
    }

    /// Pauses one's own view where the room's is, or rejoins the room's.
    pub fn toggle_own_view(&mut self) {
        self.own = match self.own {
            Some(_) => None,
            None => self.view.as_ref().map(ScreenView::position_now),
        };
    }

    /// How the film's fetch stands.
    pub fn progress(&self) -> Option<FilmProgress> {
        self.source.as_ref().map(FilmSource::progress)
    }

    /// What our node uploaded so far.
    pub fn uploads(&self) -> Option<UploadCounts> {
        self.uploads.as_ref().map(Uploads::counts)
    }

    /// Where the film is for us now: our own paused place, or the room's.
    fn position(&self) -> Option<f64> {
        self.own.or_else(|| self.view.as_ref().map(ScreenView::position_now))
    }

    /// Whether the film plays for us now (the room's plays and we follow it).
    fn playing(&self) -> bool {
        self.own.is_none() && self.view.as_ref().is_some_and(|view| view.state.clock.playing())
    }

    /// The picture due now, if it changed since the last one shown.
    fn due_picture(&mut self) -> Option<Picture> {
        if let Some(opening) = &mut self.opening {
            match opening.get().try_recv() {
                Ok(Ok(film)) => {
                    self.player = Some(SyncCell::new(Player::new(film)));
                    self.opening = None;
                }
                Ok(Err(error)) => {
                    self.problem = Some(error.to_string());
                    self.opening = None;
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => self.opening = None,
            }
        }
        let position = self.position()?;
        let lead = if self.playing() { SEEK_LEAD } else { 0.0 };
        let player = self.player.as_mut()?.get();
        while let Some(sound) = player.take_sound() {
            self.sounds.push_back(sound);
            if self.sounds.len() > sanctuary_video::MAX_SOUND_BLOCKS {
                self.sounds.pop_front();
            }
        }
        // Far from the shared position (a seek, a late start, a decoder that fell behind): seek,
        // but not again before the last seek had time to land.
        let at = self.shown.unwrap_or(0.0);
        let may_seek = self.sought.is_none_or(|sought| sought.elapsed() > SEEK_EVERY);
        if (at - position).abs() > SEEK_WHEN_OFF_BY && may_seek && !matches!(player.state(), PlayerState::Failed(_)) {
            player.seek(position + lead);
            self.sought = Some(std::time::Instant::now());
            self.sounds.clear();
        }
        let picture = player.picture_at(position)?;
        if self.shown == Some(picture.time) {
            return None;
        }
        self.shown = Some(picture.time);
        Some(picture.clone())
    }

    /// A line saying what the screen shows, for the HUD.
    pub fn status(&self) -> Option<String> {
        let view = self.view.as_ref()?;
        let film = view.state.film()?;
        let position = view.position_now().max(0.0) as u64;
        let state = if view.state.clock.playing() { "playing" } else { "paused" };
        let mut line = format!("{} | {state} {}:{:02}", film.name, position / 60, position % 60);
        if let Some(progress) = self.source.as_ref().map(FilmSource::progress) {
            if progress.buffering {
                line.push_str(" | buffering");
            }
            if progress.held < progress.size {
                line.push_str(&format!(" | {}% here", progress.held * 100 / progress.size.max(1)));
            }
        }
        let queued = view.state.queue.len().saturating_sub(view.state.current as usize + 1);
        if queued > 0 {
            line.push_str(&format!(" | {queued} queued"));
        }
        line.push_str(if view.ours { " | you control it" } else { "" });
        if let Some(own) = self.own {
            let own = own.max(0.0) as u64;
            line.push_str(&format!(" | your view paused at {}:{:02}", own / 60, own % 60));
        }
        if let Some(problem) = &self.problem {
            line = format!("{}: {problem}", film.name);
        }
        Some(line)
    }
}

/// What `/screen` was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum ScreenWord {
    /// Move the room's screen (the controller only).
    Action(ScreenAction),
    /// Hand control to the person of this name.
    Give(String),
    /// Pause one's own view, or rejoin the room's.
    Own,
}

/// The films `/play` takes: opened here first (its index read), so that a file that is not a
/// film, or not one Sanctuary plays, is refused with the reason before it is shared.
pub fn share_command(path: &std::path::Path, social: &mut crate::network::Social) -> Option<Command> {
    match Film::from_file(path, Limits::default()) {
        Ok(_) => {
            social.notice(format!("sharing {} on the screen...", path.display()));
            Some(Command::ShareFilm(path.to_owned()))
        }
        Err(error) => {
            social.notice(format!("{}: {error}", path.display()));
            None
        }
    }
}

/// The screen action typed after `/screen`.
pub fn screen_action(text: &str) -> Result<ScreenWord, String> {
    let mut words = text.split_whitespace();
    let usage =
        "usage: /screen play | pause | next | seek SECONDS (or M:SS) | give NAME | own (pause or rejoin your own view)";
    match words.next() {
        Some("play") => Ok(ScreenWord::Action(ScreenAction::Play)),
        Some("pause") => Ok(ScreenWord::Action(ScreenAction::Pause)),
        Some("next") => Ok(ScreenWord::Action(ScreenAction::Next)),
        Some("own" | "rejoin") => Ok(ScreenWord::Own),
        Some("give") => {
            let name: Vec<&str> = words.collect();
            if name.is_empty() { Err(usage.into()) } else { Ok(ScreenWord::Give(name.join(" "))) }
        }
        Some("seek") => {
            let at = words.next().ok_or(usage)?;
            let seconds = match at.split_once(':') {
                Some((minutes, seconds)) => minutes
                    .parse::<u32>()
                    .ok()
                    .zip(seconds.parse::<f64>().ok())
                    .map(|(minutes, seconds)| f64::from(minutes) * 60.0 + seconds),
                None => at.parse::<f64>().ok(),
            };
            match seconds {
                Some(seconds) if seconds.is_finite() && seconds >= 0.0 => {
                    Ok(ScreenWord::Action(ScreenAction::Seek(seconds)))
                }
                _ => Err(usage.into()),
            }
        }
        _ => Err(usage.into()),
    }
}

/// Marks a screen that shows the film's texture.
#[derive(Component)]
struct ShowingFilm;

/// Puts the picture due onto the screen's texture, and the texture onto the cinema's screen.
fn show_film(
    mut commands: Commands,
    mut cinema: ResMut<Cinema>,
    mut images: ResMut<Assets<Image>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
    screens: Query<(Entity, &StructureView), (With<MeshMaterial3d<ScreenMaterial>>, Without<ShowingFilm>)>,
) {
    let Some(picture) = cinema.due_picture() else { return };
    let size = UVec2::new(picture.width, picture.height);
    let fresh = || {
        Image::new(
            Extent3d { width: size.x, height: size.y, depth_or_array_layers: 1 },
            TextureDimension::D2,
            picture.rgba.clone(),
            TextureFormat::Rgba8UnormSrgb,
            RenderAssetUsages::RENDER_WORLD,
        )
    };
    // One image for every film: the screen's material keeps pointing at it when the next film
    // is of another size (its contents are replaced then, not its handle).
    let handle = match &cinema.image {
        Some((handle, held)) if *held == size => {
            if let Some(mut image) = images.get_mut(handle) {
                image.data = Some(picture.rgba.clone());
            }
            handle.clone()
        }
        Some((handle, _)) => {
            let handle = handle.clone();
            if images.insert(&handle, fresh()).is_err() {
                warn!("the screen's picture could not be replaced");
            }
            cinema.image = Some((handle.clone(), size));
            handle
        }
        None => {
            let handle = images.add(fresh());
            cinema.image = Some((handle.clone(), size));
            handle
        }
    };
    for (entity, StructureView(structure)) in &screens {
        if structure.surface != Surface::Screen {
            continue;
        }
        let material = materials.add(crate::materials::picture_on_screen(handle.clone()));
        commands
            .entity(entity)
            .remove::<MeshMaterial3d<ScreenMaterial>>()
            .insert((MeshMaterial3d(material), ShowingFilm));
    }
}

/// What the screen's controller does when the film playing has `ended`: the next film in the
/// queue, or a pause at the end when none is queued. Nothing for anyone else.
fn move_on(view: &ScreenView, ended: bool) -> Option<ScreenAction> {
    if !ended || !view.ours || !view.state.clock.playing() {
        return None;
    }
    let more = view.state.queue.len() > view.state.current as usize + 1;
    Some(if more { ScreenAction::Next } else { ScreenAction::Pause })
}

/// Moves on when the film ends, if we control the screen.
fn move_on_at_the_end(mut cinema: ResMut<Cinema>, link: Option<Res<NetLink>>) {
    if let (Some(action), Some(link)) = (cinema.at_the_end(), link) {
        link.send(Command::Screen(action));
    }
}

/// Fits the screen showing the film to the film's shape, as a cinema's masking does: a film
/// wider or narrower than the screen shows whole at its own shape, centred, as large as the
/// screen allows, instead of stretched to fill it.
fn fit_screen(cinema: Res<Cinema>, mut screens: Query<(&StructureView, &mut Transform), With<ShowingFilm>>) {
    let Some((_, size)) = &cinema.image else { return };
    for (StructureView(structure), mut transform) in &mut screens {
        let full = structure.placement.scale;
        let scale = fitted(full.truncate(), *size).extend(full.z);
        if transform.scale != scale {
            transform.scale = scale;
        }
    }
}

/// The largest size of `picture`'s shape within `screen` (the screen's own size when the
/// picture has none).
pub(crate) fn fitted(screen: Vec2, picture: UVec2) -> Vec2 {
    if picture.x == 0 || picture.y == 0 || screen.x <= 0.0 || screen.y <= 0.0 {
        return screen;
    }
    let aspect = picture.x as f32 / picture.y as f32;
    if aspect >= screen.x / screen.y {
        Vec2::new(screen.x, screen.x / aspect)
    } else {
        Vec2::new(screen.y * aspect, screen.y)
    }
}

/// The cinema's systems.
pub fn plugin(app: &mut App) {
    app.init_resource::<Cinema>().add_systems(
        Update,
        (show_film, fit_screen, move_on_at_the_end, play_film_sound).chain().in_set(Frame::Present),
    );
}

/// How much sound is kept waiting for the speakers: enough to bridge a slow frame, little
/// enough that a seek or a pause is heard at once.
const SOUND_AHEAD: f64 = 0.15;

/// Hands the film's sound that is due to the speakers, from the screen: blocks in order while
/// less than [`SOUND_AHEAD`] waits, each due where what waits ends (so that it is heard with
/// its picture), none while paused; blocks whose time has passed are dropped. A new film, a seek or playing again after a pause starts a fresh track,
/// so that what was queued for before is not heard.
fn play_film_sound(
    io: Option<NonSendMut<crate::voice::VoiceIo>>,
    mut cinema: ResMut<Cinema>,
    screens: Query<(&GlobalTransform, &StructureView)>,
) {
    let Some(mut io) = io else { return };
    let Some(mixer) = io.mixer.as_mut() else { return };
    let (Some(film), Some(position)) = (cinema.source.as_ref().map(FilmSource::hash), cinema.position()) else {
        cinema.feed = None;
        return;
    };
    if !cinema.playing() {
        cinema.sounds.clear();
        cinema.feed = None;
        return;
    }
    let sought = cinema.sought;
    if cinema.feed.as_ref().is_none_or(|(_, playing, fed_since)| *playing != film || *fed_since != sought) {
        // The old track ends as its feed goes.
        cinema.feed = None;
        let screen = screens.iter().find(|(_, StructureView(structure))| structure.surface == Surface::Screen);
        let Some((at, _)) = screen else { return };
        match mixer.play_film(at.translation().to_array()) {
            Ok(feed) => cinema.feed = Some((SyncCell::new(feed), film, sought)),
            Err(error) => {
                warn!("the film's sound cannot be played: {error}");
                return;
            }
        }
    }
    let Cinema { feed, sounds, .. } = &mut *cinema;
    let Some((feed, _, _)) = feed.as_mut() else { return };
    let feed = feed.get();
    // What waits in the ring plays first: the next block is due where it ends.
    let mut waiting = feed.waiting_seconds();
    while let Some(sound) = sounds.front() {
        let length = sound.samples.len() as f64 / f64::from(sound.channels.max(1)) / f64::from(sound.rate.max(1));
        if sound.time + length < position + waiting {
            sounds.pop_front();
        } else if waiting < SOUND_AHEAD {
            feed.push(&sound.samples, sound.rate, sound.channels);
            waiting += length;
            sounds.pop_front();
        } else {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_controller_moves_on_when_the_film_ends() {
        use sanctuary_net::screen::{FilmEntry, ScreenState};
        let film = |seed: u8| FilmEntry { hash: [seed; 32], bytes: 1000, name: format!("film {seed}"), by: [1; 32] };
        let one = ScreenState::new([1; 32]).queue(film(1), 0, u64::MAX).expect("queues");
        let two = one.queue(film(2), 0, u64::MAX).expect("queues");
        let view = |state: &ScreenState, ours: bool| ScreenView {
            region: sanctuary_engine::RegionId::Room(sanctuary_engine::RoomKind::Cinema),
            state: state.clone(),
            offset_us: 0,
            ours,
        };
        assert_eq!(move_on(&view(&two, true), true), Some(ScreenAction::Next), "the next film queued plays");
        assert_eq!(move_on(&view(&one, true), true), Some(ScreenAction::Pause), "the last film stops at its end");
        assert_eq!(move_on(&view(&two, true), false), None, "a film still playing plays on");
        assert_eq!(move_on(&view(&two, false), true), None, "only the controller moves on");
        let paused = one.apply(&ScreenAction::Pause, 0).expect("pauses");
        assert_eq!(move_on(&view(&paused, true), true), None, "a paused film stays");
    }

    #[test]
    fn a_film_keeps_its_shape_on_the_screen() {
        let screen = Vec2::new(16.0, 8.0);
        let near = |got: Vec2, want: Vec2| (got - want).abs().max_element() < 1e-4;
        assert!(near(fitted(screen, UVec2::new(1280, 720)), Vec2::new(8.0 * 16.0 / 9.0, 8.0)), "16:9 on a 2:1 screen");
        assert!(near(fitted(screen, UVec2::new(640, 480)), Vec2::new(8.0 * 4.0 / 3.0, 8.0)), "4:3 is pillarboxed");
        assert!(near(fitted(screen, UVec2::new(2400, 1000)), Vec2::new(16.0, 16.0 / 2.4)), "2.4:1 is letterboxed");
        assert_eq!(fitted(screen, UVec2::new(1600, 800)), screen, "the screen's own shape fills it");
        assert_eq!(fitted(screen, UVec2::new(0, 720)), screen, "a picture of no size changes nothing");
    }

    #[test]
    fn control_is_given_by_name_to_someone_here() {
        use crate::network::person_named;
        use sanctuary_net::{PoseFrame, Presence, QuantisedTransform};
        let mut social = crate::network::Social::default();
        let still = QuantisedTransform::new(Vec3::ZERO, Quat::IDENTITY);
        let pose = PoseFrame { head: still, left_hand: still, right_hand: still };
        for (seed, name) in [(1u8, "Ada"), (2, "Adam"), (3, "Bo")] {
            let key = sanctuary_engine::PublicKey::from_secret_seed(&[seed; 32]);
            social.crowd.insert(key, 1, &Presence { name: name.into(), colour: [1, 2, 3], pose }, 1);
        }
        let key = |seed: u8| sanctuary_engine::PublicKey::from_secret_seed(&[seed; 32]);
        assert_eq!(person_named(&social, "ada"), Ok(key(1)), "a whole name, case aside");
        assert_eq!(person_named(&social, "b"), Ok(key(3)), "a unique beginning");
        assert!(person_named(&social, "ad").is_err_and(|error| error.contains("several")));
        assert!(person_named(&social, "Cy").is_err_and(|error| error.contains("nobody")));
        assert!(person_named(&social, "  ").is_err());
    }

    #[test]
    fn screen_actions_are_read_from_what_was_typed() {
        let action = |action| Ok(ScreenWord::Action(action));
        assert_eq!(screen_action("play"), action(ScreenAction::Play));
        assert_eq!(screen_action(" pause "), action(ScreenAction::Pause));
        assert_eq!(screen_action("next"), action(ScreenAction::Next));
        assert_eq!(screen_action("seek 90"), action(ScreenAction::Seek(90.0)));
        assert_eq!(screen_action("seek 1:30.5"), action(ScreenAction::Seek(90.5)));
        assert_eq!(screen_action("give Ada Lovelace"), Ok(ScreenWord::Give("Ada Lovelace".into())));
        assert_eq!(screen_action("own"), Ok(ScreenWord::Own));
        for bad in ["", "seek", "seek -3", "seek NaN", "seek inf", "seek 1:x", "rewind", "give"] {
            assert!(screen_action(bad).is_err(), "{bad:?} was taken");
        }
    }
}
