//! Avatars people wear: which model each person here wears (heard beside their pose), which of
//! them to fetch (those within the rank this viewer shows as they are), and what came of each
//! fetch. Pure state and requests: `avatar_rigs` draws them.
//!
//! - `/avatar` lists the avatars that ship with Sanctuary (built into the program) and says
//!   what one wears; `/avatar NAME` wears one of them, `/avatar PATH` a model of one's own
//!   (`.glb`, `.gltf` or `.vrm`), `/avatar off` a plain body.
//! - `/avatars RANK` (or the picker) chooses up to which rank others' avatars are shown as they
//!   are; beyond it, and until an avatar is here, a plain body in the person's colour stands in.
//!   The choice is kept for next time in the data directory (`show-avatars`, one word).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use bevy::prelude::*;
use sanctuary_engine::avatar::{AvatarRef, Rank, Ranking, rank};
use sanctuary_engine::{Humanoid, ModelSummary, PublicKey};
use sanctuary_net::{Command, Event};

use crate::Frame;
use crate::network::{ChatInput, NetLink, Social};

/// The avatars that ship with Sanctuary: made by `cargo xtask avatars`, CC0.
pub const DEFAULT_AVATARS: [(&str, &[u8]); 8] = [
    ("aurora", include_bytes!("../../assets/avatars/aurora.glb")),
    ("basalt", include_bytes!("../../assets/avatars/basalt.glb")),
    ("cirrus", include_bytes!("../../assets/avatars/cirrus.glb")),
    ("dune", include_bytes!("../../assets/avatars/dune.glb")),
    ("ember", include_bytes!("../../assets/avatars/ember.glb")),
    ("fjord", include_bytes!("../../assets/avatars/fjord.glb")),
    ("grove", include_bytes!("../../assets/avatars/grove.glb")),
    ("halo", include_bytes!("../../assets/avatars/halo.glb")),
];

/// The most people whose avatar is remembered; past it, only the people here are kept.
const MAX_LOOKS: usize = 2048;
/// The most avatar models whose state is remembered; past it, those nobody here wears go.
const MAX_MODELS: usize = 512;
/// The most avatars asked for in one frame.
const REQUESTS_PER_FRAME: usize = 8;

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<Avatars>().add_systems(
        Update,
        (
            (show_ranks.run_if(resource_exists::<ChatInput>), request_avatars)
                .chain()
                .run_if(resource_exists::<NetLink>.and_then(resource_exists::<Social>)),
            keep_rank.run_if(resource_exists::<RankFile>),
        )
            .chain()
            .in_set(Frame::World),
    );
}

/// Where the viewer's choice of rank is kept between runs: a file holding one word.
#[derive(Resource, Debug, Clone)]
pub struct RankFile(pub PathBuf);

impl RankFile {
    /// The file in the data directory `dir`.
    pub fn in_dir(dir: &std::path::Path) -> Self {
        Self(dir.join("show-avatars"))
    }

    /// The rank kept, if there is one and it reads as a rank.
    pub fn load(&self) -> Option<Rank> {
        let text = std::fs::read_to_string(&self.0).ok()?;
        Rank::parse(text.lines().next()?)
    }

    /// Keeps `rank`: written beside the file and then renamed over it, so that a crash leaves
    /// the old choice or the new one, never half of one.
    pub fn save(&self, rank: Rank) -> std::io::Result<()> {
        if let Some(dir) = self.0.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let word = rank.label().to_lowercase().replace(' ', "-");
        let partial = self.0.with_extension("partial");
        std::fs::write(&partial, format!("{word}\n"))?;
        std::fs::rename(&partial, &self.0)
    }
}

/// Writes the rank shown down whenever it changes.
fn keep_rank(avatars: Res<Avatars>, file: Res<RankFile>, mut kept: Local<Option<Rank>>) {
    let now = avatars.show_up_to;
    match *kept {
        // What it was at the start is what the file said (or the default): nothing to write.
        None => *kept = Some(now),
        Some(rank) if rank == now => {}
        Some(_) => {
            *kept = Some(now);
            if let Err(error) = file.save(now) {
                warn!("the avatar rank chosen could not be kept in {}: {error}", file.0.display());
            }
        }
    }
}

/// How far an avatar model has come.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelState {
    /// On its way.
    Fetching {
        /// Bytes here.
        done: u64,
        /// Bytes in all.
        total: u64,
    },
    /// Here and checked: its real rank (not its wearer's claim) and its skeleton.
    Ready {
        /// What it costs.
        ranking: Ranking,
        /// Its humanoid skeleton, if it has one.
        humanoid: Option<Humanoid>,
    },
    /// It could not be had, or is over the avatar budget.
    Failed(String),
}

