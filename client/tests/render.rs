//! Renders every region with the real `sanctuary` binary under Xvfb on Mesa's software Vulkan,
//! and checks that each picture shows what that place should show. The pictures stay in
//! `<target>/tmp/screenshots/` for people to look at.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sanctuary_engine::{RegionId, RoomKind};

/// How long one region may take to start, render and save, on a slow software renderer.
const RENDER_TIMEOUT: Duration = Duration::from_secs(240);
const WIDTH: u32 = 960;
const HEIGHT: u32 = 540;

fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots")
}

/// Lavapipe's driver manifest, used so that Xvfb runs get the software renderer even on a
/// machine with a GPU.
fn lavapipe_manifest() -> Option<PathBuf> {
    ["/usr/share/vulkan/icd.d/lvp_icd.x86_64.json", "/usr/share/vulkan/icd.d/lvp_icd.aarch64.json"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Runs the client in flat mode to take a picture of `region`; returns the picture.
fn render(region: RegionId) -> Result<image::RgbImage, String> {
    run_client(region, region.slug(), &["--flat"]).map(|(picture, _)| picture)
}

/// Runs the client with `options` to take a picture of `region` named `name`; returns the
/// picture and what the client printed.
fn run_client(region: RegionId, name: &str, options: &[&str]) -> Result<(image::RgbImage, String), String> {
    run_client_for(region, name, options, 45)
}

/// [`run_client`] for `frames` frames.
fn run_client_for(
    region: RegionId,
    name: &str,
    options: &[&str],
    frames: u32,
) -> Result<(image::RgbImage, String), String> {
    let path = screenshot_dir().join(format!("{name}.png"));
    let _ = std::fs::remove_file(&path);
    let client = env!("CARGO_BIN_EXE_sanctuary");
    let mut command = if on_path("xvfb-run") {
        let mut command = Command::new("xvfb-run");
        command.args(["--auto-servernum", "--server-args=-screen 0 1280x720x24", client]);
        if let Some(manifest) = lavapipe_manifest() {
            command.env("VK_ICD_FILENAMES", &manifest).env("VK_DRIVER_FILES", &manifest);
        }
        command
    } else if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some() {
        Command::new(client)
    } else {
        return Err(
            "no xvfb-run and no display: install them with `sudo apt-get install -y xvfb mesa-vulkan-drivers` \
                    or run `cargo xtask test`, which does"
                .to_owned(),
        );
    };
    // Alone unless the options say whom to meet.
    if !options.contains(&"--join") {
        command.arg("--no-network");
    }
    command
        .args(options)
        .args(["--region", region.slug(), "--frames", &frames.to_string()])
        .args(["--width", &WIDTH.to_string(), "--height", &HEIGHT.to_string()])
        .arg("--screenshot")
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command.spawn().map_err(|error| format!("could not start the client: {error}"))?;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|error| error.to_string())? {
            break status;
        }
        if started.elapsed() > RENDER_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("rendering {region} took longer than {RENDER_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut log = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut stderr, &mut log);
    }
    let mut printed = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut stdout, &mut printed);
    }
    if !status.success() {
        let tail: String =
            log.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
        return Err(format!("the client failed to render {region} ({status}):\n{tail}"));
    }
    // A shader that fails to compile leaves its objects out of the picture without failing the
    // run; the log says so, and that is a failure too.
    if let Some(line) =
        log.lines().find(|line| line.contains("failed to process shader") || line.contains("pipeline_cache"))
    {
        return Err(format!("a shader failed for {region}: {line}"));
    }
    eprintln!("rendered {region} in {:.1} s", started.elapsed().as_secs_f32());
    let picture = image::open(&path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    Ok((picture.to_rgb8(), printed))
}

/// The mean brightness and the share of bright pixels in a box of the picture.
fn brightness_in(picture: &image::RgbImage, (x, y, width, height): (u32, u32, u32, u32)) -> (f32, f32) {
    let values: Vec<f32> = (y..y + height)
        .flat_map(|row| (x..x + width).map(move |column| (column, row)))
        .map(|(column, row)| hsv(picture.get_pixel(column, row).0).2)
        .collect();
    let mean = values.iter().sum::<f32>() / values.len() as f32;
    let bright = values.iter().filter(|value| **value > 0.6).count() as f32 / values.len() as f32;
    (mean, bright)
}

