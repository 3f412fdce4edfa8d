//! Scenery: gives the region's entities their meshes, materials and lights, sets the sky and
//! fog, and lays the city's endless neon ground under the person.

use std::collections::HashMap;

use bevy::camera::Hdr;
use bevy::core_pipeline::tonemapping::Tonemapping;
use bevy::post_process::bloom::Bloom;
use bevy::prelude::*;
use sanctuary_engine::{
    Atmosphere, BLOCK_PARCELS, PARCEL_SIZE, RegionId, Rgb, RoomKind, STREET_WIDTH, Shape, Structure, Surface,
    region_accent,
};

use crate::Frame;
use crate::bodies::{AvatarHead, Bone, FarPart};
use crate::crowd::Figure;
use crate::materials::{NeonGridMaterial, ScreenMaterial, ScreenShows};
use crate::network::{HandView, RemoteAvatarView};
use crate::player::Player;
use crate::world::{CurrentRegion, DrifterView, LampView, PortalView, RegionScoped, StructureView};

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<Palette>().add_systems(
        Update,
        (
            add_camera,
            apply_atmosphere.run_if(resource_exists_and_changed::<CurrentRegion>),
            dress_structures,
            dress_portals,
            dress_drifters,
            dress_figures,
            recolour_figures,
            dress_remote_avatars,
            show_speaking,
            light_lamps,
            lay_city_ground,
        )
            .chain()
            .in_set(Frame::Present),
    );
}

/// How far the camera sees at most, in metres.
const FAR_PLANE: f32 = 5000.0;
/// Side of the city's ground plane, which follows the person.
const CITY_GROUND_SIZE: f32 = 2400.0;

/// Meshes and materials shared by every entity that looks the same, so that Bevy draws them
/// in batches.
#[derive(Resource, Debug, Default)]
struct Palette {
    meshes: HashMap<MeshKey, Handle<Mesh>>,
    materials: HashMap<(Rgb, u32), Handle<StandardMaterial>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum MeshKey {
    Shape(Shape),
    /// A ring whose tube is this many thousandths of its diameter.
    Ring(u32),
    Body,
    Head,
    Halo,
    PortalRing,
    PortalMembrane,
}

impl Palette {
    fn mesh(&mut self, meshes: &mut Assets<Mesh>, key: MeshKey) -> Handle<Mesh> {
        self.meshes
            .entry(key)
            .or_insert_with(|| {
                meshes.add(match key {
                    MeshKey::Shape(Shape::Cuboid) => Mesh::from(Cuboid::new(1.0, 1.0, 1.0)),
                    MeshKey::Shape(Shape::Sphere) => Sphere::new(0.5).mesh().uv(32, 18),
                    MeshKey::Shape(Shape::Cylinder) => Cylinder::new(0.5, 1.0).mesh().resolution(48).into(),
                    MeshKey::Shape(Shape::Cone) => Cone::new(0.5, 1.0).mesh().resolution(4).into(),
                    MeshKey::Shape(Shape::Ring) => ring_mesh(100),
                    MeshKey::Ring(thousandths) => ring_mesh(thousandths),
                    MeshKey::Body => Capsule3d::new(0.28, 0.8).into(),
                    MeshKey::Head => Sphere::new(0.2).mesh().uv(16, 10),
                    MeshKey::Halo => Torus::new(0.22, 0.28).into(),
                    MeshKey::PortalRing => Torus::new(0.85, 1.0).mesh().major_resolution(64).into(),
                    MeshKey::PortalMembrane => Cylinder::new(0.86, 0.02).mesh().resolution(48).into(),
                })
            })
            .clone()
    }

