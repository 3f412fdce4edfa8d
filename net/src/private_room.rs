//! Private rooms: pure rules, no I/O. Everyone owns one private room. Its owner invites people
//! by key; the room's key, its members and the date it was issued travel together as one
//! [`RoomKey`] signed by the owner, handed only to members over a direct (QUIC, so encrypted)
//! connection. Everything said in the room goes on a gossip topic derived from that key, sealed
//! with it ([`RoomCipher`]: XChaCha20-Poly1305), so that relays and anyone without the key see
//! neither who says what nor the topic's name; removing a member issues a new key (and so a
//! new topic) that the removed one never gets.
//!
//! Bounds: [`MAX_MEMBERS`] members a room, [`MAX_ROOMS_HELD`] rooms one is invited to (the
//! oldest invitation goes first), one key per owner (a newer one replaces it).

use std::collections::{BTreeMap, BTreeSet};

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use iroh::{PublicKey, SecretKey, Signature};
use iroh_gossip::TopicId;
use serde::{Deserialize, Serialize};

/// The most members a private room has (besides its owner).
pub const MAX_MEMBERS: usize = 64;
/// The most rooms of others one holds keys for.
pub const MAX_ROOMS_HELD: usize = 64;
/// The largest room message on the wire.
pub const MAX_ROOM_MESSAGE_BYTES: usize = 4096;

const KEY_CONTEXT: &[u8] = b"sanctuary room key v1";
const REMOVAL_CONTEXT: &[u8] = b"sanctuary room removal v1";
const NONCE_BYTES: usize = 24;
/// Poly1305's tag.
const TAG_BYTES: usize = 16;

/// Why a room message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomError {
    /// More members than a room has, or the owner among them.
    #[error("a private room has at most {MAX_MEMBERS} members besides its owner")]
    Shape,
    /// The signature does not match.
    #[error("the signature does not match")]
    Signature,
    /// Not for us.
    #[error("it is not meant for this person")]
    NotOurs,
    /// Older than what we hold.
    #[error("older than the key held")]
    Stale,
    /// Bytes that are not a room message.
    #[error("not a room message")]
    Malformed,
}

/// A room's key and members, signed by its owner: the invitation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomKey {
    /// Whose room.
    pub owner: [u8; 32],
    /// When this key was issued (µs since 1970 on the owner's clock, rising with each key).
    pub epoch: u64,
    /// The key: the topic is named after it and everything said is sealed with it.
    pub key: [u8; 32],
    /// Who may come in, besides the owner (sorted, no duplicates).
    pub members: Vec<[u8; 32]>,
    /// The owner's signature of the rest.
    pub signature: Signature,
}

/// A member removed: signed by the owner, so that the removed one forgets the room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removal {
    /// Whose room.
    pub owner: [u8; 32],
    /// Who is no longer a member.
    pub member: [u8; 32],
    /// The epoch of the key issued without them.
    pub epoch: u64,
    /// The owner's signature.
    pub signature: Signature,
}

/// What an owner hands a member over `alpn::ROOM`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RoomMessage {
    /// The room's current key.
    Key(RoomKey),
    /// You are no longer a member.
    Removed(Removal),
}

fn key_bytes(owner: &[u8; 32], epoch: u64, key: &[u8; 32], members: &[[u8; 32]]) -> Vec<u8> {
    let mut bytes = KEY_CONTEXT.to_vec();
    bytes.extend_from_slice(owner);
    bytes.extend_from_slice(&epoch.to_le_bytes());
    bytes.extend_from_slice(key);
    for member in members {
        bytes.extend_from_slice(member);
    }
    bytes
}

fn removal_bytes(owner: &[u8; 32], member: &[u8; 32], epoch: u64) -> Vec<u8> {
    let mut bytes = REMOVAL_CONTEXT.to_vec();
    bytes.extend_from_slice(owner);
    bytes.extend_from_slice(member);
    bytes.extend_from_slice(&epoch.to_le_bytes());
    bytes
}

