//! The client's side of the network node: events from the node become remote avatars (see
//! `avatars`) and chat, the person's pose and region become commands. Nothing here waits on the network: the node
//! runs on its own runtime and the two sides only exchange messages through channels.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use bevy::prelude::*;
use sanctuary_engine::{Op, PublicKey, RegionId};
use sanctuary_net::{
    ChatLine, Command, Delivery, DirectLine, Event, MicState, NetRuntime, NodeConfig, NodeHandle, Profile, RemoteCrowd,
    StatsSnapshot, Status, spawn_node,
};

mod avatars;
pub mod contribution;
mod far_crowd;
mod home_command;
mod submit;
mod trust_command;
pub(crate) use trust_command::find as find_person;

pub(crate) use avatars::place_remote_avatars;
use avatars::send_pose;
pub use avatars::{HandView, RemoteAvatarView, pose_of};
pub use far_crowd::{FarCrowdSeen, FarFigure};
pub use submit::submit_chat;

use crate::Frame;
pub use crate::chat_command::{WALLET_COMMANDS, is_wallet_command};
use crate::cues::SoundCue;
use crate::world::CurrentRegion;

/// Chat lines kept for the panel.
const CHAT_KEPT: usize = 200;
/// Microphone states and tip offers kept (one per person here; either may arrive before its
/// person's pose).
const MICS_KEPT: usize = 1_024;
/// The most AI agents remembered.
pub const AGENTS_KEPT: usize = 16_384;

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<Social>()
        .init_resource::<SaleEvents>()
        .init_resource::<ChatInput>()
        .add_message::<SoundCue>()
        .add_systems(
            Update,
            (
                (read_node_events, type_scripted_chat).chain().in_set(Frame::Input),
                follow_region.in_set(Frame::World),
                (send_pose, place_remote_avatars, far_crowd::place_far_crowd).chain().in_set(Frame::Animate),
            )
                .run_if(resource_exists::<NetLink>),
        );
}

/// The running node: the runtime it lives on (when this app owns one) and the handle to it.
#[derive(Resource, Debug)]
pub struct NetLink {
    handle: NodeHandle,
    _runtime: Option<NetRuntime>,
}

impl NetLink {
    /// Starts a node on a runtime of its own.
    pub fn start(config: NodeConfig) -> std::io::Result<Self> {
        let runtime = NetRuntime::new()?;
        let handle = spawn_node(runtime.handle(), config);
        Ok(Self { handle, _runtime: Some(runtime) })
    }

    /// Uses a node started elsewhere (tests run several in one runtime).
    pub fn from_handle(handle: NodeHandle) -> Self {
        Self { handle, _runtime: None }
    }

    /// Sends a command to the node; `false` if it has stopped.
    pub fn send(&self, command: Command) -> bool {
        self.handle.send(command)
    }

    /// The runtime the node runs on, for work that must run there (reading blobs).
    pub fn runtime(&self) -> Option<tokio::runtime::Handle> {
        match &self._runtime {
            Some(runtime) => Some(runtime.handle().clone()),
            None => tokio::runtime::Handle::try_current().ok(),
        }
    }

    /// Voice datagrams from the people in hearing range, taken once (see
    /// [`NodeHandle::take_voice`]).
    pub fn take_voice(&mut self) -> Option<tokio::sync::mpsc::Receiver<sanctuary_net::VoiceDatagram>> {
        self.handle.take_voice()
    }

    /// Sends our voice to the people in hearing range.
    pub fn voice_sender(&self) -> sanctuary_net::VoiceSender {
        self.handle.voice_sender()
    }

    /// What the node received and refused.
    pub fn stats(&self) -> StatsSnapshot {
        self.handle.stats()
    }
}

impl Drop for NetLink {
    /// On quitting, the node says goodbye to its peers and closes its connections (for at most
    /// two seconds) before its runtime goes.
    fn drop(&mut self) {
        if let Some(runtime) = &self._runtime {
            let handle = &mut self.handle;
            runtime.block_on(async {
                let _ = tokio::time::timeout(std::time::Duration::from_secs(2), handle.stop()).await;
            });
        }
    }
}

/// What kind of line the chat panel shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatKind {
    /// Said in the region.
    Said,
    /// A private message, either way.
    Private,
    /// News from the program: someone came or went, a message was delivered.
    Notice,
}