/// How to draw someone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shown<'a> {
    /// A plain body in their colour: they wear no avatar.
    Plain,
    /// A plain body while their avatar comes.
    Waiting {
        /// Bytes here.
        done: u64,
        /// Bytes in all.
        total: u64,
    },
    /// Their avatar as it is.
    Model {
        /// Its bundle.
        hash: [u8; 32],
        /// Its skeleton, when it has one (otherwise it is drawn whole at the head).
        humanoid: Option<&'a Humanoid>,
    },
    /// A plain body: their avatar ranks below what this viewer shows.
    TooCostly(Rank),
    /// A plain body: their avatar could not be had or is broken.
    Unavailable,
}

/// The avatars of the people here, and ours.
#[derive(Resource, Debug)]
pub struct Avatars {
    /// What we wear.
    pub mine: Option<AvatarRef>,
    /// Up to which rank others' avatars are shown as they are.
    pub show_up_to: Rank,
    looks: HashMap<PublicKey, AvatarRef>,
    models: HashMap<[u8; 32], ModelState>,
    /// The avatar last asked for on each wearer's word: one at a time per wearer, so that a key
    /// naming a new avatar every second sets off no more fetches than it has finished.
    asked: HashMap<PublicKey, [u8; 32]>,
}

impl Default for Avatars {
    fn default() -> Self {
        Self {
            mine: None,
            show_up_to: Rank::Poor,
            looks: HashMap::new(),
            models: HashMap::new(),
            asked: HashMap::new(),
        }
    }
}

impl Avatars {
    /// Takes what the node says about avatars.
    pub fn take(&mut self, event: &Event) {
        match event {
            Event::Look { author, avatar, .. } => match avatar {
                Some(avatar) => {
                    if self.looks.len() < MAX_LOOKS || self.looks.contains_key(author) {
                        self.looks.insert(*author, *avatar);
                    }
                }
                None => {
                    self.looks.remove(author);
                }
            },
            Event::Wearing { avatar, .. } => self.mine = *avatar,
            Event::AssetProgress { hash, done, total } => {
                if let Some(ModelState::Fetching { done: have, total: all }) = self.models.get_mut(hash) {
                    (*have, *all) = (*done, *total);
                }
            }
            Event::AssetReady { hash, summary } if self.models.contains_key(hash) => {
                self.models.insert(*hash, ready(summary));
            }
            Event::AssetFailed { hash, reason } if self.models.contains_key(hash) => {
                self.models.insert(*hash, ModelState::Failed(reason.clone()));
            }
            _ => {}
        }
    }

    /// How to draw `key`.
    pub fn shown(&self, key: &PublicKey) -> Shown<'_> {
        let Some(avatar) = self.looks.get(key) else { return Shown::Plain };
        if avatar.rank > self.show_up_to {
            return Shown::TooCostly(avatar.rank);
        }
        match self.models.get(&avatar.hash) {
            None => Shown::Waiting { done: 0, total: avatar.bytes },
            Some(ModelState::Fetching { done, total }) => Shown::Waiting { done: *done, total: *total },
            // Ranked again here: a wearer who claimed better than the model is gets the plain body.
            Some(ModelState::Ready { ranking, .. }) if ranking.rank > self.show_up_to => Shown::TooCostly(ranking.rank),
            Some(ModelState::Ready { humanoid, .. }) => Shown::Model { hash: avatar.hash, humanoid: humanoid.as_ref() },
            Some(ModelState::Failed(_)) => Shown::Unavailable,
        }
    }

    /// Our own avatar's model and skeleton once the node has checked it (ours is shown to us
    /// whatever rank we show of others).
    pub fn own_model(&self) -> Option<(AvatarRef, Option<&Humanoid>)> {
        let mine = self.mine?;
        match self.models.get(&mine.hash) {
            Some(ModelState::Ready { humanoid, .. }) => Some((mine, humanoid.as_ref())),
            _ => None,
        }
    }

    /// Our own avatar, to ask the node for (it has it, and answers with what its checks found)
    /// when it is not known yet; marked as on its way.
    fn own_request(&mut self) -> Option<AvatarRef> {
        let mine = self.mine?;
        if self.models.contains_key(&mine.hash) || self.models.len() >= MAX_MODELS {
            return None;
        }
        self.models.insert(mine.hash, ModelState::Fetching { done: 0, total: mine.bytes });
        Some(mine)
    }

    /// The avatars to ask for now, and whom to ask, for the people in `here`; each is marked as
    /// on its way.
    fn requests(&mut self, here: &[PublicKey]) -> Vec<(AvatarRef, PublicKey)> {
        if self.looks.len() >= MAX_LOOKS {
            let present: HashSet<&PublicKey> = here.iter().collect();
            self.looks.retain(|key, _| present.contains(key));
            self.asked.retain(|key, _| present.contains(key));
        }
        if self.models.len() >= MAX_MODELS {
            let worn: HashSet<[u8; 32]> =
                self.looks.values().chain(self.mine.as_ref()).map(|avatar| avatar.hash).collect();
            self.models.retain(|hash, state| worn.contains(hash) && !matches!(state, ModelState::Failed(_)));
        }
        let mut wanted = Vec::new();
        for key in here {
            if wanted.len() >= REQUESTS_PER_FRAME || self.models.len() >= MAX_MODELS {
                break;
            }
            let Some(avatar) = self.looks.get(key).copied() else { continue };
            if avatar.rank > self.show_up_to || self.models.contains_key(&avatar.hash) {
                continue;
            }
            let busy = self
                .asked
                .get(key)
                .is_some_and(|hash| matches!(self.models.get(hash), Some(ModelState::Fetching { .. })));
            if busy {
                continue;
            }
            self.models.insert(avatar.hash, ModelState::Fetching { done: 0, total: avatar.bytes });
            self.asked.insert(*key, avatar.hash);
            wanted.push((avatar, *key));
        }
        wanted
    }
}

