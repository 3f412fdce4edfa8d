//! The wire format of live presence: quantised poses in signed, size-checked envelopes, and the
//! checks a receiver makes before it believes one (replays, flooding).
//!
//! Every decoder here takes untrusted bytes: it checks the size first, decodes without panics,
//! checks the signature and the topic, and only then returns data.

use glam::{Quat, Vec3};
use iroh::{PublicKey, SecretKey, Signature};
use sanctuary_engine::RegionId;
use sanctuary_engine::avatar::{AVATAR_BYTES, AvatarRef};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The largest message iroh-gossip carries by default; a larger broadcast is dropped silently,
/// so envelopes are checked against it when made and when received.
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// The longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 32;

/// A position in millimetres and an orientation packed as "smallest three" in 32 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuantisedTransform {
    /// Position in millimetres; ±2,147 km covers any region.
    pub position_mm: [i32; 3],
    /// Orientation, see [`pack_rotation`].
    pub rotation: u32,
}

impl QuantisedTransform {
    /// Quantises a position and an orientation. Values that are not finite become the origin
    /// and no rotation, so a broken sender cannot poison receivers with NaN.
    pub fn new(position: Vec3, rotation: Quat) -> Self {
        let millimetres = |metres: f32| {
            if metres.is_finite() {
                (metres * 1000.0).round().clamp(i32::MIN as f32, i32::MAX as f32) as i32
            } else {
                0
            }
        };
        Self { position_mm: position.to_array().map(millimetres), rotation: pack_rotation(rotation) }
    }

    /// The position in metres.
    pub fn position(&self) -> Vec3 {
        Vec3::from_array(self.position_mm.map(|mm| mm as f32 / 1000.0))
    }

    /// The orientation.
    pub fn rotation(&self) -> Quat {
        unpack_rotation(self.rotation)
    }
}

/// Steps of each packed rotation component: an even number, so that zero is exact and the
/// identity rotation survives packing unchanged.
const ROTATION_STEPS: f32 = 1022.0;

/// Packs a rotation in 32 bits: 2 bits name the largest component, which is dropped (it follows
/// from the others, as the quaternion has length one), and the other three take 10 bits each.
/// The error is below half a degree.
pub fn pack_rotation(rotation: Quat) -> u32 {
    let rotation =
        if rotation.is_finite() && rotation.length_squared() > 1e-12 { rotation.normalize() } else { Quat::IDENTITY };
    let mut components = rotation.to_array();
    let largest = (0..4).max_by(|&a, &b| components[a].abs().total_cmp(&components[b].abs())).unwrap_or(3);
    if components[largest] < 0.0 {
        components = components.map(|component| -component);
    }
    let mut packed = (largest as u32) << 30;
    let mut shift = 20;
    for (index, component) in components.iter().enumerate() {
        if index == largest {
            continue;
        }
        let unit = (component * std::f32::consts::SQRT_2 + 1.0) * 0.5;
        packed |= ((unit.clamp(0.0, 1.0) * ROTATION_STEPS).round() as u32) << shift;
        shift -= 10;
    }
    packed
}

/// Unpacks [`pack_rotation`]. Every 32-bit value gives a valid unit quaternion.
pub fn unpack_rotation(packed: u32) -> Quat {
    let largest = (packed >> 30) as usize;
    let mut components = [0.0f32; 4];
    let mut shift = 20;
    let mut sum_of_squares = 0.0;
    for (index, component) in components.iter_mut().enumerate() {
        if index == largest {
            continue;
        }
        let unit = (((packed >> shift) & 0x3ff) as f32 / ROTATION_STEPS).min(1.0);
        *component = (unit * 2.0 - 1.0) / std::f32::consts::SQRT_2;
        sum_of_squares += *component * *component;
        shift -= 10;
    }
    components[largest] = (1.0 - sum_of_squares).max(0.0).sqrt();
    let quat = Quat::from_array(components);
    if quat.length_squared() > 1e-12 { quat.normalize() } else { Quat::IDENTITY }
}

/// Where a person's head and hands are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoseFrame {
    /// The head (the eyes).
    pub head: QuantisedTransform,
    /// The left hand.
    pub left_hand: QuantisedTransform,
    /// The right hand.
    pub right_hand: QuantisedTransform,
}

