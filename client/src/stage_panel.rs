//! The lecture hall's panel (F9, or the VR menu's Stage): who presents, the slide, the hands in
//! the order raised and who has the floor; the presenter's buttons (previous, next, the floor
//! to one of the hands or back, the stage to someone here), the audience's hand, and the
//! folders of images in the Pictures folder to present without typing a path (in a headset
//! there is no keyboard).

use std::path::{Path, PathBuf};

use bevy::prelude::*;
use sanctuary_engine::PublicKey;
use sanctuary_net::Command;
use sanctuary_net::stage::StageAction;

use crate::Frame;
use crate::network::{ChatInput, NetLink, Social, people_here};
use crate::panels::{PanelAction, PanelContent, PanelPressed, PanelSlot, PanelSpec, Tone};
use crate::pdf_slides::{PdfSlides, is_pdf};
use crate::stage::{Lecture, name_of};

/// Folders of slides offered from the Pictures folder, at most.
pub const MAX_DECKS: usize = 4;
/// Hands and people offered a button each, at most.
const MAX_NAMED: usize = 3;
/// Entries read from a folder, at most.
const MAX_ENTRIES: usize = 4096;

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<StagePanel>().add_systems(
        Update,
        (use_panel.in_set(Frame::Input).run_if(resource_exists::<NetLink>), fill_panel.in_set(Frame::Present)),
    );
}

/// Whether the panel is open, and the folders of slides it offers.
#[derive(Resource, Debug, Default)]
pub struct StagePanel {
    /// Open (F9).
    pub open: bool,
    /// Folders of slides found in the Pictures folder when it opened.
    pub decks: Vec<PathBuf>,
}

impl StagePanel {
    /// The panel open, offering the folders of slides in the Pictures folder.
    pub fn opened() -> Self {
        Self { open: true, decks: pictures_dir().map(|dir| decks_in(&dir)).unwrap_or_default() }
    }
}

/// The folder slides are offered from: `XDG_PICTURES_DIR`, else `~/Pictures`.
fn pictures_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_PICTURES_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join("Pictures")))
}

/// Whether `dir` holds a PNG or JPEG (by its extension).
fn holds_slides(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else { return false };
    entries.flatten().take(MAX_ENTRIES).any(|entry| {
        let path = entry.path();
        path.is_file()
            && path
                .extension()
                .and_then(|extension| extension.to_str())
                .is_some_and(|extension| ["png", "jpg", "jpeg"].contains(&extension.to_ascii_lowercase().as_str()))
    })
}

/// The decks in `dir`: itself when it holds images, then its PDFs and its folders that hold
/// images, by name; at most [`MAX_DECKS`], none when it cannot be read.
pub fn decks_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .take(MAX_ENTRIES)
        .map(|entry| entry.path())
        .filter(|path| path.is_dir() || (is_pdf(path) && path.is_file()))
        .collect();
    found.sort();
    let mut decks: Vec<PathBuf> = holds_slides(dir).then(|| dir.to_owned()).into_iter().collect();
    decks.extend(found.into_iter().filter(|path| !path.is_dir() || holds_slides(path)).take(MAX_DECKS));
    decks.truncate(MAX_DECKS);
    decks
}

