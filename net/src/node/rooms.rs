//! Private rooms in the node (the rules are `crate::private_room`): our own room's key and
//! members and the keys of the rooms we are invited to, kept in `rooms.bin`; whose room the
//! private room is for us now; the keys handed to members over `alpn::ROOM` (the owner dials
//! each member, again and again until it is taken); and the door: the private room is entered
//! only with a key that admits us.
//!
//! Bounds: what `private_room` bounds (64 members, 64 rooms held); one thing waiting to be
//! handed to each member or removed member, at most [`MAX_PENDING`], tried at most
//! [`MAX_PUSHES`] times, 2 s, 4 s, ... up to a minute apart; the protocol answers 8 peers at
//! once, each twice and then once every 5 s (16, then 2 a second, from everyone together),
//! reading at most one message of 4 KiB in 10 s.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iroh::endpoint::Connection;
use iroh::protocol::{AcceptError, ProtocolHandler};
use sanctuary_engine::{PublicKey, RegionId, RoomKind};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::actor::{Internal, Node, wall_micros};
use super::voice::Hearing;
use super::{Command, Event};
use crate::alpn;
use crate::inbox::RateLimiter;
use crate::private_room::{HeldRooms, MAX_ROOM_MESSAGE_BYTES, OwnRoom, Removal, RoomKey, RoomMessage, RoomsFile};
use crate::store;

/// The private room's region: whose room it is depends on [`PrivateRooms::visiting`].
pub(super) const PRIVATE: RegionId = RegionId::Room(RoomKind::Private);
/// The most keys and removals waiting to be handed over.
const MAX_PENDING: usize = 2 * crate::private_room::MAX_MEMBERS;
/// How often one is tried before it is given up.
const MAX_PUSHES: u32 = 12;
/// The first wait after a failed push; it doubles, up to [`MAX_PUSH_WAIT`].
const PUSH_WAIT: Duration = Duration::from_secs(2);
const MAX_PUSH_WAIT: Duration = Duration::from_secs(60);
/// How long a push or an answer may take.
const PUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// Answered at once, and how often one peer may hand us something (a burst, then a second
/// apart).
const MAX_ANSWERING: usize = 8;
const HANDS_PER_PEER: (u32, f64) = (2, 0.2);
/// How often anyone may hand us something, all peers together (invitations are rare; fresh
/// keys each taking their own burst would otherwise cost us a check each).
const HANDS_IN_ALL: (u32, f64) = (16, 2.0);

/// What the program is told of private rooms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomsView {
    /// Who may come into our room.
    pub members: Vec<PublicKey>,
    /// Whose rooms we may enter.
    pub invited_to: Vec<PublicKey>,
    /// Whose room the private room is for us now (`None`: our own).
    pub visiting: Option<PublicKey>,
}

/// A key or removal on its way to one person.
struct Pending {
    message: RoomMessage,
    tries: u32,
    next: Instant,
    /// A push is under way.
    going: bool,
}

/// Our room, the rooms we may enter, and what is on its way.
pub(super) struct PrivateRooms {
    file: RoomsFile,
    path: std::path::PathBuf,
    /// Whose room the private room is for us now (`None`: our own).
    visiting: Option<[u8; 32]>,
    pending: HashMap<[u8; 32], Pending>,
}

impl PrivateRooms {
    /// Reads `rooms.bin` (a new room with a fresh key when there is none, or it is damaged:
    /// the damaged file is put aside); a problem to tell, if any.
    pub(super) fn open(path: std::path::PathBuf, me: &[u8; 32]) -> Result<(Self, Option<String>), String> {
        let fresh = || OwnRoom::new(wall_micros()).ok_or("this machine has no randomness for a room key".to_owned());
        let (file, problem) = match store::read_whole::<RoomsFile>(&path) {
            Ok(Some(file)) => (RoomsFile { own: file.own, held: file.held.checked(me) }, None),
            Ok(None) => (RoomsFile { own: fresh()?, held: HeldRooms::default() }, None),
            Err(error) => {
                let _ = std::fs::rename(&path, path.with_extension("damaged"));
                let problem = format!("the private rooms could not be read ({error}); a new room was made");
                (RoomsFile { own: fresh()?, held: HeldRooms::default() }, Some(problem))
            }
        };
        Ok((Self { file, path, visiting: None, pending: HashMap::new() }, problem))
    }

