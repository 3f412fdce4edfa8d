//! The cinema's panel (F8, or the VR menu's Cinema): what the screen shows, the queue and who
//! controls it, who sent us the film and whom we sent it to; the controller's buttons (play or
//! pause, ten seconds back or on, the next film, control handed to someone here), one's own
//! pause and rejoining the room's, and the films in the Videos folder to share without typing a
//! path (in a headset there is no keyboard).

use std::path::{Path, PathBuf};

use bevy::prelude::*;
use sanctuary_engine::PublicKey;
use sanctuary_net::Command;
use sanctuary_net::screen::ScreenAction;

use crate::Frame;
use crate::cinema::{Cinema, share_command};
use crate::network::{ChatInput, NetLink, Social, people_here};
use crate::panels::{PanelAction, PanelContent, PanelPressed, PanelSlot, PanelSpec, Tone};

/// Films offered from the Videos folder, at most.
pub const MAX_OFFERED: usize = 6;
/// People offered control, at most.
const MAX_HEIRS: usize = 3;
/// How far the back and on buttons move, in seconds.
const STEP_SECONDS: f64 = 10.0;

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<CinemaPanel>().add_systems(
        Update,
        (use_panel.in_set(Frame::Input).run_if(resource_exists::<NetLink>), fill_panel.in_set(Frame::Present)),
    );
}

/// Whether the panel is open, and the films it offers.
#[derive(Resource, Debug, Default)]
pub struct CinemaPanel {
    /// Open (F8).
    pub open: bool,
    /// Films found in the Videos folder when it opened.
    pub films: Vec<PathBuf>,
}

impl CinemaPanel {
    /// The panel open, offering the films in the Videos folder.
    pub fn opened() -> Self {
        Self { open: true, films: videos_dir().map(|dir| films_in(&dir)).unwrap_or_default() }
    }
}

/// The folder films are offered from: `XDG_VIDEOS_DIR`, else `~/Videos`.
fn videos_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_VIDEOS_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join("Videos")))
}

/// The films in `dir` (by their extension), sorted by name, at most [`MAX_OFFERED`]; none when
/// it cannot be read.
pub fn films_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut films: Vec<PathBuf> = entries
        .flatten()
        .take(4096)
        .map(|entry| entry.path())
        .filter(|path| {
            path.is_file()
                && path.extension().and_then(|extension| extension.to_str()).is_some_and(|extension| {
                    ["mp4", "m4v", "mov", "mkv", "webm"].contains(&extension.to_ascii_lowercase().as_str())
                })
        })
        .collect();
    films.sort();
    films.truncate(MAX_OFFERED);
    films
}

