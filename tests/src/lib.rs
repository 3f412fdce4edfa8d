//! Helpers for Sanctuary's workspace-level tests: drive a headless client the way a person
//! would, with keys, and watch where it ends up.

pub mod hostile;
pub mod models;
pub mod peers;

use bevy::prelude::*;
use sanctuary::{CurrentRegion, Player};
use sanctuary_engine::{Portal, RegionId};

/// The region the headless client is in.
pub fn region_of(app: &App) -> RegionId {
    app.world().resource::<CurrentRegion>().id()
}

/// The portal of the current region that leads to `target`.
pub fn portal_to(app: &App, target: RegionId) -> Option<Portal> {
    app.world().resource::<CurrentRegion>().layout.portals.iter().find(|portal| portal.target == target).copied()
}

/// Turns the person toward `point` on the ground plane, as a person would with the mouse.
pub fn face(app: &mut App, point: Vec3) {
    let mut players = app.world_mut().query::<(&Transform, &mut Player)>();
    for (transform, mut player) in players.iter_mut(app.world_mut()) {
        let to = point - transform.translation;
        player.yaw = to.x.atan2(to.z);
        player.pitch = 0.0;
    }
}

/// Holds `key` for up to `max_frames` frames or until the region changes; returns the frames
/// it took, or `None` if the region never changed.
pub fn hold_until_region_changes(app: &mut App, key: KeyCode, max_frames: usize) -> Option<usize> {
    let start = region_of(app);
    app.world_mut().resource_mut::<ButtonInput<KeyCode>>().press(key);
    let mut taken = None;
    for frame in 1..=max_frames {
        app.update();
        if region_of(app) != start {
            taken = Some(frame);
            break;
        }
    }
    app.world_mut().resource_mut::<ButtonInput<KeyCode>>().release(key);
    taken
}