/// A checked model's state: ranked, or failed when over the avatar budget.
fn ready(summary: &ModelSummary) -> ModelState {
    match rank(summary) {
        Ok(ranking) => ModelState::Ready { ranking, humanoid: summary.humanoid.clone() },
        Err(error) => ModelState::Failed(error.to_string()),
    }
}

/// What a name label adds about someone's avatar: how much of it is here while it comes, or
/// that it is not shown; nothing when it is drawn or there is none.
pub fn label_note(shown: &Shown<'_>) -> Option<String> {
    match shown {
        Shown::Waiting { done, total } => {
            let percent = done.saturating_mul(100).checked_div(*total).unwrap_or(0).min(100);
            Some(format!("avatar {percent} %"))
        }
        Shown::TooCostly(rank) => Some(format!("{rank} avatar not shown")),
        Shown::Plain | Shown::Model { .. } | Shown::Unavailable => None,
    }
}

/// What `/avatar ARG` asks the node for, or the text to show instead (`/avatar` alone lists).
pub fn wear_command(arg: &str, mine: Option<AvatarRef>) -> Result<Command, String> {
    let arg = arg.trim();
    if arg.is_empty() {
        let names: Vec<&str> = DEFAULT_AVATARS.iter().map(|(name, _)| *name).collect();
        let wearing = match mine {
            Some(avatar) => format!("you wear an avatar ranked {}", avatar.rank),
            None => "you wear a plain body".to_owned(),
        };
        return Err(format!(
            "{wearing}. Avatars: {}. /avatar NAME wears one, /avatar PATH your own .glb or .vrm, /avatar off a plain body",
            names.join(", ")
        ));
    }
    if arg.eq_ignore_ascii_case("off") {
        return Ok(Command::Wear(None));
    }
    if let Some((name, bytes)) = DEFAULT_AVATARS.iter().find(|(name, _)| name.eq_ignore_ascii_case(arg)) {
        return default_avatar_file(name, bytes).map(|path| Command::Wear(Some(path)));
    }
    Ok(Command::Wear(Some(PathBuf::from(arg))))
}

/// A shipped avatar as a file the node can import (written once into the temporary folder;
/// the node copies it into its store).
fn default_avatar_file(name: &str, bytes: &[u8]) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join("sanctuary-avatars");
    let path = dir.join(format!("{name}.glb"));
    if std::fs::read(&path).is_ok_and(|have| have == bytes) {
        return Ok(path);
    }
    let failed =
        |error: std::io::Error| format!("the avatar {name} could not be written to {}: {error}", dir.display());
    std::fs::create_dir_all(&dir).map_err(failed)?;
    // Written aside and renamed, so that two programs starting at once never read half a file.
    let partial = dir.join(format!("{name}.{}.part", std::process::id()));
    std::fs::write(&partial, bytes).map_err(failed)?;
    std::fs::rename(&partial, &path).map_err(failed)?;
    Ok(path)
}

