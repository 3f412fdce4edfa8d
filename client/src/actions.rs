//! The action layer: what the person wants to do this frame, whichever device says it.
//!
//! Devices write [`Actions`] in [`Frame::Input`]: the keyboard and mouse always, and in VR the
//! controllers, whose raw state sits in [`Controllers`]. The OpenXR session fills `Controllers`
//! on a headset ([`crate::xr`]); tests and benchmarks fill it by hand, which is how locomotion,
//! pointing and building are tested without a runtime. Everything after the input step reads
//! `Actions` and never a device.

use bevy::input::mouse::AccumulatedMouseMotion;
use bevy::prelude::*;

use crate::Frame;
use crate::panels::{PanelAction, PanelPressed};
use crate::player::PointerLock;

pub(super) fn plugin(app: &mut App) {
    app.add_message::<PanelPressed>()
        .init_resource::<Actions>()
        .init_resource::<Controllers>()
        .init_resource::<InputMode>()
        .init_resource::<Comfort>()
        .init_resource::<VrMenu>()
        .init_resource::<LaserOnPanel>()
        .add_systems(
            Update,
            (read_desktop_input, read_controllers.run_if(in_vr)).chain().in_set(Frame::Input).in_set(ReadDevices),
        )
        .add_systems(Update, (open_menu, comfort_buttons).in_set(Frame::Input).after(ReadDevices));
}

/// The VR menu panel: open or closed.
#[derive(Resource, Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct VrMenu {
    /// Shown in front of the person.
    pub open: bool,
}

/// Whether the laser is on a panel this frame: a trigger pull then clicks the panel, not the
/// world.
#[derive(Resource, Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LaserOnPanel(pub bool);

/// The menu button opens and closes the VR menu, its Close button closes it, and it opens by
/// itself when the person enters VR, to show what the controllers do.
fn open_menu(
    actions: Res<Actions>,
    mode: Res<InputMode>,
    mut pressed: MessageReader<PanelPressed>,
    mut menu: ResMut<VrMenu>,
    mut was: Local<InputMode>,
) {
    if *mode != *was {
        *was = *mode;
        menu.open = *mode == InputMode::Vr;
    }
    if *mode == InputMode::Vr && actions.menu.pressed {
        menu.open = !menu.open;
    }
    if pressed.read().any(|PanelPressed(action)| *action == PanelAction::CloseMenu) {
        menu.open = false;
    }
}

/// The comfort buttons of the VR menu.
fn comfort_buttons(mut pressed: MessageReader<PanelPressed>, mut comfort: ResMut<Comfort>) {
    for PanelPressed(action) in pressed.read() {
        match action {
            PanelAction::ToggleTurning => {
                comfort.turning = match comfort.turning {
                    Turning::Snap(_) => Turning::Smooth(SMOOTH_TURN),
                    Turning::Smooth(_) => Turning::Snap(SNAP_TURN),
                };
            }
            PanelAction::ToggleVignette => comfort.vignette = !comfort.vignette,
            PanelAction::ToggleStance => {
                comfort.stance = match comfort.stance {
                    Stance::Standing => Stance::Seated(SEATED_LIFT),
                    Stance::Seated(_) => Stance::Standing,
                };
            }
            PanelAction::SwapHands => {
                comfort.dominant = match comfort.dominant {
                    Side::Left => Side::Right,
                    Side::Right => Side::Left,
                };
            }
            _ => continue,
        }
        info!("VR comfort: {}", comfort.describe());
    }
}

/// The systems that turn devices into [`Actions`]; what needs this frame's actions runs after.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReadDevices;

/// Walking speed, metres per second.
pub const WALK_SPEED: f32 = 6.0;
/// Floating speed up and down, metres per second.
pub const FLOAT_SPEED: f32 = 5.0;
/// How much faster everything goes with Shift held (or the walking stick pressed in).
pub const FAST_FACTOR: f32 = 6.0;
/// Radians of turn per pixel of mouse motion.
pub const MOUSE_SENSITIVITY: f32 = 0.0025;
/// Radians per second that the arrow keys turn.
pub const KEY_TURN_SPEED: f32 = 1.8;
/// Thumbstick travel below which a stick counts as centred.
pub const STICK_DEADZONE: f32 = 0.2;
/// Stick travel that fires a snap turn or starts a teleport aim.
pub const STICK_FIRE: f32 = 0.7;
/// Stick travel under which a fired stick is ready to fire again.
pub const STICK_REARM: f32 = 0.35;
/// Trigger or grip travel that presses; releasing needs it under [`TRIGGER_RELEASE`].
pub const TRIGGER_PRESS: f32 = 0.7;
/// Trigger or grip travel under which a pressed trigger lets go.
pub const TRIGGER_RELEASE: f32 = 0.3;