    fn save(&self) -> Option<String> {
        store::write_atomic(&self.path, &self.file)
            .err()
            .map(|error| format!("the private rooms could not be saved in {}: {error}", self.path.display()))
    }

    fn view(&self) -> RoomsView {
        let key = |bytes: &[u8; 32]| PublicKey::from_bytes(*bytes).ok();
        RoomsView {
            members: self.file.own.members.iter().filter_map(key).collect(),
            invited_to: self.file.held.owners().filter_map(key).collect(),
            visiting: self.visiting.as_ref().and_then(key),
        }
    }

    fn queue(&mut self, to: [u8; 32], message: RoomMessage) {
        if self.pending.len() >= MAX_PENDING && !self.pending.contains_key(&to) {
            return;
        }
        self.pending.insert(to, Pending { message, tries: 0, next: Instant::now(), going: false });
    }

    /// Our room's key, handed again to every member (the members named in it changed).
    fn hand_to_members(&mut self, secret: &iroh::SecretKey) {
        let key = self.file.own.signed(secret);
        for member in self.file.own.members.clone() {
            self.queue(member, RoomMessage::Key(key.clone()));
        }
    }
}

impl Node {
    /// The key of the room the private room is for us now, if it admits us; otherwise the
    /// door refuses and says why.
    pub(super) async fn private_room_key(&mut self) -> Option<RoomKey> {
        let me = *self.me.as_bytes();
        let key = match self.rooms.visiting {
            None => Some(self.rooms.file.own.signed(&self.secret)),
            Some(owner) if owner == me => Some(self.rooms.file.own.signed(&self.secret)),
            Some(owner) => self.rooms.file.held.get(&owner).filter(|key| key.admits(&me)).cloned(),
        };
        if key.is_none() {
            self.emit(Event::RoomRefused("you are not invited to that private room".into())).await;
        }
        key
    }

    /// In a private room, only its members hear one another.
    pub(super) fn hear_members(&mut self, key: &RoomKey) {
        let members: BTreeSet<PublicKey> =
            key.members.iter().chain([&key.owner]).filter_map(|member| PublicKey::from_bytes(*member).ok()).collect();
        self.voice.set_rule(PRIVATE, Hearing::Members(members));
    }

    /// The private room commands.
    pub(super) async fn room_command(&mut self, command: Command) {
        let me = *self.me.as_bytes();
        match command {
            Command::Invite(person) => {
                let member = *person.as_bytes();
                if member == me {
                    return self.emit(Event::RoomRefused("it is your own room".into())).await;
                }
                match self.rooms.file.own.invite(member) {
                    Ok(true) => {
                        self.rooms.hand_to_members(&self.secret);
                        let text = format!(
                            "{} invites you to their private room: /room {} goes there",
                            self.profile.name, self.profile.name
                        );
                        self.direct(person, text).await;
                        self.rooms_changed(true).await;
                    }
                    Ok(false) => {}
                    Err(error) => self.emit(Event::RoomRefused(error.to_string())).await,
                }
            }
            Command::Uninvite(person) => {
                let member = *person.as_bytes();
                match self.rooms.file.own.remove(&member, wall_micros()) {
                    Ok(true) => {
                        let removal = Removal::issue(&self.secret, member, self.rooms.file.own.epoch);
                        self.rooms.queue(member, RoomMessage::Removed(removal));
                        self.rooms.hand_to_members(&self.secret);
                        self.rooms_changed(self.rooms.visiting.is_none()).await;
                    }
                    Ok(false) => {}
                    Err(error) => self.emit(Event::RoomRefused(error.to_string())).await,
                }
            }
            Command::Visit(owner) => {
                let owner = owner.map(|owner| *owner.as_bytes()).filter(|owner| *owner != me);
                if owner.is_some_and(|owner| self.rooms.file.held.get(&owner).is_none()) {
                    return self.emit(Event::RoomRefused("you are not invited to that private room".into())).await;
                }
                if owner != self.rooms.visiting {
                    self.rooms.visiting = owner;
                    self.rooms_changed(true).await;
                }
            }
            _ => {}
        }
    }

