//! Remote avatars on the receiving side: the last few poses each person sent, played back a
//! little behind real time and interpolated between them, so that movement looks smooth however
//! the packets arrived.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use glam::{Quat, Vec3};
use sanctuary_engine::PublicKey;

use crate::wire::{PoseFrame, Presence, QuantisedTransform};

/// The shortest playback delay behind the sender; longer when the sender sends less often.
pub const MIN_DELAY: Duration = Duration::from_millis(100);
/// The longest playback delay.
pub const MAX_DELAY: Duration = Duration::from_secs(3);
/// Poses kept per person.
const KEPT: usize = 8;

/// A position and an orientation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Joint {
    /// Where, in metres.
    pub position: Vec3,
    /// Which way it faces.
    pub rotation: Quat,
}

impl From<QuantisedTransform> for Joint {
    fn from(transform: QuantisedTransform) -> Self {
        Self { position: transform.position(), rotation: transform.rotation() }
    }
}

impl Joint {
    fn lerp(self, other: Joint, t: f32) -> Joint {
        Joint { position: self.position.lerp(other.position, t), rotation: self.rotation.slerp(other.rotation, t) }
    }
}

/// A person's head and hands, ready to draw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pose {
    /// The head.
    pub head: Joint,
    /// The left hand.
    pub left_hand: Joint,
    /// The right hand.
    pub right_hand: Joint,
}

impl From<PoseFrame> for Pose {
    fn from(frame: PoseFrame) -> Self {
        Self { head: frame.head.into(), left_hand: frame.left_hand.into(), right_hand: frame.right_hand.into() }
    }
}

impl Pose {
    fn lerp(self, other: Pose, t: f32) -> Pose {
        Pose {
            head: self.head.lerp(other.head, t),
            left_hand: self.left_hand.lerp(other.left_hand, t),
            right_hand: self.right_hand.lerp(other.right_hand, t),
        }
    }
}

/// One remote person.
#[derive(Debug, Clone)]
pub struct RemoteAvatar {
    /// The name they gave.
    pub name: String,
    /// Their colour.
    pub colour: [u8; 3],
    /// `(sender's clock in µs, pose)`, oldest first.
    samples: VecDeque<(u64, Pose)>,
    /// Our clock minus theirs, from the fastest delivery seen (µs); `i128` because their clock
    /// is whatever they say it is.
    offset: i128,
    /// When we last heard from them, on our clock (µs).
    heard: u64,
}

impl RemoteAvatar {
    /// How long this person's poses are held back before being shown.
    fn delay(&self) -> u64 {
        let gap = match (self.samples.len().checked_sub(2).map(|at| self.samples[at]), self.samples.back()) {
            (Some((before, _)), Some((last, _))) => last.saturating_sub(before),
            _ => 0,
        };
        gap.saturating_add(gap / 5)
            .saturating_add(50_000)
            .clamp(MIN_DELAY.as_micros() as u64, MAX_DELAY.as_micros() as u64)
    }

    /// The pose to show at `now` (our clock, µs).
    ///
    /// Times are the sender's word, so they may be anything a `u64` holds: the arithmetic is
    /// done in `i128`, where no sum or difference of them can overflow.
    pub fn pose_at(&self, now: u64) -> Option<Pose> {
        let playback = i128::from(now) - self.offset - i128::from(self.delay());
        let first = self.samples.front()?;
        if playback <= i128::from(first.0) {
            return Some(first.1);
        }
        for pair in self.samples.iter().zip(self.samples.iter().skip(1)) {
            let ((from_time, from), (to_time, to)) = pair;
            if playback <= i128::from(*to_time) {
                let span = (i128::from(*to_time) - i128::from(*from_time)).max(1) as f64;
                let t = ((playback - i128::from(*from_time)) as f64 / span).clamp(0.0, 1.0);
                return Some(from.lerp(*to, t as f32));
            }
        }
        self.samples.back().map(|(_, pose)| *pose)
    }

    /// The newest pose received, without delay.
    pub fn latest(&self) -> Option<Pose> {
        self.samples.back().map(|(_, pose)| *pose)
    }