/// Whether the person is on a desktop screen or in a headset.
#[derive(Resource, Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum InputMode {
    /// A screen, keyboard and mouse.
    #[default]
    Flat,
    /// A headset with controllers: the head is tracked and the controllers drive the actions.
    Vr,
}

/// Run condition: the person is in a headset.
pub fn in_vr(mode: Res<InputMode>) -> bool {
    *mode == InputMode::Vr
}

/// A button as an action sees it this frame.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Press {
    /// Held down now.
    pub held: bool,
    /// Went down this frame.
    pub pressed: bool,
    /// Came up this frame.
    pub released: bool,
}

impl Press {
    /// Carries the button into a frame where it is `held` or not.
    pub fn set(&mut self, held: bool) {
        self.pressed = held && !self.held;
        self.released = !held && self.held;
        self.held = held;
    }

    /// A press from either of two sources.
    fn or(self, other: Press) -> Press {
        Press {
            held: self.held || other.held,
            pressed: self.pressed || other.pressed,
            released: (self.released || other.released) && !(self.held || other.held),
        }
    }
}

/// What the person wants to do this frame. Positions and rays are in world space.
#[derive(Resource, Debug, Default, Clone, PartialEq)]
pub struct Actions {
    /// Walk: x to the right, y forward, each in `[-1, 1]`.
    pub walk: Vec2,
    /// Float: up positive, in `[-1, 1]`.
    pub rise: f32,
    /// Turn this frame: x yaw to the left, y pitch up, in radians. A snap turn is one frame's
    /// whole turn.
    pub look: Vec2,
    /// Whether `look.x` is a smooth turn (which the comfort vignette answers) rather than a
    /// snap.
    pub smooth_turn: bool,
    /// Go faster.
    pub fast: bool,
    /// Aiming a teleport while held; the jump happens on release.
    pub teleport: Press,
    /// The pointer: the mouse through the camera, or the pointing hand's laser.
    pub point: Option<Ray3d>,
    /// Use what the pointer is on: click, trigger.
    pub select: Press,
    /// Hold what the hand (or pointer) is on, to move it.
    pub grab: Press,
    /// Open or close the menu panel.
    pub menu: Press,
    /// Turn build mode on or off.
    pub build: Press,
    /// Turn what is being placed by one step.
    pub rotate: Press,
    /// The pointing hand's grip, in world space, when a hand is tracked.
    pub hand: Option<Transform>,
    /// Push-to-talk held: `V`, or the other hand's trigger.
    pub talk: bool,
}

/// Which hand points, grabs and teleports; the other walks and holds the menu.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The left hand.
    Left,
    /// The right hand.
    #[default]
    Right,
}

/// How turning works in VR.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Turning {
    /// Jump by this many radians per flick of the stick: the comfortable default.
    Snap(f32),
    /// Turn continuously at up to this many radians per second.
    Smooth(f32),
}

/// Standing or seated play.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stance {
    /// The headset's height is the eyes' height.
    Standing,
    /// The eyes are lifted by this many metres, to a standing person's height.
    Seated(f32),
}

/// The default snap turn: 30 degrees.
pub const SNAP_TURN: f32 = std::f32::consts::PI / 6.0;
/// The default smooth turn: 90 degrees per second.
pub const SMOOTH_TURN: f32 = std::f32::consts::FRAC_PI_2;
/// How much a seated person's eyes are lifted: the difference between seated and standing eye
/// heights of an average adult.
pub const SEATED_LIFT: f32 = 0.45;

/// Comfort settings for VR: turning, the vignette, stance and the pointing hand.
#[derive(Resource, Debug, Clone, Copy, PartialEq)]
pub struct Comfort {
    /// Snap or smooth turning.
    pub turning: Turning,
    /// Darken the edges of sight while moving smoothly.
    pub vignette: bool,
    /// Standing or seated.
    pub stance: Stance,
    /// The pointing hand.
    pub dominant: Side,
}

impl Default for Comfort {
    fn default() -> Self {
        Self { turning: Turning::Snap(SNAP_TURN), vignette: true, stance: Stance::Standing, dominant: Side::Right }
    }
}

