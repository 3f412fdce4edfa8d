//! Moving in VR: the rig (the play area in the world) is walked, turned, floated and teleported;
//! the headset moves the head inside it. Teleporting also works on the desktop (hold T, look
//! where to land, let go).
//!
//! The [`Player`]'s transform stays where the eyes are in both modes, so portals, regions, the
//! network and the desktop camera read one thing.

use bevy::prelude::*;
use sanctuary_engine::{EYE_HEIGHT, ParcelCoord, RegionId, generated_structures};

use crate::Frame;
use crate::actions::{Actions, Comfort, Controllers, FAST_FACTOR, FLOAT_SPEED, InputMode, Rig, WALK_SPEED, in_vr};
use crate::build::CityWorld;
use crate::player::Player;
use crate::world::{CurrentRegion, WorldSettings};

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<Rig>()
        .init_resource::<Teleport>()
        .init_resource::<Vignette>()
        .init_resource::<RigSync>()
        .add_systems(Update, aim_teleport.in_set(Frame::Move).before(Locomote))
        .add_systems(Update, (move_in_vr.run_if(in_vr), comfort_vignette).chain().in_set(Frame::Move).in_set(Locomote))
        .add_systems(Update, keep_off_banned_parcels.in_set(Frame::Move).after(Locomote));
}

/// The systems that move the person; what needs this frame's position runs after.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Locomote;

/// The speed a teleport arc leaves the hand at, metres per second: about 10 m of reach on flat
/// ground from standing height.
pub const ARC_SPEED: f32 = 10.0;
/// Gravity for the arc, metres per second squared.
pub const ARC_GRAVITY: f32 = 9.81;
/// Time between the arc's points, seconds.
const ARC_STEP: f32 = 0.025;
/// The most points an arc has: 2 s of flight.
const ARC_POINTS: usize = 80;
/// How far a teleport may go, metres along the floor.
pub const TELEPORT_REACH: f32 = 20.0;
/// Clearance needed above a landing spot, metres: nobody lands inside a structure.
const HEADROOM: f32 = 2.0;

/// Why a landing spot is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Outside where people may go.
    OutOfBounds,
    /// Farther than [`TELEPORT_REACH`].
    TooFar,
    /// Inside or under a structure.
    Blocked,
    /// On a parcel whose owner keeps this person off.
    Banned,
}

/// Where a teleport arc comes down.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Landing {
    /// The spot on the floor.
    pub point: Vec3,
    /// Whether the person may land there, or why not.
    pub verdict: Result<(), Refusal>,
}

/// The teleport being aimed: the arc's points and where it lands.
#[derive(Resource, Debug, Default, Clone, PartialEq)]
pub struct Teleport {
    /// The arc, from the hand (or eyes) to where it meets the floor or gives up.
    pub arc: Vec<Vec3>,
    /// Where it lands; `None` when it meets no floor within reach.
    pub landing: Option<Landing>,
    /// Where the last teleport went, for the HUD and tests.
    pub last_jump: Option<Vec3>,
}

impl Teleport {
    /// The jump to `point` is done: the arc goes.
    fn arrive(&mut self, point: Vec3) {
        self.arc.clear();
        self.landing = None;
        self.last_jump = Some(point);
    }
}

/// How dark the edges of sight are, `[0, 1]`: the comfort vignette answers smooth movement and
/// smooth turning in VR, never snap turns or teleports.
#[derive(Resource, Debug, Default, Clone, Copy, PartialEq)]
pub struct Vignette(pub f32);

/// What the VR movement wrote last frame, to notice when something else (arriving in a region,
/// a portal, going home) moved the person.
#[derive(Resource, Debug, Default, Clone, Copy, PartialEq)]
pub struct RigSync {
    eyes: Vec3,
    yaw: f32,
    head: Transform,
    started: bool,
}

/// The floor of the current region: bounds are for the eyes, standing height above it.
fn floor_of(region: &CurrentRegion) -> f32 {
    region.layout.bounds.min.y - EYE_HEIGHT
}