/// With the `xr` feature and no OpenXR runtime (as on CI), the client says so, and even when
/// told to start OpenXR anyway it falls back to the window and draws the lobby: no panic.
#[test]
fn without_a_runtime_the_client_says_so_and_draws_in_the_window() {
    std::fs::create_dir_all(screenshot_dir()).expect("the target directory is writable");
    let (picture, printed) =
        run_client(RegionId::Lobby, "force-xr-fallback", &["--force-xr"]).expect("the client falls back");
    assert!(printed.contains("Flat mode") || printed.contains("VR mode"), "the VR line is printed: {printed}");
    check_not_blank(&picture).expect("a picture of the lobby");
    assert!(vivid_share(&picture, (290.0, 335.0)) > 0.003, "the lobby's magenta neon shows");
}

/// `--vr-preview` draws the VR view in the window: the menu panel floats ahead of the eyes,
/// dark with light text, where the flat view shows the lobby's bright beam.
#[test]
fn the_vr_preview_shows_the_menu_panel_in_the_world() {
    std::fs::create_dir_all(screenshot_dir()).expect("the target directory is writable");
    let (picture, _) =
        run_client(RegionId::Lobby, "vr-preview", &["--flat", "--vr-preview"]).expect("the preview renders");
    check_not_blank(&picture).expect("a picture");
    // The panel's middle, under the menu's text and buttons.
    let (mean, bright) = brightness_in(&picture, (WIDTH / 2 - 120, HEIGHT / 2 - 50, 240, 110));
    eprintln!("vr preview: panel area mean brightness {mean:.3}, bright share {:.3}", bright);
    assert!(mean < 0.3, "the panel's dark face fills the middle of the view (mean brightness {mean:.3})");
    assert!(bright > 0.005, "the panel's text and buttons are drawn on it (bright share {bright:.4})");
}

/// Hue (degrees), saturation and value of a pixel.
fn hsv([r, g, b]: [u8; 3]) -> (f32, f32, f32) {
    let [r, g, b] = [r, g, b].map(|channel| f32::from(channel) / 255.0);
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let delta = max - min;
    let hue = if delta == 0.0 {
        0.0
    } else if max == r {
        60.0 * ((g - b) / delta).rem_euclid(6.0)
    } else if max == g {
        60.0 * ((b - r) / delta + 2.0)
    } else {
        60.0 * ((r - g) / delta + 4.0)
    };
    let saturation = if max == 0.0 { 0.0 } else { delta / max };
    (hue, saturation, max)
}

/// Share of the picture's pixels that are vivid (saturated and bright) and within a hue range.
fn vivid_share(picture: &image::RgbImage, hues: (f32, f32)) -> f32 {
    coloured_share(picture, hues, 0.45)
}

/// Share of the picture's pixels within a hue range, at least this saturated, and not dark.
fn coloured_share(picture: &image::RgbImage, hues: (f32, f32), min_saturation: f32) -> f32 {
    let count = picture
        .pixels()
        .filter(|pixel| {
            let (hue, saturation, value) = hsv(pixel.0);
            let in_range =
                if hues.0 <= hues.1 { hue >= hues.0 && hue <= hues.1 } else { hue >= hues.0 || hue <= hues.1 };
            saturation > min_saturation && value > 0.35 && in_range
        })
        .count();
    count as f32 / (picture.width() * picture.height()) as f32
}

/// Share of the pixels brighter than `value`, of any colour.
fn bright_share(picture: &image::RgbImage, value: f32) -> f32 {
    let count = picture.pixels().filter(|pixel| hsv(pixel.0).2 > value).count();
    count as f32 / (picture.width() * picture.height()) as f32
}