/// Megabytes, for people.
fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// The panel, for the desktop overlay and the VR panel alike. `name` names a key (ours as
/// "you"); `present` are the people here, who may be handed control.
pub fn cinema_spec(
    cinema: &Cinema,
    name: &dyn Fn(&[u8; 32]) -> String,
    films: &[PathBuf],
    present: &[(PublicKey, String)],
) -> PanelSpec {
    let mut spec = PanelSpec::new("CINEMA (F8): the screen");
    let showing = cinema.view.as_ref().and_then(|view| view.state.film().map(|film| (view, film)));
    match showing {
        None => {
            spec.line(Tone::Plain, "Nothing is on the screen.");
            spec.line(Tone::Hint, "/play PATH shares a film (MP4, Matroska or WebM, H.264 inside)");
        }
        Some((view, film)) => {
            let seconds = view.position_now().max(0.0) as u64;
            let state = if view.state.clock.playing() { "playing" } else { "paused" };
            spec.line(
                Tone::Good,
                format!(
                    "{} (shared by {}), {state} at {}:{:02}",
                    film.name,
                    name(&film.by),
                    seconds / 60,
                    seconds % 60
                ),
            );
            spec.line(Tone::Plain, format!("Controlled by {}.", name(&view.state.controller)));
            let waiting = view.state.queue.iter().skip(view.state.current as usize + 1);
            for (n, queued) in waiting.enumerate() {
                spec.line(Tone::Plain, format!("{}. {} (by {})", n + 1, queued.name, name(&queued.by)));
            }
            if let Some(own) = cinema.own_position() {
                let own = own.max(0.0) as u64;
                spec.line(Tone::Warn, format!("You paused your own view at {}:{:02}.", own / 60, own % 60));
            }
            if let Some(problem) = &cinema.problem {
                spec.line(Tone::Warn, problem.clone());
            }
        }
    }
    if let Some(progress) = cinema.progress() {
        let mut line = format!("Here: {} of {}", megabytes(progress.held), megabytes(progress.size));
        if progress.buffering {
            line.push_str(", buffering");
        }
        spec.line(if progress.buffering { Tone::Warn } else { Tone::Plain }, line);
        let from: Vec<String> = progress
            .from
            .iter()
            .map(|(key, served)| format!("{} {} in {} ranges", name(key), megabytes(served.bytes), served.ranges.len()))
            .collect();
        if !from.is_empty() {
            spec.line(Tone::Plain, format!("Sent by: {}", from.join(", ")));
        }
    }
    if let Some(counts) = cinema.uploads() {
        let mut to: Vec<(&[u8; 32], &u64)> = counts.to.iter().collect();
        to.sort_by(|a, b| b.1.cmp(a.1));
        let top: Vec<String> =
            to.iter().take(3).map(|(key, bytes)| format!("{} {}", name(key), megabytes(**bytes))).collect();
        let rest = if to.len() > 3 { format!(" and {} more", to.len() - 3) } else { String::new() };
        spec.line(
            Tone::Plain,
            format!(
                "You sent {} in all{}{}{rest}",
                megabytes(counts.total),
                if top.is_empty() { "" } else { ": " },
                top.join(", ")
            ),
        );
    }
    if let Some((view, _)) = showing {
        if view.ours {
            let playing = view.state.clock.playing();
            spec.button(if playing { "Pause" } else { "Play" }, PanelAction::ScreenPlayPause);
            spec.button("-10 s", PanelAction::ScreenBack);
            spec.button("+10 s", PanelAction::ScreenOn);
            if view.state.queue.len() > view.state.current as usize + 1 {
                spec.button("Next film", PanelAction::ScreenNext);
            }
            for (index, (_, person)) in present.iter().take(MAX_HEIRS).enumerate() {
                spec.button(format!("Give to {person}"), PanelAction::ScreenHandOver(index as u8));
            }
        }
        let own = if cinema.own_position().is_some() { "Rejoin the room" } else { "Pause my view" };
        spec.button(own, PanelAction::OwnView);
    }
    if films.is_empty() {
        spec.line(Tone::Hint, "Films in your Videos folder are offered here to share.");
    }
    for (index, film) in films.iter().enumerate() {
        let label = film.file_name().map_or_else(|| film.display().to_string(), |name| name.to_string_lossy().into());
        spec.button(format!("Share {label}"), PanelAction::ShareFound(index as u8));
    }
    spec.button("Close", PanelAction::ToggleCinema);
    spec
}

/// The person's name for a key, from who is here.
fn namer<'a>(social: &'a Social) -> impl Fn(&[u8; 32]) -> String + 'a {
    move |key: &[u8; 32]| {
        if social.me.is_some_and(|me| me.as_bytes() == key) {
            return "you".to_owned();
        }
        PublicKey::from_bytes(*key)
            .ok()
            .and_then(|key| social.crowd.get(&key).map(|person| person.name.clone()))
            .unwrap_or_else(|| format!("{}…", key.iter().take(3).map(|byte| format!("{byte:02x}")).collect::<String>()))
    }
}

/// F8 (or the VR menu's Cinema) opens and closes the panel; its buttons move the screen, pause
/// one's own view, or share a film found.
#[allow(clippy::too_many_arguments)]
fn use_panel(
    keys: Res<ButtonInput<KeyCode>>,
    mut input: ResMut<ChatInput>,
    mut pressed: MessageReader<PanelPressed>,
    mut panel: ResMut<CinemaPanel>,
    mut cinema: ResMut<Cinema>,
    mut social: ResMut<Social>,
    link: Res<NetLink>,
) {
    let mut toggle = keys.just_pressed(KeyCode::F8) && !input.open;
    if std::mem::take(&mut input.own_view) {
        cinema.toggle_own_view();
    }
    let mut actions = Vec::new();
    for PanelPressed(action) in pressed.read() {
        match action {
            PanelAction::ToggleCinema => toggle = !toggle,
            other if panel.open => actions.push(*other),
            _ => {}
        }
    }
    if toggle {
        *panel = if panel.open { CinemaPanel::default() } else { CinemaPanel::opened() };
    }
    let position = cinema.view.as_ref().map(|view| view.position_now());
    for action in actions {
        let command = match action {
            PanelAction::ScreenPlayPause => {
                let playing = cinema.view.as_ref().is_some_and(|view| view.state.clock.playing());
                Some(Command::Screen(if playing { ScreenAction::Pause } else { ScreenAction::Play }))
            }
            PanelAction::ScreenBack => {
                position.map(|at| Command::Screen(ScreenAction::Seek((at - STEP_SECONDS).max(0.0))))
            }
            PanelAction::ScreenOn => position.map(|at| Command::Screen(ScreenAction::Seek(at + STEP_SECONDS))),
            PanelAction::ScreenNext => Some(Command::Screen(ScreenAction::Next)),
            PanelAction::ScreenHandOver(index) => people_here(&social).get(usize::from(index)).map(|(key, person)| {
                social.notice(format!("the screen is handed to {person}"));
                Command::Screen(ScreenAction::HandOver(*key.as_bytes()))
            }),
            PanelAction::OwnView => {
                cinema.toggle_own_view();
                None
            }
            PanelAction::ShareFound(index) => {
                panel.films.get(usize::from(index)).cloned().and_then(|film| share_command(&film, &mut social))
            }
            _ => None,
        };
        if let Some(command) = command {
            link.send(command);
        }
    }
}

