//! Sanctuary's client: the Bevy app that shows the world on a desktop screen (and, with the `xr`
//! feature, will show it on a headset).
//!
//! The logic plugins (movement, portals, regions, the crowd) run on a bare `App` in tests; the
//! presentation plugins (scenery, HUD, pointer capture, screenshots) need a window and a renderer.

pub mod actions;
pub mod agent_command;
pub mod archive_command;
mod avatar_panel;
mod avatar_rigs;
mod avatars;
mod blobs;
mod board_ink;
mod bodies;
mod build;
mod chat_command;
mod cinema;
mod cinema_panel;
pub mod cli;
mod crowd;
pub mod cues;
mod cursor;
mod friends;
pub mod home_node;
pub mod hosting_desk;
mod hud;
pub mod locomotion;
mod market;
mod materials;
mod meeting;
pub mod network;
mod own_body;
pub mod panels;
pub mod pdf_slides;
mod player;
mod portal;
mod private_room;
mod scenery;
mod screenshot;
mod shields;
mod social;
pub mod sounds;
mod stage;
mod stage_command;
mod stage_panel;
pub mod testing;
pub mod voice;
pub mod voice_devices;
mod vr_view;
mod whiteboard;
mod world;
pub mod xr;

use bevy::app::PluginGroupBuilder;
use bevy::diagnostic::FrameTimeDiagnosticsPlugin;
use bevy::prelude::*;
use bevy::window::{PresentMode, WindowResolution};

pub use actions::{Actions, Comfort, Controller, Controllers, InputMode, Rig};
pub use avatar_rigs::{AvatarsDrawn, LookId, ModelScene, drifter_look};
pub use avatars::DEFAULT_AVATARS;
pub use build::{BuildMode, CityWorld};
pub use crowd::{CrowdDetail, Figure, drift};
pub use market::{Market, WalletLink, WalletUi, confirm_panel, stall_panel, wallet_panel};
pub use network::{ChatInput, NetLink, Social};
pub use player::{Player, PointerLock};
pub use screenshot::{ScreenshotPathError, ScreenshotPlan, peak_resident_mib};
pub use world::{
    CurrentRegion, DrifterView, EnterRegion, ParcelView, PortalView, RegionScoped, StructureView, WorldSettings,
};

/// The steps of a frame, in order. Every system of the client goes into one of them; this enum
/// and [`order_frame`] are the one place that decides what runs before what.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Frame {
    /// Pointer capture, then devices become actions: keys, mouse, XR controllers and network
    /// messages.
    Input,
    /// The person moves by their intent.
    Move,
    /// Portals are checked against where the person now is.
    Travel,
    /// Regions are swapped and the city is built around the person.
    World,
    /// Things that move by themselves move: the crowd.
    Animate,
    /// What the person sees and reads follows the state: scenery, HUD, screenshots.
    Present,
}

/// Chains the [`Frame`] steps in `Update`.
pub fn order_frame(app: &mut App) {
    app.configure_sets(
        Update,
        (Frame::Input, Frame::Move, Frame::Travel, Frame::World, Frame::Animate, Frame::Present).chain(),
    );
}

/// The client's rules without any rendering: what tests and benchmarks run headless.
pub fn logic_plugin(app: &mut App) {
    order_frame(app);
    app.init_resource::<WorldSettings>().add_plugins((
        actions::plugin,
        player::plugin,
        locomotion::plugin,
        portal::plugin,
        world::plugin,
        crowd::plugin,
        network::plugin,
        friends::plugin,
        avatars::plugin,
        bodies::plugin,
        avatar_rigs::plugin,
        own_body::plugin,
        build::logic,
        pdf_slides::plugin,
    ));
}

/// Everything that draws: added on top of [`logic_plugin`] in a windowed app.
pub fn presentation_plugin(app: &mut App) {
    app.add_plugins((
        FrameTimeDiagnosticsPlugin::default(),
        materials::plugin,
        scenery::plugin,
        hud::plugin,
        cursor::plugin,
        screenshot::plugin,
        social::plugin,
        shields::plugin,
        avatar_panel::plugin,
        (cinema::plugin, stage::plugin, whiteboard::plugin),
        (cinema_panel::plugin, stage_panel::plugin, meeting::plugin, private_room::plugin),
        build::presentation,
        panels::plugin,
        market::plugin,
        vr_view::plugin,
    ));
}

