//! The pose datagram near neighbours send each other twenty times a second over direct QUIC
//! connections (`alpn::POSE`), beside the signed presence on gossip.
//!
//! The connection proves who sent it (iroh authenticates and encrypts every connection), so a
//! datagram carries no key and no signature: 49 bytes, against 158 for a signed presence. The
//! name and colour are not in it; they come only from the signed presence, so a datagram can move
//! an avatar the receiver already knows and nothing else.
//!
//! Layout, little-endian, fixed size: a kind byte ([`POSE_DATAGRAM_KIND`]), the first four bytes
//! of the region's topic (a datagram meant for another region or room is refused), the sender's
//! clock in µs (as a gossip message's sequence), the head (position in mm as three `i32`, rotation
//! packed in a `u32`), then each hand as an offset from the head in mm (three `i16`, ±32 m) and a
//! packed rotation.

use crate::wire::{PoseFrame, QuantisedTransform};

/// The first byte of a pose datagram (a later layout takes another).
pub const POSE_DATAGRAM_KIND: u8 = 1;
/// A pose datagram's size in bytes.
pub const POSE_DATAGRAM_BYTES: usize = 1 + 4 + 8 + 16 + 2 * 10;

// At 20 Hz a datagram stays under P2's 16 kbit/s up per stream even with about 48 bytes of QUIC,
// UDP and IP around it.
const _: () = assert!((POSE_DATAGRAM_BYTES + 48) * 8 * 20 <= 16_000);

/// One pose from a near neighbour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoseDatagram {
    /// The first four bytes of the region's topic.
    pub scope: [u8; 4],
    /// The sender's clock, µs since 1970.
    pub stamp: u64,
    /// Head and hands (a hand more than 32 m from the head is drawn at 32 m).
    pub pose: PoseFrame,
}

/// Why bytes are not a pose datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PoseDatagramError {
    /// Not [`POSE_DATAGRAM_BYTES`] long.
    #[error("a pose datagram is {POSE_DATAGRAM_BYTES} bytes, not {0}")]
    Size(usize),
    /// A kind this version does not read.
    #[error("unknown pose datagram kind {0}")]
    Kind(u8),
}

impl PoseDatagram {
    /// The four bytes of `topic` a datagram for it carries.
    pub fn scope_of(topic: &[u8; 32]) -> [u8; 4] {
        [topic[0], topic[1], topic[2], topic[3]]
    }