/// A person's presence in a region: who, how they look, where they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// The name shown above the head; at most [`MAX_NAME_CHARS`] characters.
    pub name: String,
    /// The avatar's colour.
    pub colour: [u8; 3],
    /// The pose.
    pub pose: PoseFrame,
}

/// The longest chat line or private message, in characters (at most four bytes each, so a full
/// line still fits a gossip message).
pub const MAX_TEXT_CHARS: usize = 500;

/// What travels on a region's gossip topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegionMessage {
    /// Where someone is and how they look, sent up to 20 times a second.
    Presence(Presence),
    /// A line of text chat for everyone in the region.
    Chat {
        /// The author's name when they wrote it.
        name: String,
        /// The line.
        text: String,
    },
    /// The author leaves the region.
    Leave,
    /// A signed world change (see `sanctuary_engine::SignedChange`), passed on as its author
    /// made it: every receiver checks its own signature and the rules before taking it.
    Change(Vec<u8>),
    /// The author's microphone: sent when it changes, to newcomers, and every
    /// [`crate::MIC_KEEPALIVE`]. (Last of the variants, so that older peers still read every
    /// other message.)
    Mic(MicState),
    /// The model the author wears (`None`: a plain body in their colour). Sent when it
    /// changes, to newcomers, and every [`crate::LOOK_KEEPALIVE`], beside the pose rather than
    /// in it, so that twenty poses a second do not carry it.
    Look(Option<AvatarRef>),
    /// About the region's screen (see [`crate::screen`]): its state, a film offered, a film
    /// held. (Last, so that older peers still read the others.)
    Screen(crate::screen::ScreenMessage),
    /// About the lecture hall's stage (see [`crate::stage`]): its state, a hand raised or
    /// lowered, a slide held. (Last, so that older peers still read the others.)
    Stage(crate::stage::StageMessage),
    /// About the meeting room's polls (see [`crate::meeting`]): a poll, ballots. (Last, so
    /// that older peers still read the others.)
    Meeting(crate::meeting::MeetingMessage),
    /// The BOLT12 offer the author takes tips through (`None`: no tips). Part of how the author
    /// appears, signed like the rest: sent when it changes, to newcomers, and every
    /// [`crate::TIPS_KEEPALIVE`]. (Last, so that older peers still read the others.)
    Tips(Option<String>),
    /// How many people are in one cell of the region and where (see [`crate::cells`]), said on
    /// the region's topic by the cell's reporter for those beyond it. (Last, so that older peers
    /// still read the others.)
    Crowd(crate::cells::CrowdSummary),
    /// The author is an AI agent, and this is who runs it (see [`crate::agent`]): said beside
    /// the pose like the look, to newcomers and every [`crate::AGENT_KEEPALIVE`]. The card must
    /// be signed by its operator for the author, or the message is refused as forged. (Last, so
    /// that older peers still read the others.)
    Agent(crate::agent::AgentCard),
}

/// The longest tip offer, in characters: an offer with a few blinded paths fits easily, and a
/// message with one still fits a gossip message.
pub const MAX_TIP_OFFER_CHARS: usize = 2000;

/// Whether `text` looks like a BOLT12 offer as a node writes it: `lno1` and bech32 letters, at
/// most [`MAX_TIP_OFFER_CHARS`]. The payer's wallet reads it properly before paying; this keeps
/// anything else (markup, control characters, a novel) out of what peers pass on and show.
pub fn check_tip_offer(text: &str) -> Result<(), WireError> {
    const BECH32: &str = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    let well_formed = text.len() <= MAX_TIP_OFFER_CHARS
        && text.strip_prefix("lno1").is_some_and(|data| data.len() >= 8 && data.chars().all(|c| BECH32.contains(c)));
    if well_formed { Ok(()) } else { Err(WireError::NotAnOffer) }
}

/// Whether a person can be heard, shown to the others beside their name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MicState {
    /// No microphone, or voice turned off.
    Off,
    /// The microphone is on (push-to-talk or the open microphone).
    Live,
    /// Muted by its owner.
    Muted,
}