/// Bevy's default plugins, with OpenXR's around the renderer when a headset is to be used.
/// Should OpenXR still fail to start, `bevy_mod_openxr` falls back to the window's renderer and
/// the client stays in flat mode.
fn add_default_plugins(app: &mut App, plugins: PluginGroupBuilder, headset: bool) {
    #[cfg(feature = "xr")]
    if headset {
        app.add_plugins(bevy_mod_openxr::add_xr_plugins(plugins)).add_plugins(xr::session::plugin);
        return;
    }
    let _ = headset;
    app.add_plugins(plugins);
}

/// The client for the command line `args`, ready to run: in the headset when `headset` is set
/// (and this build has the `xr` feature), on the desktop otherwise.
pub fn client_app(args: &cli::Args, headset: bool) -> App {
    let mut app = App::new();
    // Models are read from the node's blob store; the source must exist before the asset plugin.
    blobs::register(&mut app);
    let title = format!("Sanctuary — {}", args.region.title());
    let plugins = DefaultPlugins
        .set(WindowPlugin {
            primary_window: Some(Window {
                title,
                resolution: WindowResolution::new(args.width, args.height),
                present_mode: PresentMode::AutoVsync,
                ..default()
            }),
            ..default()
        })
        // LDK reports every chain sync at info; only its warnings and errors are kept.
        .set(bevy::log::LogPlugin {
            filter: format!("{},ldk_node=warn,lightning=warn,lightning_liquidity=warn", bevy::log::DEFAULT_FILTER),
            ..default()
        });
    add_default_plugins(&mut app, plugins, headset && !args.vr_preview);
    if args.vr_preview {
        app.insert_resource(vr_view::VrPreview).insert_resource(InputMode::Vr);
    }
    app.insert_resource(Comfort::from(&args.comfort))
        .insert_resource(WorldSettings { n_drifters: args.avatars, ..WorldSettings::default() })
        .add_plugins((logic_plugin, presentation_plugin));
    // The rank of others' avatars shown, as chosen last time.
    if let Some(dir) = args.network.data_dir.clone().or_else(cli::default_data_dir) {
        let file = avatars::RankFile::in_dir(&dir);
        if let Some(rank) = file.load() {
            app.world_mut().resource_mut::<avatars::Avatars>().show_up_to = rank;
        }
        app.insert_resource(file);
    }
    if let Some(path) = &args.screenshot {
        app.insert_resource(ScreenshotPlan::new(path.clone(), args.frames).after_avatars(args.after_avatars));
    }
    if !args.chat.is_empty() {
        app.insert_resource(network::ScriptedChat(args.chat.iter().cloned().collect()));
    }
    if args.shields_panel {
        app.insert_resource(shields::ShieldsPanel { open: true });
    }
    if args.avatar_panel {
        app.insert_resource(avatar_panel::AvatarPanel { open: true });
    }
    if args.stage_panel {
        app.insert_resource(stage_panel::StagePanel::opened());
    }
    if args.cinema_panel {
        app.insert_resource(cinema_panel::CinemaPanel::opened());
    }
    match args.network.node_config(vec![args.region]) {
        Ok(Some(config)) => match NetLink::start(config) {
            Ok(mut link) => {
                if let Some(options) = args.voice.options() {
                    voice::start(&mut app, &options, &mut link);
                }
                app.insert_resource(link);
            }
            Err(error) => warn!("the network could not start ({error}); running single-player"),
        },
        Ok(None) => {}
        Err(error) => warn!("{error}; running single-player"),
    }
    match args.wallet.service_config(args.network.data_dir.clone()) {
        // The Lightning node runs on a runtime of its own rather than the network node's: at
        // exit that one is gone before the wallet thread stops the Lightning node, and LDK
        // must stop cleanly to leave its state whole.
        Ok(config) => match WalletLink::start(config) {
            Ok(link) => {
                app.insert_resource(link);
            }
            Err(error) => warn!("the wallet could not start ({error})"),
        },
        Err(error) => warn!("wallet: {error}"),
    }
    app.world_mut().write_message(EnterRegion(args.region));
    if args.at.is_some() || args.facing.is_some() {
        let turn = args.facing.unwrap_or(0.0).to_radians();
        app.insert_resource(world::ArriveAt(args.at.map(Vec3::from_array), turn));
    }
    app
}
