//! A body that follows a head and two hands: where its joints are, worked out from the three
//! tracked points (a headset and controllers, synthesised on the desktop, or someone's pose off
//! the network) and the floor. Pure, and the same code for everyone, so that every peer draws
//! a person's body the same way from the same pose.
//!
//! - The neck hangs below and behind the eyes; the spine runs down from it, leaning a little
//!   with the head; the body faces where the head faces.
//! - Arms reach the hands by two-bone inverse kinematics: the law of cosines gives the elbow's
//!   angle, a pole (down, out and back) the plane it bends in, so the upper arm and forearm keep
//!   their lengths exactly; a hand out of reach is reached toward with a straight arm.
//! - Feet stay planted while the hips move less than [`STEP_DISTANCE`] from above them, then
//!   step, one foot at a time, lifted on an arc over [`STEP_SECONDS`]; the knees bend forward by
//!   the same two-bone solution. With the hips too high above the floor (someone floating) the
//!   legs hang.

use glam::{Quat, Vec3};

/// How far a foot may lag behind where it would stand under the hips before it steps, metres.
pub const STEP_DISTANCE: f32 = 0.28;
/// How long a step takes, seconds.
pub const STEP_SECONDS: f32 = 0.25;
/// How high a stepping foot lifts, metres.
const STEP_LIFT: f32 = 0.08;
/// Keeps a solved limb from straightening fully (a straight limb has no bend direction).
const REACH_SLACK: f32 = 1e-3;

/// The lengths of a body, scaled from the height of its eyes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BodyShape {
    /// Shoulder to elbow.
    pub upper_arm: f32,
    /// Elbow to wrist.
    pub forearm: f32,
    /// Half the distance between the shoulders.
    pub shoulder_half: f32,
    /// Top of the neck (under the head) to its base.
    pub neck: f32,
    /// Base of the neck to the hips.
    pub torso: f32,
    /// Half the distance between the hip joints.
    pub hip_half: f32,
    /// Hip to knee.
    pub thigh: f32,
    /// Knee to ankle.
    pub shin: f32,
    /// The ankle's height above the floor.
    pub ankle: f32,
}

impl BodyShape {
    /// A body whose eyes stand `eyes` metres above the floor (proportions after Drillis and
    /// Contini's segment lengths, as fractions of height).
    pub fn for_eye_height(eyes: f32) -> Self {
        let height = eyes.max(0.3) / 0.936;
        Self {
            upper_arm: 0.186 * height,
            forearm: 0.146 * height,
            shoulder_half: 0.129 * height,
            neck: 0.06 * height,
            torso: 0.307 * height,
            hip_half: 0.095 * height,
            thigh: 0.245 * height,
            shin: 0.246 * height,
            ankle: 0.039 * height,
        }
    }

    /// The length of an arm, shoulder to wrist, straight.
    pub fn arm(&self) -> f32 {
        self.upper_arm + self.forearm
    }

    /// The length of a leg, hip to ankle, straight.
    pub fn leg(&self) -> f32 {
        self.thigh + self.shin
    }
}

/// Where a tracked point is and how it is turned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tracked {
    /// Its position, metres.
    pub position: Vec3,
    /// Its turn (−z is forward, as for a camera).
    pub rotation: Quat,
}

/// The three points a body follows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Drivers {
    /// The eyes.
    pub head: Tracked,
    /// The left hand (its wrist).
    pub left_hand: Tracked,
    /// The right hand (its wrist).
    pub right_hand: Tracked,
}

/// One side's joints.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limb {
    /// Shoulder or hip.
    pub root: Vec3,
    /// Elbow or knee.
    pub bend: Vec3,
    /// Wrist or ankle.
    pub end: Vec3,
}

/// Where every joint of the body is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Joints {
    /// The middle of the head.
    pub head: Vec3,
    /// The top of the neck.
    pub neck_top: Vec3,
    /// The base of the neck, between the shoulders.
    pub neck_base: Vec3,
    /// The middle of the hips.
    pub hips: Vec3,
    /// Left and right arms.
    pub arms: [Limb; 2],
    /// Left and right legs.
    pub legs: [Limb; 2],
    /// Which way the body faces: its turn about the vertical.
    pub facing: Quat,
}

