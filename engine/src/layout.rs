//! Procedural layouts: what stands in each region, where people arrive and where portals lead.
//!
//! A layout is plain data generated from a seed; the client draws it and the movement rules
//! clamp to its bounds. The same seed gives the same layout on every machine.

use std::f32::consts::{PI, TAU};

use glam::{Quat, Vec2, Vec3};
use serde::{Deserialize, Serialize};

use crate::city::NEON_COLOURS;
use crate::region::{RegionId, RoomKind};
use crate::rng::LayoutRng;
use crate::structure::{Placement, Rgb, Shape, Structure, Surface};

/// The seed of the shared world: every peer generates the same lobby and city from it.
pub const WORLD_SEED: u64 = 0x5A4C_7C7A_2026_0001;

/// Steps along a movement are checked against portals this often, in metres: well under the
/// depth of a portal's opening.
const PORTAL_SAMPLE_STEP: f32 = 0.4;
/// How far in front of or behind a portal's plane its opening still takes someone.
const PORTAL_HALF_DEPTH: f32 = 0.9;

/// Eye height of a standing person, in metres.
pub const EYE_HEIGHT: f32 = 1.7;

/// A ring that takes whoever walks through it to another region.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Portal {
    /// Centre of the ring.
    pub centre: Vec3,
    /// Radius of the opening, in metres.
    pub radius: f32,
    /// Direction the ring faces, as a yaw in radians (0 faces +z).
    pub yaw: f32,
    /// Where it leads.
    pub target: RegionId,
}

impl Portal {
    /// Whether a person whose eyes are at `eye` is inside the portal's opening.
    pub fn contains(&self, eye: Vec3) -> bool {
        let local = Quat::from_rotation_y(-self.yaw) * (eye - self.centre);
        // Within the disc of the opening (x and y in the ring's plane) and close to its plane.
        local.z.abs() < PORTAL_HALF_DEPTH && (local.x * local.x + local.y * local.y) < self.radius * self.radius
    }

    /// The colour of a portal's ring: each destination has its own.
    pub fn colour(&self) -> Rgb {
        region_accent(self.target)
    }
}

/// The colour that marks a region: its portals, its signage, its main accent.
pub fn region_accent(region: RegionId) -> Rgb {
    match region {
        RegionId::Lobby => Rgb::new(255, 60, 210),
        RegionId::City => Rgb::new(0, 235, 255),
        RegionId::Room(RoomKind::Marketplace) => Rgb::new(255, 140, 0),
        RegionId::Room(RoomKind::Cinema) => Rgb::new(235, 30, 45),
        RegionId::Room(RoomKind::LectureHall) => Rgb::new(40, 220, 110),
        RegionId::Room(RoomKind::Meeting) => Rgb::new(60, 130, 255),
        RegionId::Room(RoomKind::Private) => Rgb::new(170, 70, 255),
    }
}

/// A placeholder avatar drifting through a region, until real people arrive over the network.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Drifter {
    /// Distance from the region's vertical axis.
    pub orbit_radius: f32,
    /// Height at rest.
    pub base_height: f32,
    /// Radians per second around the axis (negative turns the other way).
    pub angular_speed: f32,
    /// Starting angle.
    pub phase: f32,
    /// How far up and down it bobs, in metres.
    pub bob: f32,
    /// Body colour.
    pub colour: Rgb,
    /// Whether it stands for an AI agent (always labelled as one).
    pub is_agent: bool,
}

impl Drifter {
    /// Where the drifter is `seconds` after the region was opened.
    pub fn position_at(&self, seconds: f32) -> Vec3 {
        let angle = self.phase + self.angular_speed * seconds;
        let bob = self.bob * (seconds * 0.8 + self.phase * 3.0).sin();
        Vec3::new(self.orbit_radius * angle.cos(), self.base_height + bob, self.orbit_radius * angle.sin())
    }

    /// The way the drifter faces at `seconds`: along its path.
    pub fn yaw_at(&self, seconds: f32) -> f32 {
        let angle = self.phase + self.angular_speed * seconds;
        // The tangent of the circle; yaw 0 faces +z.
        let tangent = Vec3::new(-angle.sin(), 0.0, angle.cos()) * self.angular_speed.signum();
        tangent.x.atan2(tangent.z)
    }
}

/// A light in a layout.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Lamp {
    /// Where it hangs.
    pub position: Vec3,
    /// Its colour.
    pub colour: Rgb,
    /// Luminous power in lumens.
    pub lumens: f32,
    /// How far it reaches, in metres.
    pub range: f32,
}

/// The air of a region: the colour beyond everything and how far one sees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Atmosphere {
    /// Colour of the sky or the darkness.
    pub sky: Rgb,
    /// Distance at which the fog has hidden everything, in metres.
    pub visibility: f32,
    /// Brightness of the light that comes from everywhere, in the renderer's units (0–1000).
    pub ambient: f32,
}

/// The space a person can move in: a box, cut to a cylinder around the vertical axis where
/// `max_radius` is set (the lobby is round).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bounds {
    /// Smallest corner for the eyes.
    pub min: Vec3,
    /// Largest corner for the eyes.
    pub max: Vec3,
    /// The farthest the eyes may be from the vertical axis, if the region is round.
    pub max_radius: Option<f32>,
}

impl Bounds {
    /// A box.
    pub fn boxed(min: Vec3, max: Vec3) -> Self {
        Self { min, max, max_radius: None }
    }