/// The picture is not blank: its brightness varies and it has many distinct colours.
fn check_not_blank(picture: &image::RgbImage) -> Result<(), String> {
    let lumas: Vec<f32> = picture.pixels().map(|pixel| hsv(pixel.0).2).collect();
    let mean = lumas.iter().sum::<f32>() / lumas.len() as f32;
    let variance = lumas.iter().map(|luma| (luma - mean).powi(2)).sum::<f32>() / lumas.len() as f32;
    let mut colours: Vec<[u8; 3]> = picture.pixels().map(|pixel| pixel.0.map(|channel| channel >> 3)).collect();
    colours.sort_unstable();
    colours.dedup();
    if variance.sqrt() < 0.03 || colours.len() < 64 {
        return Err(format!(
            "looks blank: brightness spread {:.3}, {} distinct colours",
            variance.sqrt(),
            colours.len()
        ));
    }
    Ok(())
}

/// What each region must show, as (what, hue range, least share of the picture).
fn expectations(region: RegionId) -> Vec<(&'static str, (f32, f32), f32)> {
    match region {
        RegionId::Lobby => vec![("magenta neon", (290.0, 335.0), 0.003), ("cyan neon", (170.0, 205.0), 0.003)],
        RegionId::City => vec![("cyan street grid", (170.0, 205.0), 0.004)],
        RegionId::Room(RoomKind::Marketplace) => vec![("orange awnings", (18.0, 45.0), 0.01)],
        RegionId::Room(RoomKind::Cinema) => vec![("red seats", (340.0, 12.0), 0.01)],
        RegionId::Room(RoomKind::LectureHall) => vec![("green slides", (110.0, 165.0), 0.004)],
        RegionId::Room(RoomKind::Meeting) => vec![("blue chairs and display", (200.0, 240.0), 0.01)],
        RegionId::Room(RoomKind::Private) => vec![("purple lock sign, lamp and trim", (255.0, 295.0), 0.004)],
    }
}

/// Renders the lobby, the city and every room kind, and checks each picture: not blank, the
/// right size, the colours that mark the place, and different from every other region.
#[test]
fn every_region_renders_what_it_should() {
    std::fs::create_dir_all(screenshot_dir()).expect("the target directory is writable");
    let mut failures = Vec::new();
    let mut pictures = Vec::new();
    for region in RegionId::all() {
        let picture = match render(region) {
            Ok(picture) => picture,
            Err(error) => {
                failures.push(format!("{region}: {error}"));
                continue;
            }
        };
        if picture.dimensions() != (WIDTH, HEIGHT) {
            failures.push(format!("{region}: picture is {:?}, not {WIDTH}x{HEIGHT}", picture.dimensions()));
        }
        if let Err(error) = check_not_blank(&picture) {
            failures.push(format!("{region}: {error}"));
        }
        for (what, hues, least) in expectations(region) {
            let share = vivid_share(&picture, hues);
            eprintln!("{region}: {what} covers {:.2}% (needs {:.2}%)", share * 100.0, least * 100.0);
            if share < least {
                failures.push(format!(
                    "{region}: expected {what} on at least {:.2}% of the picture, found {:.2}%",
                    least * 100.0,
                    share * 100.0
                ));
            }
        }
        if matches!(region, RegionId::Room(RoomKind::Cinema | RoomKind::LectureHall)) {
            // The screen or the slides are the brightest things in the room and fill a good part
            // of the view.
            let share = bright_share(&picture, 0.6);
            eprintln!("{region}: bright screen covers {:.2}% (needs 5%)", share * 100.0);
            if share < 0.05 {
                failures.push(format!(
                    "{region}: the screen should light at least 5% of the view, found {:.2}%",
                    share * 100.0
                ));
            }
        }
        pictures.push((region, picture));
    }
    for (index, (region_a, a)) in pictures.iter().enumerate() {
        for (region_b, b) in &pictures[index + 1..] {
            let difference: u64 = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| u64::from(x.abs_diff(*y))).sum();
            let mean = difference as f64 / a.as_raw().len() as f64;
            if mean < 4.0 {
                failures.push(format!("{region_a} and {region_b} look almost the same (mean difference {mean:.1})"));
            }
        }
    }
    eprintln!("screenshots are in {}", screenshot_dir().display());
    assert!(failures.is_empty(), "rendering checks failed:\n{}", failures.join("\n"));
}