impl Comfort {
    /// The settings in words, for the menu and the log.
    pub fn describe(&self) -> String {
        let turning = match self.turning {
            Turning::Snap(angle) => format!("snap turn {:.0} degrees", angle.to_degrees()),
            Turning::Smooth(rate) => format!("smooth turn {:.0} degrees/s", rate.to_degrees()),
        };
        let vignette = if self.vignette { "vignette on" } else { "vignette off" };
        let stance = match self.stance {
            Stance::Standing => "standing",
            Stance::Seated(_) => "seated",
        };
        let hand = match self.dominant {
            Side::Right => "right hand points",
            Side::Left => "left hand points",
        };
        format!("{turning} | {vignette} | {stance} | {hand}")
    }

    /// The lift applied to the tracked head.
    pub fn lift(&self) -> f32 {
        match self.stance {
            Stance::Standing => 0.0,
            Stance::Seated(lift) => lift,
        }
    }
}

/// One XR controller (or tracked hand) as the device reports it. Poses are in the tracking
/// space: metres from the play area's floor centre, -z forward.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Controller {
    /// Where the hand holds the controller; `None` while not tracked.
    pub grip: Option<Transform>,
    /// The pointing ray's pose: its forward (-z) is the laser; `None` while not tracked.
    pub aim: Option<Transform>,
    /// The thumbstick, x right and y forward, each in `[-1, 1]`.
    pub stick: Vec2,
    /// The stick pressed in.
    pub stick_click: bool,
    /// The trigger, `[0, 1]`.
    pub trigger: f32,
    /// The grip squeeze, `[0, 1]`.
    pub squeeze: f32,
    /// The lower face button (A or X).
    pub primary: bool,
    /// The upper face button (B or Y).
    pub secondary: bool,
    /// The menu button.
    pub menu: bool,
}

/// The tracked head and both controllers, in tracking space. Filled by the OpenXR session or,
/// without a headset, by tests and benchmarks.
#[derive(Resource, Debug, Default, Clone, Copy, PartialEq)]
pub struct Controllers {
    /// The head (between the eyes), `None` while not tracked.
    pub head: Option<Transform>,
    /// The left hand.
    pub left: Controller,
    /// The right hand.
    pub right: Controller,
}

/// The height of a resting simulated headset: a person of average height standing.
pub const HEAD_HEIGHT: f32 = 1.6;

impl Controllers {
    /// A head standing in the middle of the play area looking ahead, both hands tracked in
    /// front of the chest and pointing ahead and a little down, every button and stick at rest:
    /// how tests, benchmarks and `--vr-preview` start.
    pub fn resting() -> Self {
        let hand = |side: f32| {
            let grip = Transform::from_xyz(side * 0.2, HEAD_HEIGHT - 0.45, -0.3);
            let aim = grip.with_rotation(Quat::from_rotation_x(-0.35));
            Controller { grip: Some(grip), aim: Some(aim), ..Controller::default() }
        };
        Self { head: Some(Transform::from_xyz(0.0, HEAD_HEIGHT, 0.0)), left: hand(-1.0), right: hand(1.0) }
    }

    /// The pointing hand and the other one.
    pub fn by_role(&self, dominant: Side) -> (&Controller, &Controller) {
        match dominant {
            Side::Right => (&self.right, &self.left),
            Side::Left => (&self.left, &self.right),
        }
    }
}

/// Where the tracking space sits in the world: the play area's floor centre and its turn.
/// Locomotion moves and turns the rig; the headset moves the head within it.
#[derive(Resource, Debug, Default, Clone, Copy, PartialEq)]
pub struct Rig {
    /// The floor centre of the play area, in world space.
    pub origin: Vec3,
    /// The rig's turn about the vertical axis; 0 faces +z like [`crate::Player::yaw`].
    pub yaw: f32,
}

impl Rig {
    /// The rig's rotation: tracking space looks down -z, the world's yaw 0 looks down +z.
    pub fn rotation(&self) -> Quat {
        Quat::from_rotation_y(self.yaw + std::f32::consts::PI)
    }

    /// The rig as a transform from tracking space to the world.
    pub fn transform(&self) -> Transform {
        Transform::from_translation(self.origin).with_rotation(self.rotation())
    }

    /// A tracked pose in world space.
    pub fn to_world(&self, pose: Transform) -> Transform {
        self.transform() * pose
    }
}