/// What travels on the world topic that every peer joins: who is where, so that peers find the
/// others of their region whichever peer they first met.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorldMessage {
    /// The author is in `regions` under `name`.
    Here {
        /// The regions the author is in: one for a person, those it serves for a home node.
        regions: Vec<RegionId>,
        /// The author's name.
        name: String,
    },
    /// The author is shutting down.
    Gone,
    /// A signed world change that touches no parcel (a trust, host or profile statement, see
    /// `sanctuary_engine::Op::Trust`, `Op::Host` and `Op::Profile`), passed on as its author made it. (Last of the variants,
    /// so that older peers still read the others.)
    Change(Vec<u8>),
}

/// The most regions one peer says it is in (a home node serving every region stays below).
pub const MAX_REGIONS_PER_PEER: usize = 16;

/// A private message for one person, sent over a direct connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectText {
    /// The sender's name when they wrote it.
    pub name: String,
    /// The message.
    pub text: String,
}

/// A message body that can travel in a signed envelope.
pub trait Body: Serialize + DeserializeOwned {
    /// Domain separation: a signature made for one kind of message never verifies as another.
    const CONTEXT: &'static [u8];
    /// Checks the limits a well-formed body keeps.
    fn check(&self) -> Result<(), WireError>;
    /// Makes remote text safe to show once the signature is checked (see [`clean_text`]).
    fn clean(&mut self) {}
    /// Checks what depends on who signed (an agent's card), once the signature holds.
    fn check_author(&self, _author: &[u8; 32]) -> Result<(), WireError> {
        Ok(())
    }
}

/// Whether a character may reach a screen, a log or a terminal from someone else's text:
/// control characters (newlines that fake lines from others, terminal escape sequences) and
/// the invisible marks that reorder text (bidirectional overrides, isolates and marks, which
/// can make a name or line read as something else) are not.
fn is_safe_char(character: char) -> bool {
    !character.is_control()
        && !matches!(
            character,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// Remote text made safe to show: control characters and bidirectional controls removed, tabs
/// and line breaks turned into spaces.
pub fn clean_text(text: &str) -> String {
    text.chars()
        .filter_map(|character| match character {
            '\t' | '\n' | '\r' => Some(' '),
            other if is_safe_char(other) => Some(other),
            _ => None,
        })
        .collect()
}

/// Cleans `text` in place, without allocating when it is clean already (the common case).
fn clean_in_place(text: &mut String) {
    if !text.chars().all(is_safe_char) {
        *text = clean_text(text);
    }
}

fn check_name(name: &str) -> Result<(), WireError> {
    if name.chars().count() > MAX_NAME_CHARS { Err(WireError::NameTooLong) } else { Ok(()) }
}

fn check_text(text: &str) -> Result<(), WireError> {
    if text.chars().count() > MAX_TEXT_CHARS { Err(WireError::TextTooLong) } else { Ok(()) }
}

impl Body for RegionMessage {
    const CONTEXT: &'static [u8] = b"sanctuary region v1";
    fn check(&self) -> Result<(), WireError> {
        match self {
            RegionMessage::Presence(presence) => check_name(&presence.name),
            RegionMessage::Chat { name, text } => check_name(name).and(check_text(text)),
            RegionMessage::Leave => Ok(()),
            RegionMessage::Change(bytes) if bytes.len() > sanctuary_engine::MAX_CHANGE_BYTES => {
                Err(WireError::TooLarge { len: bytes.len() })
            }
            RegionMessage::Look(Some(avatar)) if avatar.bytes > AVATAR_BYTES => {
                Err(WireError::AvatarTooLarge { bytes: avatar.bytes })
            }
            RegionMessage::Change(_) | RegionMessage::Mic(_) | RegionMessage::Look(_) => Ok(()),
            RegionMessage::Screen(screen) => screen.check_shape(),
            RegionMessage::Stage(stage) => stage.check_shape(),
            RegionMessage::Meeting(meeting) => meeting.check_shape(),
            RegionMessage::Tips(Some(offer)) => check_tip_offer(offer),
            RegionMessage::Tips(None) => Ok(()),
            RegionMessage::Crowd(summary) => summary.check_shape(),
            RegionMessage::Agent(_) => Ok(()),
        }
    }
    fn check_author(&self, author: &[u8; 32]) -> Result<(), WireError> {
        match self {
            RegionMessage::Agent(card) => card.check(author),
            _ => Ok(()),
        }
    }
    fn clean(&mut self) {
        match self {
            RegionMessage::Presence(presence) => clean_in_place(&mut presence.name),
            RegionMessage::Chat { name, text } => {
                clean_in_place(name);
                clean_in_place(text);
            }
            RegionMessage::Screen(screen) => screen.clean(),
            RegionMessage::Leave
            | RegionMessage::Change(_)
            | RegionMessage::Mic(_)
            | RegionMessage::Look(_)
            | RegionMessage::Stage(_)
            | RegionMessage::Meeting(_)
            | RegionMessage::Tips(_)
            | RegionMessage::Crowd(_)
            | RegionMessage::Agent(_) => {}
        }
    }
}

impl Body for WorldMessage {
    const CONTEXT: &'static [u8] = b"sanctuary world v1";
    fn check(&self) -> Result<(), WireError> {
        match self {
            WorldMessage::Here { name, regions } => {
                if regions.len() > MAX_REGIONS_PER_PEER {
                    return Err(WireError::Malformed);
                }
                check_name(name)
            }
            WorldMessage::Gone => Ok(()),
            WorldMessage::Change(bytes) if bytes.len() > sanctuary_engine::MAX_CHANGE_BYTES => {
                Err(WireError::TooLarge { len: bytes.len() })
            }
            WorldMessage::Change(_) => Ok(()),
        }
    }
    fn clean(&mut self) {
        if let WorldMessage::Here { name, .. } = self {
            clean_in_place(name);
        }
    }
}

impl Body for DirectText {
    const CONTEXT: &'static [u8] = b"sanctuary direct v1";
    fn check(&self) -> Result<(), WireError> {
        check_name(&self.name).and(check_text(&self.text))
    }
    fn clean(&mut self) {
        clean_in_place(&mut self.name);
        clean_in_place(&mut self.text);
    }
}

/// The signed envelope as it travels.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Envelope<T> {
    author: [u8; 32],
    sequence: u64,
    body: T,
    signature: Signature,
}

/// A message whose size, shape, limits and signature have been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed<T> {
    /// Who signed it.
    pub author: PublicKey,
    /// The author's sequence number: microseconds since 1970 on the author's clock when sent,
    /// and always higher than the author's previous one.
    pub sequence: u64,
    /// What it says.
    pub body: T,
}