/// One line of the chat panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatEntry {
    /// What kind.
    pub kind: ChatKind,
    /// The line as shown.
    pub text: String,
    /// Sorting key: the author's sequence (their clock) for chat, ours for notices.
    pub order: u64,
}

/// Everything the client knows about the others.
#[derive(Resource, Debug, Default)]
pub struct Social {
    /// Our id, once the node is up.
    pub me: Option<PublicKey>,
    /// Our name and colour.
    pub profile: Option<Profile>,
    /// Our ticket, for others to join.
    pub ticket: Option<String>,
    /// The node's connection state.
    pub status: Option<Status>,
    /// The region the node was last told about.
    pub region: Option<RegionId>,
    /// The people in this region.
    pub crowd: RemoteCrowd,
    /// The people of this region beyond the cells we listen on, summed up.
    pub far: FarCrowdSeen,
    /// How the people here set their microphones (those who said).
    pub mics: HashMap<PublicKey, MicState>,
    /// The offers the people here take tips through (those who said).
    pub tips: HashMap<PublicKey, String>,
    /// The AI agents heard, and who runs each (kept when they leave, so that they are labelled
    /// from their first pose when they come back; ≤ [`AGENTS_KEPT`]).
    pub agents: HashMap<PublicKey, PublicKey>,
    /// Whom we block, as the node last said.
    pub blocked: Vec<PublicKey>,
    /// The avatar we wear, as the node last said.
    pub wearing: Option<sanctuary_engine::avatar::AvatarRef>,
    /// Whether the node has said what we wear yet (its first word is not news).
    pub wearing_said: bool,
    /// The person's trust, as the node last worked it out.
    pub trust: Option<std::sync::Arc<sanctuary_net::TrustView>>,
    /// The person's shields, as the node last said.
    pub shields: sanctuary_engine::shields::Shields,
    /// Volumes and mutes kept from before, for the voice to take once.
    pub kept_volumes: Vec<(PublicKey, f32)>,
    /// Where the people the person has a word with are online, as the node last said.
    pub whereabouts: Vec<sanctuary_net::Whereabouts>,
    /// The world (trust statements included), for "why do I trust this person".
    pub world: Option<sanctuary_net::SharedReplica>,
    /// People's contribution lines (ours too), as their checked records came.
    pub contributions: HashMap<PublicKey, String>,
    /// Bumped whenever `contributions` changes.
    pub contributions_seen: u64,
    /// The chat panel's lines, oldest first.
    pub chat: Vec<ChatEntry>,
    /// The node failed: why.
    pub failure: Option<String>,
}

impl Social {
    fn push(&mut self, kind: ChatKind, text: String, order: u64) {
        // Lines sort by their author's clock, so a line that arrives late still lands in place.
        let at = self.chat.partition_point(|entry| entry.order <= order);
        self.chat.insert(at, ChatEntry { kind, text, order });
        if self.chat.len() > CHAT_KEPT {
            self.chat.remove(0);
        }
    }

    pub(crate) fn notice(&mut self, text: String) {
        self.push(ChatKind::Notice, text, now_micros());
    }

    /// Where `key` stands with the person (a stranger until trust is worked out).
    pub fn standing(&self, key: &PublicKey) -> sanctuary_engine::trust::Standing {
        self.trust.as_ref().map_or(sanctuary_engine::trust::Standing::Stranger, |view| view.standing(key))
    }

    /// Whether `key` gets through the shield of `category`.
    pub fn admits(&self, category: sanctuary_engine::shields::Category, key: &PublicKey) -> bool {
        self.shields.admits(category, self.standing(key))
    }

    /// `key`'s name: as they are here, else as they signed it into the world (so that someone
    /// away is still named), else the start of their key.
    pub(crate) fn name_of(&self, key: &PublicKey) -> String {
        if let Some(avatar) = self.crowd.get(key) {
            return avatar.name.clone();
        }
        let signed = self.world.as_ref().and_then(|world| world.world().profile_of(key));
        signed.map_or_else(|| key.short(), |(name, _)| sanctuary_net::wire::clean_text(name.as_str()))
    }
}