    /// Our rooms changed: saved, told, and when `rejoin` and we are in the private room, it
    /// is entered again with the key as it is now (a new key is a new topic).
    async fn rooms_changed(&mut self, rejoin: bool) {
        if let Some(problem) = self.rooms.save() {
            self.emit(Event::Notice(problem)).await;
        }
        self.emit(Event::Rooms(self.rooms.view())).await;
        if rejoin && self.regions.subscriptions.iter().any(|sub| sub.region == PRIVATE) {
            let regions: Vec<RegionId> = self.regions.subscriptions.iter().map(|sub| sub.region).collect();
            // Leaving first, saying goodbye on the old topic.
            self.leave_region(PRIVATE).await;
            self.set_regions(regions).await;
        }
    }

    /// Something an owner handed us over `alpn::ROOM`.
    pub(super) async fn room_handed(&mut self, from: iroh::PublicKey, bytes: Vec<u8>) {
        let message = match RoomMessage::open(&bytes, from.as_bytes(), self.me.as_bytes()) {
            Ok(message) => message,
            Err(_) => return,
        };
        let removed = matches!(message, RoomMessage::Removed(_));
        // An invitation meets the shield that private messages meet: strangers' keys could
        // otherwise push out the rooms of friends.
        let admitted = PublicKey::from_bytes(*from.as_bytes()).is_ok_and(|owner| self.trust.door.admits_direct(&owner));
        if !removed && !admitted {
            return;
        }
        match self.rooms.file.held.take(message) {
            Ok(true) => {}
            Ok(false) | Err(_) => return,
        }
        let here = self.rooms.visiting == Some(*from.as_bytes());
        if removed && here {
            self.rooms.visiting = None;
            self.emit(Event::RoomRefused("you were removed from that private room".into())).await;
            // Out of their room: whatever follows is theirs alone.
            let others: Vec<RegionId> =
                self.regions.subscriptions.iter().map(|sub| sub.region).filter(|region| *region != PRIVATE).collect();
            self.set_regions(others).await;
            self.rooms_changed(false).await;
        } else {
            self.rooms_changed(here).await;
        }
    }

    /// Hands over what waits when it is due, each push on a task of its own.
    pub(super) fn rooms_tick(&mut self, now: Instant) {
        let due: Vec<([u8; 32], Vec<u8>)> = self
            .rooms
            .pending
            .iter_mut()
            .filter(|(_, pending)| !pending.going && pending.next <= now)
            .map(|(to, pending)| {
                pending.going = true;
                pending.tries += 1;
                (*to, pending.message.to_bytes())
            })
            .collect();
        for (to, bytes) in due {
            let Ok(peer) = iroh::PublicKey::from_bytes(&to) else {
                self.rooms.pending.remove(&to);
                continue;
            };
            let (endpoint, internal) = (self.endpoint.clone(), self.internal_tx.clone());
            tokio::spawn(async move {
                let handed = tokio::time::timeout(PUSH_TIMEOUT, hand(endpoint, peer, bytes.clone())).await;
                let handed = matches!(handed, Ok(Ok(())));
                let _ = internal.send(Internal::RoomPushed { to, bytes, handed }).await;
            });
        }
    }