    /// The nearest point inside the bounds. A point that is not finite (which no movement
    /// should produce) goes to the middle of the floor rather than anywhere undefined.
    pub fn clamp(&self, point: Vec3) -> Vec3 {
        if !point.is_finite() {
            let middle = (self.min + self.max) * 0.5;
            return Vec3::new(middle.x, self.min.y, middle.z);
        }
        let mut inside = point.clamp(self.min, self.max);
        if let Some(radius) = self.max_radius {
            let across = Vec2::new(inside.x, inside.z);
            if across.length() > radius {
                let edge = across.normalize_or_zero() * radius;
                inside.x = edge.x;
                inside.z = edge.y;
            }
        }
        inside
    }
}

/// Everything the client needs to build a region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionLayout {
    /// Which region this is.
    pub region: RegionId,
    /// Where newcomers' eyes are.
    pub spawn: Vec3,
    /// The way newcomers face (yaw, radians; 0 faces +z).
    pub spawn_yaw: f32,
    /// Where people may go. The city's bounds are wide: it has no edge one can walk to.
    pub bounds: Bounds,
    /// The fixed structures of the region. The city adds its parcels around the viewer.
    pub structures: Vec<Structure>,
    /// Rings that lead elsewhere.
    pub portals: Vec<Portal>,
    /// Placeholder avatars.
    pub drifters: Vec<Drifter>,
    /// Lights.
    pub lamps: Vec<Lamp>,
    /// Sky and fog.
    pub atmosphere: Atmosphere,
}

impl RegionLayout {
    /// The layout of `region` for the world `seed`, with `n_drifters` placeholder avatars in the
    /// lobby (other regions have none yet).
    pub fn generate(region: RegionId, seed: u64, n_drifters: usize) -> Self {
        match region {
            RegionId::Lobby => lobby(seed, n_drifters),
            RegionId::City => city(seed),
            RegionId::Room(kind) => room(kind, seed),
        }
    }

    /// The portal whose opening holds `eye`, if any.
    pub fn portal_at(&self, eye: Vec3) -> Option<&Portal> {
        self.portals.iter().find(|portal| portal.contains(eye))
    }

    /// The first portal that a person moving from `from` to `to` in one step passes through.
    /// Fast movement at a low frame rate can step over a portal's depth in one frame, so the
    /// whole step is checked, not only where it ends.
    pub fn portal_crossed(&self, from: Vec3, to: Vec3) -> Option<&Portal> {
        let n_samples = ((to - from).length() / PORTAL_SAMPLE_STEP).ceil().clamp(1.0, 10_000.0) as usize;
        (0..=n_samples).find_map(|sample| self.portal_at(from.lerp(to, sample as f32 / n_samples as f32)))
    }
}

/// Radius of the lobby's atrium, in metres.
pub const LOBBY_RADIUS: f32 = 60.0;
/// Height of the lobby's atrium: far more than anyone can see.
pub const LOBBY_HEIGHT: f32 = 2000.0;
/// Where people arrive in the lobby: near the wall, looking across the atrium.
const LOBBY_SPAWN: Vec3 = Vec3::new(0.0, EYE_HEIGHT, 46.0);
/// How many placeholder avatars the lobby shows by default.
pub const LOBBY_DRIFTERS: usize = 2000;