/// One device's buttons as presses, each carrying its own history from frame to frame.
#[derive(Debug, Default)]
pub(crate) struct Presses {
    teleport: Press,
    select: Press,
    grab: Press,
    menu: Press,
    build: Press,
    rotate: Press,
}

impl Presses {
    /// Adds this device's presses to the frame's actions.
    fn add_to(&self, actions: &mut Actions) {
        actions.teleport = actions.teleport.or(self.teleport);
        actions.select = actions.select.or(self.select);
        actions.grab = actions.grab.or(self.grab);
        actions.menu = actions.menu.or(self.menu);
        actions.build = actions.build.or(self.build);
        actions.rotate = actions.rotate.or(self.rotate);
    }
}

/// The controllers' presses, with the hysteresis of sticks and triggers: a snap turn fires once
/// per flick, and a trigger wobbling at the edge neither clicks twice nor lets go.
#[derive(Debug, Default)]
pub(crate) struct ControllerPresses {
    turned: bool,
    /// The other hand's trigger holds push-to-talk.
    talking: bool,
    buttons: Presses,
}

/// Keys and mouse into [`Actions`]. Runs first and starts the frame's actions afresh.
pub(crate) fn read_desktop_input(
    keys: Option<Res<ButtonInput<KeyCode>>>,
    buttons: Option<Res<ButtonInput<MouseButton>>>,
    mouse: Option<Res<AccumulatedMouseMotion>>,
    lock: Res<PointerLock>,
    mode: Res<InputMode>,
    time: Res<Time>,
    chat: Option<Res<crate::network::ChatInput>>,
    mut presses: Local<Presses>,
    mut actions: ResMut<Actions>,
) {
    let typing = chat.is_some_and(|chat| chat.open);
    let key = |code: KeyCode| !typing && keys.as_ref().is_some_and(|keys| keys.pressed(code));
    let click = |button: MouseButton| buttons.as_ref().is_some_and(|buttons| buttons.pressed(button));
    let presses = &mut *presses;
    presses.teleport.set(key(KeyCode::KeyT));
    presses.select.set(click(MouseButton::Left));
    presses.grab.set(click(MouseButton::Right));
    presses.menu.set(key(KeyCode::KeyM));
    presses.build.set(key(KeyCode::KeyB));
    presses.rotate.set(key(KeyCode::KeyR));
    // Everything starts afresh each frame; the buttons carry their own history.
    *actions = Actions::default();
    presses.add_to(&mut actions);
    actions.talk = key(KeyCode::KeyV);
    // Keys type into the chat box while it is open.
    if typing {
        return;
    }
    let Some(keys) = keys else { return };
    let axis = |positive: &[KeyCode], negative: &[KeyCode]| {
        f32::from(u8::from(keys.any_pressed(positive.iter().copied())))
            - f32::from(u8::from(keys.any_pressed(negative.iter().copied())))
    };
    actions.walk = Vec2::new(
        axis(&[KeyCode::KeyD], &[KeyCode::KeyA]),
        axis(&[KeyCode::KeyW, KeyCode::ArrowUp], &[KeyCode::KeyS, KeyCode::ArrowDown]),
    );
    actions.rise = axis(&[KeyCode::Space, KeyCode::KeyE], &[KeyCode::KeyC, KeyCode::KeyQ]);
    actions.fast = keys.any_pressed([KeyCode::ShiftLeft, KeyCode::ShiftRight]);
    actions.look.x = axis(&[KeyCode::ArrowLeft], &[KeyCode::ArrowRight]) * KEY_TURN_SPEED * time.delta_secs();
    actions.smooth_turn = actions.look.x != 0.0;
    // In a headset the head looks around; the mouse would fight it.
    if let Some(mouse) = mouse.filter(|_| lock.locked && *mode == InputMode::Flat) {
        actions.look -= mouse.delta * MOUSE_SENSITIVITY;
    }
}

/// A stick axis with the dead zone cut out and the rest stretched back to `[0, 1]`.
pub fn deadzone(stick: Vec2) -> Vec2 {
    let length = stick.length();
    if length <= STICK_DEADZONE || !length.is_finite() {
        return Vec2::ZERO;
    }
    stick / length * ((length.min(1.0) - STICK_DEADZONE) / (1.0 - STICK_DEADZONE))
}