    /// A push ended: done, or tried again later (given up after [`MAX_PUSHES`]).
    pub(super) fn room_pushed(&mut self, to: [u8; 32], bytes: Vec<u8>, handed: bool) {
        let Some(pending) = self.rooms.pending.get_mut(&to) else { return };
        pending.going = false;
        // Something newer may wait for them already: that goes next.
        if pending.message.to_bytes() != bytes {
            return;
        }
        if handed || pending.tries >= MAX_PUSHES {
            self.rooms.pending.remove(&to);
        } else {
            let wait = PUSH_WAIT.saturating_mul(1 << pending.tries.min(6)).min(MAX_PUSH_WAIT);
            pending.next = Instant::now() + wait;
        }
    }

    /// Out of the private room: the next time it is entered, it is our own unless the person
    /// chooses another again.
    pub(super) async fn left_private_room(&mut self) {
        if self.rooms.visiting.take().is_some() {
            self.emit(Event::Rooms(self.rooms.view())).await;
        }
    }

    /// Tells the program of the rooms at the start.
    pub(super) async fn tell_rooms(&mut self) {
        self.emit(Event::Rooms(self.rooms.view())).await;
    }
}

/// Hands `bytes` to `peer` and waits for their word that they took it.
async fn hand(endpoint: iroh::Endpoint, peer: iroh::PublicKey, bytes: Vec<u8>) -> Result<(), String> {
    let connection = endpoint.connect(peer, alpn::ROOM).await.map_err(|error| error.to_string())?;
    let (mut send, mut recv) = connection.open_bi().await.map_err(|error| error.to_string())?;
    send.write_all(&bytes).await.map_err(|error| error.to_string())?;
    send.finish().map_err(|error| error.to_string())?;
    let answer = recv.read_to_end(8).await.map_err(|error| error.to_string())?;
    connection.close(0u32.into(), b"thanks");
    if answer == b"ok" { Ok(()) } else { Err("not taken".into()) }
}

/// Takes what owners hand us, a few at once and each peer rarely, and passes it to the node,
/// which checks it.
#[derive(Debug, Clone)]
pub(super) struct RoomProtocol {
    out: mpsc::Sender<Internal>,
    answering: Arc<tokio::sync::Semaphore>,
    hands: Arc<Mutex<RateLimiter<iroh::PublicKey>>>,
    hands_in_all: Arc<Mutex<RateLimiter<()>>>,
    start: Instant,
}

impl RoomProtocol {
    pub(super) fn new(out: mpsc::Sender<Internal>) -> Self {
        Self {
            out,
            answering: Arc::new(tokio::sync::Semaphore::new(MAX_ANSWERING)),
            hands: Arc::new(Mutex::new(RateLimiter::with_rate(HANDS_PER_PEER.0, HANDS_PER_PEER.1))),
            hands_in_all: Arc::new(Mutex::new(RateLimiter::with_rate(HANDS_IN_ALL.0, HANDS_IN_ALL.1))),
            start: Instant::now(),
        }
    }
}

impl ProtocolHandler for RoomProtocol {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let peer = connection.remote_id();
        let now = self.start.elapsed();
        let allowed = self.hands.lock().is_ok_and(|mut hands| hands.allow(peer, now))
            && self.hands_in_all.lock().is_ok_and(|mut hands| hands.allow((), now));
        let permit = if allowed { self.answering.clone().try_acquire_owned().ok() } else { None };
        let Some(_permit) = permit else { return Ok(()) };
        let Ok(Ok((mut send, mut recv))) = tokio::time::timeout(PUSH_TIMEOUT, connection.accept_bi()).await else {
            return Ok(());
        };
        let Ok(Ok(bytes)) = tokio::time::timeout(PUSH_TIMEOUT, recv.read_to_end(MAX_ROOM_MESSAGE_BYTES)).await else {
            return Ok(());
        };
        let taken = self.out.try_send(Internal::RoomHanded { from: peer, bytes }).is_ok();
        if tokio::time::timeout(PUSH_TIMEOUT, send.write_all(if taken { b"ok" } else { b"no" })).await.is_ok() {
            let _ = send.finish();
            let _ = tokio::time::timeout(PUSH_TIMEOUT, connection.closed()).await;
        }
        Ok(())
    }
}
