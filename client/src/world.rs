//! The region the person is in: its layout, its entities, and the move from one region to
//! another. Logic only; `scenery` gives these entities their looks.

use std::collections::HashSet;

use bevy::prelude::*;
use sanctuary_engine::{
    BLOCK_PARCELS, BLOCK_PITCH, Drifter, Lamp, ParcelCoord, Portal, RegionId, RegionLayout, Shape, Structure,
    WORLD_SEED, generated_structures,
};

use crate::Frame;
use crate::crowd::{Drive, Figure};
use crate::player::Player;
use sanctuary_engine::body::Tracked;

pub(super) fn plugin(app: &mut App) {
    app.add_message::<EnterRegion>().init_resource::<CityStreaming>().add_systems(
        Update,
        (enter_region, arrive_at.run_if(resource_exists::<ArriveAt>), stream_city).chain().in_set(Frame::World),
    );
}

/// Arrive at this point instead of the region's arrival point (once, on the first arrival),
/// turned by this many radians clockwise seen from above.
#[derive(Resource, Debug, Clone, Copy)]
pub struct ArriveAt(pub Option<Vec3>, pub f32);

fn arrive_at(
    mut commands: Commands,
    at: Res<ArriveAt>,
    region: Option<Res<CurrentRegion>>,
    mut players: Query<(&mut Transform, &mut Player)>,
) {
    let Some(region) = region else { return };
    for (mut transform, mut player) in &mut players {
        if let Some(point) = at.0 {
            let point = region.layout.bounds.clamp(point);
            transform.translation = point;
            player.last_position = point;
        }
        player.yaw = (player.yaw - at.1).rem_euclid(std::f32::consts::TAU);
    }
    commands.remove_resource::<ArriveAt>();
}

/// Asks to move the person to another region; the move happens in the same frame's
/// [`Frame::World`] step.
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnterRegion(pub RegionId);

/// The region the person is in now, with its layout. Absent until the first region is entered.
#[derive(Resource, Debug, Clone)]
pub struct CurrentRegion {
    /// The layout being shown.
    pub layout: RegionLayout,
    /// Seconds since the app started, when this region was entered.
    pub entered_at: f32,
}

impl CurrentRegion {
    /// Which region this is.
    pub fn id(&self) -> RegionId {
        self.layout.region
    }
}

/// How the world is generated and how much of it is kept built: the world seed, the lobby's
/// placeholder avatars, and the city's build radius.
#[derive(Resource, Debug, Clone, Copy)]
pub struct WorldSettings {
    /// The seed every peer shares.
    pub seed: u64,
    /// Placeholder avatars in the lobby.
    pub n_drifters: usize,
    /// How many blocks of the city around the person are kept built.
    pub city_radius_blocks: u32,
}

impl Default for WorldSettings {
    fn default() -> Self {
        Self { seed: WORLD_SEED, n_drifters: sanctuary_engine::LOBBY_DRIFTERS, city_radius_blocks: 3 }
    }
}

/// Marks every entity that belongs to the current region; all of them go when the region does.
#[derive(Component, Debug, Clone, Copy)]
pub struct RegionScoped;

/// A structure of the region, placed by its `Transform`.
#[derive(Component, Debug, Clone, Copy)]
pub struct StructureView(pub Structure);

/// A portal of the region.
#[derive(Component, Debug, Clone, Copy)]
pub struct PortalView(pub Portal);

/// A placeholder avatar.
#[derive(Component, Debug, Clone, Copy)]
pub struct DrifterView(pub Drifter);

/// A light of the region.
#[derive(Component, Debug, Clone, Copy)]
pub struct LampView(pub Lamp);

/// One city parcel that is built around the viewer; its structures are its children.
#[derive(Component, Debug, Clone, Copy)]
pub struct ParcelView(pub ParcelCoord);