/// The arc a thrown point follows from `ray`, until it comes down through `floor` (the
/// landing) or runs out of points.
pub fn teleport_arc(ray: Ray3d, floor: f32) -> (Vec<Vec3>, Option<Vec3>) {
    let velocity = *ray.direction * ARC_SPEED;
    let mut points = vec![ray.origin];
    for step in 1..=ARC_POINTS {
        let t = step as f32 * ARC_STEP;
        let point = ray.origin + velocity * t + Vec3::NEG_Y * (0.5 * ARC_GRAVITY * t * t);
        let previous = points[points.len() - 1];
        if point.y <= floor && previous.y > floor {
            let along = (previous.y - floor) / (previous.y - point.y);
            let landing = previous.lerp(point, along);
            points.push(landing);
            return (points, Some(landing));
        }
        points.push(point);
    }
    (points, None)
}

/// Whether `point` (on the floor) is somewhere a person may land, seen from `from`.
pub fn judge_landing(
    point: Vec3,
    from: Vec3,
    region: &CurrentRegion,
    city: Option<&CityWorld>,
    seed: u64,
) -> Result<(), Refusal> {
    let bounds = region.layout.bounds;
    let eyes = Vec3::new(point.x, bounds.min.y, point.z);
    if bounds.clamp(eyes).xz().distance(eyes.xz()) > 1e-3 {
        return Err(Refusal::OutOfBounds);
    }
    if point.xz().distance(from.xz()) > TELEPORT_REACH {
        return Err(Refusal::TooFar);
    }
    let blocks = |(low, high): (Vec3, Vec3)| {
        point.x > low.x - 0.2
            && point.x < high.x + 0.2
            && point.z > low.z - 0.2
            && point.z < high.z + 0.2
            && high.y > point.y + 0.3
            && low.y < point.y + HEADROOM
    };
    if region.layout.structures.iter().any(|structure| blocks(structure.placement.aabb())) {
        return Err(Refusal::Blocked);
    }
    if region.id() == RegionId::City
        && let Some(parcel) = ParcelCoord::containing(point)
    {
        let built = city.map(|city| city.parcel(parcel));
        let me = city.and_then(|city| city.me);
        if let (Some(state), Some(me)) = (&built, me)
            && !state.admits(&me)
        {
            return Err(Refusal::Banned);
        }
        let blocked = match built.filter(|state| state.owner().is_some()) {
            Some(state) => state.objects.values().any(|object| blocks(object.aabb())),
            None => generated_structures(seed, parcel).iter().any(|structure| blocks(structure.placement.aabb())),
        };
        if blocked {
            return Err(Refusal::Blocked);
        }
    }
    Ok(())
}

/// A parcel's owner may keep someone off it (`Op::Ban`, kept by every peer): walking onto it
/// stops at its edge. Someone already inside (banned while there, or arrived by a portal) may
/// walk about and out.
fn keep_off_banned_parcels(
    region: Option<Res<CurrentRegion>>,
    city: Option<Res<CityWorld>>,
    mut players: Query<(&mut Transform, &Player)>,
) {
    let (Some(region), Some(city)) = (region, city) else { return };
    let Some(me) = city.me else { return };
    if region.id() != RegionId::City {
        return;
    }
    for (mut transform, player) in &mut players {
        let (from, to) =
            (ParcelCoord::containing(player.last_position), ParcelCoord::containing(transform.translation));
        if to == from {
            continue;
        }
        if let Some(parcel) = to
            && !city.parcel(parcel).admits(&me)
        {
            let y = transform.translation.y;
            transform.translation = player.last_position.with_y(y);
        }
    }
}

/// While the teleport is held, throws the arc from the pointer (or the eyes) and judges where it
/// lands. On the desktop a valid release jumps here; in VR the rig jumps in [`move_in_vr`].
fn aim_teleport(
    actions: Res<Actions>,
    mode: Res<InputMode>,
    region: Option<Res<CurrentRegion>>,
    city: Option<Res<CityWorld>>,
    settings: Res<WorldSettings>,
    mut teleport: ResMut<Teleport>,
    mut players: Query<(&mut Transform, &mut Player)>,
) {
    let aiming = actions.teleport.held || actions.teleport.released;
    let (true, Some(region), Ok((mut transform, mut player))) = (aiming, region, players.single_mut()) else {
        teleport.arc.clear();
        teleport.landing = None;
        return;
    };
    let ray = actions.point.unwrap_or_else(|| Ray3d::new(transform.translation, transform.forward()));
    let (arc, landing) = teleport_arc(ray, floor_of(&region));
    teleport.arc = arc;
    teleport.landing = landing.map(|point| Landing {
        point,
        verdict: judge_landing(point, transform.translation, &region, city.as_deref(), settings.seed),
    });
    if actions.teleport.released
        && *mode == InputMode::Flat
        && let Some(Landing { point, verdict: Ok(()) }) = teleport.landing
    {
        player.last_position = transform.translation;
        transform.translation = point + Vec3::Y * EYE_HEIGHT;
        teleport.arrive(point);
    }
}