/// The panel, for the desktop overlay and the VR panel alike. `name` names a key (ours as
/// "you"); `me` is our key; `present` are the people here, who may be handed the stage.
pub fn stage_spec(
    lecture: &Lecture,
    name: &dyn Fn(&[u8; 32]) -> String,
    me: Option<[u8; 32]>,
    decks: &[PathBuf],
    present: &[(PublicKey, String)],
) -> PanelSpec {
    let mut spec = PanelSpec::new("LECTURE HALL (F9): the stage");
    let view = lecture.view.as_ref();
    match (view, lecture.status(name)) {
        (Some(view), Some(status)) => {
            spec.line(Tone::Good, status);
            let hands: Vec<String> =
                view.state.hands.iter().enumerate().map(|(at, key)| format!("{}. {}", at + 1, name(key))).collect();
            if !hands.is_empty() {
                spec.line(Tone::Plain, format!("Hands up: {}", hands.join(", ")));
            }
        }
        _ => {
            spec.line(Tone::Plain, "Nobody presents.");
            spec.line(Tone::Hint, "/slides FOLDER presents its images (PNG or JPEG), in name order");
        }
    }
    let ours = view.is_some_and(|view| view.ours);
    if let Some(view) = view.filter(|view| view.ours) {
        let state = &view.state;
        if state.current > 0 {
            spec.button("Previous", PanelAction::StagePrevious);
        }
        if u32::from(state.current) + 1 < u32::from(state.slides) {
            spec.button("Next", PanelAction::StageNext);
        }
        for (index, key) in state.hands.iter().take(MAX_NAMED).enumerate() {
            spec.button(format!("Floor to {}", name(key)), PanelAction::StageFloor(index as u8));
        }
        if state.floor.is_some() {
            spec.button("Take the floor back", PanelAction::StageTakeFloor);
        }
        for (index, (_, person)) in present.iter().take(MAX_NAMED).enumerate() {
            spec.button(format!("Stage to {person}"), PanelAction::StageHandOver(index as u8));
        }
    } else if let Some(view) = view {
        let mine = |key: &[u8; 32]| me.is_some_and(|me| me == *key);
        if view.state.floor.as_ref().is_some_and(mine) {
            spec.line(Tone::Good, "You have the floor: the whole hall hears you.");
            spec.button("Give the floor back", PanelAction::HandDown);
        } else if view.state.hands.iter().any(mine) {
            spec.button("Lower my hand", PanelAction::HandDown);
        } else {
            spec.button("Raise my hand", PanelAction::HandUp);
        }
    }
    if view.is_none() || ours {
        if decks.is_empty() {
            spec.line(Tone::Hint, "PDFs and folders of images in your Pictures folder are offered here to present.");
        }
        for (index, deck) in decks.iter().enumerate() {
            let label =
                deck.file_name().map_or_else(|| deck.display().to_string(), |name| name.to_string_lossy().into());
            spec.button(format!("Present {label}"), PanelAction::PresentFound(index as u8));
        }
    }
    spec.button("Close", PanelAction::ToggleStage);
    spec
}

/// F9 (or the VR menu's Stage) opens and closes the panel; its buttons move the stage, raise
/// or lower one's hand, or present a folder found.
fn use_panel(
    keys: Res<ButtonInput<KeyCode>>,
    input: Res<ChatInput>,
    mut pressed: MessageReader<PanelPressed>,
    mut panel: ResMut<StagePanel>,
    lecture: Res<Lecture>,
    mut social: ResMut<Social>,
    mut pdf: ResMut<PdfSlides>,
    link: Res<NetLink>,
) {
    let mut toggle = keys.just_pressed(KeyCode::F9) && !input.open;
    let mut actions = Vec::new();
    for PanelPressed(action) in pressed.read() {
        match action {
            PanelAction::ToggleStage => toggle = !toggle,
            other if panel.open => actions.push(*other),
            _ => {}
        }
    }
    if toggle {
        *panel = if panel.open { StagePanel::default() } else { StagePanel::opened() };
    }
    let hands = lecture.view.as_ref().map(|view| view.state.hands.clone()).unwrap_or_default();
    for action in actions {
        let command = match action {
            PanelAction::StagePrevious => Some(Command::Stage(StageAction::Previous)),
            PanelAction::StageNext => Some(Command::Stage(StageAction::Next)),
            PanelAction::StageFloor(index) => {
                hands.get(usize::from(index)).map(|key| Command::Stage(StageAction::GiveFloor(*key)))
            }
            PanelAction::StageTakeFloor => Some(Command::Stage(StageAction::TakeFloor)),
            PanelAction::StageHandOver(index) => people_here(&social).get(usize::from(index)).map(|(key, person)| {
                social.notice(format!("the stage is handed to {person}"));
                Command::Stage(StageAction::HandOver(*key.as_bytes()))
            }),
            PanelAction::HandUp => Some(Command::Hand(true)),
            PanelAction::HandDown => Some(Command::Hand(false)),
            PanelAction::PresentFound(index) => match panel.decks.get(usize::from(index)) {
                Some(deck) if is_pdf(deck) => {
                    social.notice(pdf.start(deck).unwrap_or_else(|problem| problem));
                    None
                }
                Some(deck) => crate::stage_command::present_told(&deck.display().to_string(), &mut social),
                None => None,
            },
            _ => None,
        };
        if let Some(command) = command {
            link.send(command);
        }
    }
}