    /// The bytes that travel.
    pub fn encode(&self) -> [u8; POSE_DATAGRAM_BYTES] {
        let mut out = [0u8; POSE_DATAGRAM_BYTES];
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            out[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(&[POSE_DATAGRAM_KIND]);
        put(&self.scope);
        put(&self.stamp.to_le_bytes());
        let head = self.pose.head;
        for mm in head.position_mm {
            put(&mm.to_le_bytes());
        }
        put(&head.rotation.to_le_bytes());
        for hand in [self.pose.left_hand, self.pose.right_hand] {
            for (mm, head_mm) in hand.position_mm.into_iter().zip(head.position_mm) {
                let offset = i64::from(mm) - i64::from(head_mm);
                let offset = offset.clamp(i64::from(i16::MIN), i64::from(i16::MAX)) as i16;
                put(&offset.to_le_bytes());
            }
            put(&hand.rotation.to_le_bytes());
        }
        out
    }

    /// Reads a datagram: any bytes of the right size and kind are a pose (every rotation value
    /// unpacks to a rotation, and a hand's offset cannot overflow the head's millimetres).
    pub fn decode(bytes: &[u8]) -> Result<Self, PoseDatagramError> {
        let bytes: &[u8; POSE_DATAGRAM_BYTES] = bytes.try_into().map_err(|_| PoseDatagramError::Size(bytes.len()))?;
        if bytes[0] != POSE_DATAGRAM_KIND {
            return Err(PoseDatagramError::Kind(bytes[0]));
        }
        let mut reader = Reader { bytes, at: 1 };
        let scope = reader.take::<4>();
        let stamp = u64::from_le_bytes(reader.take());
        let head_mm = [0; 3].map(|_: i32| i32::from_le_bytes(reader.take()));
        let head = QuantisedTransform { position_mm: head_mm, rotation: u32::from_le_bytes(reader.take()) };
        let mut hand = || {
            let offsets = [0; 3].map(|_: i16| i16::from_le_bytes(reader.take()));
            let mut position_mm = [0i32; 3];
            for ((mm, head), offset) in position_mm.iter_mut().zip(head_mm).zip(offsets) {
                *mm = head.saturating_add(i32::from(offset));
            }
            QuantisedTransform { position_mm, rotation: u32::from_le_bytes(reader.take()) }
        };
        let left_hand = hand();
        let right_hand = hand();
        Ok(Self { scope, stamp, pose: PoseFrame { head, left_hand, right_hand } })
    }
}

/// Reads fixed-size fields from an array whose size the layout fills exactly.
struct Reader<'a> {
    bytes: &'a [u8; POSE_DATAGRAM_BYTES],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some(field) = self.bytes.get(self.at..self.at + N) {
            out.copy_from_slice(field);
        }
        self.at += N;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use glam::{Quat, Vec3};
    use proptest::prelude::*;

    fn pose(head: Vec3, left: Vec3, right: Vec3, turn: f32) -> PoseFrame {
        let at = |position: Vec3, angle: f32| QuantisedTransform::new(position, Quat::from_rotation_y(angle));
        PoseFrame { head: at(head, turn), left_hand: at(left, turn + 0.4), right_hand: at(right, turn - 0.4) }
    }

    #[test]
    fn a_pose_round_trips_to_the_millimetre() {
        let frame =
            pose(Vec3::new(-1234.567, 1.7, 48.25), Vec3::new(-1234.9, 1.2, 48.0), Vec3::new(-1234.1, 1.3, 48.5), 1.0);
        let datagram = PoseDatagram { scope: [9, 8, 7, 6], stamp: 1_790_000_000_000_000, pose: frame };
        let bytes = datagram.encode();
        assert_eq!(bytes.len(), POSE_DATAGRAM_BYTES);
        assert_eq!(PoseDatagram::decode(&bytes), Ok(datagram));
    }

    #[test]
    fn a_hand_far_from_the_head_is_drawn_at_the_limit() {
        let frame = pose(Vec3::ZERO, Vec3::new(100.0, 0.0, 0.0), Vec3::new(0.0, -40.0, 0.0), 0.0);
        let datagram = PoseDatagram { scope: [0; 4], stamp: 1, pose: frame };
        let back = PoseDatagram::decode(&datagram.encode()).expect("decodes");
        assert_eq!(back.pose.left_hand.position_mm, [i32::from(i16::MAX), 0, 0]);
        assert_eq!(back.pose.right_hand.position_mm, [0, i32::from(i16::MIN), 0]);
        assert_eq!(back.pose.head, frame.head);
        // A head at the edge of the millimetre range: the hand saturates, nothing overflows.
        let edge = QuantisedTransform { position_mm: [i32::MAX, i32::MIN, 0], rotation: 0 };
        let far =
            PoseDatagram { scope: [0; 4], stamp: 1, pose: PoseFrame { head: edge, left_hand: edge, right_hand: edge } };
        let mut bytes = far.encode();
        bytes[29..31].copy_from_slice(&i16::MAX.to_le_bytes());
        bytes[31..33].copy_from_slice(&i16::MIN.to_le_bytes());
        let back = PoseDatagram::decode(&bytes).expect("decodes");
        assert_eq!(back.pose.left_hand.position_mm[..2], [i32::MAX, i32::MIN]);
    }

    #[test]
    fn wrong_sizes_and_kinds_are_refused() {
        let bytes = PoseDatagram { scope: [1; 4], stamp: 5, pose: pose(Vec3::ONE, Vec3::ONE, Vec3::ONE, 0.0) }.encode();
        assert_eq!(PoseDatagram::decode(&bytes[..48]), Err(PoseDatagramError::Size(48)));
        assert_eq!(PoseDatagram::decode(&[bytes.as_slice(), &[0]].concat()), Err(PoseDatagramError::Size(50)));
        assert_eq!(PoseDatagram::decode(&[]), Err(PoseDatagramError::Size(0)));
        let mut other = bytes;
        other[0] = 2;
        assert_eq!(PoseDatagram::decode(&other), Err(PoseDatagramError::Kind(2)));
    }

    proptest! {
        #[test]
        fn any_bytes_decode_without_panic_and_re_encode_alike(bytes in prop::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(datagram) = PoseDatagram::decode(&bytes) {
                let again = PoseDatagram::decode(&datagram.encode());
                prop_assert_eq!(again, Ok(datagram));
                let rotation = datagram.pose.head.rotation();
                prop_assert!(rotation.is_finite() && (rotation.length() - 1.0).abs() < 1e-3);
            }
        }
    }
}