/// A foot: where it stands, and the step it is taking.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Foot {
    planted: Vec3,
    step: Option<Step>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Step {
    from: Vec3,
    to: Vec3,
    elapsed: f32,
}

impl Foot {
    /// Where the ankle is now: planted, or along its step's arc.
    fn ankle(&self) -> Vec3 {
        match self.step {
            Some(step) => {
                let t = (step.elapsed / STEP_SECONDS).clamp(0.0, 1.0);
                step.from.lerp(step.to, t) + Vec3::Y * STEP_LIFT * (t * std::f32::consts::PI).sin()
            }
            None => self.planted,
        }
    }
}

/// A body over time: the joints follow the drivers at once; the feet remember where they stand.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Body {
    feet: Option<[Foot; 2]>,
}

impl Body {
    /// A body that has not stood anywhere yet (its feet start under it).
    pub fn new() -> Self {
        Self::default()
    }

    /// Works out the joints for `drivers` over a floor at `floor` (its height), `seconds` after
    /// the last update. Anything not finite in the drivers leaves the body standing where its
    /// head is, untouched by the bad numbers.
    pub fn update(&mut self, shape: &BodyShape, drivers: &Drivers, floor: f32, seconds: f32) -> Joints {
        let drivers = sanitised(drivers);
        let seconds = if seconds.is_finite() { seconds.clamp(0.0, 1.0) } else { 0.0 };
        let head = drivers.head;
        let forward = (head.rotation * Vec3::NEG_Z).with_y(0.0).normalize_or(Vec3::NEG_Z);
        let facing = Quat::from_rotation_arc(Vec3::NEG_Z, forward);
        let side = facing * Vec3::X;

        // Head and neck: the top of the neck below and behind the eyes.
        let neck_top = head.position + head.rotation * Vec3::new(0.0, -0.07, 0.07);
        let centre_of_head = head.position + head.rotation * Vec3::new(0.0, 0.0, 0.07);
        // The spine leans a third of the way toward where the head leans.
        let head_up = head.rotation * Vec3::Y;
        let spine_up = (Vec3::Y * 2.0 + head_up).normalize_or(Vec3::Y);
        let neck_base = neck_top - spine_up * shape.neck;
        let hips_above = neck_base - spine_up * shape.torso;
        let ankle_height = floor + shape.ankle;
        // Standing (not floating): the hips stay low enough for the knees to keep a little bend,
        // so that feet stay planted while the body sways.
        let standing = hips_above.y - ankle_height <= shape.leg() * 1.15;
        let highest = if standing { ankle_height + shape.leg() * 0.97 } else { f32::MAX };
        // Hips never go below the floor (someone lying down or crawling is beyond this body).
        let hips = Vec3::new(hips_above.x, hips_above.y.min(highest).max(ankle_height + 0.1), hips_above.z);

        // Arms.
        let shoulder_drop = Vec3::Y * (0.2 * shape.neck);
        let shoulders = [
            neck_base - side * shape.shoulder_half - shoulder_drop,
            neck_base + side * shape.shoulder_half - shoulder_drop,
        ];
        let hands = [drivers.left_hand.position, drivers.right_hand.position];
        let arms = [0, 1].map(|at| {
            let outward = if at == 0 { -side } else { side };
            // Elbows bend down, a little out and back.
            let pole = -Vec3::Y + outward * 0.4 - forward * 0.3;
            two_bone(shoulders[at], hands[at], shape.upper_arm, shape.forearm, pole)
        });

        // Legs.
        let hip_joints = [hips - side * shape.hip_half, hips + side * shape.hip_half];
        let under = |at: usize| Vec3::new(hip_joints[at].x, ankle_height, hip_joints[at].z);
        let feet = self.feet.get_or_insert_with(|| [0, 1].map(|at| Foot { planted: under(at), step: None }));
        let mut ankles = [Vec3::ZERO; 2];
        if standing {
            step_feet(feet, [under(0), under(1)], seconds, ankle_height);
            ankles = [feet[0].ankle(), feet[1].ankle()];
        } else {
            // Floating: the legs hang, and the feet start under the hips again when they land.
            for (at, foot) in feet.iter_mut().enumerate() {
                let hang = hip_joints[at] - Vec3::Y * (shape.leg() - REACH_SLACK) + forward * 0.05;
                *foot = Foot { planted: under(at), step: None };
                ankles[at] = hang;
            }
        }
        let legs = [0, 1].map(|at| {
            // Knees bend forward.
            let pole = forward + Vec3::Y * 0.1;
            two_bone(hip_joints[at], ankles[at], shape.thigh, shape.shin, pole)
        });
        Joints { head: centre_of_head, neck_top, neck_base, hips, arms, legs, facing }
    }
}