/// `gltf-transform`: where `cargo xtask test` put it, or on the PATH.
fn gltf_transform() -> PathBuf {
    if let Some(path) = std::env::var_os("SANCTUARY_GLTF_TRANSFORM") {
        return PathBuf::from(path);
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths).map(|dir| dir.join("gltf-transform")).find(|path| path.is_file())
        })
        .expect("gltf-transform makes this test's avatar: `cargo xtask setup` installs it")
}

/// Issue 16: Bo (a node in this process) wears the shipped avatar "grove", as a tool would export
/// it compressed (Draco geometry, WebP textures, by glTF Transform), and stands in front of
/// Ada in her private room (she invites him as she starts, and he goes in once he holds her
/// room's key); his node makes it plain at import; Ada's client, the real binary,
/// fetches it from him and draws it from its model: its bones found, the plain body gone, and
/// grove's green shirt (a WebP texture now) in the middle of the purple room.
#[test]
fn a_second_peer_draws_an_avatar_fetched_from_its_wearer() {
    use sanctuary_net::{Command as NodeCommand, Event, NetRuntime, NodeConfig, PoseFrame, QuantisedTransform};
    use sanctuary_net::{RelayChoice, spawn_node};

    let region = RegionId::Room(RoomKind::Private);
    let layout = sanctuary_engine::RegionLayout::generate(region, sanctuary_engine::WORLD_SEED, 0);
    let forward = bevy::math::Vec3::new(layout.spawn_yaw.sin(), 0.0, layout.spawn_yaw.cos());
    let dirs = tempfile::tempdir().expect("temp dir");
    let runtime = NetRuntime::new().expect("a runtime");
    let mut config = NodeConfig::new(dirs.path().join("bo"));
    config.relays = RelayChoice::Disabled;
    config.lan_discovery = false;
    config.name = Some("Bo".to_owned());
    // His plain body would be orange: no green unless his avatar is drawn.
    config.colour = Some([255, 120, 0]);
    config.regions = vec![RegionId::Lobby];
    let mut bo = spawn_node(runtime.handle(), config);
    let (ticket, bo_id) = runtime.block_on(async {
        loop {
            match tokio::time::timeout(Duration::from_secs(20), bo.next_event()).await {
                Ok(Some(Event::Started { ticket, id, .. })) => break (ticket, id),
                Ok(Some(_)) => {}
                other => panic!("Bo's node did not start: {other:?}"),
            }
        }
    });
    // Ada is a stranger to Bo: he takes her invitation all the same.
    let mut shields = sanctuary_engine::shields::Shields::default();
    shields.set(sanctuary_engine::shields::Category::Direct, sanctuary_engine::shields::Reach::Everyone);
    bo.send(NodeCommand::Shields(shields));
    // Bo stands 2.2 m in front of where Ada arrives, facing her.
    let head = layout.spawn + forward * 2.2;
    let facing = bevy::math::Quat::from_rotation_arc(bevy::math::Vec3::NEG_Z, -forward);
    let at = |offset: bevy::math::Vec3| QuantisedTransform::new(head + facing * offset, facing);
    let pose = PoseFrame {
        head: at(bevy::math::Vec3::ZERO),
        left_hand: at(bevy::math::Vec3::new(-0.3, -0.75, -0.1)),
        right_hand: at(bevy::math::Vec3::new(0.3, -0.75, -0.1)),
    };
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/avatars/grove.glb");
    let compressed = dirs.path().join("grove-draco.glb");
    let grove = dirs.path().join("grove-draco-webp.glb");
    // Lossless WebP: grove's texture is a palette of flat colours that lossy WebP would blur.
    for (command, from, to, options) in
        [("draco", &shipped, &compressed, &[][..]), ("webp", &compressed, &grove, &["--lossless", "true"][..])]
    {
        let out = Command::new(gltf_transform())
            .arg(command)
            .arg(from)
            .arg(to)
            .args(options)
            .output()
            .expect("gltf-transform runs");
        assert!(out.status.success(), "gltf-transform {command}: {}", String::from_utf8_lossy(&out.stderr));
    }
    bo.send(NodeCommand::Pose(pose));
    bo.send(NodeCommand::Wear(Some(grove)));
    // Bo's events are read while Ada runs, so that his node never waits on them; once he is
    // invited, he goes into her room.
    runtime.handle().spawn(async move {
        while let Some(event) = bo.next_event().await {
            if let Event::Rooms(rooms) = event
                && let Some(owner) = rooms.invited_to.first()
                && rooms.visiting.is_none()
            {
                bo.send(NodeCommand::Visit(Some(*owner)));
                bo.send(NodeCommand::Regions(vec![region]));
            }
        }
    });

    let ada_dir = dirs.path().join("ada").display().to_string();
    let invite = format!("/invite {bo_id}");
    let options = [
        "--offline",
        "--no-lan",
        "--no-voice",
        "--join",
        &ticket,
        "--data-dir",
        &ada_dir,
        "--after-avatars",
        "1",
        "--chat",
        &invite,
    ];
    let (picture, _) = run_client(region, "avatar-drawn", &options).unwrap_or_else(|error| panic!("{error}"));
    check_not_blank(&picture).unwrap_or_else(|error| panic!("{error}"));
    // The middle third of the picture, where Bo stands.
    let (width, height) = (picture.width(), picture.height());
    let middle = image::imageops::crop_imm(&picture, width / 3, height / 4, width / 3, height / 2).to_image();
    // The shirt glows a soft green, less saturated than the room's neon; the purple room has no
    // green of its own (see every_region_renders_what_it_should), nor has Bo's plain body.
    let green = coloured_share(&middle, (95.0, 160.0), 0.2);
    assert!(green > 0.03, "grove's green shirt fills {green:.4} of the middle of Ada's view");
}