fn lobby(seed: u64, n_drifters: usize) -> RegionLayout {
    let mut rng = LayoutRng::derive(seed, "lobby", &[]);
    let mut structures = Vec::new();
    let dark = Rgb::new(16, 14, 30);
    // The floor: a disc with the neon grid.
    structures.push(Structure {
        shape: Shape::Cylinder,
        placement: Placement::standing(
            Vec3::new(0.0, -0.5, 0.0),
            Vec3::new(LOBBY_RADIUS * 2.0, 0.5, LOBBY_RADIUS * 2.0),
        ),
        colour: Rgb::new(255, 60, 210),
        surface: Surface::NeonGrid,
    });
    // Pillars around the wall, rising out of sight.
    let n_pillars = 32;
    for pillar in 0..n_pillars {
        let angle = pillar as f32 / n_pillars as f32 * TAU;
        let at = Vec3::new(angle.cos(), 0.0, angle.sin()) * (LOBBY_RADIUS + 1.0);
        structures.push(
            Structure::matte(Shape::Cuboid, Placement::standing(at, Vec3::new(3.0, LOBBY_HEIGHT, 1.5)), dark)
                .turned_to_face_axis(angle),
        );
        // A glowing seam up the face of every other pillar.
        if pillar % 2 == 0 {
            structures.push(
                Structure::glowing(
                    Shape::Cuboid,
                    Placement::standing(
                        at * ((LOBBY_RADIUS - 0.3) / (LOBBY_RADIUS + 1.0)),
                        Vec3::new(0.25, LOBBY_HEIGHT, 0.2),
                    ),
                    Rgb::new(0, 200, 255),
                    3.0,
                )
                .turned_to_face_axis(angle),
            );
        }
    }
    // Neon rings all the way up; they close in as they rise, so the atrium seems to go on.
    let mut height = 6.0;
    let mut ring = 0;
    while height < LOBBY_HEIGHT {
        let colour = if ring % 2 == 0 { Rgb::new(255, 40, 200) } else { Rgb::new(0, 220, 255) };
        structures.push(Structure::glowing(
            Shape::Ring,
            Placement::new(Vec3::Y * height, Vec3::new(LOBBY_RADIUS * 2.0 - 1.0, 1.0, LOBBY_RADIUS * 2.0 - 1.0)),
            colour,
            6.0,
        ));
        height += 14.0 + ring as f32 * 1.5;
        ring += 1;
    }
    // A beam of light up the middle.
    structures.push(Structure::glowing(
        Shape::Cylinder,
        Placement::standing(Vec3::ZERO, Vec3::new(1.2, LOBBY_HEIGHT, 1.2)),
        Rgb::new(190, 230, 255),
        8.0,
    ));
    // Floating platforms with glowing rims, in a loose spiral around the beam.
    let n_platforms = 48;
    for platform in 0..n_platforms {
        let angle = platform as f32 * 2.4 + rng.range(-0.3, 0.3);
        let distance = rng.range(14.0, LOBBY_RADIUS - 12.0);
        let radius = rng.range(3.0, 7.5);
        let centre = Vec3::new(
            angle.cos() * distance,
            8.0 + platform as f32 * 9.0 + rng.range(-3.0, 3.0),
            angle.sin() * distance,
        );
        structures.push(Structure::matte(
            Shape::Cylinder,
            Placement::new(centre, Vec3::new(radius * 2.0, 0.6, radius * 2.0)),
            Rgb::new(34, 30, 60),
        ));
        structures.push(Structure::glowing(
            Shape::Ring,
            Placement::new(centre, Vec3::new(radius * 2.0 + 0.4, 0.5, radius * 2.0 + 0.4)),
            *rng.pick(&NEON_COLOURS),
            5.0,
        ));
    }
    // Portals on an arc centred on the arrival point, so that each one is straight ahead of
    // someone who turns to it and no portal stands in the way of another.
    let targets: Vec<RegionId> = RegionId::all().filter(|region| *region != RegionId::Lobby).collect();
    let portal_distance = 22.0;
    let portals: Vec<Portal> = targets
        .iter()
        .enumerate()
        .map(|(index, target)| {
            let angle = (index as f32 - (targets.len() - 1) as f32 * 0.5) * 0.34;
            let offset = Vec3::new(angle.sin(), 0.0, -angle.cos()) * portal_distance;
            let centre = Vec3::new(LOBBY_SPAWN.x + offset.x, 3.2, LOBBY_SPAWN.z + offset.z);
            // Each ring faces the arrival point.
            Portal { centre, radius: 2.8, yaw: (-offset.x).atan2(-offset.z), target: *target }
        })
        .collect();
    for portal in &portals {
        structures.push(Structure::matte(
            Shape::Cylinder,
            Placement::standing(Vec3::new(portal.centre.x, 0.0, portal.centre.z), Vec3::new(7.0, 0.3, 7.0)),
            dark,
        ));
    }
    let drifters = (0..n_drifters)
        .map(|index| {
            let is_agent = rng.chance(0.2);
            let hue_pick = *rng.pick(&NEON_COLOURS);
            Drifter {
                orbit_radius: rng.range(8.0, LOBBY_RADIUS - 4.0),
                base_height: if index % 5 == 0 { rng.range(2.0, 12.0) } else { rng.range(6.0, 420.0) },
                angular_speed: rng.range(0.02, 0.12) * if rng.chance(0.5) { 1.0 } else { -1.0 },
                phase: rng.range(0.0, TAU),
                bob: rng.range(0.2, 1.5),
                colour: if is_agent { Rgb::new(230, 240, 255) } else { hue_pick },
                is_agent,
            }
        })
        .collect();
    let lamps = (0..6)
        .map(|index| Lamp {
            position: Vec3::new(0.0, 6.0 + index as f32 * 60.0, 0.0),
            colour: if index % 2 == 0 { Rgb::new(255, 90, 220) } else { Rgb::new(80, 200, 255) },
            lumens: 4_000_000.0,
            range: 120.0,
        })
        .collect();
    RegionLayout {
        region: RegionId::Lobby,
        spawn: LOBBY_SPAWN,
        spawn_yaw: PI,
        bounds: Bounds {
            min: Vec3::new(-LOBBY_RADIUS + 2.0, EYE_HEIGHT, -LOBBY_RADIUS + 2.0),
            max: Vec3::new(LOBBY_RADIUS - 2.0, LOBBY_HEIGHT - 10.0, LOBBY_RADIUS - 2.0),
            max_radius: Some(LOBBY_RADIUS - 2.0),
        },
        structures,
        portals,
        drifters,
        lamps,
        atmosphere: Atmosphere { sky: Rgb::new(6, 4, 16), visibility: 700.0, ambient: 80.0 },
    }
}

impl Structure {
    /// Turns a structure standing on a circle at `angle` so that its long side follows the
    /// circle.
    fn turned_to_face_axis(mut self, angle: f32) -> Self {
        self.placement = self.placement.turned(-angle + PI * 0.5);
        self
    }
}

/// How far from the portal home at the origin crossing people arrive in the city, in metres.
const CITY_SPAWN_DISTANCE: f32 = 30.0;

/// How far the city reaches from its centre for the purpose of movement: far beyond where
/// anyone walks in a session, while keeping float positions precise.
pub const CITY_REACH: f32 = 100_000.0;

fn city(_seed: u64) -> RegionLayout {
    // The city's ground and parcels are endless and drawn around the viewer; its fixed part is
    // the portal home, standing in the street crossing at the origin, amid the commons.
    let portal = Portal { centre: Vec3::new(0.0, 3.2, 0.0), radius: 2.8, yaw: 0.0, target: RegionId::Lobby };
    RegionLayout {
        region: RegionId::City,
        // On the x = 0 street between two commons blocks, looking down it at the portal.
        spawn: Vec3::new(0.0, EYE_HEIGHT, CITY_SPAWN_DISTANCE),
        spawn_yaw: PI,
        bounds: Bounds::boxed(
            Vec3::new(-CITY_REACH, EYE_HEIGHT, -CITY_REACH),
            Vec3::new(CITY_REACH, 300.0, CITY_REACH),
        ),
        structures: vec![Structure::matte(
            Shape::Cylinder,
            Placement::standing(Vec3::new(portal.centre.x, 0.0, portal.centre.z), Vec3::new(7.0, 0.3, 7.0)),
            Rgb::new(16, 14, 30),
        )],
        portals: vec![portal],
        drifters: Vec::new(),
        lamps: vec![Lamp {
            position: Vec3::new(0.0, 30.0, 0.0),
            colour: Rgb::new(120, 220, 255),
            lumens: 8_000_000.0,
            range: 150.0,
        }],
        atmosphere: Atmosphere { sky: Rgb::new(2, 4, 12), visibility: 420.0, ambient: 120.0 },
    }
}

