//! VR: looking for an OpenXR runtime and a headset. Full VR mode comes in its own release; until
//! then a found headset is reported and the client runs in flat mode, as it does without one.

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

/// The line the client prints at start about VR.
pub fn startup_message(flat: bool) -> String {
    describe(&probe(flat))
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
            "Flat mode: OpenXR runtime '{runtime}' and a headset found; this version shows the world on the desktop only \
             (VR mode comes in a later release)."
        ),
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
