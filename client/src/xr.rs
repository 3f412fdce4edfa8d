//! VR: looking for an OpenXR runtime and a headset, and (with the `xr` feature) the OpenXR
//! session that puts the person in the headset. Without a runtime or headset the client says
//! why in one line and runs in flat mode.

/// What was found when looking for VR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XrProbe {
    /// The person asked for flat mode with `--flat`.
    NotAsked,
    /// This build has no `xr` feature.
    NotBuilt,
    /// No OpenXR loader library is installed.
    NoLoader(String),
    /// A loader is installed but no runtime is active or it refused us.
    NoRuntime(String),
    /// A runtime is active but no headset is connected.
    NoHeadset {
        /// The runtime's name.
        runtime: String,
    },
    /// A runtime and a headset are there.
    Ready {
        /// The runtime's name.
        runtime: String,
    },
}

/// Looks for a runtime and a headset, unless `flat` is set.
pub fn probe(flat: bool) -> XrProbe {
    if flat {
        return XrProbe::NotAsked;
    }
    probe_runtime()
}

#[cfg(feature = "xr")]
fn probe_runtime() -> XrProbe {
    // SAFETY: loading the OpenXR loader runs its library initialisers; it is the documented way
    // to reach a runtime, and a missing library comes back as an error.
    #[expect(unsafe_code, reason = "the OpenXR loader is a C library opened at run time")]
    let entry = match unsafe { openxr::Entry::load() } {
        Ok(entry) => entry,
        Err(error) => return XrProbe::NoLoader(error.to_string()),
    };
    let extensions = match entry.enumerate_extensions() {
        Ok(extensions) => extensions,
        Err(error) => return XrProbe::NoRuntime(error.to_string()),
    };
    let mut wanted = openxr::ExtensionSet::default();
    wanted.khr_vulkan_enable2 = extensions.khr_vulkan_enable2;
    let app = openxr::ApplicationInfo {
        application_name: "Sanctuary",
        application_version: 1,
        engine_name: "Bevy",
        engine_version: 19,
        api_version: openxr::Version::new(1, 0, 0),
    };
    let instance = match entry.create_instance(&app, &wanted, &[]) {
        Ok(instance) => instance,
        Err(error) => return XrProbe::NoRuntime(error.to_string()),
    };
    let runtime =
        instance.properties().map(|properties| properties.runtime_name).unwrap_or_else(|_| "unknown".to_owned());
    match instance.system(openxr::FormFactor::HEAD_MOUNTED_DISPLAY) {
        Ok(_) => XrProbe::Ready { runtime },
        Err(_) => XrProbe::NoHeadset { runtime },
    }
}

#[cfg(not(feature = "xr"))]
fn probe_runtime() -> XrProbe {
    XrProbe::NotBuilt
}

impl XrProbe {
    /// Whether the client should start the OpenXR session.
    pub fn use_headset(&self) -> bool {
        matches!(self, XrProbe::Ready { .. })
    }
}

/// Says in one line what a probe found and what the client does about it.
pub fn describe(probe: &XrProbe) -> String {
    match probe {
        XrProbe::NotAsked => "Flat mode (--flat): not looking for a VR headset.".to_owned(),
        XrProbe::NotBuilt => "Flat mode: this build has no VR support (build with the `xr` feature).".to_owned(),
        XrProbe::NoLoader(why) => {
            format!(
                "Flat mode: no OpenXR runtime is installed ({why}). Install SteamVR, Monado or WiVRn to use a headset."
            )
        }
        XrProbe::NoRuntime(why) => {
            format!("Flat mode: no OpenXR runtime is running ({why}). Start your VR runtime to use a headset.")
        }
        XrProbe::NoHeadset { runtime } => {
            format!("Flat mode: OpenXR runtime '{runtime}' found, but no headset is connected.")
        }
        XrProbe::Ready { runtime } => format!(
            "VR mode: OpenXR runtime '{runtime}' and a headset found; the world shows in the headset and the window \
             mirrors it. Start with --flat to stay on the desktop."
        ),
    }
}