/// Inside size of a room (width along x, height, depth along z).
fn room_size(kind: RoomKind) -> Vec3 {
    match kind {
        RoomKind::Marketplace => Vec3::new(44.0, 12.0, 40.0),
        RoomKind::Cinema => Vec3::new(26.0, 14.0, 34.0),
        RoomKind::LectureHall => Vec3::new(30.0, 14.0, 30.0),
        RoomKind::Meeting => Vec3::new(16.0, 5.0, 14.0),
        RoomKind::Private => Vec3::new(12.0, 4.5, 12.0),
    }
}

fn room(kind: RoomKind, seed: u64) -> RegionLayout {
    let mut rng = LayoutRng::derive(seed, kind.slug(), &[]);
    let size = room_size(kind);
    let half = size * 0.5;
    let accent = region_accent(RegionId::Room(kind));
    let (wall, floor) = match kind {
        RoomKind::Marketplace => (Rgb::new(60, 44, 36), Rgb::new(86, 70, 56)),
        RoomKind::Cinema => (Rgb::new(20, 8, 14), Rgb::new(30, 12, 18)),
        RoomKind::LectureHall => (Rgb::new(40, 44, 50), Rgb::new(56, 60, 66)),
        RoomKind::Meeting => (Rgb::new(196, 200, 206), Rgb::new(120, 110, 100)),
        RoomKind::Private => (Rgb::new(44, 22, 60), Rgb::new(60, 34, 70)),
    };
    let mut structures = shell(size, wall, floor, accent);
    let mut lamps = Vec::new();
    let landing = match kind {
        RoomKind::Marketplace => marketplace(&mut structures, &mut lamps, &mut rng, half),
        RoomKind::Cinema => cinema(&mut structures, &mut lamps, half),
        RoomKind::LectureHall => lecture_hall(&mut structures, &mut lamps, half),
        RoomKind::Meeting => meeting(&mut structures, &mut lamps, half),
        RoomKind::Private => private(&mut structures, &mut lamps, half),
    };
    // Rooms with raked seating are entered from a landing at the top of the rake, at the back.
    let (floor_height, spawn_z) = match landing {
        Some(Landing { height, front_z }) => {
            structures.push(Structure::matte(
                Shape::Cuboid,
                Placement::standing(
                    Vec3::new(0.0, 0.0, (front_z + half.z) * 0.5),
                    Vec3::new(size.x, height, half.z - front_z),
                ),
                wall,
            ));
            structures.push(Structure::glowing(
                Shape::Cuboid,
                Placement::new(Vec3::new(0.0, height, front_z), Vec3::new(size.x, 0.08, 0.08)),
                accent,
                3.0,
            ));
            (height, half.z - 3.0)
        }
        None => (0.0, half.z - 3.0),
    };
    // The ring fits between the floor people arrive on and the ceiling.
    let portal_radius = ((size.y - floor_height - 0.2) * 0.5).min(2.4);
    // The portal home stands by the back wall (+z); people arrive in front of it facing -z.
    let portal = Portal {
        centre: Vec3::new(0.0, floor_height + 0.1 + portal_radius, half.z - 1.2),
        radius: portal_radius,
        yaw: PI,
        target: RegionId::Lobby,
    };
    let spawn = Vec3::new(0.0, floor_height + EYE_HEIGHT, spawn_z);
    let ambient = match kind {
        RoomKind::Cinema => 60.0,
        RoomKind::Private => 150.0,
        _ => 300.0,
    };
    RegionLayout {
        region: RegionId::Room(kind),
        spawn,
        spawn_yaw: PI,
        bounds: Bounds::boxed(
            Vec3::new(-half.x + 0.5, EYE_HEIGHT, -half.z + 0.5),
            Vec3::new(half.x - 0.5, (size.y - 0.3).max(EYE_HEIGHT), half.z - 0.5),
        ),
        structures,
        portals: vec![portal],
        drifters: Vec::new(),
        lamps,
        atmosphere: Atmosphere { sky: Rgb::new(0, 0, 0), visibility: 200.0, ambient },
    }
}

/// A raised floor at the back of a room, from `front_z` to the back wall, where people arrive.
#[derive(Debug, Clone, Copy)]
struct Landing {
    height: f32,
    front_z: f32,
}

/// Floor, walls and ceiling of a room, with a glowing trim along the floor in the room's accent.
fn shell(size: Vec3, wall: Rgb, floor: Rgb, accent: Rgb) -> Vec<Structure> {
    let half = size * 0.5;
    let thickness = 0.4;
    let mut parts = vec![
        Structure::matte(
            Shape::Cuboid,
            Placement::new(Vec3::new(0.0, -thickness * 0.5, 0.0), Vec3::new(size.x, thickness, size.z)),
            floor,
        ),
        Structure::matte(
            Shape::Cuboid,
            Placement::new(Vec3::new(0.0, size.y + thickness * 0.5, 0.0), Vec3::new(size.x, thickness, size.z)),
            wall,
        ),
    ];
    for (centre, extent) in [
        (Vec3::new(0.0, half.y, -half.z - thickness * 0.5), Vec3::new(size.x, size.y, thickness)),
        (Vec3::new(0.0, half.y, half.z + thickness * 0.5), Vec3::new(size.x, size.y, thickness)),
        (Vec3::new(-half.x - thickness * 0.5, half.y, 0.0), Vec3::new(thickness, size.y, size.z)),
        (Vec3::new(half.x + thickness * 0.5, half.y, 0.0), Vec3::new(thickness, size.y, size.z)),
    ] {
        parts.push(Structure::matte(Shape::Cuboid, Placement::new(centre, extent), wall));
        // The trim: a thin glowing strip along the bottom of the wall.
        let trim = Vec3::new(extent.x.min(size.x), 0.12, extent.z.min(size.z));
        // Pull the trim 5 cm off the wall, toward the middle of the room.
        let off_wall = |coordinate: f32| if coordinate == 0.0 { 0.0 } else { -coordinate.signum() * 0.05 };
        let inward = Vec3::new(off_wall(centre.x), 0.0, off_wall(centre.z));
        parts.push(Structure::glowing(
            Shape::Cuboid,
            Placement::new(Vec3::new(centre.x, 0.3, centre.z) + inward, trim),
            accent,
            3.0,
        ));
    }
    parts
}