    /// A plain material: matte when `glow` is zero, glowing `glow` times its colour otherwise.
    fn standard(
        &mut self,
        materials: &mut Assets<StandardMaterial>,
        colour: Rgb,
        glow: f32,
    ) -> Handle<StandardMaterial> {
        self.materials
            .entry((colour, glow.to_bits()))
            .or_insert_with(|| {
                let [r, g, b] = colour.to_f32();
                let base = Color::srgb(r, g, b);
                materials.add(StandardMaterial {
                    base_color: base,
                    emissive: base.to_linear() * glow,
                    perceptual_roughness: 0.55,
                    metallic: 0.1,
                    ..default()
                })
            })
            .clone()
    }
}

/// A flat ring 1 m across whose tube is `thousandths` of that.
fn ring_mesh(thousandths: u32) -> Mesh {
    let minor = (thousandths as f32 / 1000.0 * 0.5).clamp(0.0005, 0.25);
    Torus { minor_radius: minor, major_radius: 0.5 - minor }.mesh().major_resolution(96).minor_resolution(12).into()
}

fn srgb(colour: Rgb) -> Color {
    let [r, g, b] = colour.to_f32();
    Color::srgb(r, g, b)
}

/// Makes the person's eyes a camera with bloom, fog and tonemapping.
fn add_camera(mut commands: Commands, players: Query<Entity, Added<Player>>) {
    for player in &players {
        commands.entity(player).insert((
            Camera3d::default(),
            Hdr,
            Bloom::NATURAL,
            Tonemapping::TonyMcMapface,
            Projection::Perspective(PerspectiveProjection { fov: 75f32.to_radians(), far: FAR_PLANE, ..default() }),
            DistanceFog::default(),
            AmbientLight::default(),
        ));
    }
}

/// Sky colour, fog and ambient light of the region just entered.
fn apply_atmosphere(
    region: Res<CurrentRegion>,
    mut clear: ResMut<ClearColor>,
    mut cameras: Query<(&mut DistanceFog, &mut AmbientLight), With<Player>>,
) {
    let Atmosphere { sky, visibility, ambient } = region.layout.atmosphere;
    clear.0 = srgb(sky);
    for (mut fog, mut light) in &mut cameras {
        fog.color = srgb(sky);
        fog.falloff = FogFalloff::Linear { start: visibility * 0.2, end: visibility };
        light.brightness = ambient;
    }
}

/// Gives every new structure its mesh and material.
fn dress_structures(
    mut commands: Commands,
    region: Option<Res<CurrentRegion>>,
    structures: Query<(Entity, &StructureView), Added<StructureView>>,
    mut palette: ResMut<Palette>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut standard: ResMut<Assets<StandardMaterial>>,
    mut grids: ResMut<Assets<NeonGridMaterial>>,
    mut screens: ResMut<Assets<ScreenMaterial>>,
) {
    let region_id = region.as_ref().map_or(RegionId::Lobby, |region| region.id());
    for (entity, StructureView(structure)) in &structures {
        let mesh = match structure.shape {
            Shape::Ring => {
                let placement = structure.placement;
                let ratio = placement.scale.y / placement.scale.x.max(1e-3);
                palette.mesh(&mut meshes, MeshKey::Ring((ratio * 1000.0).round().clamp(1.0, 500.0) as u32))
            }
            shape => palette.mesh(&mut meshes, MeshKey::Shape(shape)),
        };
        let mut entity = commands.entity(entity);
        entity.insert(Mesh3d(mesh));
        match structure.surface {
            Surface::Matte => {
                entity.insert(MeshMaterial3d(palette.standard(&mut standard, structure.colour, 0.0)));
            }
            Surface::Glow { strength } => {
                entity.insert(MeshMaterial3d(palette.standard(&mut standard, structure.colour, strength)));
            }
            Surface::NeonGrid => {
                let atmosphere = region.as_ref().map(|region| region.layout.atmosphere);
                entity.insert(MeshMaterial3d(grids.add(lobby_floor_grid(structure, atmosphere))));
            }
            Surface::Screen => {
                let shows = match region_id {
                    RegionId::Room(RoomKind::LectureHall) => ScreenShows::Slides,
                    RegionId::Room(RoomKind::Meeting) => ScreenShows::Display,
                    _ => ScreenShows::Film,
                };
                entity.insert(MeshMaterial3d(screens.add(ScreenMaterial::new(
                    shows,
                    srgb(structure.colour).to_linear(),
                    2.0,
                ))));
            }
        }
    }
}

fn fog_vector(atmosphere: Option<Atmosphere>) -> Vec4 {
    atmosphere.map_or(Vec4::new(0.0, 0.0, 0.0, 1000.0), |atmosphere| {
        let sky = srgb(atmosphere.sky).to_linear();
        Vec4::new(sky.red, sky.green, sky.blue, atmosphere.visibility)
    })
}

/// The lobby's floor: a finer grid in the structure's colour with cyan avenues.
fn lobby_floor_grid(structure: &Structure, atmosphere: Option<Atmosphere>) -> NeonGridMaterial {
    NeonGridMaterial {
        line_colour: srgb(structure.colour).to_linear(),
        street_colour: srgb(region_accent(RegionId::City)).to_linear(),
        base_colour: LinearRgba::rgb(0.01, 0.008, 0.02),
        dims: Vec4::new(3.0, 1.0, 4.0, 0.0),
        fog: fog_vector(atmosphere),
    }
}

/// A portal: a glowing ring in its destination's colour, with a shimmering membrane.
fn dress_portals(
    mut commands: Commands,
    portals: Query<(Entity, &PortalView), Added<PortalView>>,
    mut palette: ResMut<Palette>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut standard: ResMut<Assets<StandardMaterial>>,
) {
    for (entity, PortalView(portal)) in &portals {
        let colour = portal.colour();
        let ring = palette.mesh(&mut meshes, MeshKey::PortalRing);
        let membrane_mesh = palette.mesh(&mut meshes, MeshKey::PortalMembrane);
        let ring_material = palette.standard(&mut standard, colour, 8.0);
        let [r, g, b] = colour.to_f32();
        let membrane = standard.add(StandardMaterial {
            base_color: Color::srgba(r, g, b, 0.3),
            emissive: Color::srgb(r, g, b).to_linear() * 1.2,
            alpha_mode: AlphaMode::Blend,
            unlit: true,
            double_sided: true,
            cull_mode: None,
            ..default()
        });
        // Stand the ring up: the torus lies in the xz plane; turn it into the xy plane.
        let upright = Transform::from_rotation(Quat::from_rotation_x(std::f32::consts::FRAC_PI_2))
            .with_scale(Vec3::splat(portal.radius));
        commands.entity(entity).with_children(|children| {
            children.spawn((Mesh3d(ring), MeshMaterial3d(ring_material), upright));
            children.spawn((Mesh3d(membrane_mesh), MeshMaterial3d(membrane), upright));
        });
    }
}

/// AI agents among the drifters wear a white halo.
fn dress_drifters(
    mut commands: Commands,
    drifters: Query<(Entity, &DrifterView), Added<DrifterView>>,
    mut palette: ResMut<Palette>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut standard: ResMut<Assets<StandardMaterial>>,
) {
    if drifters.is_empty() {
        return;
    }
    let halo = palette.mesh(&mut meshes, MeshKey::Halo);
    let halo_material = palette.standard(&mut standard, Rgb::new(220, 245, 255), 6.0);
    for (entity, DrifterView(drifter)) in &drifters {
        if drifter.is_agent {
            commands.entity(entity).with_child((
                Mesh3d(halo.clone()),
                MeshMaterial3d(halo_material.clone()),
                Transform::from_xyz(0.0, 0.38, 0.0),
            ));
        }
    }
}

/// The ring that glows above someone's head while they speak, and grows with their voice: how
/// much it glows now (0 to 1).
#[derive(Component, Debug, Clone, Copy, Default)]
pub struct SpeakingRing(f32);

/// The colour a figure's body parts were last given (see [`recolour_figures`]).
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
struct DressedIn(Rgb);

/// Gives a figure's body parts its new colour when it changes: a person chose another, or one's
/// own body learnt one's colour from the profile after it was first drawn.
#[allow(clippy::type_complexity)]
fn recolour_figures(
    mut commands: Commands,
    figures: Query<(Entity, &Figure, Option<&Children>, Has<RemoteAvatarView>, Option<&DressedIn>), Changed<Figure>>,
    mut parts: Query<(&mut MeshMaterial3d<StandardMaterial>, Option<&Bone>, Option<&FarPart>)>,
    mut palette: ResMut<Palette>,
    mut standard: ResMut<Assets<StandardMaterial>>,
) {
    for (entity, figure, children, is_person, dressed) in &figures {
        if dressed.is_some_and(|dressed| dressed.0 == figure.colour) {
            continue;
        }
        commands.entity(entity).insert(DressedIn(figure.colour));
        let Some(children) = children else { continue };
        let glow = if is_person { 2.5 } else { 1.2 };
        let material = palette.standard(&mut standard, figure.colour, glow);
        for child in children.iter() {
            let Ok((mut current, bone, far)) = parts.get_mut(child) else { continue };
            if (bone.is_some() || far == Some(&FarPart::Body)) && current.0 != material {
                current.0 = material.clone();
            }
        }
    }
}

/// Gives the parts of every figure (bodies.rs) their meshes: the jointed body's bones and the
/// far figure in the figure's colour, the heads in skin. People here glow more than drifters,
/// so that they stand out. Meshes and materials are shared, so a crowd draws in batches.
#[allow(clippy::type_complexity)]
fn dress_figures(
    mut commands: Commands,
    parts: Query<
        (Entity, &ChildOf, Option<&Bone>, Option<&FarPart>, Has<AvatarHead>),
        Or<(Added<Bone>, Added<FarPart>, Added<AvatarHead>)>,
    >,
    figures: Query<(&Figure, Has<RemoteAvatarView>)>,
    mut palette: ResMut<Palette>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut standard: ResMut<Assets<StandardMaterial>>,
    mut bones: Local<HashMap<Bone, Handle<Mesh>>>,
) {
    if parts.is_empty() {
        return;
    }
    if bones.is_empty() {
        let shape = crate::bodies::shape();
        *bones = Bone::ALL
            .iter()
            .map(|bone| {
                let (radius, length) = bone.size(&shape);
                (*bone, meshes.add(Capsule3d::new(radius, (length - radius).max(0.01))))
            })
            .collect();
    }
    let head = palette.mesh(&mut meshes, MeshKey::Head);
    let far_body = palette.mesh(&mut meshes, MeshKey::Body);
    for (entity, child_of, bone, far, is_head) in &parts {
        let Ok((figure, is_person)) = figures.get(child_of.parent()) else { continue };
        let (body_glow, skin) = if is_person {
            (2.5, palette.standard(&mut standard, Rgb::new(245, 235, 225), 0.6))
        } else {
            (1.2, palette.standard(&mut standard, Rgb::new(235, 225, 215), 0.3))
        };
        let mesh = match (bone, far) {
            (Some(bone), _) => bones[bone].clone(),
            (None, Some(FarPart::Body)) => far_body.clone(),
            _ => head.clone(),
        };
        let material = if is_head { skin } else { palette.standard(&mut standard, figure.colour, body_glow) };
        commands.entity(entity).insert((Mesh3d(mesh), MeshMaterial3d(material)));
    }
}

/// Another person's speaking ring, and their two small hands.
fn dress_remote_avatars(
    mut commands: Commands,
    avatars: Query<Entity, Added<RemoteAvatarView>>,
    hands: Query<Entity, Added<HandView>>,
    mut palette: ResMut<Palette>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut standard: ResMut<Assets<StandardMaterial>>,
    mut ring: Local<Option<Handle<Mesh>>>,
) {
    if avatars.is_empty() && hands.is_empty() {
        return;
    }
    let head = palette.mesh(&mut meshes, MeshKey::Head);
    let skin = palette.standard(&mut standard, Rgb::new(245, 235, 225), 0.6);
    let ring = ring.get_or_insert_with(|| meshes.add(Torus::new(0.2, 0.24))).clone();
    let glow = palette.standard(&mut standard, Rgb::new(120, 255, 240), 6.0);
    for entity in &avatars {
        commands.entity(entity).with_child((
            SpeakingRing::default(),
            Mesh3d(ring.clone()),
            MeshMaterial3d(glow.clone()),
            Transform::from_xyz(0.0, 0.32, 0.0),
            Visibility::Hidden,
        ));
    }
    for entity in &hands {
        commands.entity(entity).with_child((
            Mesh3d(head.clone()),
            MeshMaterial3d(skin.clone()),
            Transform::from_scale(Vec3::splat(0.45)),
        ));
    }
}

/// Shows the ring above the heads of the people speaking now.
/// The ring grows and shrinks with each syllable (quickly up, slowly down), so that one sees
/// who says what, whatever body they wear.
fn show_speaking(
    time: Res<Time>,
    voice: Option<Res<crate::voice::VoiceState>>,
    avatars: Query<(&RemoteAvatarView, &Children)>,
    mut rings: Query<(&mut SpeakingRing, &mut Visibility, &mut Transform)>,
) {
    let Some(voice) = voice else { return };
    for (avatar, children) in &avatars {
        let speaking = voice.speaking(&avatar.key);
        let level = voice.levels.get(&avatar.key).copied().unwrap_or(0.0);
        let wanted = if speaking { Visibility::Inherited } else { Visibility::Hidden };
        for child in children.iter() {
            let Ok((mut ring, mut visibility, mut transform)) = rings.get_mut(child) else { continue };
            ring.0 = crate::voice::follow(ring.0, crate::voice::loudness(level), time.delta_secs());
            transform.scale = Vec3::splat(0.8 + 0.6 * ring.0);
            if *visibility != wanted {
                *visibility = wanted;
            }
        }
    }
}

/// Turns the layout's lamps into point lights.
fn light_lamps(mut commands: Commands, lamps: Query<(Entity, &LampView), Added<LampView>>) {
    for (entity, LampView(lamp)) in &lamps {
        commands.entity(entity).insert(PointLight {
            color: srgb(lamp.colour),
            intensity: lamp.lumens,
            range: lamp.range,
            radius: 0.2,
            shadow_maps_enabled: false,
            ..default()
        });
    }
}

/// The city's ground, which goes along with the person so that it never ends.
#[derive(Component, Debug)]
struct CityGround;

/// Lays the neon ground in the city and keeps it under the person.
fn lay_city_ground(
    mut commands: Commands,
    region: Option<Res<CurrentRegion>>,
    mut ground: Query<&mut Transform, (With<CityGround>, Without<Player>)>,
    player: Query<&Transform, With<Player>>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut grids: ResMut<Assets<NeonGridMaterial>>,
) {
    let Some(region) = region else { return };
    if region.id() != RegionId::City {
        return;
    }
    let Ok(viewer) = player.single() else { return };
    let under = Vec3::new(viewer.translation.x.round(), 0.0, viewer.translation.z.round());
    if let Ok(mut transform) = ground.single_mut() {
        transform.translation = under;
        return;
    }
    let material = NeonGridMaterial {
        line_colour: LinearRgba::rgb(0.9, 0.1, 0.7),
        street_colour: srgb(region_accent(RegionId::City)).to_linear(),
        base_colour: LinearRgba::rgb(0.004, 0.008, 0.02),
        dims: Vec4::new(PARCEL_SIZE, STREET_WIDTH, BLOCK_PARCELS as f32, 0.0),
        fog: fog_vector(Some(region.layout.atmosphere)),
    };
    commands.spawn((
        RegionScoped,
        CityGround,
        Mesh3d(meshes.add(Plane3d::default().mesh().size(CITY_GROUND_SIZE, CITY_GROUND_SIZE))),
        MeshMaterial3d(grids.add(material)),
        Transform::from_translation(under),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_figures_body_is_dressed_again_when_its_colour_changes() {
        let mut app = App::new();
        app.init_resource::<Palette>()
            .init_resource::<Assets<StandardMaterial>>()
            .add_systems(Update, recolour_figures);
        let world = app.world_mut();
        let first = world.resource_mut::<Assets<StandardMaterial>>().add(StandardMaterial::default());
        let figure = world.spawn(Figure::new(Rgb::new(10, 20, 30), 0)).id();
        let body = world.spawn((FarPart::Body, MeshMaterial3d(first.clone()), ChildOf(figure))).id();
        let head = world.spawn((FarPart::Head, MeshMaterial3d(first.clone()), ChildOf(figure))).id();
        app.update();
        let material_of = |app: &App, part: Entity| {
            app.world().get::<MeshMaterial3d<StandardMaterial>>(part).expect("dressed").0.clone()
        };
        let colour_of = |app: &App, part: Entity| {
            let handle = material_of(app, part);
            app.world().resource::<Assets<StandardMaterial>>().get(&handle).expect("a material").base_color
        };
        let before = colour_of(&app, body);
        app.world_mut().get_mut::<Figure>(figure).expect("figure").colour = Rgb::new(250, 10, 10);
        app.update();
        let after = colour_of(&app, body);
        assert_ne!(before, after, "the body takes the new colour");
        assert_eq!(after, srgb(Rgb::new(250, 10, 10)), "in the new colour");
        assert_eq!(material_of(&app, head), first, "the head keeps its skin");
    }
}