/// A picture of the number `n` in eight vertical bars, green for a one and blue for a zero
/// (colours nothing else in the cinema has).
fn coloured_number(n: u32, width: u32, height: u32) -> Vec<u8> {
    let mut rgb = Vec::with_capacity((width * height * 3) as usize);
    for _ in 0..height {
        for x in 0..width {
            let on = (n >> (7 - (x * 8 / width))) & 1 == 1;
            rgb.extend_from_slice(if on { &[0, 230, 0] } else { &[0, 0, 230] });
        }
    }
    rgb
}

/// The number the screen shows in a picture of the cinema: along the row where the green and
/// blue span widest, that span cut into eight bars, each read by its colour.
fn number_on_screen(picture: &image::RgbImage) -> Option<u32> {
    let bit = |[r, g, b]: [u8; 3]| match () {
        () if g > 120 && g > r.saturating_mul(2) && g > b.saturating_mul(2) => Some(true),
        () if b > 120 && b > r.saturating_mul(2) && b > g.saturating_mul(2) => Some(false),
        () => None,
    };
    let (first, last, row) = (0..picture.height())
        .filter_map(|row| {
            let coloured: Vec<u32> =
                (0..picture.width()).filter(|x| bit(picture.get_pixel(*x, row).0).is_some()).collect();
            Some((*coloured.first()?, *coloured.last()?, row))
        })
        .max_by_key(|(first, last, _)| last - first)?;
    if last - first < picture.width() / 8 {
        return None;
    }
    let span = (last - first + 1) as f32;
    (0..8).try_fold(0, |number, bar| {
        let x = first + ((bar as f32 + 0.5) * span / 8.0) as u32;
        bit(picture.get_pixel(x, row).0).map(|on| (number << 1) | u32::from(on))
    })
}

/// A node with no client, offline, in `region`, on a runtime of its own.
fn headless_node(dir: &Path, name: &str, region: RegionId) -> (sanctuary_net::NetRuntime, sanctuary_net::NodeHandle) {
    use sanctuary_net::{NetRuntime, NodeConfig, RelayChoice, spawn_node};
    let runtime = NetRuntime::new().expect("a runtime");
    let mut config = NodeConfig::new(dir.to_owned());
    config.relays = RelayChoice::Disabled;
    config.lan_discovery = false;
    config.name = Some(name.to_owned());
    config.regions = vec![region];
    let node = spawn_node(runtime.handle(), config);
    (runtime, node)
}