/// The OpenXR session: actions bound for the common controllers, read into
/// [`Controllers`](crate::actions::Controllers) every frame; the tracking root put where the
/// [`Rig`](crate::actions::Rig) is; VR mode on while the session runs, flat mode when the runtime
/// stops it (headset taken off, runtime closed).
#[cfg(feature = "xr")]
pub mod session {
    use bevy::prelude::*;
    use bevy::transform::TransformSystems;
    use bevy_mod_openxr::action_binding::{OxrSendActionBindings, OxrSuggestActionBinding};
    use bevy_mod_openxr::action_set_attaching::OxrAttachActionSet;
    use bevy_mod_openxr::action_set_syncing::{OxrActionSetSyncSet, OxrSyncActionSet};
    use bevy_mod_openxr::resources::OxrInstance;
    use bevy_mod_openxr::session::OxrSession;
    use bevy_mod_openxr::spaces::OxrSpaceLocationFlags;
    use bevy_mod_openxr::{openxr_session_available, openxr_session_running};
    use bevy_mod_xr::camera::XrCamera;
    use bevy_mod_xr::session::{XrPreDestroySession, XrSessionCreated, XrState, XrTrackingRoot};
    use bevy_mod_xr::spaces::{XrSpace, XrSpaceSyncSet};

    use crate::Frame;
    use crate::actions::{Controller, Controllers, InputMode, ReadDevices, Rig};

    /// Adds the session's systems to an app built with `bevy_mod_openxr::add_xr_plugins`.
    pub fn plugin(app: &mut App) {
        app.add_systems(Startup, create_actions.run_if(openxr_session_available))
            .add_systems(OxrSendActionBindings, suggest_bindings.run_if(resource_exists::<XrActions>))
            .add_systems(
                XrSessionCreated,
                (attach_actions, spawn_spaces)
                    .run_if(resource_exists::<XrActions>.and_then(resource_exists::<OxrSession>)),
            )
            .add_systems(XrPreDestroySession, despawn_spaces)
            .configure_sets(PreUpdate, XrSpaceSyncSet.after(OxrActionSetSyncSet))
            .add_systems(
                PreUpdate,
                sync_actions
                    .before(OxrActionSetSyncSet)
                    .run_if(openxr_session_running.and_then(resource_exists::<XrActions>)),
            )
            .add_systems(
                Update,
                (follow_session_state, read_xr.run_if(openxr_session_running.and_then(resource_exists::<XrActions>)))
                    .chain()
                    .in_set(Frame::Input)
                    .before(ReadDevices),
            )
            .add_systems(PostUpdate, place_tracking_root.before(TransformSystems::Propagate));
    }

    /// The OpenXR actions, each with a left and a right sub-action.
    #[derive(Resource)]
    struct XrActions {
        set: openxr::ActionSet,
        hands: [openxr::Path; 2],
        grip: openxr::Action<openxr::Posef>,
        aim: openxr::Action<openxr::Posef>,
        stick: openxr::Action<openxr::Vector2f>,
        stick_click: openxr::Action<bool>,
        trigger: openxr::Action<f32>,
        squeeze: openxr::Action<f32>,
        primary: openxr::Action<bool>,
        secondary: openxr::Action<bool>,
        menu: openxr::Action<bool>,
    }

    /// Which pose an action space follows.
    #[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
    struct TrackedPose {
        /// 0 left, 1 right.
        hand: usize,
        /// The grip (true) or the aim.
        grip: bool,
    }

    fn create_actions(instance: Res<OxrInstance>, mut commands: Commands) {
        match make_actions(&instance) {
            Ok(actions) => commands.insert_resource(actions),
            Err(error) => error!("VR: the controller actions could not be made ({error}); controllers will not work"),
        }
    }

    fn make_actions(instance: &OxrInstance) -> openxr::Result<XrActions> {
        let hands = [instance.string_to_path("/user/hand/left")?, instance.string_to_path("/user/hand/right")?];
        let set = instance.create_action_set("sanctuary", "Sanctuary", 0)?;
        Ok(XrActions {
            grip: set.create_action("grip_pose", "Hand grip", &hands)?,
            aim: set.create_action("aim_pose", "Pointing ray", &hands)?,
            stick: set.create_action("thumbstick", "Walk, turn and teleport", &hands)?,
            stick_click: set.create_action("thumbstick_click", "Go faster", &hands)?,
            trigger: set.create_action("trigger", "Select", &hands)?,
            squeeze: set.create_action("squeeze", "Grab", &hands)?,
            primary: set.create_action("primary", "Build mode / float down", &hands)?,
            secondary: set.create_action("secondary", "Turn the piece / float up", &hands)?,
            menu: set.create_action("menu", "Menu", &hands)?,
            set,
            hands,
        })
    }