/// What is said when an avatar was put on: its rank and what set it.
pub fn worn_notice(name: &str, summary: &ModelSummary) -> String {
    let costs = format!(
        "{} triangles, {} materials, {} bones, {} MiB of textures",
        summary.triangles,
        summary.materials,
        summary.bones,
        summary.texture_bytes.div_ceil(1024 * 1024)
    );
    let body =
        if summary.humanoid.is_some() { "" } else { "; it has no humanoid skeleton, so it will not move its limbs" };
    match rank(summary) {
        Ok(ranking) => format!("you wear {name}: {} ({costs}){body}", ranking.rank),
        Err(error) => format!("you wear {name}, but {error}"),
    }
}

/// `/avatars RANK`: up to which rank others' avatars are shown.
fn show_ranks(mut input: ResMut<ChatInput>, mut avatars: ResMut<Avatars>, mut social: ResMut<Social>) {
    let Some(text) = input.show_avatars.take() else { return };
    let names: Vec<String> = Rank::ALL.iter().map(|rank| rank.label().to_lowercase().replace(' ', "-")).collect();
    match Rank::parse(&text) {
        Some(rank) => {
            avatars.show_up_to = rank;
            social.notice(format!("avatars up to {rank} are shown as they are; the others as plain bodies"));
        }
        None => social.notice(format!(
            "avatars up to {} are shown; /avatars RANK chooses ({})",
            avatars.show_up_to,
            names.join(", ")
        )),
    }
}