/// Two people in the cinema watch a film a third shares, paused at 7 s: each client fetches
/// it, opens it, seeks and draws the picture due onto the screen, and both show the same one.
#[test]
fn two_peers_in_the_cinema_show_the_same_picture_of_a_shared_film() {
    use sanctuary_net::screen::ScreenAction;
    use sanctuary_net::{Command as NodeCommand, Event};

    std::fs::create_dir_all(screenshot_dir()).expect("the target directory is writable");
    let dirs = tempfile::tempdir().expect("temp dir");
    let film = dirs.path().join("numbers.mp4");
    let (width, height, rate) = (320u32, 180u32, 25u32);
    let mut ffmpeg = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24"])
        .args(["-s", &format!("{width}x{height}"), "-r", &rate.to_string(), "-i", "-"])
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "25", "-movflags", "+faststart"])
        .arg(&film)
        .stdin(Stdio::piped())
        .spawn()
        .expect("ffmpeg runs (`cargo xtask setup` installs it)");
    let mut input = ffmpeg.stdin.take().expect("stdin");
    for n in 0..(rate * 12) {
        std::io::Write::write_all(&mut input, &coloured_number(n % 256, width, height)).expect("ffmpeg takes it");
    }
    drop(input);
    assert!(ffmpeg.wait().expect("ffmpeg ends").success(), "ffmpeg made the film");

    // Cy shares it, goes to 7 s and pauses there.
    let region = RegionId::Room(RoomKind::Cinema);
    let (runtime, mut cy) = headless_node(&dirs.path().join("cy"), "Cy", region);
    let ticket = runtime.block_on(async {
        let mut ticket = None;
        cy.send(NodeCommand::ShareFilm(film.clone()));
        loop {
            match tokio::time::timeout(Duration::from_secs(30), cy.next_event()).await {
                Ok(Some(Event::Started { ticket: started, .. })) => ticket = Some(started),
                Ok(Some(Event::Screen(view))) if view.state.film().is_some() && view.state.clock.playing() => {
                    cy.send(NodeCommand::Screen(ScreenAction::Seek(7.02)));
                    cy.send(NodeCommand::Screen(ScreenAction::Pause));
                }
                Ok(Some(Event::Screen(view))) if !view.state.clock.playing() => {
                    break ticket.expect("started before it shared");
                }
                Ok(Some(Event::ScreenRefused(reason))) => panic!("Cy's film was refused: {reason}"),
                Ok(Some(_)) => {}
                other => panic!("Cy did not share the film: {other:?}"),
            }
        }
    });
    runtime.handle().spawn(async move { while cy.next_event().await.is_some() {} });

    // Ada and Bo come in side by side and look at the screen.
    let viewers: Vec<_> = [("Ada", "--at=-1.2,4,14"), ("Bo", "--at=1.2,4,14")]
        .into_iter()
        .map(|(name, at)| {
            let dir = dirs.path().join(name).display().to_string();
            let ticket = ticket.clone();
            std::thread::spawn(move || {
                let options =
                    ["--offline", "--no-lan", "--no-voice", "--join", &ticket, "--data-dir", &dir, "--name", name, at];
                run_client_for(region, &format!("cinema-{}", name.to_lowercase()), &options, 60)
            })
        })
        .collect();
    let numbers: Vec<Option<u32>> = viewers
        .into_iter()
        .map(|viewer| {
            let (picture, _) = viewer.join().expect("joins").unwrap_or_else(|error| panic!("{error}"));
            number_on_screen(&picture)
        })
        .collect();
    // Paused at 7.02 s: picture 175 (7.00 s) shows, 10101111 in bars.
    assert_eq!(numbers, vec![Some(175), Some(175)], "the numbers on Ada's and Bo's screens");
}