/// The head's turn about the vertical axis and its pitch, in tracking space (0 looks down -z).
fn head_angles(head: &Transform) -> (f32, f32) {
    let (yaw, pitch, _roll) = head.rotation.to_euler(EulerRot::YXZ);
    (yaw, pitch)
}

/// VR movement: syncs the rig with where the person is, turns it about the head, walks it the
/// way the head faces, floats it, teleports it, keeps it in bounds, then puts the eyes where
/// the tracked head is.
fn move_in_vr(
    actions: Res<Actions>,
    controllers: Res<Controllers>,
    comfort: Res<Comfort>,
    time: Res<Time>,
    region: Option<Res<CurrentRegion>>,
    mut teleport: ResMut<Teleport>,
    mut rig: ResMut<Rig>,
    mut sync: ResMut<RigSync>,
    mut players: Query<(&mut Transform, &mut Player)>,
) {
    let (Some(region), Ok((mut transform, mut player))) = (region, players.single_mut()) else { return };
    let floor = floor_of(&region);
    // Untracked, the head stands at eye height in the middle of the play area.
    let mut head = controllers.head.unwrap_or(Transform::from_xyz(0.0, EYE_HEIGHT, 0.0));
    if controllers.head.is_some() {
        head.translation.y += comfort.lift();
    }
    // Something else moved the person (arrival, a portal, going home): the rig follows.
    if !sync.started || transform.translation.distance(sync.eyes) > 1e-4 || player.yaw != sync.yaw {
        // The head the eyes were put at: last frame's, or this frame's at the start.
        let placed = if sync.started { sync.head } else { head };
        rig.yaw = player.yaw - head_angles(&placed).0;
        rig.origin = transform.translation - rig.rotation() * placed.translation;
        // Arriving at standing height puts the feet on the floor, whatever the person's height.
        if (transform.translation.y - EYE_HEIGHT - floor).abs() < 0.5 {
            rig.origin.y = floor;
        }
        rig.origin.y = rig.origin.y.max(floor);
        sync.started = true;
    }
    player.last_position = transform.translation;
    let seconds = time.delta_secs();
    // Turn about the head, so that turning never moves the eyes.
    if actions.look.x != 0.0 {
        let pivot = rig.origin + rig.rotation() * head.translation;
        rig.yaw = (rig.yaw + actions.look.x).rem_euclid(std::f32::consts::TAU);
        let swung = pivot - rig.rotation() * head.translation;
        rig.origin = Vec3::new(swung.x, rig.origin.y, swung.z);
    }
    // Walk the way the head faces, flat on the floor.
    let facing = rig.rotation() * head.rotation;
    let forward = (facing * Vec3::NEG_Z).with_y(0.0).normalize_or(rig.rotation() * Vec3::NEG_Z);
    let right = Vec3::new(-forward.z, 0.0, forward.x);
    let walk = actions.walk.clamp_length_max(1.0);
    let speed = if actions.fast { FAST_FACTOR } else { 1.0 };
    let step = (forward * walk.y + right * walk.x) * WALK_SPEED + Vec3::Y * actions.rise * FLOAT_SPEED;
    rig.origin += step * speed * seconds;
    if actions.teleport.released
        && let Some(Landing { point, verdict: Ok(()) }) = teleport.landing
    {
        let offset = rig.rotation() * head.translation;
        rig.origin = Vec3::new(point.x - offset.x, point.y, point.z - offset.z);
        teleport.arrive(point);
    }
    rig.origin.y = rig.origin.y.max(floor);
    // Bounds hold the eyes sideways and under the ceiling; the floor holds the rig.
    let eyes = rig.origin + rig.rotation() * head.translation;
    let mut bounds = region.layout.bounds;
    bounds.min.y = f32::MIN;
    let inside = bounds.clamp(eyes);
    rig.origin += inside - eyes;
    let (head_yaw, head_pitch) = head_angles(&head);
    transform.translation = inside;
    transform.rotation = facing;
    player.yaw = (rig.yaw + head_yaw).rem_euclid(std::f32::consts::TAU);
    player.pitch = head_pitch;
    *sync = RigSync { eyes: inside, yaw: player.yaw, head, started: true };
}

