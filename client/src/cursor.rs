//! The mouse pointer: captured for looking around on a click, released with Esc or when the
//! window loses focus.

use bevy::prelude::*;
use bevy::window::{CursorGrabMode, CursorOptions, PrimaryWindow};

use crate::Frame;
use crate::player::PointerLock;
use crate::screenshot::ScreenshotPlan;

pub(super) fn plugin(app: &mut App) {
    // Capture first, so that the frame's mouse motion is read with this frame's lock state.
    app.add_systems(Update, capture_pointer.in_set(Frame::Input).before(crate::actions::ReadDevices));
}

pub(crate) fn capture_pointer(
    mouse: Res<ButtonInput<MouseButton>>,
    chat: Option<Res<crate::network::ChatInput>>,
    menu: Option<Res<crate::social::AvatarMenu>>,
    build: Option<Res<crate::build::BuildMode>>,
    board: Option<Res<crate::whiteboard::BoardAim>>,
    keys: Res<ButtonInput<KeyCode>>,
    mut window: Query<(&Window, &mut CursorOptions), With<PrimaryWindow>>,
    mut lock: ResMut<PointerLock>,
    screenshot: Option<Res<ScreenshotPlan>>,
) {
    // Automated pictures must not take the pointer from whoever runs them.
    if screenshot.is_some() {
        return;
    }
    // The chat box and the avatar menu keep the pointer free for clicking.
    if chat.is_some_and(|chat| chat.open) || menu.is_some_and(|menu| menu.0.is_some()) {
        return;
    }
    // Build mode points at the world with a free pointer.
    if build.is_some_and(|build| build.on) {
        if lock.locked
            && let Ok((_, mut cursor)) = window.single_mut()
        {
            lock.locked = false;
            cursor.visible = true;
            cursor.grab_mode = CursorGrabMode::None;
        }
        return;
    }
    // A free pointer over the whiteboard draws on it rather than looking around.
    if !lock.locked && board.is_some_and(|board| board.distance.is_some()) {
        return;
    }
    let Ok((window, mut cursor)) = window.single_mut() else { return };
    let want = if !window.focused || keys.just_pressed(KeyCode::Escape) {
        false
    } else if mouse.just_pressed(MouseButton::Left) {
        true
    } else {
        lock.locked
    };
    if want != lock.locked {
        lock.locked = want;
        cursor.visible = !want;
        cursor.grab_mode = if want { CursorGrabMode::Locked } else { CursorGrabMode::None };
    }
}
