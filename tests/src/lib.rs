//! Helpers for Sanctuary's workspace-level tests: drive a headless client the way a person
//! would, with keys, and watch where it ends up.

pub mod hostile;
pub mod models;
pub mod peers;

use std::time::{SystemTime, UNIX_EPOCH};

use bevy::prelude::*;
use sanctuary::{CurrentRegion, Player};
use sanctuary_engine::{Portal, RegionId};

/// The world store of the data directory named by the program's first argument, for the
/// programs that write into one (`world_writer`, `market_stalls`); a missing argument or a
/// store that does not open ends the program with what went wrong.
pub fn replica_from_args(program: &str) -> sanctuary_net::Replica {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: {program} DATA_DIR");
        std::process::exit(2);
    };
    match sanctuary_net::Replica::open(std::path::Path::new(&dir)) {
        Ok((replica, _)) => replica,
        Err(error) => {
            eprintln!("cannot open the world store: {error}");
            std::process::exit(1);
        }
    }
}

/// Sequence numbers for changes: the clock in microseconds, always rising.
pub fn sequence_clock() -> impl FnMut() -> u64 {
    let clock = || SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_micros() as u64);
    let mut last = 0;
    move || {
        last = clock().max(last + 1);
        last
    }
}

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