/// Moves each foot along its step, and starts a step for the foot furthest behind when neither
/// is stepping and it lags more than [`STEP_DISTANCE`] from where it would stand.
fn step_feet(feet: &mut [Foot; 2], ideal: [Vec3; 2], seconds: f32, ankle_height: f32) {
    for foot in feet.iter_mut() {
        // Feet stand on the floor, wherever it went.
        foot.planted.y = ankle_height;
        if let Some(step) = &mut foot.step {
            step.elapsed += seconds;
            if step.elapsed >= STEP_SECONDS {
                foot.planted = step.to;
                foot.step = None;
            }
        }
    }
    if feet.iter().any(|foot| foot.step.is_some()) {
        return;
    }
    let lag = |at: usize| feet[at].planted.distance(ideal[at]);
    let furthest = if lag(0) >= lag(1) { 0 } else { 1 };
    if lag(furthest) > STEP_DISTANCE {
        // A stride a little past where it would stand, so that walking does not lag a step.
        let to = ideal[furthest] + (ideal[furthest] - feet[furthest].planted).with_y(0.0) * 0.3;
        let to = Vec3::new(to.x, ankle_height, to.z);
        feet[furthest].step = Some(Step { from: feet[furthest].planted, to, elapsed: 0.0 });
    }
}

/// Two bones of lengths `first` and `second` from `root` toward `target`, bending toward
/// `pole`: the joints keep their lengths exactly; a target out of reach is reached toward.
pub fn two_bone(root: Vec3, target: Vec3, first: f32, second: f32, pole: Vec3) -> Limb {
    let to_target = target - root;
    let distance = to_target.length();
    let direction = to_target.try_normalize().unwrap_or(Vec3::NEG_Y);
    let longest = (first + second) * (1.0 - REACH_SLACK);
    let shortest = (first - second).abs() * (1.0 + REACH_SLACK) + REACH_SLACK;
    let reach = distance.clamp(shortest, longest.max(shortest));
    // The angle at the root, by the law of cosines.
    let cosine = ((first * first + reach * reach - second * second) / (2.0 * first * reach)).clamp(-1.0, 1.0);
    let sine = (1.0 - cosine * cosine).max(0.0).sqrt();
    // The bend's direction: the pole, made square to the limb (any square direction if the pole
    // lies along it).
    let across =
        (pole - direction * pole.dot(direction)).try_normalize().unwrap_or_else(|| direction.any_orthonormal_vector());
    let bend = root + direction * (first * cosine) + across * (first * sine);
    let end = root + direction * reach;
    Limb { root, bend, end }
}