fn verify_by(owner: &[u8; 32], bytes: &[u8], signature: &Signature) -> Result<(), RoomError> {
    let owner = PublicKey::from_bytes(owner).map_err(|_| RoomError::Signature)?;
    owner.verify(bytes, signature).map_err(|_| RoomError::Signature)
}

impl RoomKey {
    /// The owner's room at `epoch` with `key`, open to `members`.
    pub fn issue(secret: &SecretKey, epoch: u64, key: [u8; 32], members: &BTreeSet<[u8; 32]>) -> Self {
        let owner = *secret.public().as_bytes();
        let members: Vec<[u8; 32]> = members.iter().filter(|member| **member != owner).copied().collect();
        let signature = secret.sign(&key_bytes(&owner, epoch, &key, &members));
        Self { owner, epoch, key, members, signature }
    }

    /// Checks the shape and the owner's signature.
    pub fn verify(&self) -> Result<(), RoomError> {
        let sorted = self.members.windows(2).all(|pair| pair[0] < pair[1]);
        if self.members.len() > MAX_MEMBERS || !sorted || self.members.contains(&self.owner) {
            return Err(RoomError::Shape);
        }
        verify_by(&self.owner, &key_bytes(&self.owner, self.epoch, &self.key, &self.members), &self.signature)
    }

    /// Whether `who` may be in the room: its owner or a member.
    pub fn admits(&self, who: &[u8; 32]) -> bool {
        *who == self.owner || self.members.binary_search(who).is_ok()
    }

    /// The room's gossip topic (see [`room_topic`]).
    pub fn topic(&self) -> TopicId {
        room_topic(&self.owner, &self.key)
    }

    /// What seals and opens the room's messages.
    pub fn cipher(&self) -> RoomCipher {
        RoomCipher::new(&self.key)
    }
}

impl Removal {
    /// The owner's word that `member` is out as of `epoch`.
    pub fn issue(secret: &SecretKey, member: [u8; 32], epoch: u64) -> Self {
        let owner = *secret.public().as_bytes();
        let signature = secret.sign(&removal_bytes(&owner, &member, epoch));
        Self { owner, member, epoch, signature }
    }

    /// Checks the owner's signature.
    pub fn verify(&self) -> Result<(), RoomError> {
        verify_by(&self.owner, &removal_bytes(&self.owner, &self.member, self.epoch), &self.signature)
    }
}

impl RoomMessage {
    /// Its bytes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Arrays, numbers and vectors always encode.
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Reads and checks a message `from` the peer that sent it, for `me`: it must be the
    /// owner's own, and name us.
    pub fn open(bytes: &[u8], from: &[u8; 32], me: &[u8; 32]) -> Result<Self, RoomError> {
        if bytes.len() > MAX_ROOM_MESSAGE_BYTES {
            return Err(RoomError::Malformed);
        }
        let message: Self = postcard::from_bytes(bytes).map_err(|_| RoomError::Malformed)?;
        let (owner, ours) = match &message {
            RoomMessage::Key(key) => {
                key.verify()?;
                (key.owner, key.members.binary_search(me).is_ok())
            }
            RoomMessage::Removed(removal) => {
                removal.verify()?;
                (removal.owner, removal.member == *me)
            }
        };
        if owner != *from || !ours {
            return Err(RoomError::NotOurs);
        }
        Ok(message)
    }
}

/// Seals and opens a room's messages with its key.
#[derive(Clone)]
pub struct RoomCipher {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for RoomCipher {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("RoomCipher")
    }
}