/// The comfort vignette: eases toward the strength that smooth movement and smooth turning ask
/// for, and away when they stop.
fn comfort_vignette(
    actions: Res<Actions>,
    comfort: Res<Comfort>,
    mode: Res<InputMode>,
    time: Res<Time>,
    mut vignette: ResMut<Vignette>,
) {
    let moving = actions.walk.length().min(1.0).max(actions.rise.abs());
    let turning = if actions.smooth_turn { 1.0 } else { 0.0 };
    let wanted = if comfort.vignette && *mode == InputMode::Vr { 0.6 * moving.max(turning) } else { 0.0 };
    // A quarter of a second to close or open.
    let rate = 4.0 * time.delta_secs();
    vignette.0 += (wanted - vignette.0).clamp(-rate, rate);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::{SEATED_LIFT, Stance};
    use crate::testing::{HEAD_HEIGHT, controllers, logic_app, player_transform, run_frames, vr_app};
    use crate::world::EnterRegion;

    fn teleport(app: &App) -> Teleport {
        app.world().resource::<Teleport>().clone()
    }

    fn aim_right_hand(app: &mut App, pitch: f32, yaw: f32) {
        let mut controllers = controllers(app);
        let grip = controllers.right.grip.expect("tracked");
        controllers.right.aim = Some(grip.with_rotation(Quat::from_rotation_y(yaw) * Quat::from_rotation_x(pitch)));
    }

    #[test]
    fn arcs_come_down_on_the_floor_and_not_from_the_sky() {
        let ray = Ray3d::new(Vec3::new(0.0, 1.2, 0.0), Dir3::new(Vec3::new(0.0, 0.3, -1.0)).expect("dir"));
        let (arc, landing) = teleport_arc(ray, 0.0);
        let landing = landing.expect("a throw ahead lands");
        assert!(landing.y.abs() < 1e-5);
        assert!(landing.z < -8.0 && landing.z > -14.0, "{landing}");
        assert!(arc.windows(2).all(|pair| pair[0].z > pair[1].z), "the arc goes away from the hand");
        let up = Ray3d::new(Vec3::new(0.0, 1.2, 0.0), Dir3::Y);
        let (_, none) = teleport_arc(up, -1000.0);
        assert_eq!(none, None, "a throw straight up comes down outside the arc's time");
    }

    #[test]
    fn a_teleport_lands_where_the_arc_is_valid_and_only_on_release() {
        let mut app = vr_app(RegionId::Lobby);
        run_frames(&mut app, 3);
        let start = player_transform(&mut app).translation;
        aim_right_hand(&mut app, -0.3, 0.0);
        controllers(&mut app).right.stick = Vec2::new(0.0, 1.0);
        run_frames(&mut app, 5);
        let aimed = teleport(&app);
        let landing = aimed.landing.expect("aiming ahead and down meets the floor");
        assert_eq!(landing.verdict, Ok(()));
        assert!(aimed.arc.len() > 3);
        assert_eq!(player_transform(&mut app).translation, start, "aiming alone does not move");
        controllers(&mut app).right.stick = Vec2::ZERO;
        run_frames(&mut app, 1);
        let eyes = player_transform(&mut app).translation;
        assert!(eyes.xz().distance(landing.point.xz()) < 1e-3, "the head lands over the spot: {eyes} {landing:?}");
        assert!((eyes.y - HEAD_HEIGHT).abs() < 1e-3, "standing on the floor: {eyes}");
        assert_eq!(teleport(&app).last_jump, Some(landing.point));
        assert!(teleport(&app).arc.is_empty(), "the arc goes away after the jump");
    }

    #[test]
    fn no_teleport_into_the_sky_past_the_wall_or_into_the_beam() {
        let mut app = vr_app(RegionId::Lobby);
        run_frames(&mut app, 3);
        let start = player_transform(&mut app).translation;
        // Straight up: nothing to land on.
        aim_right_hand(&mut app, 1.5, 0.0);
        controllers(&mut app).right.stick = Vec2::new(0.0, 1.0);
        run_frames(&mut app, 2);
        assert_eq!(teleport(&app).landing, None);
        controllers(&mut app).right.stick = Vec2::ZERO;
        run_frames(&mut app, 1);
        assert_eq!(player_transform(&mut app).translation, start);
        let region = app.world().resource::<CurrentRegion>().clone();
        // The lobby's wall and its beam of light.
        let beyond = Vec3::new(0.0, 0.0, region.layout.bounds.max.z + 5.0);
        assert_eq!(judge_landing(beyond, beyond - Vec3::Z * 6.0, &region, None, 0), Err(Refusal::OutOfBounds));
        let beam = Vec3::new(0.3, 0.0, 0.2);
        assert_eq!(judge_landing(beam, Vec3::new(0.0, 0.0, 8.0), &region, None, 0), Err(Refusal::Blocked));
        let far = Vec3::new(0.0, 0.0, 20.0);
        assert_eq!(judge_landing(far, Vec3::new(0.0, 0.0, 45.0), &region, None, 0), Err(Refusal::TooFar));
    }

    #[test]
    fn walking_follows_the_head_and_turning_keeps_the_eyes_still() {
        let mut app = vr_app(RegionId::Lobby);
        run_frames(&mut app, 3);
        let start = player_transform(&mut app);
        // Look 90 degrees to the left with the head alone, then push the walking stick.
        controllers(&mut app).head = Some(
            Transform::from_xyz(0.0, HEAD_HEIGHT, 0.0)
                .with_rotation(Quat::from_rotation_y(std::f32::consts::FRAC_PI_2)),
        );
        controllers(&mut app).left.stick = Vec2::new(0.0, 1.0);
        run_frames(&mut app, 30);
        let walked = player_transform(&mut app).translation - start.translation;
        let left = -*start.right();
        assert!((walked.length() - WALK_SPEED * 0.5).abs() < 0.2, "walked {walked}");
        assert!(walked.normalize().dot(left) > 0.99, "walked {walked}, the head faced {left}");
        assert!(app.world().resource::<Vignette>().0 > 0.3, "smooth walking closes the vignette");
        controllers(&mut app).left.stick = Vec2::ZERO;
        run_frames(&mut app, 1);
        let before = player_transform(&mut app).translation;
        controllers(&mut app).right.stick = Vec2::new(1.0, 0.0);
        run_frames(&mut app, 1);
        let after = player_transform(&mut app).translation;
        assert!(before.distance(after) < 1e-4, "a snap turn pivots on the head: {before} {after}");
    }

    #[test]
    fn stepping_in_the_room_moves_the_eyes_and_sitting_lifts_them() {
        let mut app = vr_app(RegionId::Lobby);
        run_frames(&mut app, 3);
        let start = player_transform(&mut app);
        controllers(&mut app).head = Some(Transform::from_xyz(0.5, HEAD_HEIGHT, 0.0));
        run_frames(&mut app, 1);
        let stepped = player_transform(&mut app).translation - start.translation;
        // Tracking space +x is the person's right at the start.
        assert!((stepped - *start.right() * 0.5).length() < 1e-3, "stepped {stepped}");
        app.world_mut().resource_mut::<Comfort>().stance = Stance::Seated(SEATED_LIFT);
        run_frames(&mut app, 1);
        assert!((player_transform(&mut app).translation.y - (HEAD_HEIGHT + SEATED_LIFT)).abs() < 1e-3);
    }

    #[test]
    fn floating_up_and_down_in_the_lobby_stops_at_the_floor() {
        let mut app = vr_app(RegionId::Lobby);
        run_frames(&mut app, 3);
        controllers(&mut app).left.secondary = true;
        run_frames(&mut app, 60);
        let up = player_transform(&mut app).translation.y;
        assert!((up - HEAD_HEIGHT - FLOAT_SPEED).abs() < 0.2, "rose to {up}");
        controllers(&mut app).left.secondary = false;
        controllers(&mut app).left.primary = true;
        run_frames(&mut app, 300);
        assert!((player_transform(&mut app).translation.y - HEAD_HEIGHT).abs() < 1e-3);
    }

    #[test]
    fn going_to_another_region_brings_the_rig_along() {
        let mut app = vr_app(RegionId::Lobby);
        run_frames(&mut app, 3);
        app.world_mut().write_message(EnterRegion(RegionId::City));
        run_frames(&mut app, 3);
        let region = app.world().resource::<CurrentRegion>().clone();
        let eyes = player_transform(&mut app).translation;
        assert_eq!(region.id(), RegionId::City);
        assert!(eyes.xz().distance(region.layout.spawn.xz()) < 1e-3, "arrived at the spawn: {eyes}");
    }

    #[test]
    fn on_the_desktop_t_aims_where_the_eyes_look_and_jumps_on_release() {
        let mut app = logic_app(RegionId::Lobby);
        run_frames(&mut app, 3);
        app.world_mut().query::<&mut Player>().single_mut(app.world_mut()).expect("player").pitch = -0.4;
        run_frames(&mut app, 1);
        let start = player_transform(&mut app).translation;
        app.world_mut().resource_mut::<ButtonInput<KeyCode>>().press(KeyCode::KeyT);
        run_frames(&mut app, 2);
        let landing = teleport(&app).landing.expect("looking down lands");
        app.world_mut().resource_mut::<ButtonInput<KeyCode>>().release(KeyCode::KeyT);
        run_frames(&mut app, 1);
        let eyes = player_transform(&mut app).translation;
        assert!(eyes.xz().distance(start.xz()) > 2.0);
        assert!((eyes - (landing.point + Vec3::Y * EYE_HEIGHT)).length() < 1e-3);
    }

    #[test]
    fn a_parcels_ban_keeps_its_subject_off_by_teleport_and_on_foot() {
        use sanctuary_engine::{Op, PublicKey, home_parcel};
        let dir = tempfile::tempdir().expect("temp dir");
        let (replica, _) = sanctuary_net::SharedReplica::open(dir.path()).expect("the world opens");
        let owner_seed = [7u8; 32];
        let owner = PublicKey::from_secret_seed(&owner_seed);
        let (me, someone) = (PublicKey::from_secret_seed(&[8; 32]), PublicKey::from_secret_seed(&[9; 32]));
        let parcel = home_parcel(&owner);
        replica.author(&owner_seed, 1, Op::Claim { parcel }).expect("the owner claims");
        replica.author(&owner_seed, 2, Op::Ban { parcel, epoch: 0, subject: me, banned: true }).expect("and bans");
        let bounds = parcel.bounds();
        let centre = bounds.center();
        let inside = Vec3::new(centre.x, 0.0, centre.y);
        let outside = Vec3::new(bounds.min.x - 3.0, 0.0, centre.y);

        let walked = |who: PublicKey| {
            let mut app = logic_app(RegionId::City);
            app.insert_resource(CityWorld { replica: Some(replica.clone()), me: Some(who), ..CityWorld::default() });
            app.update();
            let landing = {
                let world = app.world();
                judge_landing(inside, outside, world.resource::<CurrentRegion>(), world.get_resource::<CityWorld>(), 0)
            };
            let (mut transform, mut player) = app
                .world_mut()
                .query::<(&mut Transform, &mut Player)>()
                .single_mut(app.world_mut())
                .expect("one player");
            transform.translation = outside + Vec3::Y * EYE_HEIGHT;
            player.yaw = std::f32::consts::FRAC_PI_2;
            app.world_mut().resource_mut::<ButtonInput<KeyCode>>().press(KeyCode::KeyW);
            for _ in 0..240 {
                app.update();
            }
            (landing, player_transform(&mut app).translation.x)
        };
        let (landing, x) = walked(me);
        assert_eq!(landing, Err(Refusal::Banned));
        assert!(x <= bounds.min.x + 1e-3, "stopped at the edge: {x} against {}", bounds.min.x);
        let (landing, x) = walked(someone);
        assert_eq!(landing, Ok(()), "others may land");
        assert!(x > bounds.min.x + 1.0, "and walk on: {x}");
    }
}