/// The chat box: open or not, what is typed, and to whom (everyone here, or one person).
#[derive(Resource, Debug, Default)]
pub struct ChatInput {
    /// The box has the keyboard: keys type instead of moving.
    pub open: bool,
    /// What is typed so far.
    pub text: String,
    /// A private message to this person, or `None` for the region's chat.
    pub to: Option<(PublicKey, String)>,
    /// Wallet and trade commands typed (`/wallet`, `/send`, `/sell`, ...), for the wallet to
    /// take; they never go out as chat.
    pub wallet_commands: Vec<String>,
    /// `/mic` and `/speaker` lines, for the voice settings to take.
    pub audio_commands: Vec<String>,
    /// `/models` was typed: load the models of the parcel the person stands on, whoever built
    /// them (the builds shield shows a stranger's models as boxes until then).
    pub load_models_here: bool,
    /// `/goto` was typed, with whom (empty: list who is online).
    pub goto: Option<String>,
    /// `/market` was typed, with what follows (see `market::directory`).
    pub market: Option<String>,
    /// `/poll` or `/vote` was typed (which, and what follows; see `meeting`).
    pub poll: Option<(&'static str, String)>,
    /// `/slides` named a PDF, for `pdf_slides` to draw into pictures first.
    pub pdf: Option<std::path::PathBuf>,
    /// `/board` was typed, with what follows (see `whiteboard`).
    pub board: Option<String>,
    /// `/room`, `/invite` or `/uninvite` was typed (which, and what follows; see
    /// `private_room`).
    pub room: Option<(&'static str, String)>,
    /// `/avatars` was typed, with the rank (empty: say the current one).
    pub show_avatars: Option<String>,
    /// `/screen own` was typed: pause one's own view of the screen, or rejoin the room's.
    pub own_view: bool,
    /// A fingerprint of the text (and recipient) held back last time because it looked like a
    /// secret: Enter on the very same text sends it.
    pub held_back: Option<u64>,
}

/// Lines to type into the chat once the node is up (`--chat`), first first.
#[derive(Resource, Debug, Default)]
pub struct ScriptedChat(pub std::collections::VecDeque<String>);

/// What the node says about Lightning sales (a buyer's ask, a seller's answer), for the market
/// to take; at most [`SALE_EVENTS_KEPT`], the oldest dropped.
#[derive(Resource, Debug, Default)]
pub struct SaleEvents(pub std::collections::VecDeque<Event>);

/// The most sale events waiting for the market.
const SALE_EVENTS_KEPT: usize = 64;

/// Types the next scripted line, one a frame, as if the person had typed it and pressed Enter.
/// `/wait SECONDS` (at most 600) pauses the script, for what takes a while (a wallet starting,
/// someone arriving).
fn type_scripted_chat(
    link: Res<NetLink>,
    mut social: ResMut<Social>,
    mut input: ResMut<ChatInput>,
    script: Option<ResMut<ScriptedChat>>,
    mut paused_until: Local<Option<std::time::Instant>>,
) {
    let Some(mut script) = script else { return };
    // Once the node is up and the region entered (entering one clears the notices).
    if social.me.is_none() || social.region.is_none() {
        return;
    }
    if paused_until.is_some_and(|until| std::time::Instant::now() < until) {
        return;
    }
    if let Some(line) = script.0.pop_front() {
        if let Some(seconds) = line.strip_prefix("/wait ") {
            let seconds = seconds.trim().parse::<f64>().unwrap_or(0.0).clamp(0.0, 600.0);
            *paused_until = std::time::Instant::now().checked_add(std::time::Duration::from_secs_f64(seconds));
            return;
        }
        // Typed into the chat box itself, so that what a command asks of the program (`/goto`,
        // `/market`, `/screen own`) is done as if typed by hand.
        input.open = true;
        input.text = line;
        input.to = None;
        submit_chat(&link, &mut social, &mut input);
    }
}

/// Microseconds since 1970 on this machine.
pub(crate) fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_micros() as u64).unwrap_or(0)
}

