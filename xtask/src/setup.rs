//! `cargo xtask setup`: the system packages the build and the tests need.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Result, bail};

/// Debian packages every build needs: pkg-config finds the libraries, ALSA and udev serve
/// audio and input devices, dbus is needed by cpal, and g++ compiles meshoptimizer's decoders.
const BUILD_PACKAGES: [&str; 5] = ["pkg-config", "libasound2-dev", "libudev-dev", "libdbus-1-dev", "g++"];
/// Debian packages the tests need: Mesa's software Vulkan (lavapipe) and a virtual X display for
/// rendering; `espeak-ng` speaks the voice tests' speech and `sox` converts it to 48 kHz;
/// `ffmpeg` makes the films the video tests and benchmark decode.
const RENDER_TEST_PACKAGES: [&str; 5] = ["mesa-vulkan-drivers", "xvfb", "espeak-ng", "sox", "ffmpeg"];

/// Which packages a command needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Building and running the client.
    Build,
    /// Building plus the rendering tests.
    All,
}

/// Checks the packages and installs the missing ones where this user may.
pub fn run(needs: Needs) -> Result<()> {
    let mut wanted: Vec<&str> = BUILD_PACKAGES.to_vec();
    if needs == Needs::All {
        wanted.extend(RENDER_TEST_PACKAGES);
    }
    if !command_exists("dpkg-query") {
        eprintln!(
            "note: this is not a Debian or Ubuntu system, so packages are not checked. Make sure the \
             equivalents of these are installed: {}",
            wanted.join(" ")
        );
        return Ok(());
    }
    let missing: Vec<&str> = wanted.into_iter().filter(|package| !is_installed(package)).collect();
    install_packages(&missing)
}

/// Installs Debian packages with apt-get, as root or with passwordless sudo.
fn install_packages(missing: &[&str]) -> Result<()> {
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    eprintln!("installing missing system packages: {list}");
    let mut prefix: Vec<&str> = Vec::new();
    if !is_root() {
        if command_exists("sudo")
            && Command::new("sudo").args(["-n", "true"]).output().is_ok_and(|out| out.status.success())
        {
            prefix.push("sudo");
            prefix.push("-n");
        } else {
            bail!(
                "these system packages are missing: {list}\n\
                 install them, then run this command again:\n\n    sudo apt-get install -y {list}\n"
            );
        }
    }
    let apt = |args: &[&str]| -> Result<bool> {
        let mut command = Command::new(prefix.first().copied().unwrap_or("apt-get"));
        if !prefix.is_empty() {
            command.args(&prefix[1..]).arg("apt-get");
        }
        command.env("DEBIAN_FRONTEND", "noninteractive").args(args);
        Ok(command.status()?.success())
    };
    let mut install = vec!["install", "-y", "-q"];
    install.extend(missing.iter().copied());
    // Try first with the package lists as they are; refresh them only if that fails.
    let installed = apt(&install)? || (apt(&["update", "-q"])? && apt(&install)?);
    if !installed {
        bail!("apt-get could not install {list}; install them by hand:\n\n    sudo apt-get install -y {list}\n");
    }
    let still_missing: Vec<&str> = missing.iter().copied().filter(|package| !is_installed(package)).collect();
    if !still_missing.is_empty() {
        bail!("still missing after apt-get: {}", still_missing.join(" "));
    }
    Ok(())
}

fn is_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("install ok installed"))
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// The glTF Transform CLI version the importer tests make their models with.
const GLTF_TRANSFORM: &str = "@gltf-transform/cli@4.5.1";

/// The glTF Transform CLI (`gltf-transform`, from npm), with which the importer tests make
/// models as tools export them: the one on the PATH, or one installed for these tests under
/// `~/.cache/sanctuary/tools` (with Debian's `nodejs` and `npm` when there is no npm).
pub fn gltf_transform() -> Result<PathBuf> {
    if let Some(path) = find_on_path("gltf-transform") {
        return Ok(path);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let prefix = home.join(".cache").join("sanctuary").join("tools");
    let installed = prefix.join("node_modules").join(".bin").join("gltf-transform");
    if installed.is_file() {
        return Ok(installed);
    }
    if !command_exists("npm") {
        install_packages(&["nodejs", "npm"])?;
    }
    std::fs::create_dir_all(&prefix)?;
    eprintln!("installing {GLTF_TRANSFORM} into {} for the importer tests", prefix.display());
    let status = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(&prefix)
        .arg(GLTF_TRANSFORM)
        .status()?;
    if !status.success() || !installed.is_file() {
        bail!("npm could not install {GLTF_TRANSFORM}; install it by hand:\n\n    npm install -g {GLTF_TRANSFORM}\n");
    }
    Ok(installed)
}

/// The packages the KTX2 test tool runs on: BinomialLLC's Basis Universal encoder compiled to
/// WebAssembly (`ktx2-encoder`), glTF Transform's library to rewrite the model, `sharp` to read
/// its PNGs.
const KTX2_PACKAGES: &[&str] =
    &["ktx2-encoder@0.6.0", "@gltf-transform/core@4.5.1", "@gltf-transform/extensions@4.5.1", "sharp@0.34.5"];

/// `tests/tools/ktx2.mjs`, which writes a model's textures as KTX2 (Basis Universal ETC1S or
/// UASTC) for the importer tests, installed with its packages under
/// `~/.cache/sanctuary/tools/ktx2` (where Node finds them): the path of the script to run with
/// `node`.
pub fn ktx2_tool() -> Result<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let prefix = home.join(".cache").join("sanctuary").join("tools").join("ktx2");
    let script = prefix.join("ktx2.mjs");
    let installed = prefix.join("node_modules").join("ktx2-encoder").join("package.json");
    if !installed.is_file() {
        if !command_exists("npm") {
            install_packages(&["nodejs", "npm"])?;
        }
        std::fs::create_dir_all(&prefix)?;
        eprintln!("installing {} into {} for the importer tests", KTX2_PACKAGES.join(" "), prefix.display());
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&prefix)
            .args(KTX2_PACKAGES)
            .status()?;
        if !status.success() || !installed.is_file() {
            bail!("npm could not install {}; check the network to the npm registry", KTX2_PACKAGES.join(" "));
        }
    }
    // Written each time, so the script in the tree is the one that runs.
    std::fs::write(&script, include_str!("../../tests/tools/ktx2.mjs"))?;
    Ok(script)
}

pub fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join(name)).find(|path| path.is_file()))
}

/// Whether `name` is a program on the PATH.
pub fn command_exists(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
        .unwrap_or(false)
}