/// Asks for the avatars of the people here that are to be shown and are not here yet.
fn request_avatars(link: Res<NetLink>, social: Res<Social>, mut avatars: ResMut<Avatars>) {
    let here: Vec<PublicKey> = social.crowd.iter().map(|(key, _)| *key).collect();
    for (avatar, wearer) in avatars.requests(&here) {
        link.send(Command::FetchAvatar { avatar, hint: Some(wearer) });
    }
    if let Some(avatar) = avatars.own_request() {
        link.send(Command::FetchAvatar { avatar, hint: None });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sanctuary_engine::avatar::Measure;

    fn key(seed: u8) -> PublicKey {
        PublicKey::from_secret_seed(&[seed; 32])
    }

    #[test]
    fn the_rank_shown_is_kept_for_next_time() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = RankFile::in_dir(&dir.path().join("data"));
        assert_eq!(file.load(), None, "nothing kept yet");
        let mut app = App::new();
        app.init_resource::<Avatars>().insert_resource(file.clone()).add_systems(Update, keep_rank);
        app.update();
        assert!(!file.0.exists(), "nothing is written until the choice changes");
        for rank in [Rank::VeryPoor, Rank::Excellent] {
            app.world_mut().resource_mut::<Avatars>().show_up_to = rank;
            app.update();
            assert_eq!(file.load(), Some(rank));
        }
        std::fs::write(&file.0, "splendid\n").expect("writes");
        assert_eq!(file.load(), None, "a word that is no rank is ignored");
    }

    fn look(author: PublicKey, avatar: Option<AvatarRef>) -> Event {
        Event::Look { region: sanctuary_engine::RegionId::Lobby, author, avatar }
    }

    fn summary(triangles: u64) -> ModelSummary {
        ModelSummary {
            triangles,
            vertices: triangles,
            bytes: 1000,
            textures: Vec::new(),
            meshes: 1,
            bounds: None,
            materials: 1,
            bones: 20,
            texture_bytes: 0,
            humanoid: None,
        }
    }

    #[test]
    fn an_avatar_is_fetched_once_then_shown() {
        let mut avatars = Avatars::default();
        let ada = key(1);
        let avatar = AvatarRef { hash: [4; 32], bytes: 5000, rank: Rank::Excellent };
        assert_eq!(avatars.shown(&ada), Shown::Plain);
        avatars.take(&look(ada, Some(avatar)));
        assert_eq!(avatars.requests(&[ada]), vec![(avatar, ada)]);
        assert!(avatars.requests(&[ada]).is_empty(), "asked once");
        avatars.take(&Event::AssetProgress { hash: avatar.hash, done: 2500, total: 5000 });
        assert_eq!(avatars.shown(&ada), Shown::Waiting { done: 2500, total: 5000 });
        assert_eq!(label_note(&avatars.shown(&ada)).as_deref(), Some("avatar 50 %"));
        avatars.take(&Event::AssetReady { hash: avatar.hash, summary: summary(500) });
        assert_eq!(avatars.shown(&ada), Shown::Model { hash: avatar.hash, humanoid: None });
        avatars.take(&look(ada, None));
        assert_eq!(avatars.shown(&ada), Shown::Plain);
    }

    #[test]
    fn avatars_beyond_the_viewers_rank_or_budget_get_the_plain_body() {
        let mut avatars = Avatars { show_up_to: Rank::Good, ..Avatars::default() };
        let (ada, bo, cy) = (key(1), key(2), key(3));
        let costly = AvatarRef { hash: [5; 32], bytes: 5000, rank: Rank::Poor };
        avatars.take(&look(ada, Some(costly)));
        assert_eq!(avatars.shown(&ada), Shown::TooCostly(Rank::Poor));
        assert_eq!(label_note(&avatars.shown(&ada)).as_deref(), Some("Poor avatar not shown"));
        assert!(avatars.requests(&[ada]).is_empty(), "not even fetched");

        // Bo claims Excellent, but the model is Medium: ranked again, it is not shown.
        let liar = AvatarRef { hash: [6; 32], bytes: 5000, rank: Rank::Excellent };
        avatars.take(&look(bo, Some(liar)));
        assert_eq!(avatars.requests(&[bo]).len(), 1);
        avatars.take(&Event::AssetReady { hash: liar.hash, summary: summary(45_000) });
        assert_eq!(avatars.shown(&bo), Shown::TooCostly(Rank::Medium));

        // Cy's model is over the avatar budget altogether.
        let hog = AvatarRef { hash: [7; 32], bytes: 5000, rank: Rank::Good };
        avatars.take(&look(cy, Some(hog)));
        avatars.requests(&[cy]);
        avatars.take(&Event::AssetReady { hash: hog.hash, summary: summary(500_000) });
        assert_eq!(avatars.shown(&cy), Shown::Unavailable);

        // Raising the rank shows Bo's as it is.
        avatars.show_up_to = Rank::Medium;
        assert!(matches!(avatars.shown(&bo), Shown::Model { .. }));
        assert!(matches!(
            ready(&summary(45_000)),
            ModelState::Ready { ranking: Ranking { rank: Rank::Medium, decided_by: Some(Measure::Triangles) }, .. }
        ));
    }

    #[test]
    fn a_flood_of_keys_keeps_the_looks_bounded() {
        let mut avatars = Avatars::default();
        for index in 0..(MAX_LOOKS + 100) {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(index as u64).to_le_bytes());
            let author = PublicKey::from_secret_seed(&seed);
            let hash = seed;
            avatars.take(&look(author, Some(AvatarRef { hash, bytes: 10, rank: Rank::Good })));
        }
        assert!(avatars.looks.len() <= MAX_LOOKS);
        let here = [key(1)];
        avatars.requests(&here);
        assert!(avatars.looks.len() <= 1, "only the people here are kept once full");
    }

    #[test]
    fn a_wearer_changing_avatars_sets_off_one_fetch_at_a_time() {
        let mut avatars = Avatars::default();
        let ada = key(1);
        let at = |byte: u8| AvatarRef { hash: [byte; 32], bytes: 100, rank: Rank::Good };
        avatars.take(&look(ada, Some(at(1))));
        assert_eq!(avatars.requests(&[ada]).len(), 1);
        for byte in 2..20 {
            avatars.take(&look(ada, Some(at(byte))));
            assert!(avatars.requests(&[ada]).is_empty(), "the first is still on its way");
        }
        avatars.take(&Event::AssetFailed { hash: [1; 32], reason: "nobody has it".into() });
        assert_eq!(avatars.requests(&[ada]), vec![(at(19), ada)], "then only the one worn now");
    }

    #[test]
    fn avatar_commands_name_shipped_avatars_paths_and_off() {
        assert!(matches!(wear_command("off", None), Ok(Command::Wear(None))));
        let Ok(Command::Wear(Some(path))) = wear_command("Aurora", None) else { panic!("a shipped avatar") };
        assert_eq!(std::fs::read(&path).expect("written"), DEFAULT_AVATARS[0].1);
        assert!(matches!(wear_command("/tmp/me.vrm", None), Ok(Command::Wear(Some(path))) if path.ends_with("me.vrm")));
        let listed = wear_command("", None).expect_err("lists");
        assert!(listed.contains("aurora") && listed.contains("plain body"), "{listed}");
    }
}