/// Which city parcels are built now, and around which block.
#[derive(Resource, Debug, Default)]
pub(crate) struct CityStreaming {
    centre_block: Option<(i32, i32)>,
    built: HashSet<ParcelCoord>,
}

/// Swaps the region: despawns the old one's entities, spawns the new one's and puts the person
/// at its arrival point.
fn enter_region(
    mut commands: Commands,
    mut requests: MessageReader<EnterRegion>,
    settings: Res<WorldSettings>,
    current: Option<Res<CurrentRegion>>,
    scoped: Query<Entity, With<RegionScoped>>,
    mut player: Query<(&mut Transform, &mut Player)>,
    mut streaming: ResMut<CityStreaming>,
    time: Res<Time>,
) {
    // Only the last request of a frame counts: walking through two portals at once is one move.
    let Some(EnterRegion(target)) = requests.read().last().copied() else {
        return;
    };
    if current.as_ref().is_some_and(|current| current.id() == target) {
        return;
    }
    for entity in &scoped {
        commands.entity(entity).despawn();
    }
    *streaming = CityStreaming::default();
    let n_drifters = if target == RegionId::Lobby { settings.n_drifters } else { 0 };
    let layout = RegionLayout::generate(target, settings.seed, n_drifters);
    spawn_layout(&mut commands, &layout);
    for (mut transform, mut player) in &mut player {
        transform.translation = layout.spawn;
        player.last_position = layout.spawn;
        player.yaw = layout.spawn_yaw;
        player.pitch = 0.0;
        transform.rotation = player.rotation();
    }
    info!("entered {target}");
    commands.insert_resource(CurrentRegion { layout, entered_at: time.elapsed_secs() });
}

fn spawn_layout(commands: &mut Commands, layout: &RegionLayout) {
    for structure in &layout.structures {
        commands.spawn(structure_bundle(*structure));
    }
    for portal in &layout.portals {
        commands.spawn((
            RegionScoped,
            PortalView(*portal),
            Transform::from_translation(portal.centre).with_rotation(Quat::from_rotation_y(portal.yaw)),
            Visibility::default(),
        ));
    }
    for (index, drifter) in layout.drifters.iter().enumerate() {
        let head = Tracked { position: drifter.position_at(0.0), rotation: Quat::IDENTITY };
        commands.spawn((
            RegionScoped,
            DrifterView(*drifter),
            Figure::new(drifter.colour, u32::try_from(index).unwrap_or(0)),
            Drive::at(head),
            Transform::from_translation(head.position),
            Visibility::default(),
        ));
    }
    for lamp in &layout.lamps {
        commands.spawn((RegionScoped, LampView(*lamp), Transform::from_translation(lamp.position)));
    }
}

fn structure_bundle(structure: Structure) -> impl Bundle {
    (RegionScoped, StructureView(structure), structure_transform(&structure), Visibility::default())
}

/// Where a structure's unit mesh goes. A ring keeps its tube round: its mesh is made for its
/// thickness, and the transform only scales it to its diameter.
pub fn structure_transform(structure: &Structure) -> Transform {
    let placement = structure.placement;
    let scale = match structure.shape {
        Shape::Ring => Vec3::splat(placement.scale.x),
        _ => placement.scale,
    };
    Transform { translation: placement.translation, rotation: placement.rotation, scale }
}