/// Why a message was refused. Receivers count these; none of them is a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Larger than a gossip message may be.
    #[error("message of {len} bytes is over the {MAX_MESSAGE_BYTES}-byte limit")]
    TooLarge {
        /// Its size.
        len: usize,
    },
    /// The bytes are not an envelope.
    #[error("malformed message")]
    Malformed,
    /// The author field is not a valid public key.
    #[error("the author is not a valid public key")]
    BadAuthor,
    /// The signature does not match the author, the scope and the content.
    #[error("the signature does not match")]
    BadSignature,
    /// The name is too long.
    #[error("the name is longer than {MAX_NAME_CHARS} characters")]
    NameTooLong,
    /// The text is too long.
    #[error("the text is longer than {MAX_TEXT_CHARS} characters")]
    TextTooLong,
    /// An avatar announced larger than any avatar may be.
    #[error("an avatar of {bytes} bytes is over the {AVATAR_BYTES}-byte limit")]
    AvatarTooLarge {
        /// The bytes it declares.
        bytes: u64,
    },
    /// A tip offer that is not a BOLT12 offer of at most [`MAX_TIP_OFFER_CHARS`].
    #[error("not a Lightning offer (lno1..., at most {MAX_TIP_OFFER_CHARS} characters)")]
    NotAnOffer,
}

/// The bytes a signature covers: context, scope, author, sequence and content.
fn signed_bytes<T: Body>(scope: &[u8; 32], author: &[u8; 32], sequence: u64, body: &T) -> Result<Vec<u8>, WireError> {
    let mut bytes = Vec::with_capacity(160);
    bytes.extend_from_slice(T::CONTEXT);
    bytes.extend_from_slice(scope);
    bytes.extend_from_slice(author);
    bytes.extend_from_slice(&sequence.to_le_bytes());
    postcard::to_extend(body, bytes).map_err(|_| WireError::Malformed)
}