fn read_node_events(
    mut link: ResMut<NetLink>,
    mut social: ResMut<Social>,
    mut city: ResMut<crate::build::CityWorld>,
    mut avatars: Option<ResMut<crate::avatars::Avatars>>,
    mut cinema: Option<ResMut<crate::cinema::Cinema>>,
    mut lecture: Option<ResMut<crate::stage::Lecture>>,
    mut meeting: Option<ResMut<crate::meeting::Meeting>>,
    mut whiteboard: Option<ResMut<crate::whiteboard::Whiteboard>>,
    mut rooms: Option<ResMut<crate::private_room::Rooms>>,
    slot: Option<Res<crate::blobs::BlobSlot>>,
    mut cues: MessageWriter<SoundCue>,
    mut sales: ResMut<SaleEvents>,
) {
    // A bounded number per frame, so that a burst never stalls a frame.
    for _ in 0..4096 {
        let Some(event) = link.handle.try_event() else { break };
        if let Event::Started { id, ticket, assets, .. } = &event {
            // In the terminal too, to copy from there.
            let home = sanctuary_engine::home_parcel(id);
            let centre = home.bounds().center();
            println!("you are {id}\nyour ticket: {ticket}");
            println!("your home parcel: ({}, {}), centre at x {} z {}", home.x, home.z, centre.x, centre.y);
            if let (Some(slot), Some(runtime)) = (&slot, link.runtime()) {
                let _ = slot.0.set((assets.clone(), runtime));
            }
        }
        if let Event::Built(Op::Put { .. }) = &event {
            cues.write(SoundCue::Placed);
        }
        if matches!(event, Event::SaleAsked { .. } | Event::SaleOffered { .. } | Event::HostingOffered { .. }) {
            if sales.0.len() >= SALE_EVENTS_KEPT {
                sales.0.pop_front();
            }
            sales.0.push_back(event);
            continue;
        }
        city.take(&event);
        if let Some(avatars) = avatars.as_mut() {
            avatars.take(&event);
        }
        if let Some(cinema) = cinema.as_mut() {
            cinema.take(&event);
        }
        if let Some(lecture) = lecture.as_mut() {
            lecture.take(&event);
        }
        if let Some(meeting) = meeting.as_mut() {
            meeting.take(&event);
        }
        if let Some(whiteboard) = whiteboard.as_mut() {
            whiteboard.take(&event);
        }
        if let Some(rooms) = rooms.as_mut() {
            rooms.take(&event);
        }
        handle_event(&mut social, event);
    }
}