/// Keeps the city built for `city_radius_blocks` around the person: parcels that come into
/// range are generated, parcels that fall out of range are dropped. The city has no edge.
pub(crate) fn stream_city(
    mut commands: Commands,
    current: Option<Res<CurrentRegion>>,
    settings: Res<WorldSettings>,
    mut streaming: ResMut<CityStreaming>,
    player: Query<&Transform, With<Player>>,
    parcels: Query<(Entity, &ParcelView)>,
) {
    let Some(current) = current else { return };
    if current.id() != RegionId::City {
        return;
    }
    let Ok(viewer) = player.single() else { return };
    let centre =
        ((viewer.translation.x / BLOCK_PITCH).floor() as i32, (viewer.translation.z / BLOCK_PITCH).floor() as i32);
    if streaming.centre_block == Some(centre) {
        return;
    }
    streaming.centre_block = Some(centre);
    // Clamped so that the square of blocks stays well inside i32 parcel coordinates.
    let radius = settings.city_radius_blocks.min(64) as i32;
    let wanted: HashSet<ParcelCoord> = (centre.0 - radius..=centre.0 + radius)
        .flat_map(|block_x| (centre.1 - radius..=centre.1 + radius).map(move |block_z| (block_x, block_z)))
        .flat_map(|(block_x, block_z)| {
            (0..BLOCK_PARCELS).flat_map(move |dx| {
                (0..BLOCK_PARCELS)
                    .map(move |dz| ParcelCoord::new(block_x * BLOCK_PARCELS + dx, block_z * BLOCK_PARCELS + dz))
            })
        })
        .collect();
    for (entity, parcel) in &parcels {
        if !wanted.contains(&parcel.0) {
            commands.entity(entity).despawn();
            streaming.built.remove(&parcel.0);
        }
    }
    for parcel in wanted {
        if !streaming.built.insert(parcel) {
            continue;
        }
        commands.spawn((RegionScoped, ParcelView(parcel), Transform::default(), Visibility::default())).with_children(
            |children| {
                for structure in generated_structures(settings.seed, parcel) {
                    children.spawn((StructureView(structure), structure_transform(&structure), Visibility::default()));
                }
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::logic_app;

    #[test]
    fn entering_a_region_replaces_the_last_one() {
        let mut app = logic_app(RegionId::Lobby);
        app.update();
        let lobby_structures = app.world_mut().query::<&StructureView>().iter(app.world()).count();
        assert!(lobby_structures > 50);
        assert_eq!(app.world().resource::<CurrentRegion>().id(), RegionId::Lobby);

        app.world_mut().write_message(EnterRegion(RegionId::Room(sanctuary_engine::RoomKind::Cinema)));
        app.update();
        let region = app.world().resource::<CurrentRegion>();
        assert_eq!(region.id(), RegionId::Room(sanctuary_engine::RoomKind::Cinema));
        let spawn = region.layout.spawn;
        // No lobby drifter survives the move, and the person stands at the cinema's arrival point.
        assert_eq!(app.world_mut().query::<&DrifterView>().iter(app.world()).count(), 0);
        // Exactly the cinema's structures stand: nothing of the lobby is left over.
        let cinema_structures = app.world().resource::<CurrentRegion>().layout.structures.len();
        assert_eq!(app.world_mut().query::<&StructureView>().iter(app.world()).count(), cinema_structures);
        let player =
            app.world_mut().query_filtered::<&Transform, With<Player>>().single(app.world()).expect("one player");
        assert_eq!(player.translation, spawn);
    }

    #[test]
    fn the_city_streams_around_the_person() {
        let mut app = logic_app(RegionId::City);
        app.update();
        app.update();
        let parcels_at = |app: &mut App| -> HashSet<ParcelCoord> {
            app.world_mut().query::<&ParcelView>().iter(app.world()).map(|view| view.0).collect()
        };
        let first = parcels_at(&mut app);
        let side = (2 * WorldSettings::default().city_radius_blocks as i32 + 1) * BLOCK_PARCELS;
        assert_eq!(first.len(), (side * side) as usize);
        // Walk ten blocks east: the parcels follow and the old ones go.
        for mut transform in app.world_mut().query_filtered::<&mut Transform, With<Player>>().iter_mut(app.world_mut())
        {
            transform.translation.x += 10.0 * BLOCK_PITCH;
        }
        app.update();
        app.update();
        let later = parcels_at(&mut app);
        assert_eq!(later.len(), first.len());
        assert!(first.is_disjoint(&later));
    }
}