impl RoomCipher {
    /// The cipher of the room whose key is `key`.
    pub fn new(key: &[u8; 32]) -> Self {
        let derived = blake3::derive_key("sanctuary private room cipher v1", key);
        Self { cipher: XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(&derived)) }
    }

    /// `plain` sealed: a fresh random nonce, then the ciphertext and its tag.
    pub fn seal(&self, plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_BYTES];
        // Without randomness nothing is sealed: an empty message is refused by every reader.
        if getrandom::fill(&mut nonce).is_err() {
            return Vec::new();
        }
        let Ok(sealed) = self.cipher.encrypt(XNonce::from_slice(&nonce), plain) else { return Vec::new() };
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        bytes
    }

    /// The plain bytes of a sealed message, or an error for anything not sealed with this key.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, RoomError> {
        if sealed.len() < NONCE_BYTES + TAG_BYTES {
            return Err(RoomError::Malformed);
        }
        let (nonce, body) = sealed.split_at(NONCE_BYTES);
        self.cipher.decrypt(XNonce::from_slice(nonce), body).map_err(|_| RoomError::Malformed)
    }
}

/// The gossip topic of `owner`'s room while its key is `key`: named after the key, so only
/// those who hold it can name it, and a new key is a new topic.
pub fn room_topic(owner: &[u8; 32], key: &[u8; 32]) -> TopicId {
    let mut hasher = blake3::Hasher::new_derive_key("sanctuary private room topic v1");
    hasher.update(owner);
    hasher.update(key);
    TopicId::from_bytes(*hasher.finalize().as_bytes())
}

/// A fresh random key.
pub fn fresh_key() -> Option<[u8; 32]> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).ok()?;
    Some(key)
}

/// Our own room: its key and members, as kept on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnRoom {
    /// When the key was issued.
    pub epoch: u64,
    /// The key.
    pub key: [u8; 32],
    /// The members.
    pub members: BTreeSet<[u8; 32]>,
}

impl OwnRoom {
    /// A new room with a fresh key and nobody invited; `None` without randomness.
    pub fn new(now_us: u64) -> Option<Self> {
        Some(Self { epoch: now_us, key: fresh_key()?, members: BTreeSet::new() })
    }

    /// Invites `member`: `Ok(true)` if they were not one.
    pub fn invite(&mut self, member: [u8; 32]) -> Result<bool, RoomError> {
        if self.members.contains(&member) {
            return Ok(false);
        }
        if self.members.len() >= MAX_MEMBERS {
            return Err(RoomError::Shape);
        }
        Ok(self.members.insert(member))
    }

    /// Removes `member` and issues a new key (dated after the last) that they never get:
    /// `Ok(false)` if they were not a member.
    pub fn remove(&mut self, member: &[u8; 32], now_us: u64) -> Result<bool, RoomError> {
        if !self.members.contains(member) {
            return Ok(false);
        }
        let key = fresh_key().ok_or(RoomError::Malformed)?;
        self.members.remove(member);
        self.key = key;
        self.epoch = now_us.max(self.epoch.saturating_add(1));
        Ok(true)
    }

    /// The signed key, as handed to members.
    pub fn signed(&self, secret: &SecretKey) -> RoomKey {
        RoomKey::issue(secret, self.epoch, self.key, &self.members)
    }
}

/// The rooms of others we hold keys for, by owner.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldRooms {
    rooms: BTreeMap<[u8; 32], RoomKey>,
}

impl HeldRooms {
    /// Takes a checked message for `me`: a newer key replaces an older one, a removal (not
    /// older than the key held) forgets the room. `Ok(true)` if anything changed.
    pub fn take(&mut self, message: RoomMessage) -> Result<bool, RoomError> {
        match message {
            RoomMessage::Key(key) => {
                if let Some(held) = self.rooms.get(&key.owner) {
                    if held.epoch > key.epoch {
                        return Err(RoomError::Stale);
                    }
                    if *held == key {
                        return Ok(false);
                    }
                }
                if !self.rooms.contains_key(&key.owner) && self.rooms.len() >= MAX_ROOMS_HELD {
                    // The oldest invitation goes.
                    let oldest = self.rooms.values().min_by_key(|held| held.epoch).map(|held| held.owner);
                    if let Some(oldest) = oldest {
                        self.rooms.remove(&oldest);
                    }
                }
                self.rooms.insert(key.owner, key);
                Ok(true)
            }
            RoomMessage::Removed(removal) => match self.rooms.get(&removal.owner) {
                Some(held) if held.epoch <= removal.epoch => {
                    self.rooms.remove(&removal.owner);
                    Ok(true)
                }
                Some(_) => Err(RoomError::Stale),
                None => Ok(false),
            },
        }
    }