fn handle_event(social: &mut Social, event: Event) {
    match event {
        Event::Started { id, ticket, profile, world, .. } => {
            social.world = Some(world);
            social.me = Some(id);
            social.profile = Some(profile);
            social.ticket = Some(ticket);
        }
        Event::Ticket(ticket) => social.ticket = Some(ticket),
        Event::Status(status) => social.status = Some(status),
        Event::Presence { region, author, sequence, presence } => {
            if Some(region) != social.region {
                return;
            }
            if social.crowd.insert(author, sequence, &presence, now_micros()) {
                social.notice(format!("{} is here", presence.name));
            }
        }
        Event::FarCrowd { region, dots, people } => {
            let version = social.far.version.wrapping_add(1);
            social.far = FarCrowdSeen { region: Some(region), dots, people, version };
        }
        Event::NearPose { region, author, stamp, pose } if Some(region) == social.region => {
            social.crowd.insert_pose(&author, stamp, pose, now_micros());
        }
        Event::Left { region, author } if Some(region) == social.region && social.crowd.get(&author).is_some() => {
            let name = social.name_of(&author);
            social.crowd.remove(&author);
            social.mics.remove(&author);
            social.tips.remove(&author);
            social.notice(format!("{name} left"));
        }
        Event::Mic { region, author, state } if Some(region) == social.region => {
            if social.mics.len() >= MICS_KEPT {
                // Full of keys that never showed themselves here: keep only the people here.
                let crowd = &social.crowd;
                social.mics.retain(|key, _| crowd.get(key).is_some());
            }
            if social.mics.len() < MICS_KEPT || social.mics.contains_key(&author) {
                social.mics.insert(author, state);
            }
        }
        Event::Agent { author, operator, .. } => {
            if social.agents.len() >= AGENTS_KEPT && !social.agents.contains_key(&author) {
                let crowd = &social.crowd;
                social.agents.retain(|key, _| crowd.get(key).is_some());
            }
            if social.agents.len() < AGENTS_KEPT {
                social.agents.insert(author, operator);
            }
        }
        Event::Tips { region, author, offer } if Some(region) == social.region => match offer {
            Some(offer) => {
                if social.tips.len() >= MICS_KEPT {
                    let crowd = &social.crowd;
                    social.tips.retain(|key, _| crowd.get(key).is_some());
                }
                if social.tips.len() < MICS_KEPT || social.tips.contains_key(&author) {
                    social.tips.insert(author, offer);
                }
            }
            None => {
                social.tips.remove(&author);
            }
        },
        Event::Blocks(keys) => social.blocked = keys,
        Event::Wearing { avatar, name, summary } => {
            match (name, summary) {
                (Some(name), Some(summary)) => social.notice(crate::avatars::worn_notice(&name, &summary)),
                // Said at the start too, where it is no news.
                _ if social.wearing_said && avatar.is_none() => social.notice("you wear a plain body now".into()),
                _ => {}
            }
            social.wearing = avatar;
            social.wearing_said = true;
        }
        Event::AvatarRefused(reason) => social.notice(format!("that avatar cannot be worn: {reason}")),
        Event::ScreenRefused(reason) => social.notice(format!("the screen: {reason}")),
        Event::StageRefused(reason) => social.notice(format!("the stage: {reason}")),
        Event::PollRefused(reason) => social.notice(format!("polls: {reason}")),
        Event::PollExported(path) => {
            social.notice(format!("the poll's results, every vote signed, are in {}", path.display()))
        }
        Event::Trust(view) => {
            let before = social.trust.as_ref().map(|view| view.requests()).unwrap_or_default();
            let new: Vec<PublicKey> = view.requests().into_iter().filter(|key| !before.contains(key)).collect();
            // A crowd of fresh keys calling one a friend fills no chat: three names, then a count.
            for key in new.iter().take(3) {
                let name = social.name_of(key);
                social.notice(format!("{name} calls you a friend: click them and choose Friend to say so back"));
            }
            if new.len() > 3 {
                social.notice(format!(
                    "and {} more call you a friend (the shields panel, F6, lists them)",
                    new.len() - 3
                ));
            }
            social.trust = Some(view);
        }
        Event::Shields(shields) => social.shields = shields,
        Event::Contribution { person, contribution, receipts, reached } => {
            contribution::heard(social, person, &contribution, &receipts, reached)
        }
        Event::Whereabouts(online) => social.whereabouts = online,
        Event::Volumes(kept) => social.kept_volumes = kept,
        Event::Chat(line) => show_chat(social, line),
        Event::ChatHistory { region, lines } if Some(region) == social.region => {
            for line in lines {
                show_chat(social, line);
            }
        }
        Event::Direct(line) => show_direct(social, line),
        Event::DirectHistory(lines) => {
            for line in lines.into_iter().rev().take(20).rev() {
                show_direct(social, line);
            }
        }
        Event::DirectOutcome { to, outcome, .. } => {
            let name = social.name_of(&to);
            match outcome {
                Delivery::Delivered => social.notice(format!("delivered to {name}")),
                Delivery::Queued { reason } => {
                    social.notice(format!("{name} cannot be reached ({reason}); it will go when they can be"))
                }
                Delivery::Refused { reason } => social.notice(format!("not delivered to {name}: {reason}")),
            }
        }
        Event::Notice(text) => social.notice(text),
        Event::Failed(error) => {
            social.notice(format!("network: {error}"));
            social.failure = Some(error);
        }
        Event::Stopped => social.notice("network stopped".into()),
        Event::BoardRefused(reason) => social.notice(format!("the whiteboard: {reason}")),
        Event::RoomRefused(reason) => social.notice(format!("private room: {reason}")),
        _ => {}
    }
}

fn show_chat(social: &mut Social, line: ChatLine) {
    // Below the chat shield (distrusted people, or strangers when the person chose so).
    if !social.admits(sanctuary_engine::shields::Category::Chat, &line.author) {
        return;
    }
    if Some(line.region) != social.region {
        return;
    }
    // History and live lines can overlap (a line said just as we arrived): show each once.
    let agent = if social.agents.contains_key(&line.author) { " [AI agent]" } else { "" };
    let text = format!("{}{agent}: {}", line.name, line.text);
    if social.chat.iter().any(|entry| entry.order == line.sequence && entry.text == text) {
        return;
    }
    social.push(ChatKind::Said, text, line.sequence);
}