/// XR controllers into [`Actions`], on top of what the keyboard said. The pointing hand:
/// trigger selects, grip grabs, stick turns (sideways) and aims a teleport (forward), A toggles
/// build mode and B turns what is being placed. The other hand: stick walks (pressed in: fast),
/// Y floats up and X down, trigger held talks, menu opens the menu.
pub(crate) fn read_controllers(
    controllers: Res<Controllers>,
    comfort: Res<Comfort>,
    rig: Res<Rig>,
    time: Res<Time>,
    mut presses: Local<ControllerPresses>,
    mut actions: ResMut<Actions>,
) {
    let (main, off) = controllers.by_role(comfort.dominant);
    let walk = deadzone(off.stick);
    if walk != Vec2::ZERO {
        actions.walk = walk;
    }
    actions.fast |= off.stick_click;
    let rise = f32::from(u8::from(off.secondary)) - f32::from(u8::from(off.primary));
    if rise != 0.0 {
        actions.rise = rise;
    }
    // Turning: the pointing hand's stick, sideways. Right turns clockwise seen from above,
    // which is a negative yaw.
    let sideways = main.stick.x;
    match comfort.turning {
        Turning::Snap(angle) => {
            if presses.turned {
                presses.turned = sideways.abs() > STICK_REARM;
            } else if sideways.abs() >= STICK_FIRE {
                presses.turned = true;
                actions.look.x -= angle * sideways.signum();
            }
        }
        Turning::Smooth(rate) => {
            let turn = deadzone(Vec2::new(sideways, 0.0)).x;
            if turn != 0.0 {
                actions.look.x -= turn * rate * time.delta_secs();
                actions.smooth_turn = true;
            }
        }
    }
    // Teleport: the stick pushed forward aims and letting it back jumps. Aiming holds until
    // the stick comes back under the re-arm line, so a wobble at the edge does not jump.
    let buttons = &mut presses.buttons;
    let aiming = if buttons.teleport.held { main.stick.y > STICK_REARM } else { main.stick.y >= STICK_FIRE };
    buttons.teleport.set(aiming);
    let trigger = if buttons.select.held { main.trigger > TRIGGER_RELEASE } else { main.trigger >= TRIGGER_PRESS };
    buttons.select.set(trigger);
    let squeeze = if buttons.grab.held { main.squeeze > TRIGGER_RELEASE } else { main.squeeze >= TRIGGER_PRESS };
    buttons.grab.set(squeeze);
    buttons.build.set(main.primary);
    buttons.rotate.set(main.secondary);
    buttons.menu.set(off.menu);
    buttons.add_to(&mut actions);
    presses.talking = if presses.talking { off.trigger > TRIGGER_RELEASE } else { off.trigger >= TRIGGER_PRESS };
    actions.talk |= presses.talking;
    if let Some(aim) = main.aim {
        let aim = rig.to_world(aim);
        if let Ok(direction) = Dir3::new(aim.forward().as_vec3()) {
            actions.point = Some(Ray3d::new(aim.translation, direction));
        }
    }
    actions.hand = main.grip.map(|grip| rig.to_world(grip));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Player;
    use crate::testing::{controllers, player_transform, run_frames, vr_app};
    use sanctuary_engine::RegionId;

    fn actions(app: &App) -> Actions {
        app.world().resource::<Actions>().clone()
    }

    fn yaw(app: &mut App) -> f32 {
        app.world_mut().query::<&Player>().single(app.world()).expect("player").yaw
    }

    /// The signed difference of two angles, in `(-PI, PI]`.
    fn turned(from: f32, to: f32) -> f32 {
        let difference = (to - from).rem_euclid(std::f32::consts::TAU);
        if difference > std::f32::consts::PI { difference - std::f32::consts::TAU } else { difference }
    }

    #[test]
    fn the_dead_zone_is_cut_and_the_rest_stretched() {
        assert_eq!(deadzone(Vec2::new(0.15, 0.1)), Vec2::ZERO);
        assert!((deadzone(Vec2::Y).y - 1.0).abs() < 1e-6);
        assert!((deadzone(Vec2::new(0.0, 0.6)).y - 0.5).abs() < 1e-6);
        assert_eq!(deadzone(Vec2::new(f32::NAN, 0.0)), Vec2::ZERO, "a broken stick reads as centred");
        assert!(deadzone(Vec2::new(3.0, 4.0)).length() <= 1.0 + 1e-6, "over-range sticks are capped");
    }

    #[test]
    fn a_snap_turn_fires_once_per_flick() {
        let mut app = vr_app(RegionId::Lobby);
        run_frames(&mut app, 2);
        let start = yaw(&mut app);
        controllers(&mut app).right.stick = Vec2::new(1.0, 0.0);
        run_frames(&mut app, 20);
        assert!((turned(start, yaw(&mut app)) + SNAP_TURN).abs() < 1e-4, "one right flick turns 30 degrees right");
        // Back to the middle only part way: not re-armed.
        controllers(&mut app).right.stick = Vec2::new(0.5, 0.0);
        run_frames(&mut app, 3);
        controllers(&mut app).right.stick = Vec2::new(1.0, 0.0);
        run_frames(&mut app, 3);
        assert!((turned(start, yaw(&mut app)) + SNAP_TURN).abs() < 1e-4, "a stick held at the edge turns once");
        controllers(&mut app).right.stick = Vec2::ZERO;
        run_frames(&mut app, 1);
        controllers(&mut app).right.stick = Vec2::new(-0.9, 0.1);
        run_frames(&mut app, 2);
        assert!(turned(start, yaw(&mut app)).abs() < 1e-4, "a left flick turns back");
        assert_eq!(app.world().resource::<crate::locomotion::Vignette>().0, 0.0, "snap turns need no vignette");
    }

    #[test]
    fn smooth_turning_turns_at_its_rate_and_darkens_the_edges() {
        let mut app = vr_app(RegionId::Lobby);
        app.world_mut().resource_mut::<Comfort>().turning = Turning::Smooth(SMOOTH_TURN);
        run_frames(&mut app, 2);
        let start = yaw(&mut app);
        controllers(&mut app).right.stick = Vec2::new(-1.0, 0.0);
        run_frames(&mut app, 60);
        assert!((turned(start, yaw(&mut app)) - SMOOTH_TURN).abs() < 0.03, "a second of full left turns 90 degrees");
        assert!(app.world().resource::<crate::locomotion::Vignette>().0 > 0.5);
        controllers(&mut app).right.stick = Vec2::ZERO;
        run_frames(&mut app, 30);
        assert_eq!(app.world().resource::<crate::locomotion::Vignette>().0, 0.0, "the vignette opens again");
    }

    #[test]
    fn the_trigger_clicks_once_and_holds_through_a_wobble() {
        let mut app = vr_app(RegionId::Lobby);
        run_frames(&mut app, 1);
        controllers(&mut app).right.trigger = 0.8;
        run_frames(&mut app, 1);
        assert_eq!(actions(&app).select, Press { held: true, pressed: true, released: false });
        controllers(&mut app).right.trigger = 0.5;
        run_frames(&mut app, 1);
        assert_eq!(actions(&app).select, Press { held: true, pressed: false, released: false });
        controllers(&mut app).right.trigger = 0.8;
        run_frames(&mut app, 1);
        assert!(!actions(&app).select.pressed, "a wobble is not a second click");
        controllers(&mut app).right.trigger = 0.1;
        run_frames(&mut app, 1);
        assert_eq!(actions(&app).select, Press { held: false, pressed: false, released: true });
        run_frames(&mut app, 1);
        assert_eq!(actions(&app).select, Press::default());
    }

    #[test]
    fn the_other_hands_trigger_talks_while_held() {
        let mut app = vr_app(RegionId::Lobby);
        run_frames(&mut app, 1);
        assert!(!actions(&app).talk);
        controllers(&mut app).left.trigger = 0.8;
        run_frames(&mut app, 1);
        assert!(actions(&app).talk, "the left trigger talks for a right-handed person");
        assert!(!actions(&app).select.held, "and clicks nothing");
        controllers(&mut app).left.trigger = 0.5;
        run_frames(&mut app, 1);
        assert!(actions(&app).talk, "a trigger easing off a little still talks");
        controllers(&mut app).left.trigger = 0.1;
        run_frames(&mut app, 1);
        assert!(!actions(&app).talk, "let go, it stops");
        app.world_mut().resource_mut::<ButtonInput<KeyCode>>().press(KeyCode::KeyV);
        run_frames(&mut app, 1);
        assert!(actions(&app).talk, "V talks too");
    }

    #[test]
    fn the_pointing_hand_gives_the_laser_in_world_space() {
        let mut app = vr_app(RegionId::Lobby);
        run_frames(&mut app, 3);
        let eyes = player_transform(&mut app);
        let ray = actions(&app).point.expect("a tracked hand points");
        // The right hand is right of and below the eyes, and points where the head looks,
        // a little down.
        let right_of_eyes = (ray.origin - eyes.translation).dot(*eyes.right());
        assert!((right_of_eyes - 0.2).abs() < 1e-3, "{right_of_eyes}");
        assert!(ray.direction.dot(*eyes.forward()) > 0.9);
        assert!(ray.direction.y < -0.3);
        let hand = actions(&app).hand.expect("a tracked grip");
        assert!((hand.translation - ray.origin).length() < 1e-4);
        // Lost tracking: no laser, no hand.
        controllers(&mut app).right.aim = None;
        controllers(&mut app).right.grip = None;
        run_frames(&mut app, 1);
        assert_eq!((actions(&app).point, actions(&app).hand), (None, None));
    }

    #[test]
    fn left_handed_people_point_with_the_left_hand_and_walk_with_the_right() {
        let mut app = vr_app(RegionId::Lobby);
        app.world_mut().resource_mut::<Comfort>().dominant = Side::Left;
        run_frames(&mut app, 2);
        controllers(&mut app).left.trigger = 1.0;
        controllers(&mut app).right.stick = Vec2::new(0.0, 1.0);
        run_frames(&mut app, 1);
        let now = actions(&app);
        assert!(now.select.pressed);
        assert!(!now.talk, "the pointing hand's trigger clicks; it does not talk");
        assert!((now.walk.y - 1.0).abs() < 1e-6);
        assert!(!now.teleport.held, "the walking stick never aims a teleport");
        let eyes = player_transform(&mut app);
        let ray = now.point.expect("the left hand points");
        assert!((ray.origin - eyes.translation).dot(*eyes.right()) < 0.0, "the laser starts at the left hand");
    }

    #[test]
    fn in_a_headset_the_keyboard_still_walks_but_the_mouse_does_not_turn() {
        let mut app = vr_app(RegionId::Lobby);
        run_frames(&mut app, 2);
        app.world_mut().resource_mut::<PointerLock>().locked = true;
        app.world_mut().resource_mut::<AccumulatedMouseMotion>().delta = Vec2::new(200.0, 0.0);
        app.world_mut().resource_mut::<ButtonInput<KeyCode>>().press(KeyCode::KeyW);
        run_frames(&mut app, 1);
        let now = actions(&app);
        assert_eq!(now.look, Vec2::ZERO);
        assert_eq!(now.walk, Vec2::Y);
    }

    #[test]
    fn the_menu_opens_on_entering_vr_and_its_buttons_change_comfort() {
        let mut app = vr_app(RegionId::Lobby);
        run_frames(&mut app, 2);
        assert!(app.world().resource::<VrMenu>().open, "the menu greets a person entering VR");
        for action in [PanelAction::ToggleTurning, PanelAction::ToggleStance, PanelAction::SwapHands] {
            app.world_mut().write_message(PanelPressed(action));
        }
        app.world_mut().write_message(PanelPressed(PanelAction::CloseMenu));
        run_frames(&mut app, 1);
        let comfort = *app.world().resource::<Comfort>();
        assert_eq!(comfort.turning, Turning::Smooth(SMOOTH_TURN));
        assert_eq!(comfort.stance, Stance::Seated(SEATED_LIFT));
        assert_eq!(comfort.dominant, Side::Left);
        assert!(comfort.describe().contains("smooth turn 90"));
        assert!(!app.world().resource::<VrMenu>().open);
        // The menu button, now on the right hand (the left points), opens it again.
        controllers(&mut app).right.menu = true;
        run_frames(&mut app, 1);
        assert!(app.world().resource::<VrMenu>().open);
    }

    #[test]
    fn face_buttons_toggle_build_mode_and_float() {
        let mut app = vr_app(RegionId::Lobby);
        run_frames(&mut app, 2);
        controllers(&mut app).right.primary = true;
        controllers(&mut app).left.secondary = true;
        run_frames(&mut app, 1);
        assert!(actions(&app).build.pressed);
        assert_eq!(actions(&app).rise, 1.0);
        run_frames(&mut app, 1);
        assert!(actions(&app).build.held && !actions(&app).build.pressed);
        controllers(&mut app).left.secondary = false;
        controllers(&mut app).left.primary = true;
        run_frames(&mut app, 1);
        assert_eq!(actions(&app).rise, -1.0);
    }
}