    /// Keeps a pose stamped `stamp` on the sender's clock, received at `now` on ours (from a
    /// signed presence or a near neighbour's datagram: one clock, so the two interleave).
    fn sample(&mut self, stamp: u64, pose: PoseFrame, now: u64) {
        // The offset follows the fastest delivery, and creeps up slowly (1 ms a second) so that
        // clock drift or a slower route does not leave the avatar stuck in the past; a jump of
        // more than a second (a clock change) resets it.
        let measured = i128::from(now) - i128::from(stamp);
        let relaxed = self.offset + i128::from(now.saturating_sub(self.heard) / 1000);
        self.offset = if measured > self.offset + 1_000_000 { measured } else { relaxed.min(measured) };
        self.heard = now;
        let at = self.samples.partition_point(|(time, _)| *time < stamp);
        if self.samples.get(at).is_some_and(|(time, _)| *time == stamp) {
            return;
        }
        self.samples.insert(at, (stamp, Pose::from(pose)));
        while self.samples.len() > KEPT {
            self.samples.pop_front();
        }
    }
}

/// Everyone else in the region, as this peer last heard of them.
#[derive(Debug, Default)]
pub struct RemoteCrowd {
    avatars: HashMap<PublicKey, RemoteAvatar>,
}

impl RemoteCrowd {
    /// Takes a presence message (already verified) from `author` with the author's `sequence`
    /// (their clock in µs), received at `now` on our clock (µs). Returns `true` if the person
    /// is new here.
    pub fn insert(&mut self, author: PublicKey, sequence: u64, presence: &Presence, now: u64) -> bool {
        let measured = i128::from(now) - i128::from(sequence);
        let mut new = false;
        let avatar = self.avatars.entry(author).or_insert_with(|| {
            new = true;
            RemoteAvatar {
                name: presence.name.clone(),
                colour: presence.colour,
                samples: VecDeque::with_capacity(KEPT),
                offset: measured,
                heard: now,
            }
        });
        avatar.name.clone_from(&presence.name);
        avatar.colour = presence.colour;
        avatar.sample(sequence, presence.pose, now);
        new
    }

    /// Takes a near neighbour's pose (a datagram: no name or colour) stamped `stamp` on their
    /// clock, received at `now` on ours; only someone already known from a signed presence
    /// moves. Returns whether they were known.
    pub fn insert_pose(&mut self, author: &PublicKey, stamp: u64, pose: PoseFrame, now: u64) -> bool {
        let Some(avatar) = self.avatars.get_mut(author) else { return false };
        avatar.sample(stamp, pose, now);
        true
    }

    /// Removes a person who left; `true` if they were here.
    pub fn remove(&mut self, author: &PublicKey) -> bool {
        self.avatars.remove(author).is_some()
    }

    /// Removes everyone not heard from for `timeout` and says who they were (key and name).
    pub fn expire(&mut self, now: u64, timeout: Duration) -> Vec<(PublicKey, String)> {
        let timeout = u64::try_from(timeout.as_micros()).unwrap_or(u64::MAX);
        let gone: Vec<PublicKey> = self
            .avatars
            .iter()
            .filter(|(_, avatar)| now.saturating_sub(avatar.heard) > timeout)
            .map(|(key, _)| *key)
            .collect();
        gone.into_iter().filter_map(|key| self.avatars.remove(&key).map(|avatar| (key, avatar.name))).collect()
    }

    /// One person.
    pub fn get(&self, author: &PublicKey) -> Option<&RemoteAvatar> {
        self.avatars.get(author)
    }

    /// Everyone.
    pub fn iter(&self) -> impl Iterator<Item = (&PublicKey, &RemoteAvatar)> {
        self.avatars.iter()
    }

    /// How many people.
    pub fn len(&self) -> usize {
        self.avatars.len()
    }

    /// Whether nobody is here.
    pub fn is_empty(&self) -> bool {
        self.avatars.is_empty()
    }