fn show_direct(social: &mut Social, line: DirectLine) {
    let text = if Some(line.from) == social.me {
        format!("[to {}] {}", social.name_of(&line.to), line.text)
    } else {
        format!("[from {}] {}", line.name, line.text)
    };
    social.push(ChatKind::Private, text, line.id);
}

/// Tells the node which region the person is in, and forgets the people of the last one.
fn follow_region(
    link: Res<NetLink>,
    region: Option<Res<CurrentRegion>>,
    mut social: ResMut<Social>,
    avatars: Query<Entity, With<RemoteAvatarView>>,
    mut commands: Commands,
) {
    let Some(region) = region else { return };
    if social.region == Some(region.id()) {
        return;
    }
    social.region = Some(region.id());
    social.crowd.clear();
    social.mics.clear();
    social.tips.clear();
    social.chat.retain(|entry| entry.kind == ChatKind::Private);
    for entity in &avatars {
        commands.entity(entity).despawn();
    }
    link.send(Command::Regions(vec![region.id()]));
}

/// The people here, in name order.
pub fn people_here(social: &Social) -> Vec<(PublicKey, String)> {
    let mut people: Vec<(PublicKey, String)> =
        social.crowd.iter().map(|(key, person)| (*key, person.name.clone())).collect();
    people.sort_by(|a, b| a.1.cmp(&b.1));
    people
}

/// The key of the person here called `name` (case aside; a unique beginning will do).
pub fn person_named(social: &Social, name: &str) -> Result<PublicKey, String> {
    let wanted = name.trim().to_lowercase();
    let found: Vec<_> = social
        .crowd
        .iter()
        .filter(|(_, person)| person.name.to_lowercase().starts_with(&wanted))
        .map(|(key, person)| (*key, person.name.to_lowercase() == wanted))
        .collect();
    match found.iter().find(|(_, exact)| *exact).or(found.first().filter(|_| found.len() == 1)) {
        Some((key, _)) if !wanted.is_empty() => Ok(*key),
        _ if found.len() > 1 => Err(format!("several people here are called {name}; type more of the name")),
        _ => Err(format!("nobody called {name} is here")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Someone called `name` in colour (1, 2, 3), standing still at (1, 1.7, 2).
    pub(super) fn presence(name: &str) -> sanctuary_net::Presence {
        let at = sanctuary_net::QuantisedTransform::new(Vec3::new(1.0, 1.7, 2.0), Quat::IDENTITY);
        let pose = sanctuary_net::PoseFrame { head: at, left_hand: at, right_hand: at };
        sanctuary_net::Presence { name: name.into(), colour: [1, 2, 3], pose }
    }

    #[test]
    fn events_become_people_and_lines_in_order() {
        let mut social = Social { region: Some(RegionId::Lobby), ..Social::default() };
        let ada = PublicKey::from_secret_seed(&[1; 32]);
        handle_event(
            &mut social,
            Event::Presence { region: RegionId::Lobby, author: ada, sequence: 10, presence: presence("Ada") },
        );
        // Another region's presence is not ours to show.
        handle_event(
            &mut social,
            Event::Presence {
                region: RegionId::City,
                author: PublicKey::from_secret_seed(&[2; 32]),
                sequence: 10,
                presence: presence("Bo"),
            },
        );
        assert_eq!(social.crowd.len(), 1);
        let line = |text: &str, sequence| {
            Event::Chat(ChatLine {
                region: RegionId::Lobby,
                author: ada,
                name: "Ada".into(),
                text: text.into(),
                sequence,
            })
        };
        handle_event(&mut social, line("second", 200));
        handle_event(&mut social, line("first", 100));
        handle_event(&mut social, line("first", 100));
        let said: Vec<&str> =
            social.chat.iter().filter(|entry| entry.kind == ChatKind::Said).map(|entry| entry.text.as_str()).collect();
        assert_eq!(said, vec!["Ada: first", "Ada: second"], "sorted by the author's clock, shown once");
        handle_event(&mut social, Event::Left { region: RegionId::Lobby, author: ada });
        assert!(social.crowd.is_empty());
        assert!(social.chat.iter().any(|entry| entry.text == "Ada left"));
    }
}