/// Signs `body` for `scope` (the gossip topic it is sent on, or the recipient's key for a
/// private message) and encodes it.
pub fn encode<T: Body>(secret: &SecretKey, scope: &[u8; 32], sequence: u64, body: &T) -> Result<Vec<u8>, WireError> {
    body.check()?;
    let author = *secret.public().as_bytes();
    let signature = secret.sign(&signed_bytes(scope, &author, sequence, body)?);
    let bytes =
        postcard::to_allocvec(&Envelope { author, sequence, body, signature }).map_err(|_| WireError::Malformed)?;
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(WireError::TooLarge { len: bytes.len() });
    }
    Ok(bytes)
}

/// Checks and decodes a message received for `scope`: size first, then shape, limits, author
/// key and signature.
pub fn decode<T: Body>(bytes: &[u8], scope: &[u8; 32]) -> Result<Signed<T>, WireError> {
    open(bytes)?.verify(scope)
}

/// A message whose size, shape and limits are checked but whose signature is not yet: what a
/// receiver looks at to decide whether the (costly) signature check is worth making. Nothing in
/// it may be believed until [`Unverified::verify`] says so.
#[derive(Debug)]
pub struct Unverified<T> {
    envelope: Envelope<T>,
}

impl<T: Body> Unverified<T> {
    /// Who the message claims to be from (unproven).
    pub fn claimed_author(&self) -> [u8; 32] {
        self.envelope.author
    }

    /// The sequence it claims (unproven).
    pub fn claimed_sequence(&self) -> u64 {
        self.envelope.sequence
    }

    /// The body it carries (unproven).
    pub fn body(&self) -> &T {
        &self.envelope.body
    }

    /// Checks the author key and the signature for `scope` (ed25519 `verify_strict`, as iroh's
    /// `PublicKey::verify` does).
    pub fn verify(self, scope: &[u8; 32]) -> Result<Signed<T>, WireError> {
        let Envelope { author, sequence, body, signature } = self.envelope;
        let checked = sanctuary_engine::PublicKey::from_bytes(author).map_err(|_| WireError::BadAuthor)?;
        let key = checked.verifying_key();
        let signed = signed_bytes(scope, &author, sequence, &body)?;
        let signature = ed25519_dalek::Signature::from_bytes(&signature.to_bytes());
        key.verify_strict(&signed, &signature).map_err(|_| WireError::BadSignature)?;
        body.check_author(&author)?;
        let mut body = body;
        body.clean();
        Ok(Signed { author: iroh_key(key), sequence, body })
    }
}

/// The iroh key of `bytes` if they are a person's key (on the curve, canonical, not of small
/// order), decompressed at most once per thread: a crowd's messages all pass through here, and
/// decompressing a key costs a third of checking a signature.
pub fn checked_author(bytes: &[u8; 32]) -> Option<PublicKey> {
    sanctuary_engine::PublicKey::from_bytes(*bytes).ok().map(|key| iroh_key(key.verifying_key()))
}

/// An iroh key from a checked one, without decompressing it once more (iroh's `from_bytes`
/// would). `from_verifying_key` is iroh's own conversion; the pinned version keeps it.
fn iroh_key(key: ed25519_dalek::VerifyingKey) -> PublicKey {
    PublicKey::from_verifying_key(key)
}

