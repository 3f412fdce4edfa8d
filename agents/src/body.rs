//! An agent's body: where it is, where it walks to, how it stands and waves, as the pose its
//! node sends. Agents walk on the floor at a person's pace and turn the way they go.

use std::collections::HashMap;
use std::f32::consts::PI;

use glam::{Quat, Vec3};
use sanctuary_engine::{EYE_HEIGHT, RegionId, RegionLayout, WORLD_SEED};
use sanctuary_net::{PoseFrame, QuantisedTransform};

/// Walking speed, metres a second.
pub const WALK_SPEED: f32 = 1.3;
/// How long a wave lasts, seconds.
const WAVE_SECONDS: f64 = 2.5;

/// The regions' layouts, made once each.
#[derive(Debug, Default)]
pub struct Places {
    layouts: HashMap<RegionId, RegionLayout>,
}

impl Places {
    /// The layout of `region` (without drifters).
    pub fn layout(&mut self, region: RegionId) -> &RegionLayout {
        self.layouts.entry(region).or_insert_with(|| RegionLayout::generate(region, WORLD_SEED, 0))
    }
}

/// The yaw (0 faces +z) that looks along `direction`, or `None` if it has no length across.
pub fn yaw_towards(direction: Vec3) -> Option<f32> {
    let across = Vec3::new(direction.x, 0.0, direction.z);
    (across.length_squared() > 1e-6).then(|| across.x.atan2(across.z))
}

/// Where an agent is and what it does with its body.
#[derive(Debug, Clone, PartialEq)]
pub struct Body {
    /// The region it is in.
    pub region: RegionId,
    /// Its eyes.
    pub position: Vec3,
    /// The way it faces (0 faces +z).
    pub yaw: f32,
    /// Where it walks to.
    pub target: Option<Vec3>,
    /// The way to face once there.
    pub face: Option<f32>,
    /// Until when it waves (seconds on the agents' clock).
    wave_until: f64,
}

impl Body {
    /// A body at `region`'s arrival point, `offset` metres across from it.
    pub fn arrive(region: RegionId, places: &mut Places, offset: Vec3) -> Self {
        let layout = places.layout(region);
        let position = layout.bounds.clamp(layout.spawn + Vec3::new(offset.x, 0.0, offset.z));
        Self { region, position, yaw: layout.spawn_yaw, target: None, face: None, wave_until: 0.0 }
    }

    /// Walks toward the target for `dt` seconds, inside `region`'s bounds; `true` once there
    /// (or with no target).
    pub fn step(&mut self, dt: f32, places: &mut Places) -> bool {
        let Some(target) = self.target else { return true };
        let to = target - self.position;
        let distance = to.length();
        let stride = WALK_SPEED * dt.clamp(0.0, 1.0);
        if distance <= stride.max(0.05) {
            self.position = target;
            self.target = None;
            if let Some(face) = self.face {
                self.yaw = face;
            }
            return true;
        }
        if let Some(yaw) = yaw_towards(to) {
            self.yaw = yaw;
        }
        let next = self.position + to / distance * stride;
        self.position = places.layout(self.region).bounds.clamp(next);
        false
    }

    /// Walks to `target` (on the floor of the region) and faces `face` there.
    pub fn walk_to(&mut self, target: Vec3, face: Option<f32>, places: &mut Places) {
        let layout = places.layout(self.region);
        let floor = Vec3::new(target.x, layout.spawn.y.max(EYE_HEIGHT), target.z);
        self.target = Some(layout.bounds.clamp(floor));
        self.face = face;
    }

    /// Waves from `now` for a moment.
    pub fn wave(&mut self, now: f64) {
        self.wave_until = now + WAVE_SECONDS;
    }

    /// Whether it waves at `now`.
    pub fn waving(&self, now: f64) -> bool {
        now < self.wave_until
    }

    /// The pose its node sends: the head, and hands at its sides (the right one up and moving
    /// while it waves).
    pub fn pose(&self, now: f64) -> PoseFrame {
        let turn = Quat::from_rotation_y(self.yaw + PI);
        let head = QuantisedTransform::new(self.position, turn);
        let left = QuantisedTransform::new(self.position + turn * Vec3::new(-0.22, -0.75, -0.1), turn);
        let right = if self.waving(now) {
            let sway = (now * 9.0).sin() as f32 * 0.12;
            QuantisedTransform::new(self.position + turn * Vec3::new(0.35 + sway, 0.2, -0.15), turn)
        } else {
            QuantisedTransform::new(self.position + turn * Vec3::new(0.22, -0.75, -0.1), turn)
        };
        PoseFrame { head, left_hand: left, right_hand: right }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_walks_at_a_persons_pace_and_faces_where_it_goes() {
        let mut places = Places::default();
        let mut body = Body::arrive(RegionId::Lobby, &mut places, Vec3::ZERO);
        let start = body.position;
        body.walk_to(start + Vec3::new(0.0, 0.0, -5.0), Some(0.0), &mut places);
        assert!(!body.step(1.0, &mut places));
        assert!((body.position.distance(start) - WALK_SPEED).abs() < 1e-3);
        assert!((body.yaw.abs() - PI).abs() < 1e-3, "facing -z while walking there");
        for _ in 0..10 {
            body.step(1.0, &mut places);
        }
        assert!(body.target.is_none() && body.yaw == 0.0, "there, facing as told");
        let pose = body.pose(0.0);
        assert!(pose.right_hand.position().y < pose.head.position().y);
        body.wave(0.0);
        assert!(body.pose(1.0).right_hand.position().y > body.pose(5.0).right_hand.position().y, "waving");
    }

    #[test]
    fn a_body_stays_in_its_region() {
        let mut places = Places::default();
        let mut body = Body::arrive(RegionId::Lobby, &mut places, Vec3::ZERO);
        body.walk_to(Vec3::new(5_000.0, 0.0, 0.0), None, &mut places);
        for _ in 0..100 {
            body.step(1.0, &mut places);
        }
        assert!(Vec3::new(body.position.x, 0.0, body.position.z).length() <= sanctuary_engine::LOBBY_RADIUS + 0.01);
        body.walk_to(Vec3::new(f32::NAN, 0.0, 0.0), None, &mut places);
        body.step(1.0, &mut places);
        assert!(body.position.is_finite(), "a target that is not a number goes nowhere strange");
    }
}