fn marketplace(
    structures: &mut Vec<Structure>,
    lamps: &mut Vec<Lamp>,
    rng: &mut LayoutRng,
    half: Vec3,
) -> Option<Landing> {
    let awnings = [Rgb::new(255, 140, 0), Rgb::new(255, 200, 30), Rgb::new(230, 60, 40), Rgb::new(20, 190, 170)];
    let counter = Rgb::new(120, 80, 46);
    for row in 0..3 {
        for column in 0..4 {
            let x = -half.x + 7.0 + column as f32 * ((half.x * 2.0 - 14.0) / 3.0);
            let z = -half.z + 6.0 + row as f32 * 10.0;
            let base = Vec3::new(x, 0.0, z);
            structures.push(Structure::matte(
                Shape::Cuboid,
                Placement::standing(base, Vec3::new(5.0, 1.1, 1.6)),
                counter,
            ));
            for side in [-1.0, 1.0] {
                structures.push(Structure::matte(
                    Shape::Cylinder,
                    Placement::standing(base + Vec3::new(side * 2.4, 0.0, -0.6), Vec3::new(0.15, 2.9, 0.15)),
                    counter,
                ));
            }
            // The awning, tipped toward the customers.
            structures.push(Structure::matte(
                Shape::Cuboid,
                Placement::new(base + Vec3::new(0.0, 3.0, 0.2), Vec3::new(5.6, 0.12, 2.8))
                    .rotated(Quat::from_rotation_x(-0.25)),
                if column % 2 == 0 { awnings[0] } else { *rng.pick(&awnings) },
            ));
            // Wares on the counter.
            for ware in 0..3 {
                let shape = *rng.pick(&[Shape::Sphere, Shape::Cuboid, Shape::Cone]);
                structures.push(Structure::glowing(
                    shape,
                    Placement::standing(base + Vec3::new(-1.5 + ware as f32 * 1.5, 1.1, 0.0), Vec3::splat(0.5)),
                    *rng.pick(&NEON_COLOURS),
                    1.5,
                ));
            }
            lamps.push(Lamp {
                position: base + Vec3::new(0.0, 4.5, 1.5),
                colour: Rgb::new(255, 200, 140),
                lumens: 60_000.0,
                range: 14.0,
            });
        }
    }
    None
}

fn cinema(structures: &mut Vec<Structure>, lamps: &mut Vec<Lamp>, half: Vec3) -> Option<Landing> {
    // The screen fills most of the front wall (-z).
    structures.push(Structure {
        shape: Shape::Cuboid,
        placement: Placement::new(Vec3::new(0.0, 7.2, -half.z + 0.3), Vec3::new(half.x * 2.0 - 4.0, 8.5, 0.1)),
        colour: Rgb::new(220, 230, 255),
        surface: Surface::Screen,
    });
    let seat = Rgb::new(170, 20, 34);
    let n_rows = 8;
    for row in 0..n_rows {
        let z = -half.z + 11.0 + row as f32 * 2.2;
        let rise = row as f32 * 0.35;
        // Each row stands on its own step.
        structures.push(Structure::matte(
            Shape::Cuboid,
            Placement::standing(Vec3::new(0.0, 0.0, z), Vec3::new(half.x * 2.0, rise.max(0.01), 2.2)),
            Rgb::new(36, 14, 20),
        ));
        for column in 0..10 {
            let x = -9.0 + column as f32 * 2.0;
            let base = Vec3::new(x, rise, z);
            structures.push(Structure::matte(Shape::Cuboid, Placement::standing(base, Vec3::new(1.4, 0.5, 1.0)), seat));
            structures.push(Structure::matte(
                Shape::Cuboid,
                Placement::standing(base + Vec3::new(0.0, 0.0, 0.5), Vec3::new(1.4, 1.2, 0.2)),
                seat,
            ));
        }
    }
    for side in [-1.0, 1.0] {
        lamps.push(Lamp {
            position: Vec3::new(side * (half.x - 1.0), 3.0, 0.0),
            colour: Rgb::new(255, 60, 80),
            lumens: 40_000.0,
            range: 16.0,
        });
    }
    lamps.push(Lamp {
        position: Vec3::new(0.0, 7.0, -half.z + 6.0),
        colour: Rgb::new(200, 210, 255),
        lumens: 200_000.0,
        range: 30.0,
    });
    Some(Landing { height: (n_rows - 1) as f32 * 0.35, front_z: -half.z + 11.0 + (n_rows - 1) as f32 * 2.2 + 1.1 })
}

