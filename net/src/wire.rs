//! The wire format of live presence: quantised poses in signed, size-checked envelopes, and the
//! checks a receiver makes before it believes one (replays, flooding).
//!
//! Every decoder here takes untrusted bytes: it checks the size first, decodes without panics,
//! checks the signature and the topic, and only then returns data.

use std::collections::HashMap;
use std::time::Duration;

use glam::{Quat, Vec3};
use iroh::{PublicKey, SecretKey, Signature};
use serde::{Deserialize, Serialize};

/// The largest message iroh-gossip carries by default; a larger broadcast is dropped silently,
/// so envelopes are checked against it when made and when received.
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// The longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 32;
/// Domain separation for presence signatures: a signature made here is never valid elsewhere.
const SIGNING_CONTEXT: &[u8] = b"sanctuary presence v1";

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

/// The signed envelope as it travels.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Envelope {
    author: [u8; 32],
    sequence: u64,
    presence: Presence,
    signature: Signature,
}

/// A presence message whose signature, topic and size have been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Who signed it.
    pub author: PublicKey,
    /// The author's sequence number; higher is newer.
    pub sequence: u64,
    /// What it says.
    pub presence: Presence,
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
    /// The signature does not match the author, the topic and the content.
    #[error("the signature does not match")]
    BadSignature,
    /// The name is too long.
    #[error("the name is longer than {MAX_NAME_CHARS} characters")]
    NameTooLong,
}

/// The bytes a signature covers: context, topic, author, sequence and content.
fn signed_bytes(topic: &[u8; 32], author: &[u8; 32], sequence: u64, presence: &Presence) -> Result<Vec<u8>, WireError> {
    let mut bytes = Vec::with_capacity(128);
    bytes.extend_from_slice(SIGNING_CONTEXT);
    bytes.extend_from_slice(topic);
    bytes.extend_from_slice(author);
    bytes.extend_from_slice(&sequence.to_le_bytes());
    postcard::to_extend(presence, bytes).map_err(|_| WireError::Malformed)
}

/// Signs `presence` for the gossip topic `topic` and encodes it.
pub fn encode_presence(
    secret: &SecretKey,
    topic: &[u8; 32],
    sequence: u64,
    presence: &Presence,
) -> Result<Vec<u8>, WireError> {
    if presence.name.chars().count() > MAX_NAME_CHARS {
        return Err(WireError::NameTooLong);
    }
    let author = *secret.public().as_bytes();
    let signature = secret.sign(&signed_bytes(topic, &author, sequence, presence)?);
    let bytes = postcard::to_allocvec(&Envelope { author, sequence, presence: presence.clone(), signature })
        .map_err(|_| WireError::Malformed)?;
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(WireError::TooLarge { len: bytes.len() });
    }
    Ok(bytes)
}

/// Checks and decodes a presence message received on the gossip topic `topic`.
pub fn decode_presence(bytes: &[u8], topic: &[u8; 32]) -> Result<Verified, WireError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(WireError::TooLarge { len: bytes.len() });
    }
    let (envelope, rest): (Envelope, &[u8]) = postcard::take_from_bytes(bytes).map_err(|_| WireError::Malformed)?;
    if !rest.is_empty() {
        return Err(WireError::Malformed);
    }
    if envelope.presence.name.chars().count() > MAX_NAME_CHARS {
        return Err(WireError::NameTooLong);
    }
    let author = PublicKey::from_bytes(&envelope.author).map_err(|_| WireError::BadAuthor)?;
    let signed = signed_bytes(topic, &envelope.author, envelope.sequence, &envelope.presence)?;
    author.verify(&signed, &envelope.signature).map_err(|_| WireError::BadSignature)?;
    Ok(Verified { author, sequence: envelope.sequence, presence: envelope.presence })
}

/// Drops messages that are not newer than the last one accepted from the same author, so that
/// a recorded message cannot be played again.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    newest: HashMap<PublicKey, u64>,
}

impl ReplayGuard {
    /// Whether `sequence` from `author` is new; if so it becomes the newest.
    pub fn accept(&mut self, author: PublicKey, sequence: u64) -> bool {
        match self.newest.get(&author) {
            Some(&newest) if sequence <= newest => false,
            _ => {
                self.newest.insert(author, sequence);
                true
            }
        }
    }
}

/// A token bucket per author: `burst` messages at once, then `per_second` a second.
#[derive(Debug)]
pub struct RateLimiter {
    burst: f64,
    per_second: f64,
    buckets: HashMap<PublicKey, (f64, Duration)>,
}

impl RateLimiter {
    /// A limiter that allows `burst` messages at once and `per_second` on average.
    pub fn new(burst: u32, per_second: u32) -> Self {
        Self { burst: f64::from(burst.max(1)), per_second: f64::from(per_second), buckets: HashMap::new() }
    }

    /// Whether `author` may send one more message at time `now` (any monotonic clock).
    pub fn allow(&mut self, author: PublicKey, now: Duration) -> bool {
        let (tokens, last) = self.buckets.entry(author).or_insert((self.burst, now));
        let elapsed = now.saturating_sub(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * self.per_second).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
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

    #[test]
    fn a_signed_presence_round_trips() {
        let bytes = encode_presence(&secret(1), &TOPIC, 5, &presence()).expect("encodes");
        assert!(bytes.len() < 200, "a pose message should be small, got {} bytes", bytes.len());
        let verified = decode_presence(&bytes, &TOPIC).expect("verifies");
        assert_eq!(verified.author, secret(1).public());
        assert_eq!(verified.sequence, 5);
        assert_eq!(verified.presence, presence());
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
        let mut envelope: Envelope = postcard::from_bytes(&bytes).expect("decodes");
        envelope.author = *secret(2).public().as_bytes();
        let forged = postcard::to_allocvec(&envelope).expect("encodes");
        assert_eq!(decode_presence(&forged, &TOPIC), Err(WireError::BadSignature));
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
    }

    #[test]
    fn replays_are_dropped() {
        let mut guard = ReplayGuard::default();
        let author = secret(1).public();
        assert!(guard.accept(author, 3));
        assert!(!guard.accept(author, 3));
        assert!(!guard.accept(author, 2));
        assert!(guard.accept(author, 4));
        assert!(guard.accept(secret(2).public(), 1), "authors are counted apart");
    }

    #[test]
    fn flooding_is_throttled_per_author() {
        let mut limiter = RateLimiter::new(5, 20);
        let flooder = secret(1).public();
        let calm = secret(2).public();
        let start = Duration::from_secs(100);
        let allowed = (0..100).filter(|_| limiter.allow(flooder, start)).count();
        assert_eq!(allowed, 5, "only the burst passes at once");
        assert!(limiter.allow(calm, start), "others are not throttled by the flooder");
        // A second later the flooder has earned 20 more (capped at the burst of 5).
        let later = start + Duration::from_secs(1);
        assert_eq!((0..100).filter(|_| limiter.allow(flooder, later)).count(), 5);
    }

    proptest::proptest! {
        /// Random bytes never panic the decoder and are never accepted.
        #[test]
        fn random_bytes_are_refused_without_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            proptest::prop_assert!(decode_presence(&bytes, &TOPIC).is_err());
        }

        /// Every 32-bit rotation unpacks to a unit quaternion.
        #[test]
        fn every_packed_rotation_is_a_unit_quaternion(packed in proptest::num::u32::ANY) {
            let rotation = unpack_rotation(packed);
            proptest::prop_assert!((rotation.length() - 1.0).abs() < 1e-4);
        }
    }
}