    /// The key held for `owner`'s room.
    pub fn get(&self, owner: &[u8; 32]) -> Option<&RoomKey> {
        self.rooms.get(owner)
    }

    /// The owners whose rooms we may enter.
    pub fn owners(&self) -> impl Iterator<Item = &[u8; 32]> {
        self.rooms.keys()
    }

    /// Checks every key again (after reading them from disk): what does not check is dropped.
    pub fn checked(mut self, me: &[u8; 32]) -> Self {
        self.rooms.retain(|owner, key| key.owner == *owner && key.verify().is_ok() && key.admits(me));
        self
    }
}

/// What the node keeps in `rooms.bin`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomsFile {
    /// Our own room.
    pub own: OwnRoom,
    /// The rooms we are invited to.
    pub held: HeldRooms,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(seed: u8) -> SecretKey {
        SecretKey::from_bytes(&[seed; 32])
    }

    fn id(seed: u8) -> [u8; 32] {
        *secret(seed).public().as_bytes()
    }

    #[test]
    fn a_key_names_its_members_and_any_change_breaks_its_signature() {
        let ada = secret(1);
        let mut room = OwnRoom::new(100).expect("random");
        assert_eq!(room.invite(id(2)), Ok(true));
        assert_eq!(room.invite(id(2)), Ok(false), "once");
        let key = room.signed(&ada);
        assert_eq!(key.verify(), Ok(()));
        assert!(key.admits(&id(1)) && key.admits(&id(2)) && !key.admits(&id(3)));
        let mut forged = key.clone();
        forged.members.push(id(3));
        forged.members.sort();
        assert_eq!(forged.verify(), Err(RoomError::Signature), "a member slipped in");
        let mut forged = key.clone();
        forged.key[0] ^= 1;
        assert_eq!(forged.verify(), Err(RoomError::Signature));
        let mut unsorted = key.clone();
        unsorted.members = vec![id(2), id(2)];
        assert_eq!(unsorted.verify(), Err(RoomError::Shape));
        // Too many members.
        for seed in 10..(10 + MAX_MEMBERS as u8 - 1) {
            room.invite(id(seed)).expect("room");
        }
        assert_eq!(room.invite(id(200)), Err(RoomError::Shape));
    }

    #[test]
    fn only_the_owner_hands_out_their_key_and_only_to_members() {
        let (ada, bo) = (secret(1), secret(2));
        let mut room = OwnRoom::new(100).expect("random");
        room.invite(id(2)).expect("room");
        let bytes = RoomMessage::Key(room.signed(&ada)).to_bytes();
        assert!(RoomMessage::open(&bytes, &id(1), &id(2)).is_ok());
        assert_eq!(RoomMessage::open(&bytes, &id(1), &id(3)), Err(RoomError::NotOurs), "not a member");
        assert_eq!(RoomMessage::open(&bytes, &id(4), &id(2)), Err(RoomError::NotOurs), "passed on by another");
        // Bo cannot issue a key for Ada's room.
        let mut forged = RoomKey::issue(&bo, 100, [9; 32], &[id(3)].into_iter().collect());
        forged.owner = id(1);
        let bytes = RoomMessage::Key(forged).to_bytes();
        assert_eq!(RoomMessage::open(&bytes, &id(1), &id(3)), Err(RoomError::Signature));
        assert_eq!(RoomMessage::open(b"junk", &id(1), &id(2)), Err(RoomError::Malformed));
        assert_eq!(RoomMessage::open(&vec![0; MAX_ROOM_MESSAGE_BYTES + 1], &id(1), &id(2)), Err(RoomError::Malformed));
    }

    #[test]
    fn removing_a_member_issues_a_new_key_and_topic_and_tells_them() {
        let ada = secret(1);
        let mut room = OwnRoom::new(100).expect("random");
        room.invite(id(2)).expect("room");
        room.invite(id(3)).expect("room");
        let before = room.signed(&ada);
        assert_eq!(room.remove(&id(2), 50), Ok(true));
        assert_eq!(room.remove(&id(2), 50), Ok(false));
        let after = room.signed(&ada);
        assert!(after.epoch > before.epoch, "dated after, whatever the clock");
        assert_ne!(after.topic(), before.topic());
        assert!(!after.admits(&id(2)) && after.admits(&id(3)));
        // Bo held the old key; the removal makes him forget the room, and an old key replayed
        // to Cy after the new one is refused.
        let mut bo = HeldRooms::default();
        assert_eq!(bo.take(RoomMessage::Key(before.clone())), Ok(true));
        assert_eq!(bo.take(RoomMessage::Removed(Removal::issue(&ada, id(2), after.epoch))), Ok(true));
        assert!(bo.get(&id(1)).is_none());
        let mut cy = HeldRooms::default();
        assert_eq!(cy.take(RoomMessage::Key(after.clone())), Ok(true));
        assert_eq!(cy.take(RoomMessage::Key(before)), Err(RoomError::Stale));
        assert_eq!(cy.take(RoomMessage::Key(after.clone())), Ok(false));
        assert_eq!(cy.get(&id(1)), Some(&after));
        assert_eq!(cy.take(RoomMessage::Removed(Removal::issue(&ada, id(3), after.epoch - 1))), Err(RoomError::Stale));
    }

    #[test]
    fn sealed_messages_open_only_with_their_rooms_key() {
        let ada = secret(1);
        let room = OwnRoom::new(100).expect("random").signed(&ada);
        let other = OwnRoom::new(100).expect("random").signed(&ada);
        let sealed = room.cipher().seal(b"the party is on Friday");
        assert!(!sealed.windows(5).any(|window| window == b"party"), "nothing plain");
        assert_eq!(room.cipher().open(&sealed).as_deref(), Ok(&b"the party is on Friday"[..]));
        assert_eq!(other.cipher().open(&sealed), Err(RoomError::Malformed));
        let mut altered = sealed.clone();
        altered[30] ^= 1;
        assert_eq!(room.cipher().open(&altered), Err(RoomError::Malformed));
        assert_eq!(room.cipher().open(b"short"), Err(RoomError::Malformed));
        assert_ne!(room.cipher().seal(b"x"), room.cipher().seal(b"x"), "a fresh nonce each time");
    }

    #[test]
    fn held_rooms_are_bounded_and_checked_again_when_read() {
        let mut held = HeldRooms::default();
        for seed in 0..(MAX_ROOMS_HELD as u8 + 5) {
            let owner = secret(seed.wrapping_add(100));
            let key = RoomKey::issue(&owner, u64::from(seed), [seed; 32], &[id(2)].into_iter().collect());
            held.take(RoomMessage::Key(key)).expect("taken");
        }
        assert_eq!(held.owners().count(), MAX_ROOMS_HELD);
        assert!(held.get(&id(100)).is_none(), "the oldest went");
        let mut damaged = held.clone();
        if let Some(key) = damaged.rooms.values_mut().next() {
            key.key[0] ^= 1;
        }
        assert_eq!(damaged.checked(&id(2)).owners().count(), MAX_ROOMS_HELD - 1);
        assert_eq!(held.checked(&id(3)).owners().count(), 0, "not ours");
    }
}