fn lecture_hall(structures: &mut Vec<Structure>, lamps: &mut Vec<Lamp>, half: Vec3) -> Option<Landing> {
    let bench = Rgb::new(150, 110, 70);
    // Tiers rise from the stage toward the back.
    let n_tiers = 7;
    for tier in 0..n_tiers {
        let z = -half.z + 10.0 + tier as f32 * 2.4;
        let height = 0.5 * (tier + 1) as f32;
        structures.push(Structure::matte(
            Shape::Cuboid,
            Placement::standing(Vec3::new(0.0, 0.0, z + 1.2), Vec3::new(half.x * 2.0, height, 2.4)),
            Rgb::new(70, 74, 84),
        ));
        structures.push(Structure::matte(
            Shape::Cuboid,
            Placement::standing(Vec3::new(0.0, height, z + 0.9), Vec3::new(half.x * 2.0 - 6.0, 0.5, 0.5)),
            bench,
        ));
        structures.push(Structure::matte(
            Shape::Cuboid,
            Placement::standing(Vec3::new(0.0, height, z + 0.2), Vec3::new(half.x * 2.0 - 6.0, 0.95, 0.15)),
            bench,
        ));
    }
    // The stage, the lectern and the slides.
    structures.push(Structure::matte(
        Shape::Cuboid,
        Placement::standing(Vec3::new(0.0, 0.0, -half.z + 4.0), Vec3::new(16.0, 0.5, 7.0)),
        Rgb::new(60, 50, 44),
    ));
    structures.push(Structure::matte(
        Shape::Cuboid,
        Placement::standing(Vec3::new(4.0, 0.5, -half.z + 5.0), Vec3::new(1.0, 1.2, 0.7)),
        bench,
    ));
    // The main board shows the presenter's slide (as the green panels beside it do).
    structures.push(Structure {
        shape: Shape::Cuboid,
        placement: Placement::new(Vec3::new(0.0, 6.0, -half.z + 0.3), Vec3::new(14.0, 7.0, 0.1)),
        colour: Rgb::new(235, 245, 240),
        surface: Surface::Screen,
    });
    // Green slide panels beside the main board: the hall's mark.
    for side in [-1.0, 1.0] {
        structures.push(Structure {
            shape: Shape::Cuboid,
            placement: Placement::new(Vec3::new(side * 10.5, 6.0, -half.z + 0.3), Vec3::new(6.0, 5.0, 0.1)),
            colour: Rgb::new(40, 220, 110),
            surface: Surface::Screen,
        });
    }
    for index in 0..3 {
        lamps.push(Lamp {
            position: Vec3::new(-8.0 + index as f32 * 8.0, half.y * 2.0 - 2.0, 0.0),
            colour: Rgb::new(255, 250, 240),
            lumens: 300_000.0,
            range: 30.0,
        });
    }
    Some(Landing { height: 0.5 * n_tiers as f32, front_z: -half.z + 10.0 + n_tiers as f32 * 2.4 })
}

fn meeting(structures: &mut Vec<Structure>, lamps: &mut Vec<Lamp>, half: Vec3) -> Option<Landing> {
    let wood = Rgb::new(110, 66, 34);
    let chair = Rgb::new(40, 80, 170);
    structures.push(Structure::matte(
        Shape::Cuboid,
        Placement::standing(Vec3::new(0.0, 0.0, -1.0), Vec3::new(3.2, 0.78, 8.0)),
        wood,
    ));
    for side in [-1.0, 1.0] {
        for seat in 0..4 {
            let base = Vec3::new(side * 2.3, 0.0, -4.0 + seat as f32 * 2.0);
            structures.push(Structure::matte(
                Shape::Cuboid,
                Placement::standing(base, Vec3::new(0.6, 0.5, 0.6)),
                chair,
            ));
            structures.push(Structure::matte(
                Shape::Cuboid,
                Placement::standing(base + Vec3::new(side * 0.3, 0.0, 0.0), Vec3::new(0.1, 1.1, 0.6)),
                chair,
            ));
        }
    }
    // The wall display where shared screens go.
    structures.push(Structure {
        shape: Shape::Cuboid,
        placement: Placement::new(Vec3::new(0.0, 2.4, -half.z + 0.15), Vec3::new(5.0, 2.6, 0.08)),
        colour: Rgb::new(60, 130, 255),
        surface: Surface::Screen,
    });
    // Plants in the corners.
    for (x, z) in [(-1.0, -1.0), (1.0, -1.0)] {
        let base = Vec3::new(x * (half.x - 1.0), 0.0, z * (half.z - 1.0));
        structures.push(Structure::matte(
            Shape::Cylinder,
            Placement::standing(base, Vec3::new(0.6, 0.6, 0.6)),
            Rgb::new(200, 200, 200),
        ));
        structures.push(Structure::matte(
            Shape::Sphere,
            Placement::new(base + Vec3::Y * 1.1, Vec3::splat(1.0)),
            Rgb::new(40, 140, 60),
        ));
    }
    lamps.push(Lamp {
        position: Vec3::new(0.0, half.y * 2.0 - 0.5, -1.0),
        colour: Rgb::new(255, 245, 230),
        lumens: 120_000.0,
        range: 16.0,
    });
    None
}