/// Where pixels of a hue range are in a picture: their share and their mean row.
fn hue_at(picture: &image::RgbImage, hues: (f32, f32)) -> (f32, f32) {
    let rows: Vec<u32> = picture
        .enumerate_pixels()
        .filter(|(_, _, pixel)| {
            let (hue, saturation, value) = hsv(pixel.0);
            saturation > 0.45 && value > 0.35 && hue >= hues.0 && hue <= hues.1
        })
        .map(|(_, y, _)| y)
        .collect();
    let share = rows.len() as f32 / (picture.width() * picture.height()) as f32;
    let mean = rows.iter().map(|row| *row as f32).sum::<f32>() / rows.len().max(1) as f32;
    (share, mean)
}

/// Two people come into the lecture hall after Cy, presenting, moved on to his second slide
/// (magenta above yellow): each client fetches it and shows it upright on the hall's screens,
/// and his first slide (red) shows nowhere.
#[test]
fn two_peers_in_the_lecture_hall_show_the_presenters_slide_upright() {
    use sanctuary_net::stage::StageAction;
    use sanctuary_net::{Command as NodeCommand, Event};

    std::fs::create_dir_all(screenshot_dir()).expect("the target directory is writable");
    let dirs = tempfile::tempdir().expect("temp dir");
    let slide = |name: &str, top: [u8; 3], bottom: [u8; 3]| {
        let path = dirs.path().join(name);
        image::RgbImage::from_fn(320, 180, |_, y| image::Rgb(if y < 90 { top } else { bottom }))
            .save(&path)
            .expect("the slide is written");
        path
    };
    let deck = vec![slide("1.png", [230, 20, 20], [230, 20, 20]), slide("2.png", [220, 0, 220], [230, 220, 0])];

    let region = RegionId::Room(RoomKind::LectureHall);
    let (runtime, mut cy) = headless_node(&dirs.path().join("cy"), "Cy", region);
    let ticket = runtime.block_on(async {
        let mut ticket = None;
        cy.send(NodeCommand::Present(deck.clone()));
        loop {
            match tokio::time::timeout(Duration::from_secs(30), cy.next_event()).await {
                Ok(Some(Event::Started { ticket: started, .. })) => ticket = Some(started),
                Ok(Some(Event::Stage(view))) if view.state.current == 0 && view.state.slides == 2 => {
                    cy.send(NodeCommand::Stage(StageAction::Next));
                }
                Ok(Some(Event::Stage(view))) if view.state.current == 1 => {
                    break ticket.expect("started before it presented");
                }
                Ok(Some(Event::StageRefused(reason))) => panic!("Cy's slides were refused: {reason}"),
                Ok(Some(_)) => {}
                other => panic!("Cy did not present: {other:?}"),
            }
        }
    });
    runtime.handle().spawn(async move { while cy.next_event().await.is_some() {} });

    let viewers: Vec<_> = ["Ada", "Bo"]
        .into_iter()
        .map(|name| {
            let dir = dirs.path().join(name).display().to_string();
            let ticket = ticket.clone();
            std::thread::spawn(move || {
                let options =
                    ["--offline", "--no-lan", "--no-voice", "--join", &ticket, "--data-dir", &dir, "--name", name];
                run_client_for(region, &format!("lecture-{}", name.to_lowercase()), &options, 50)
            })
        })
        .collect();
    for (name, viewer) in ["Ada", "Bo"].into_iter().zip(viewers) {
        let (picture, _) = viewer.join().expect("joins").unwrap_or_else(|error| panic!("{error}"));
        let (magenta, magenta_row) = hue_at(&picture, (285.0, 320.0));
        let (yellow, yellow_row) = hue_at(&picture, (50.0, 65.0));
        let (red, _) = hue_at(&picture, (0.0, 10.0));
        eprintln!(
            "{name}: magenta {:.2}% at row {magenta_row:.0}, yellow {:.2}% at row {yellow_row:.0}, red {:.3}%",
            magenta * 100.0,
            yellow * 100.0,
            red * 100.0
        );
        assert!(magenta > 0.005 && yellow > 0.005, "{name} does not show the second slide");
        assert!(magenta_row < yellow_row, "{name} shows the slide upside down");
        assert!(red < magenta / 10.0, "{name} shows the first slide");
    }
}