    /// Suggested bindings for Meta Touch, Valve Index, HTC Vive wands and the plain KHR
    /// controller. Runtimes remap other controllers from these.
    fn suggest_bindings(actions: Res<XrActions>, mut bindings: MessageWriter<OxrSuggestActionBinding>) {
        let both =
            |input: &str| vec![format!("/user/hand/left/input/{input}"), format!("/user/hand/right/input/{input}")];
        let mut suggest = |profile: &'static str, action: openxr::sys::Action, paths: Vec<String>| {
            bindings.write(OxrSuggestActionBinding {
                action,
                interaction_profile: format!("/interaction_profiles/{profile}").into(),
                bindings: paths.into_iter().map(Into::into).collect(),
            });
        };
        for profile in
            ["oculus/touch_controller", "valve/index_controller", "htc/vive_controller", "khr/simple_controller"]
        {
            suggest(profile, actions.grip.as_raw(), both("grip/pose"));
            suggest(profile, actions.aim.as_raw(), both("aim/pose"));
        }
        let touch = "oculus/touch_controller";
        suggest(touch, actions.stick.as_raw(), both("thumbstick"));
        suggest(touch, actions.stick_click.as_raw(), both("thumbstick/click"));
        suggest(touch, actions.trigger.as_raw(), both("trigger/value"));
        suggest(touch, actions.squeeze.as_raw(), both("squeeze/value"));
        suggest(
            touch,
            actions.primary.as_raw(),
            vec!["/user/hand/left/input/x/click".into(), "/user/hand/right/input/a/click".into()],
        );
        suggest(
            touch,
            actions.secondary.as_raw(),
            vec!["/user/hand/left/input/y/click".into(), "/user/hand/right/input/b/click".into()],
        );
        suggest(touch, actions.menu.as_raw(), vec!["/user/hand/left/input/menu/click".into()]);
        let index = "valve/index_controller";
        suggest(index, actions.stick.as_raw(), both("thumbstick"));
        suggest(index, actions.stick_click.as_raw(), both("thumbstick/click"));
        suggest(index, actions.trigger.as_raw(), both("trigger/value"));
        suggest(index, actions.squeeze.as_raw(), both("squeeze/value"));
        suggest(index, actions.primary.as_raw(), both("a/click"));
        suggest(index, actions.secondary.as_raw(), both("b/click"));
        // The Index has no menu button for applications: the left trackpad pressed opens it.
        suggest(index, actions.menu.as_raw(), vec!["/user/hand/left/input/trackpad/force".into()]);
        let vive = "htc/vive_controller";
        suggest(vive, actions.stick.as_raw(), both("trackpad"));
        suggest(vive, actions.stick_click.as_raw(), both("trackpad/click"));
        suggest(vive, actions.trigger.as_raw(), both("trigger/value"));
        suggest(vive, actions.squeeze.as_raw(), both("squeeze/click"));
        suggest(vive, actions.menu.as_raw(), both("menu/click"));
        let simple = "khr/simple_controller";
        suggest(simple, actions.trigger.as_raw(), both("select/click"));
        suggest(simple, actions.menu.as_raw(), both("menu/click"));
    }

    fn attach_actions(actions: Res<XrActions>, mut attach: MessageWriter<OxrAttachActionSet>) {
        attach.write(OxrAttachActionSet(actions.set.clone()));
    }

    fn spawn_spaces(actions: Res<XrActions>, session: Res<OxrSession>, mut commands: Commands) {
        for (hand, path) in actions.hands.iter().enumerate() {
            for grip in [true, false] {
                let action = if grip { &actions.grip } else { &actions.aim };
                match session.create_action_space(action, *path, Isometry3d::IDENTITY) {
                    Ok(space) => {
                        commands.spawn((space, TrackedPose { hand, grip }));
                    }
                    Err(error) => warn!("VR: no pose space for a hand ({error})"),
                }
            }
        }
    }

    fn despawn_spaces(spaces: Query<Entity, With<TrackedPose>>, mut commands: Commands) {
        for space in &spaces {
            commands.entity(space).despawn();
        }
    }

    fn sync_actions(actions: Res<XrActions>, mut sync: MessageWriter<OxrSyncActionSet>) {
        sync.write(OxrSyncActionSet(actions.set.clone()));
    }

    /// VR mode while the session runs; flat mode otherwise.
    fn follow_session_state(
        state: Option<Res<XrState>>,
        mut mode: ResMut<InputMode>,
        mut controllers: ResMut<Controllers>,
        mut told: Local<bool>,
    ) {
        if !*told && state.as_deref().is_none_or(|state| *state == XrState::Unavailable) {
            *told = true;
            warn!("VR: OpenXR did not start (the error above says why); the window is used, in flat mode");
        }
        let running = state.is_some_and(|state| *state == XrState::Running);
        let wanted = if running { InputMode::Vr } else { InputMode::Flat };
        if *mode != wanted {
            info!(
                "{}",
                if running {
                    "VR: the session runs; you are in the headset"
                } else {
                    "VR: the session stopped; flat mode"
                }
            );
            *mode = wanted;
            *controllers = Controllers::default();
        }
    }

    /// Reads the head, the hand poses and the buttons into [`Controllers`].
    fn read_xr(
        actions: Res<XrActions>,
        session: Res<OxrSession>,
        spaces: Query<(&TrackedPose, &Transform, &OxrSpaceLocationFlags), With<XrSpace>>,
        eyes: Query<&Transform, With<XrCamera>>,
        mut controllers: ResMut<Controllers>,
    ) {
        let session: &openxr::Session<openxr::AnyGraphics> = &session;
        let mut head: Option<(Vec3, Quat, f32)> = None;
        for eye in &eyes {
            head = Some(match head {
                None => (eye.translation, eye.rotation, 1.0),
                Some((sum, rotation, count)) => (sum + eye.translation, rotation, count + 1.0),
            });
        }
        controllers.head =
            head.map(|(sum, rotation, count)| Transform::from_translation(sum / count).with_rotation(rotation));
        for (hand, path) in actions.hands.iter().enumerate() {
            let active = |state: openxr::Result<openxr::ActionState<bool>>| {
                state.is_ok_and(|state| state.is_active && state.current_state)
            };
            let value = |state: openxr::Result<openxr::ActionState<f32>>| {
                state.ok().filter(|state| state.is_active).map_or(0.0, |state| state.current_state.clamp(0.0, 1.0))
            };
            let stick = actions
                .stick
                .state(session, *path)
                .ok()
                .filter(|state| state.is_active)
                .map_or(Vec2::ZERO, |state| Vec2::new(state.current_state.x, state.current_state.y));
            let controller = Controller {
                grip: None,
                aim: None,
                stick: if stick.is_finite() { stick.clamp(Vec2::NEG_ONE, Vec2::ONE) } else { Vec2::ZERO },
                stick_click: active(actions.stick_click.state(session, *path)),
                trigger: value(actions.trigger.state(session, *path)),
                squeeze: value(actions.squeeze.state(session, *path)),
                primary: active(actions.primary.state(session, *path)),
                secondary: active(actions.secondary.state(session, *path)),
                menu: active(actions.menu.state(session, *path)),
            };
            let slot = if hand == 0 { &mut controllers.left } else { &mut controllers.right };
            *slot = controller;
        }
        for (pose, transform, flags) in &spaces {
            let valid = flags.0.contains(openxr::SpaceLocationFlags::POSITION_VALID)
                && flags.0.contains(openxr::SpaceLocationFlags::ORIENTATION_VALID);
            let slot = if pose.hand == 0 { &mut controllers.left } else { &mut controllers.right };
            let value = valid.then_some(*transform);
            if pose.grip {
                slot.grip = value;
            } else {
                slot.aim = value;
            }
        }
    }

    /// The tracking root follows the rig, so the headset's cameras and the hands stand where
    /// locomotion put the person.
    fn place_tracking_root(
        mode: Res<InputMode>,
        rig: Res<Rig>,
        mut roots: Query<&mut Transform, With<XrTrackingRoot>>,
    ) {
        if *mode != InputMode::Vr {
            return;
        }
        for mut root in &mut roots {
            *root = rig.transform();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_mode_is_honoured_without_probing() {
        assert_eq!(probe(true), XrProbe::NotAsked);
    }

    /// On machines without OpenXR (CI) the probe must come back with a reason instead of
    /// panicking, and that reason must reach the message people read.
    #[test]
    fn probing_without_a_runtime_falls_back_to_flat_mode() {
        let found = probe(false);
        assert_ne!(found, XrProbe::NotAsked, "only --flat skips the probe");
        if cfg!(not(feature = "xr")) {
            assert_eq!(found, XrProbe::NotBuilt);
        }
        if let XrProbe::NoLoader(why) | XrProbe::NoRuntime(why) = &found {
            assert!(describe(&found).contains(why.as_str()));
        }
    }
}