fn private(structures: &mut Vec<Structure>, lamps: &mut Vec<Lamp>, half: Vec3) -> Option<Landing> {
    let velvet = Rgb::new(120, 50, 190);
    // A rug, a sofa facing a low table, and a lamp.
    structures.push(Structure::matte(
        Shape::Cylinder,
        Placement::standing(Vec3::new(0.0, 0.0, -1.5), Vec3::new(6.0, 0.02, 6.0)),
        Rgb::new(90, 40, 120),
    ));
    structures.push(Structure::matte(
        Shape::Cuboid,
        Placement::standing(Vec3::new(0.0, 0.0, -half.z + 1.2), Vec3::new(4.0, 0.6, 1.2)),
        velvet,
    ));
    structures.push(Structure::matte(
        Shape::Cuboid,
        Placement::standing(Vec3::new(0.0, 0.0, -half.z + 0.7), Vec3::new(4.0, 1.2, 0.3)),
        velvet,
    ));
    structures.push(Structure::matte(
        Shape::Cylinder,
        Placement::standing(Vec3::new(0.0, 0.0, -1.5), Vec3::new(1.6, 0.45, 1.6)),
        Rgb::new(30, 20, 40),
    ));
    structures.push(Structure::glowing(
        Shape::Sphere,
        Placement::new(Vec3::new(3.5, 1.6, -half.z + 1.0), Vec3::splat(0.6)),
        Rgb::new(190, 110, 255),
        6.0,
    ));
    structures.push(Structure::matte(
        Shape::Cylinder,
        Placement::standing(Vec3::new(3.5, 0.0, -half.z + 1.0), Vec3::new(0.08, 1.3, 0.08)),
        Rgb::new(200, 200, 210),
    ));
    // A glowing lock sign on the front wall: this room is invite-only and encrypted.
    structures.push(Structure::glowing(
        Shape::Ring,
        Placement::new(Vec3::new(0.0, 3.2, -half.z + 0.15), Vec3::new(1.0, 0.15, 1.0))
            .rotated(Quat::from_rotation_x(PI * 0.5)),
        Rgb::new(170, 70, 255),
        5.0,
    ));
    structures.push(Structure::glowing(
        Shape::Cuboid,
        Placement::new(Vec3::new(0.0, 2.6, -half.z + 0.1), Vec3::new(1.1, 0.8, 0.1)),
        Rgb::new(170, 70, 255),
        5.0,
    ));
    lamps.push(Lamp {
        position: Vec3::new(3.5, 1.6, -half.z + 1.6),
        colour: Rgb::new(200, 120, 255),
        lumens: 30_000.0,
        range: 12.0,
    });
    lamps.push(Lamp {
        position: Vec3::new(0.0, half.y * 2.0 - 0.5, 0.0),
        colour: Rgb::new(255, 220, 200),
        lumens: 20_000.0,
        range: 12.0,
    });
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_are_deterministic() {
        for region in RegionId::all() {
            assert_eq!(RegionLayout::generate(region, 7, 50), RegionLayout::generate(region, 7, 50));
        }
        assert_ne!(RegionLayout::generate(RegionId::Lobby, 7, 50), RegionLayout::generate(RegionId::Lobby, 8, 50));
    }

    #[test]
    fn the_lobby_leads_everywhere_and_everywhere_leads_back() {
        let lobby = RegionLayout::generate(RegionId::Lobby, WORLD_SEED, 0);
        let mut targets: Vec<RegionId> = lobby.portals.iter().map(|portal| portal.target).collect();
        targets.sort();
        let mut expected: Vec<RegionId> = RegionId::all().filter(|region| *region != RegionId::Lobby).collect();
        expected.sort();
        assert_eq!(targets, expected);
        for region in RegionId::all().filter(|region| *region != RegionId::Lobby) {
            let layout = RegionLayout::generate(region, WORLD_SEED, 0);
            assert!(layout.portals.iter().any(|portal| portal.target == RegionId::Lobby), "{region} has no way back");
        }
    }

    #[test]
    fn nobody_arrives_inside_a_portal_or_out_of_bounds() {
        for region in RegionId::all() {
            let layout = RegionLayout::generate(region, WORLD_SEED, 10);
            assert!(layout.portal_at(layout.spawn).is_none(), "{region} spawns inside a portal");
            assert_eq!(layout.bounds.clamp(layout.spawn), layout.spawn, "{region} spawns out of bounds");
            for portal in &layout.portals {
                assert_eq!(layout.bounds.clamp(portal.centre), portal.centre, "{region} has an unreachable portal");
            }
        }
    }

    #[test]
    fn nobody_arrives_inside_furniture() {
        // From the feet to the eyes, the newcomer stands in open air.
        for region in RegionId::all() {
            let layout = RegionLayout::generate(region, WORLD_SEED, 0);
            let feet = layout.spawn - Vec3::Y * (EYE_HEIGHT - 0.05);
            for structure in &layout.structures {
                let (low, high) = structure.placement.aabb();
                let around = low.x <= feet.x && feet.x <= high.x && low.z <= feet.z && feet.z <= high.z;
                let overlaps_body = low.y <= layout.spawn.y && high.y >= feet.y;
                assert!(!(around && overlaps_body), "{region}: newcomers arrive inside {structure:?}");
            }
        }
    }

    #[test]
    fn room_portals_fit_under_the_ceiling_and_reach_the_eyes() {
        for kind in RoomKind::ALL {
            let layout = RegionLayout::generate(RegionId::Room(kind), WORLD_SEED, 0);
            let ceiling = room_size(kind).y;
            for portal in &layout.portals {
                assert!(portal.centre.y + portal.radius < ceiling, "{kind:?}: the ring goes through the ceiling");
                // Someone standing on the arrival floor walks through it at eye height.
                let in_front = Vec3::new(portal.centre.x, layout.spawn.y, portal.centre.z);
                assert!(portal.contains(in_front), "{kind:?}: the ring is out of reach");
            }
        }
    }

    #[test]
    fn the_lobby_is_round() {
        let lobby = RegionLayout::generate(RegionId::Lobby, WORLD_SEED, 0);
        let corner = lobby.bounds.clamp(Vec3::new(1000.0, EYE_HEIGHT, 1000.0));
        assert!(Vec2::new(corner.x, corner.z).length() <= LOBBY_RADIUS - 2.0 + 1e-3, "{corner}");
        assert_eq!(lobby.bounds.clamp(Vec3::NAN), Vec3::new(0.0, lobby.bounds.min.y, 0.0));
    }

    #[test]
    fn layouts_do_not_change_between_versions() {
        // Every peer must see the same world: these values are pinned. Positions are rounded
        // to centimetres so that the last bit of a platform's sine cannot matter.
        let lobby = RegionLayout::generate(RegionId::Lobby, WORLD_SEED, 10);
        let centimetres = |v: Vec3| (v * 100.0).round().as_ivec3().to_array();
        let platform = lobby.structures.iter().find(|s| s.colour == Rgb::new(34, 30, 60)).expect("a platform");
        assert_eq!(centimetres(platform.placement.translation), PINNED_FIRST_PLATFORM);
        assert_eq!(centimetres(lobby.drifters[3].position_at(0.0)), PINNED_FOURTH_DRIFTER);
        assert_eq!(lobby.structures.len(), PINNED_LOBBY_STRUCTURES);
        let market = RegionLayout::generate(RegionId::Room(RoomKind::Marketplace), WORLD_SEED, 0);
        assert_eq!(market.structures.len(), PINNED_MARKET_STRUCTURES);
    }

    const PINNED_FIRST_PLATFORM: [i32; 3] = [3008, 1068, -388];
    const PINNED_FOURTH_DRIFTER: [i32; 3] = [-679, 16690, 721];
    const PINNED_LOBBY_STRUCTURES: usize = 196;
    const PINNED_MARKET_STRUCTURES: usize = 94;

    #[test]
    fn walking_through_a_portal_is_detected() {
        let lobby = RegionLayout::generate(RegionId::Lobby, WORLD_SEED, 0);
        let portal = lobby.portals[0];
        let eye = Vec3::new(portal.centre.x, EYE_HEIGHT, portal.centre.z);
        assert_eq!(lobby.portal_at(eye).map(|found| found.target), Some(portal.target));
        // Two metres in front of it, nothing happens.
        let facing = Quat::from_rotation_y(portal.yaw) * Vec3::Z;
        assert!(lobby.portal_at(eye + facing * 2.0).is_none());
    }

    #[test]
    fn a_fast_step_across_a_portal_still_counts() {
        let lobby = RegionLayout::generate(RegionId::Lobby, WORLD_SEED, 0);
        let portal = lobby.portals[2];
        let facing = Quat::from_rotation_y(portal.yaw) * Vec3::Z;
        let centre = Vec3::new(portal.centre.x, EYE_HEIGHT, portal.centre.z);
        // Five metres before to five metres after: neither end is inside the opening.
        let (from, to) = (centre + facing * 5.0, centre - facing * 5.0);
        assert!(lobby.portal_at(from).is_none() && lobby.portal_at(to).is_none());
        assert_eq!(lobby.portal_crossed(from, to).map(|found| found.target), Some(portal.target));
        // A step beside the portal crosses nothing.
        let side = facing.cross(Vec3::Y) * 3.7;
        assert!(lobby.portal_crossed(from + side, to + side).is_none());
    }

    #[test]
    fn the_lobby_is_impossibly_tall_and_crowded() {
        let lobby = RegionLayout::generate(RegionId::Lobby, WORLD_SEED, LOBBY_DRIFTERS);
        let top = lobby.structures.iter().map(|structure| structure.placement.top()).fold(0.0, f32::max);
        assert!(top >= LOBBY_HEIGHT - 1.0);
        assert_eq!(lobby.drifters.len(), LOBBY_DRIFTERS);
        assert!(lobby.drifters.iter().any(|drifter| drifter.is_agent));
        assert!(lobby.drifters.iter().any(|drifter| drifter.base_height > 200.0));
        for drifter in &lobby.drifters {
            for seconds in [0.0, 10.0, 1000.0] {
                let at = drifter.position_at(seconds);
                assert!(Vec2::new(at.x, at.z).length() < LOBBY_RADIUS, "a drifter left the atrium: {at}");
            }
        }
    }

    #[test]
    fn rooms_carry_their_purpose() {
        let screens = |kind| {
            RegionLayout::generate(RegionId::Room(kind), WORLD_SEED, 0)
                .structures
                .iter()
                .filter(|structure| structure.surface == Surface::Screen)
                .count()
        };
        assert_eq!(screens(RoomKind::Cinema), 1);
        assert!(screens(RoomKind::LectureHall) >= 1);
        let marketplace = RegionLayout::generate(RegionId::Room(RoomKind::Marketplace), WORLD_SEED, 0);
        let awnings = marketplace.structures.iter().filter(|s| s.colour == Rgb::new(255, 140, 0)).count();
        assert!(awnings >= 6, "a market has stalls with orange awnings, found {awnings}");
        // The lecture hall's tiers rise toward the back.
        let hall = RegionLayout::generate(RegionId::Room(RoomKind::LectureHall), WORLD_SEED, 0);
        let tiers: Vec<f32> =
            hall.structures.iter().filter(|s| s.colour == Rgb::new(70, 74, 84)).map(|s| s.placement.top()).collect();
        assert!(tiers.len() >= 5 && tiers.windows(2).all(|pair| pair[1] > pair[0]));
    }

    #[test]
    fn drifters_face_along_their_path() {
        let drifter = Drifter {
            orbit_radius: 10.0,
            base_height: 5.0,
            angular_speed: 0.1,
            phase: 0.0,
            bob: 0.0,
            colour: Rgb::new(0, 0, 0),
            is_agent: false,
        };
        let now = drifter.position_at(0.0);
        let soon = drifter.position_at(0.1);
        let heading = (soon - now).normalize();
        let yaw = drifter.yaw_at(0.0);
        let facing = Vec3::new(yaw.sin(), 0.0, yaw.cos());
        assert!(facing.dot(heading) > 0.99, "facing {facing} heading {heading}");
    }
}