    /// Forgets everyone (on moving to another region).
    pub fn clear(&mut self) {
        self.avatars.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presence(x: f32) -> Presence {
        let at = QuantisedTransform::new(Vec3::new(x, 1.7, 0.0), Quat::IDENTITY);
        Presence { name: "Ada".into(), colour: [9, 8, 7], pose: PoseFrame { head: at, left_hand: at, right_hand: at } }
    }

    fn key(seed: u8) -> PublicKey {
        PublicKey::from_secret_seed(&[seed; 32])
    }

    #[test]
    fn poses_are_interpolated_behind_real_time() {
        let mut crowd = RemoteCrowd::default();
        let ada = key(1);
        // The sender's clock runs 5 s ahead; packets take 10 ms; one pose every 50 ms,
        // moving 1 m each time.
        let sender_start = 1_000_000_000u64 + 5_000_000;
        for step in 0..6u64 {
            let sent = sender_start + step * 50_000;
            let received = sent - 5_000_000 + 10_000;
            assert_eq!(crowd.insert(ada, sent, &presence(step as f32), received), step == 0);
        }
        let avatar = crowd.get(&ada).expect("Ada is here");
        // Playback runs 110 ms (the 50 ms gap, a fifth more, and 50 ms) behind the sender's
        // clock as seen through the fastest delivery (10 ms): at 175 ms of the sender's time it
        // is halfway between poses 3 and 4.
        let now = sender_start - 5_000_000 + 10_000 + 110_000 + 175_000;
        let x = avatar.pose_at(now).expect("has poses").head.position.x;
        assert!((x - 3.5).abs() < 0.05, "x = {x}");
        assert_eq!(avatar.latest().expect("has poses").head.position.x, 5.0);
        // Long after: holds the last pose, never extrapolates.
        assert_eq!(avatar.pose_at(now + 10_000_000).expect("has poses").head.position.x, 5.0);
    }

    #[test]
    fn near_poses_move_only_people_already_known() {
        let mut crowd = RemoteCrowd::default();
        let (ada, bo) = (key(1), key(2));
        assert!(!crowd.insert_pose(&bo, 1_000_000, presence(9.0).pose, 1_000_000), "a datagram makes nobody");
        assert!(crowd.get(&bo).is_none());
        crowd.insert(ada, 1_000_000, &presence(0.0), 1_000_000);
        // Datagrams between two signed presences, on the same clock: they interleave.
        for step in 1..=4u64 {
            assert!(crowd.insert_pose(
                &ada,
                1_000_000 + step * 50_000,
                presence(step as f32).pose,
                1_000_000 + step * 50_000
            ));
        }
        let avatar = crowd.get(&ada).expect("Ada is here");
        assert_eq!(avatar.latest().expect("has poses").head.position.x, 4.0);
        assert_eq!(avatar.name, "Ada", "the name comes from the signed presence");
    }

    #[test]
    fn late_and_duplicate_poses_fall_into_place() {
        let mut crowd = RemoteCrowd::default();
        let ada = key(1);
        crowd.insert(ada, 3_000_000, &presence(3.0), 3_000_000);
        crowd.insert(ada, 1_000_000, &presence(1.0), 3_000_001);
        crowd.insert(ada, 2_000_000, &presence(2.0), 3_000_002);
        crowd.insert(ada, 2_000_000, &presence(99.0), 3_000_003);
        let avatar = crowd.get(&ada).expect("Ada is here");
        let xs: Vec<f32> = avatar.samples.iter().map(|(_, pose)| pose.head.position.x).collect();
        assert_eq!(xs, vec![1.0, 2.0, 3.0]);
    }

    /// A validly signed pose may carry any sequence a `u64` holds: none of them may overflow
    /// (which panics a debug build, and so every client in the region).
    #[test]
    fn extreme_sequences_and_clocks_do_not_overflow() {
        let mut crowd = RemoteCrowd::default();
        let extremes = [0, 1, i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX - 1, u64::MAX];
        for (index, &sequence) in extremes.iter().enumerate() {
            for &now in &extremes {
                crowd.insert(key(index as u8), sequence, &presence(1.0), now);
                crowd.insert(key(index as u8), sequence / 2, &presence(2.0), now);
                let avatar = crowd.get(&key(index as u8)).expect("here");
                for &at in &extremes {
                    assert!(avatar.pose_at(at).is_some());
                }
            }
        }
        crowd.expire(u64::MAX, Duration::from_secs(7));
        crowd.expire(0, Duration::MAX);
    }

    #[test]
    fn silent_people_expire_and_leavers_go() {
        let mut crowd = RemoteCrowd::default();
        crowd.insert(key(1), 10, &presence(0.0), 1_000_000);
        crowd.insert(key(2), 10, &presence(0.0), 9_000_000);
        assert_eq!(crowd.expire(10_000_000, Duration::from_secs(7)), vec![(key(1), "Ada".to_owned())]);
        assert!(crowd.remove(&key(2)));
        assert!(crowd.is_empty());
    }
}