/// The drivers with anything not finite replaced: a bad head by the origin, a bad hand by the
/// head, a bad turn by none.
fn sanitised(drivers: &Drivers) -> Drivers {
    let rotation =
        |turn: Quat| if turn.is_finite() && turn.length_squared() > 1e-6 { turn.normalize() } else { Quat::IDENTITY };
    let head_at = if drivers.head.position.is_finite() { drivers.head.position } else { Vec3::ZERO };
    let hand = |tracked: Tracked| Tracked {
        position: if tracked.position.is_finite() { tracked.position } else { head_at },
        rotation: rotation(tracked.rotation),
    };
    Drivers {
        head: Tracked { position: head_at, rotation: rotation(drivers.head.rotation) },
        left_hand: hand(drivers.left_hand),
        right_hand: hand(drivers.right_hand),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::LayoutRng;

    const EYES: f32 = 1.7;

    fn standing(at: Vec3, left: Vec3, right: Vec3) -> Drivers {
        let turn = Quat::IDENTITY;
        Drivers {
            head: Tracked { position: at, rotation: turn },
            left_hand: Tracked { position: left, rotation: turn },
            right_hand: Tracked { position: right, rotation: turn },
        }
    }

    #[test]
    fn hands_are_where_the_controllers_are_and_arms_keep_their_lengths() {
        let shape = BodyShape::for_eye_height(EYES);
        let mut rng = LayoutRng::new(7);
        let mut body = Body::new();
        let eyes = Vec3::new(0.0, EYES, 0.0);
        let mut reached = 0;
        for _ in 0..2_000 {
            let offset = |rng: &mut LayoutRng| rng.range(-1.0, 1.0);
            let left = eyes + Vec3::new(offset(&mut rng) * 0.8, offset(&mut rng) * 0.9 - 0.3, offset(&mut rng) * 0.8);
            let right = eyes + Vec3::new(offset(&mut rng) * 0.8, offset(&mut rng) * 0.9 - 0.3, offset(&mut rng) * 0.8);
            let joints = body.update(&shape, &standing(eyes, left, right), 0.0, 1.0 / 60.0);
            for (arm, target) in joints.arms.iter().zip([left, right]) {
                assert!((arm.bend.distance(arm.root) - shape.upper_arm).abs() < 1e-4, "the upper arm keeps its length");
                assert!((arm.end.distance(arm.bend) - shape.forearm).abs() < 1e-4, "the forearm keeps its length");
                let within = arm.root.distance(target) < shape.arm() * 0.99 && arm.root.distance(target) > 0.1;
                if within {
                    assert!(arm.end.distance(target) < 1e-3, "a hand in reach is where its controller is");
                    reached += 1;
                }
            }
        }
        assert!(reached > 500, "many random targets were in reach: {reached}");
    }

    #[test]
    fn a_hand_out_of_reach_is_reached_toward_with_a_straight_arm() {
        let shape = BodyShape::for_eye_height(EYES);
        let eyes = Vec3::new(0.0, EYES, 0.0);
        let far = eyes + Vec3::new(3.0, 0.0, -2.0);
        let joints = Body::new().update(&shape, &standing(eyes, eyes - Vec3::Y * 0.6, far), 0.0, 0.0);
        let arm = joints.arms[1];
        let towards = (far - arm.root).normalize();
        assert!((arm.end - arm.root).normalize().dot(towards) > 0.9999, "the arm points at it");
        assert!((arm.end.distance(arm.root) - shape.arm()).abs() < 0.01 * shape.arm(), "and is straight");
    }

    #[test]
    fn elbows_bend_down_and_out_and_knees_forward() {
        let shape = BodyShape::for_eye_height(EYES);
        let eyes = Vec3::new(0.0, EYES, 0.0);
        // Hands in front at chest height, close to the body: the elbows must bend.
        let left = eyes + Vec3::new(-0.15, -0.4, -0.25);
        let right = eyes + Vec3::new(0.15, -0.4, -0.25);
        let joints = Body::new().update(&shape, &standing(eyes, left, right), 0.0, 0.0);
        for (at, arm) in joints.arms.iter().enumerate() {
            let middle = (arm.root + arm.end) * 0.5;
            assert!(arm.bend.y < middle.y, "elbow {at} below the line from shoulder to hand");
            let outward = if at == 0 { -1.0 } else { 1.0 };
            assert!((arm.bend.x - middle.x) * outward > 0.0, "elbow {at} out to its side");
        }
        // Crouching 30 cm: the knees bend, forward (−z is forward here).
        let low = Vec3::new(0.0, EYES - 0.3, 0.0);
        let mut body = Body::new();
        let joints = body.update(&shape, &standing(low, left - Vec3::Y * 0.3, right - Vec3::Y * 0.3), 0.0, 0.0);
        for leg in joints.legs {
            assert!(leg.bend.z < (leg.root.z + leg.end.z) * 0.5 - 0.05, "knee forward: {leg:?}");
            assert!((leg.bend.distance(leg.root) - shape.thigh).abs() < 1e-4);
            assert!((leg.end.distance(leg.bend) - shape.shin).abs() < 1e-4);
            assert!((leg.end.y - shape.ankle).abs() < 1e-4, "feet on the floor");
        }
    }

    #[test]
    fn feet_stay_planted_for_small_moves_and_step_when_the_body_walks() {
        let shape = BodyShape::for_eye_height(EYES);
        let mut body = Body::new();
        let hands = |eyes: Vec3| (eyes + Vec3::new(-0.25, -0.7, 0.0), eyes + Vec3::new(0.25, -0.7, 0.0));
        let at = |x: f32| Vec3::new(x, EYES, 0.0);
        let (left, right) = hands(at(0.0));
        let start = body.update(&shape, &standing(at(0.0), left, right), 0.0, 1.0 / 60.0);
        // Swaying 10 cm: the feet do not move.
        let (left, right) = hands(at(0.1));
        let swayed = body.update(&shape, &standing(at(0.1), left, right), 0.0, 1.0 / 60.0);
        for at in 0..2 {
            assert!(swayed.legs[at].end.distance(start.legs[at].end) < 1e-4, "foot {at} stayed planted");
        }
        // Walking 2 m along x at 1.4 m/s: the feet step along, one at a time, and end under the
        // body; no frame has both feet in the air.
        let mut x: f32 = 0.1;
        let mut steps = 0;
        let mut was_stepping = [false, false];
        for _ in 0..200 {
            x = (x + 1.4 / 60.0).min(2.1);
            let (left, right) = hands(at(x));
            let joints = body.update(&shape, &standing(at(x), left, right), 0.0, 1.0 / 60.0);
            let stepping = body.feet.expect("feet").map(|foot| foot.step.is_some());
            assert!(!(stepping[0] && stepping[1]), "one foot at a time");
            for at in 0..2 {
                if stepping[at] && !was_stepping[at] {
                    steps += 1;
                }
                assert!(joints.legs[at].end.y >= shape.ankle - 1e-4, "never under the floor");
            }
            was_stepping = stepping;
        }
        assert!((4..=12).contains(&steps), "{steps} steps for 2 m");
        // Standing still a moment: every foot ends within a step of standing under its hip.
        let mut last = None;
        for _ in 0..20 {
            last = Some(body.update(&shape, &standing(at(x), hands(at(x)).0, hands(at(x)).1), 0.0, 0.1));
        }
        for leg in last.expect("updated").legs {
            assert!((leg.end.x - leg.root.x).abs() <= STEP_DISTANCE + 1e-3, "the feet caught up: {leg:?} at {x}");
        }
    }

    #[test]
    fn floating_legs_hang_and_bad_numbers_change_nothing_else() {
        let shape = BodyShape::for_eye_height(EYES);
        let high = Vec3::new(0.0, EYES + 3.0, 0.0);
        let joints = Body::new().update(&shape, &standing(high, high, high), 0.0, 0.1);
        for leg in joints.legs {
            assert!(leg.end.y > 1.0, "hanging, not reaching for the floor: {leg:?}");
        }
        let nan = Vec3::splat(f32::NAN);
        let mut drivers = standing(Vec3::new(1.0, EYES, 1.0), nan, Vec3::new(1.2, 1.0, 0.8));
        drivers.head.rotation = Quat::from_xyzw(f32::NAN, 0.0, 0.0, 1.0);
        let joints = Body::new().update(&shape, &drivers, 0.0, f32::INFINITY);
        let all =
            [joints.head, joints.neck_base, joints.hips, joints.arms[0].end, joints.arms[1].end, joints.legs[0].end];
        assert!(all.iter().all(|point| point.is_finite()), "{joints:?}");
    }
}
