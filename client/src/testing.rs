//! Test support: a bare app with the client's rules and no window, renderer or GPU.

use std::time::Duration;

use bevy::input::mouse::AccumulatedMouseMotion;
use bevy::prelude::*;
use bevy::time::TimeUpdateStrategy;
use sanctuary_engine::RegionId;

use crate::actions::{Controllers, InputMode};
use crate::player::Player;
use crate::world::{EnterRegion, WorldSettings};

/// An app with the client's logic (movement, portals, regions, the crowd) on a fixed 60 Hz
/// clock, with keyboard and mouse state that tests set directly, starting in `start` with a
/// small crowd. Nothing is drawn.
pub fn logic_app(start: RegionId) -> App {
    logic_app_with(start, WorldSettings { n_drifters: 40, ..WorldSettings::default() })
}

/// [`logic_app`] with chosen world settings.
pub fn logic_app_with(start: RegionId, settings: WorldSettings) -> App {
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, TransformPlugin))
        .insert_resource(TimeUpdateStrategy::ManualDuration(Duration::from_secs_f64(1.0 / 60.0)))
        .init_resource::<ButtonInput<KeyCode>>()
        .init_resource::<ButtonInput<MouseButton>>()
        .init_resource::<AccumulatedMouseMotion>()
        .insert_resource(settings)
        .add_plugins(crate::logic_plugin);
    app.world_mut().write_message(EnterRegion(start));
    app
}

pub use crate::actions::HEAD_HEIGHT;

/// [`logic_app`] in VR mode with simulated controllers: the head standing in the middle of the
/// play area looking ahead, both hands tracked in front of the chest and pointing ahead and a
/// little down, every button and stick at rest.
pub fn vr_app(start: RegionId) -> App {
    let mut app = logic_app(start);
    app.insert_resource(InputMode::Vr);
    *app.world_mut().resource_mut::<Controllers>() = Controllers::resting();
    app
}

/// Changes the simulated controllers.
pub fn controllers(app: &mut App) -> Mut<'_, Controllers> {
    app.world_mut().resource_mut::<Controllers>()
}

/// A network node that stays on this machine (no relays, no LAN discovery), named `name`,
/// keeping its files in `dir` and joining `join` if given.
pub fn offline_node(
    dir: &std::path::Path,
    name: &str,
    join: Option<sanctuary_net::Ticket>,
) -> sanctuary_net::NodeConfig {
    let mut node = sanctuary_net::NodeConfig::new(dir);
    node.relays = sanctuary_net::RelayChoice::Disabled;
    node.lan_discovery = false;
    node.name = Some(name.to_owned());
    node.join = join.into_iter().collect();
    node
}

/// Runs `frames` frames.
pub fn run_frames(app: &mut App, frames: usize) {
    for _ in 0..frames {
        app.update();
    }
}

/// Where the person is.
pub fn player_transform(app: &mut App) -> Transform {
    *app.world_mut().query_filtered::<&Transform, With<Player>>().single(app.world()).expect("exactly one player")
}