/// Checks the size, shape and limits of a message, leaving the signature for later.
pub fn open<T: Body>(bytes: &[u8]) -> Result<Unverified<T>, WireError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(WireError::TooLarge { len: bytes.len() });
    }
    let (envelope, rest): (Envelope<T>, &[u8]) = postcard::take_from_bytes(bytes).map_err(|_| WireError::Malformed)?;
    if !rest.is_empty() {
        return Err(WireError::Malformed);
    }
    envelope.body.check()?;
    Ok(Unverified { envelope })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPIC: [u8; 32] = [7; 32];

    fn presence() -> Presence {
        let at = |x: f32| QuantisedTransform::new(Vec3::new(x, 1.7, -3.25), Quat::from_rotation_y(0.7));
        Presence {
            name: "Ada".to_owned(),
            colour: [200, 40, 180],
            pose: PoseFrame { head: at(1.0), left_hand: at(0.7), right_hand: at(1.3) },
        }
    }

    fn secret(seed: u8) -> SecretKey {
        SecretKey::from_bytes(&[seed; 32])
    }

    fn encode_presence(
        secret: &SecretKey,
        topic: &[u8; 32],
        sequence: u64,
        presence: &Presence,
    ) -> Result<Vec<u8>, WireError> {
        encode(secret, topic, sequence, &RegionMessage::Presence(presence.clone()))
    }

    fn decode_presence(bytes: &[u8], topic: &[u8; 32]) -> Result<Signed<RegionMessage>, WireError> {
        decode(bytes, topic)
    }

    #[test]
    fn a_signed_presence_round_trips() {
        let bytes = encode_presence(&secret(1), &TOPIC, 5, &presence()).expect("encodes");
        assert!(bytes.len() < 200, "a pose message should be small, got {} bytes", bytes.len());
        let verified = decode_presence(&bytes, &TOPIC).expect("verifies");
        assert_eq!(verified.author, secret(1).public());
        assert_eq!(verified.sequence, 5);
        assert_eq!(verified.body, RegionMessage::Presence(presence()));
    }

    #[test]
    fn the_avatar_worn_round_trips_and_an_impossible_one_is_refused() {
        use sanctuary_engine::avatar::Rank;
        let look = RegionMessage::Look(Some(AvatarRef { hash: [3; 32], bytes: 40_000, rank: Rank::Good }));
        let bytes = encode(&secret(1), &TOPIC, 6, &look).expect("encodes");
        assert_eq!(decode::<RegionMessage>(&bytes, &TOPIC).expect("verifies").body, look);
        let huge = RegionMessage::Look(Some(AvatarRef { hash: [3; 32], bytes: AVATAR_BYTES + 1, rank: Rank::Good }));
        // Decoding runs the same check after the signature.
        assert_eq!(encode(&secret(1), &TOPIC, 7, &huge), Err(WireError::AvatarTooLarge { bytes: AVATAR_BYTES + 1 }));
    }

    #[test]
    fn a_tip_offer_travels_only_shaped_like_an_offer() {
        let offer = format!("lno1{}", "qpzry9x8gf2tvdw0s3jn54khce6mua7l".repeat(12));
        let tips = RegionMessage::Tips(Some(offer.clone()));
        let bytes = encode(&secret(1), &TOPIC, 8, &tips).expect("encodes");
        assert_eq!(decode::<RegionMessage>(&bytes, &TOPIC).expect("verifies").body, tips);
        assert!(encode(&secret(1), &TOPIC, 9, &RegionMessage::Tips(None)).is_ok());
        let too_long = format!("lno1{}", "q".repeat(MAX_TIP_OFFER_CHARS));
        let invoice = format!("lnbc1{}", "q".repeat(100));
        for bad in [too_long, invoice, format!("{offer}\u{202e}"), format!("{offer}B"), "lno1".into(), String::new()] {
            assert_eq!(check_tip_offer(&bad), Err(WireError::NotAnOffer), "{bad}");
            assert_eq!(encode(&secret(1), &TOPIC, 10, &RegionMessage::Tips(Some(bad))), Err(WireError::NotAnOffer));
        }
        // The longest offer still fits one gossip message.
        let longest = format!("lno1{}", "q".repeat(MAX_TIP_OFFER_CHARS - 4));
        let bytes = encode(&secret(1), &TOPIC, 11, &RegionMessage::Tips(Some(longest))).expect("encodes");
        assert!(bytes.len() <= MAX_MESSAGE_BYTES, "{} bytes", bytes.len());
    }

    #[test]
    fn quantisation_keeps_millimetres_and_half_degrees() {
        for index in 0..2000 {
            let angle = index as f32 * 0.37;
            let axis = Vec3::new(angle.sin(), angle.cos(), (angle * 1.7).sin()).normalize();
            let rotation = Quat::from_axis_angle(axis, angle);
            let position = Vec3::new(angle * 3.1, -angle, 1000.0 - angle * 7.0);
            let quantised = QuantisedTransform::new(position, rotation);
            assert!(quantised.position().distance(position) < 0.001);
            let error = quantised.rotation().angle_between(rotation).to_degrees();
            assert!(error < 0.5, "rotation off by {error} degrees");
        }
        let broken = QuantisedTransform::new(Vec3::NAN, Quat::from_xyzw(f32::NAN, 0.0, 0.0, 0.0));
        assert_eq!(broken.position(), Vec3::ZERO);
        assert_eq!(broken.rotation(), Quat::IDENTITY);
    }

    #[test]
    fn forged_tampered_and_misdirected_messages_are_refused() {
        let bytes = encode_presence(&secret(1), &TOPIC, 5, &presence()).expect("encodes");
        // Another topic: the signature covers the topic.
        assert_eq!(decode_presence(&bytes, &[8; 32]), Err(WireError::BadSignature));
        // A flipped byte anywhere either breaks decoding or the signature.
        for index in 0..bytes.len() {
            let mut tampered = bytes.clone();
            tampered[index] ^= 0x40;
            assert!(decode_presence(&tampered, &TOPIC).is_err(), "byte {index} was not covered");
        }
        // Someone else's key in the author field.
        let mut envelope: Envelope<RegionMessage> = postcard::from_bytes(&bytes).expect("decodes");
        envelope.author = *secret(2).public().as_bytes();
        let forged = postcard::to_allocvec(&envelope).expect("encodes");
        assert_eq!(decode_presence(&forged, &TOPIC), Err(WireError::BadSignature));
    }

    /// Checked keys are remembered (`checked_author`); a remembered key must never stand in for
    /// another, and a key refused once must be refused every time.
    #[test]
    fn remembered_keys_are_never_lent_or_let_in() {
        let from_ada = encode_presence(&secret(1), &TOPIC, 5, &presence()).expect("encodes");
        let from_bob = encode_presence(&secret(2), &TOPIC, 6, &presence()).expect("encodes");
        for _ in 0..3 {
            assert_eq!(decode_presence(&from_ada, &TOPIC).expect("verifies").author, secret(1).public());
            assert_eq!(decode_presence(&from_bob, &TOPIC).expect("verifies").author, secret(2).public());
            // Ada's signature under Bob's key, both keys remembered by now.
            let mut envelope: Envelope<RegionMessage> = postcard::from_bytes(&from_ada).expect("decodes");
            envelope.author = *secret(2).public().as_bytes();
            let swapped = postcard::to_allocvec(&envelope).expect("encodes");
            assert_eq!(decode_presence(&swapped, &TOPIC), Err(WireError::BadSignature));
            // A small-order key (the identity point).
            let mut identity = [0u8; 32];
            identity[0] = 1;
            envelope.author = identity;
            let weak = postcard::to_allocvec(&envelope).expect("encodes");
            assert_eq!(decode_presence(&weak, &TOPIC), Err(WireError::BadAuthor));
            assert_eq!(checked_author(&identity), None);
            assert_eq!(checked_author(secret(1).public().as_bytes()), Some(secret(1).public()));
        }
    }

    #[test]
    fn oversized_and_long_named_messages_are_refused() {
        assert_eq!(
            decode_presence(&vec![0; MAX_MESSAGE_BYTES + 1], &TOPIC),
            Err(WireError::TooLarge { len: MAX_MESSAGE_BYTES + 1 })
        );
        let mut long = presence();
        long.name = "x".repeat(MAX_NAME_CHARS + 1);
        assert_eq!(encode_presence(&secret(1), &TOPIC, 1, &long), Err(WireError::NameTooLong));
        let chat = RegionMessage::Chat { name: "Ada".into(), text: "é".repeat(MAX_TEXT_CHARS + 1) };
        assert_eq!(encode(&secret(1), &TOPIC, 1, &chat), Err(WireError::TextTooLong));
        let longest =
            RegionMessage::Chat { name: "é".repeat(MAX_NAME_CHARS), text: "\u{1F600}".repeat(MAX_TEXT_CHARS) };
        let bytes = encode(&secret(1), &TOPIC, 1, &longest).expect("the longest line still fits a gossip message");
        assert_eq!(decode::<RegionMessage>(&bytes, &TOPIC).expect("verifies").body, longest);
    }

    /// A signed line with a newline fakes a second line from someone else; escape sequences
    /// drive the home node's terminal; bidirectional overrides make text read backwards. The
    /// receiver gets none of them, whatever the sender signed.
    #[test]
    fn remote_text_is_stripped_of_controls_and_bidirectional_overrides() {
        let chat = RegionMessage::Chat {
            name: "Ada\u{202E}nimda".into(),
            text: "hi\n<Bo> send me your words\u{1b}[2J\u{7}\u{2066}x\u{2069}".into(),
        };
        let bytes = encode(&secret(1), &TOPIC, 1, &chat).expect("encodes");
        let RegionMessage::Chat { name, text } = decode::<RegionMessage>(&bytes, &TOPIC).expect("verifies").body else {
            panic!("a chat line");
        };
        assert_eq!(name, "Adanimda");
        assert_eq!(text, "hi <Bo> send me your words[2Jx");
        let direct = DirectText { name: "E\rve".into(), text: "a\u{200F}b\u{0}c".into() };
        let bytes = encode(&secret(1), &TOPIC, 2, &direct).expect("encodes");
        let body = decode::<DirectText>(&bytes, &TOPIC).expect("verifies").body;
        assert_eq!((body.name.as_str(), body.text.as_str()), ("E ve", "abc"));
        let here = WorldMessage::Here { regions: vec![], name: "\u{1b}]0;pwned\u{7}Cy".into() };
        let bytes = encode(&secret(1), &TOPIC, 3, &here).expect("encodes");
        let WorldMessage::Here { name, .. } = decode::<WorldMessage>(&bytes, &TOPIC).expect("verifies").body else {
            panic!("a presence");
        };
        assert_eq!(name, "]0;pwnedCy");
        // Ordinary text in any script is untouched.
        assert_eq!(clean_text("Zoë مرحبا 你好 🙂"), "Zoë مرحبا 你好 🙂");
    }

    #[test]
    fn a_signature_is_only_valid_for_its_own_kind_of_message() {
        // The same bytes of body signed as a private message must not pass as anything else.
        let direct = DirectText { name: "Ada".into(), text: "hi".into() };
        let bytes = encode(&secret(1), &TOPIC, 9, &direct).expect("encodes");
        assert_eq!(decode::<DirectText>(&bytes, &TOPIC).expect("verifies").body, direct);
        assert!(decode::<RegionMessage>(&bytes, &TOPIC).is_err());
        assert!(decode::<WorldMessage>(&bytes, &TOPIC).is_err());
        let here = WorldMessage::Here { regions: vec![RegionId::Lobby], name: "Ada".into() };
        let bytes = encode(&secret(1), &TOPIC, 9, &here).expect("encodes");
        assert_eq!(decode::<WorldMessage>(&bytes, &TOPIC).expect("verifies").body, here);
        assert!(decode::<RegionMessage>(&bytes, &TOPIC).is_err());
    }

    proptest::proptest! {
        /// Random bytes never panic the decoder and are never accepted.
        #[test]
        fn random_bytes_are_refused_without_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            proptest::prop_assert!(decode_presence(&bytes, &TOPIC).is_err());
            proptest::prop_assert!(decode::<WorldMessage>(&bytes, &TOPIC).is_err());
            proptest::prop_assert!(decode::<DirectText>(&bytes, &TOPIC).is_err());
        }

        /// Valid messages with random bytes overwritten, cut short or extended never panic the
        /// decoder and never verify unless they are unchanged.
        #[test]
        fn mutated_messages_are_refused_without_panic(
            edits in proptest::collection::vec((proptest::num::usize::ANY, proptest::num::u8::ANY), 1..6),
            cut in proptest::option::of(proptest::num::usize::ANY),
            tail in proptest::collection::vec(proptest::num::u8::ANY, 0..4),
        ) {
            let chat = RegionMessage::Chat { name: "Ada".into(), text: "hello there".into() };
            let original = encode(&secret(3), &TOPIC, 77, &chat).expect("encodes");
            let mut bytes = original.clone();
            for (at, value) in edits {
                let at = at % bytes.len();
                bytes[at] = value;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut % (bytes.len() + 1));
            }
            bytes.extend_from_slice(&tail);
            let result = decode::<RegionMessage>(&bytes, &TOPIC);
            if bytes != original {
                proptest::prop_assert!(result.is_err());
            }
            let _ = decode::<DirectText>(&bytes, &TOPIC);
            let _ = decode::<WorldMessage>(&bytes, &TOPIC);
        }

        /// Every 32-bit rotation unpacks to a unit quaternion.
        #[test]
        fn every_packed_rotation_is_a_unit_quaternion(packed in proptest::num::u32::ANY) {
            let rotation = unpack_rotation(packed);
            proptest::prop_assert!((rotation.length() - 1.0).abs() < 1e-4);
        }
    }
}