fn fill_panel(
    panel: Res<CinemaPanel>,
    cinema: Res<Cinema>,
    social: Option<Res<Social>>,
    mut panels: Query<(&PanelSlot, &mut PanelContent)>,
) {
    let Some(social) = social else { return };
    for (slot, mut content) in &mut panels {
        if *slot != PanelSlot::Cinema {
            continue;
        }
        let spec = panel.open.then(|| cinema_spec(&cinema, &namer(&social), &panel.films, &people_here(&social)));
        if content.0 != spec {
            content.0 = spec;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn films_are_offered_from_a_folder_by_their_extension() {
        let dir = tempfile::tempdir().expect("temp dir");
        for name in ["b.mkv", "a.MP4", "notes.txt", "c.webm", "d.mov", "e.m4v", "f.mp4", "g.mp4"] {
            std::fs::write(dir.path().join(name), b"x").expect("writes");
        }
        std::fs::create_dir(dir.path().join("folder.mp4")).expect("a folder");
        let names: Vec<String> = films_in(dir.path())
            .iter()
            .map(|path| path.file_name().expect("a name").to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.MP4", "b.mkv", "c.webm", "d.mov", "e.m4v", "f.mp4"]);
        assert!(films_in(&dir.path().join("missing")).is_empty());
    }

    #[test]
    fn the_controller_gets_the_screens_buttons_and_a_viewer_only_their_own_view() {
        use sanctuary_engine::{RegionId, RoomKind};
        use sanctuary_net::ScreenView;
        use sanctuary_net::screen::{FilmEntry, ScreenState};
        let ada = PublicKey::from_secret_seed(&[1; 32]);
        let bo = PublicKey::from_secret_seed(&[2; 32]);
        let film = |name: &str, by: &PublicKey| FilmEntry {
            hash: [9; 32],
            bytes: 1000,
            name: name.into(),
            by: *by.as_bytes(),
        };
        let state = ScreenState::new(*ada.as_bytes()).queue(film("trip.mp4", &ada), 0, u64::MAX).expect("queues");
        let state = state.queue(film("sea.mkv", &bo), 0, u64::MAX).expect("queues");
        let mut cinema = Cinema::default();
        let view = ScreenView { region: RegionId::Room(RoomKind::Cinema), state, offset_us: 0, ours: true };
        cinema.view = Some(view.clone());
        let name = |key: &[u8; 32]| if key == ada.as_bytes() { "you".to_owned() } else { "Bo".to_owned() };
        let here = vec![(bo, "Bo".to_owned())];
        let spec = cinema_spec(&cinema, &name, &[], &here);
        let text = spec.text();
        assert!(text.contains("trip.mp4 (shared by you), playing"), "{text}");
        assert!(text.contains("Controlled by you.") && text.contains("1. sea.mkv (by Bo)"), "{text}");
        for action in [
            PanelAction::ScreenPlayPause,
            PanelAction::ScreenBack,
            PanelAction::ScreenOn,
            PanelAction::ScreenNext,
            PanelAction::ScreenHandOver(0),
            PanelAction::OwnView,
        ] {
            assert!(spec.offers(action), "{action:?} is not offered");
        }
        // A viewer who does not control it: only their own view.
        cinema.view = Some(ScreenView { ours: false, ..view });
        let spec = cinema_spec(&cinema, &name, &[], &here);
        assert!(spec.offers(PanelAction::OwnView) && !spec.offers(PanelAction::ScreenPlayPause));
        cinema.toggle_own_view();
        let spec = cinema_spec(&cinema, &name, &[], &here);
        assert!(spec.text().contains("You paused your own view"), "{}", spec.text());
        assert!(spec.buttons.iter().any(|(label, _)| label == "Rejoin the room"));
        cinema.toggle_own_view();
        assert_eq!(cinema.own_position(), None, "rejoined");
    }

    #[test]
    fn an_empty_screen_says_how_to_share_and_offers_the_films_found() {
        let cinema = Cinema::default();
        let films = vec![PathBuf::from("/videos/trip.mp4")];
        let spec = cinema_spec(&cinema, &|_| "someone".into(), &films, &[]);
        assert!(spec.text().contains("Nothing is on the screen") && spec.text().contains("/play PATH"));
        assert!(spec.offers(PanelAction::ShareFound(0)) && spec.offers(PanelAction::ToggleCinema));
        assert!(!spec.offers(PanelAction::ScreenPlayPause), "no screen buttons without a film");
    }
}