fn fill_panel(
    panel: Res<StagePanel>,
    lecture: Res<Lecture>,
    social: Option<Res<Social>>,
    mut panels: Query<(&PanelSlot, &mut PanelContent)>,
) {
    let Some(social) = social else { return };
    let name = |key: &[u8; 32]| name_of(&social, key);
    let me = social.me.map(|me| *me.as_bytes());
    for (slot, mut content) in &mut panels {
        if *slot != PanelSlot::Stage {
            continue;
        }
        let spec = panel.open.then(|| stage_spec(&lecture, &name, me, &panel.decks, &people_here(&social)));
        if content.0 != spec {
            content.0 = spec;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sanctuary_engine::{RegionId, RoomKind};
    use sanctuary_net::StageView;
    use sanctuary_net::stage::{SlideRef, StageState};

    #[test]
    fn decks_are_the_folders_of_images() {
        let dir = tempfile::tempdir().expect("temp dir");
        let image = image::RgbImage::new(4, 4);
        for (folder, file) in [("b talk", "1.png"), ("a talk", "x.JPG"), ("empty", "notes.txt")] {
            std::fs::create_dir(dir.path().join(folder)).expect("a folder");
            if file.ends_with("txt") {
                std::fs::write(dir.path().join(folder).join(file), "no").expect("writes");
            } else {
                image.save_with_format(dir.path().join(folder).join(file), image::ImageFormat::Png).expect("writes");
            }
        }
        let names: Vec<String> = decks_in(dir.path())
            .iter()
            .map(|path| path.file_name().expect("a name").to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a talk", "b talk"]);
        std::fs::write(dir.path().join("lecture.PDF"), "a PDF's name is enough to offer it").expect("writes");
        std::fs::create_dir(dir.path().join("folder.pdf")).expect("a folder");
        let names: Vec<String> = decks_in(dir.path())
            .iter()
            .map(|path| path.file_name().expect("a name").to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a talk", "b talk", "lecture.PDF"], "PDF files among the folders, by name");
        image.save(dir.path().join("loose.png")).expect("writes");
        assert_eq!(decks_in(dir.path()).first().map(PathBuf::as_path), Some(dir.path()), "loose images first");
        assert!(decks_in(&dir.path().join("missing")).is_empty());
    }

    #[test]
    fn the_presenter_gets_the_stage_buttons_and_the_audience_a_hand() {
        let (ada, bo, cy) = ([1; 32], [2; 32], [3; 32]);
        let deck: Vec<SlideRef> = (0..3).map(|seed| SlideRef { hash: [seed; 32], bytes: 10 }).collect();
        let state = StageState::new(ada).apply(&StageAction::Present(deck.clone()), &[]).expect("presents");
        let state = state.apply(&StageAction::Next, &deck).expect("next");
        let state = state.hand(bo, true).expect("raised");
        let hall = RegionId::Room(RoomKind::LectureHall);
        let mut lecture = Lecture::default();
        lecture.view = Some(StageView { region: hall, state: state.clone(), ours: true });
        let name = |key: &[u8; 32]| ["?", "you", "Bo", "Cy"][usize::from(key[0]).min(3)].to_owned();
        let here = vec![(PublicKey::from_secret_seed(&[2; 32]), "Bo".to_owned())];
        let decks = vec![PathBuf::from("/pictures/talk")];
        let spec = stage_spec(&lecture, &name, Some(ada), &decks, &here);
        assert!(spec.text().contains("you present, slide 2 of 3") && spec.text().contains("Hands up: 1. Bo"));
        for action in [
            PanelAction::StagePrevious,
            PanelAction::StageNext,
            PanelAction::StageFloor(0),
            PanelAction::StageHandOver(0),
            PanelAction::PresentFound(0),
            PanelAction::ToggleStage,
        ] {
            assert!(spec.offers(action), "{action:?} is not offered:\n{}", spec.text());
        }
        assert!(!spec.offers(PanelAction::HandUp), "the presenter raises no hand");
        // Bo, in the audience, with his hand up: he may lower it, and nothing else.
        lecture.view = Some(StageView { region: hall, state: state.clone(), ours: false });
        let spec = stage_spec(&lecture, &name, Some(bo), &decks, &here);
        assert!(spec.offers(PanelAction::HandDown) && !spec.offers(PanelAction::StageNext));
        assert!(!spec.offers(PanelAction::PresentFound(0)), "only the presenter presents");
        // Cy raises one; given the floor, Bo gives it back.
        assert!(stage_spec(&lecture, &name, Some(cy), &decks, &here).offers(PanelAction::HandUp));
        let floor = state.apply(&StageAction::GiveFloor(bo), &deck).expect("floor");
        lecture.view = Some(StageView { region: hall, state: floor, ours: false });
        let spec = stage_spec(&lecture, &name, Some(bo), &decks, &here);
        assert!(spec.text().contains("You have the floor") && spec.offers(PanelAction::HandDown));
        // Nobody presents: how to, and the decks.
        let spec = stage_spec(&Lecture::default(), &name, Some(cy), &decks, &here);
        assert!(spec.text().contains("Nobody presents") && spec.offers(PanelAction::PresentFound(0)));
    }
}
