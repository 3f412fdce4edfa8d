//! Avatars between peers: Ada puts on one of the shipped avatars, Bo hears what she wears and
//! fetches it from her; an avatar over the budget is refused with the reason; what Ada wears is
//! kept across a restart, and taking it off is heard too.

use std::path::PathBuf;
use std::time::Duration;

use sanctuary_engine::avatar::{Rank, avatar_limits};
use sanctuary_engine::{HumanBone, RigSource};
use sanctuary_net::Command;
use sanctuary_tests::models::pack_glb;
use sanctuary_tests::peers::{Peer, offline_config, standing, wait_until};

fn shipped(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets/avatars").join(name)
}

/// A triangle with four 4096×4096 textures: within every other limit, but their memory once
/// decoded (about 341 MiB) is over the avatar budget.
fn texture_hog() -> Vec<u8> {
    let mut bin: Vec<u8> = Vec::new();
    for value in [0.0f32, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0] {
        bin.extend_from_slice(&value.to_le_bytes());
    }
    let mut png = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R'];
    png.extend_from_slice(&4096u32.to_be_bytes());
    png.extend_from_slice(&4096u32.to_be_bytes());
    png.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
    let png_at = bin.len();
    bin.extend_from_slice(&png);
    let images: Vec<String> = (0..4).map(|_| r#"{ "bufferView": 1, "mimeType": "image/png" }"#.to_owned()).collect();
    let json = format!(
        r#"{{ "asset": {{ "version": "2.0" }}, "scene": 0, "scenes": [{{ "nodes": [0] }}], "nodes": [{{ "mesh": 0 }}],
        "meshes": [{{ "primitives": [{{ "attributes": {{ "POSITION": 0 }} }}] }}],
        "accessors": [{{ "bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3",
                        "min": [0, 0, 0], "max": [1, 1, 0] }}],
        "images": [{}],
        "bufferViews": [{{ "buffer": 0, "byteLength": 36 }}, {{ "buffer": 0, "byteOffset": {png_at}, "byteLength": {} }}],
        "buffers": [{{ "byteLength": {} }}] }}"#,
        images.join(","),
        png.len(),
        bin.len()
    );
    pack_glb(&json, &bin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_avatar_is_worn_announced_fetched_and_kept() {
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().expect("temp dir")).collect();
    let mut ada = Peer::start(offline_config(dirs[0].path(), "Ada", None)).await;
    let mut bo = Peer::start(offline_config(dirs[1].path(), "Bo", Some(&ada.ticket))).await;
    ada.handle.send(Command::Pose(standing(0.0)));
    bo.handle.send(Command::Pose(standing(2.0)));
    let (ada_id, bo_id) = (ada.id, bo.id);
    wait_until(&mut [&mut ada, &mut bo], Duration::from_secs(5), "both are plain and see each other", |peer| {
        let other = if peer.id == ada_id { bo_id } else { ada_id };
        peer.wearing == Some(None) && peer.looks.get(&other) == Some(&None)
    })
    .await;

    // Ada puts on a shipped avatar; Bo hears what she wears.
    ada.handle.send(Command::Wear(Some(shipped("aurora.glb"))));
    wait_until(&mut [&mut ada, &mut bo], Duration::from_secs(10), "Bo hears Ada's avatar", |peer| {
        if peer.id == ada_id {
            matches!(peer.wearing, Some(Some(_)))
        } else {
            matches!(peer.looks.get(&ada_id), Some(Some(_)))
        }
    })
    .await;
    let Some(Some(avatar)) = ada.wearing else { unreachable!("waited for it") };
    assert_eq!(avatar.rank, Rank::Excellent);
    assert_eq!(bo.looks[&ada_id], Some(avatar));

    // Bo fetches it from her and it passes the avatar checks, skeleton and all.
    bo.handle.send(Command::FetchAvatar { avatar, hint: Some(ada_id) });
    wait_until(&mut [&mut bo], Duration::from_secs(20), "Bo has Ada's avatar", |peer| {
        peer.ready.contains(&avatar.hash)
    })
    .await;
    let (_, summary) = bo.assets.checked_model(avatar.hash, &avatar_limits()).await.expect("checked");
    let humanoid = summary.humanoid.expect("a humanoid");
    assert_eq!(humanoid.source, RigSource::Vrm1);
    assert!(humanoid.node(HumanBone::LeftHand).is_some());

    // An avatar over the budget is refused, naming why, and Ada keeps what she wore.
    let files = tempfile::tempdir().expect("temp dir");
    let hog = files.path().join("hog.glb");
    std::fs::write(&hog, texture_hog()).expect("writes");
    ada.handle.send(Command::Wear(Some(hog)));
    wait_until(&mut [&mut ada], Duration::from_secs(10), "the hog is refused", |peer| !peer.avatar_refused.is_empty())
        .await;
    assert!(ada.avatar_refused[0].contains("texture memory"), "{}", ada.avatar_refused[0]);
    assert_eq!(ada.wearing, Some(Some(avatar)));

    // Ada comes back wearing it.
    ada.handle.shutdown().await;
    let mut ada = Peer::start(offline_config(dirs[0].path(), "Ada", None)).await;
    wait_until(&mut [&mut ada], Duration::from_secs(5), "Ada says what she wears", |peer| peer.wearing.is_some()).await;
    assert_eq!(ada.wearing, Some(Some(avatar)));

    // And takes it off: Bo hears that too.
    ada.handle.send(Command::Join(bo.ticket.clone()));
    ada.handle.send(Command::Pose(standing(0.5)));
    ada.handle.send(Command::Wear(None));
    wait_until(&mut [&mut ada, &mut bo], Duration::from_secs(10), "Bo hears Ada is plain again", |peer| {
        peer.id == ada_id || peer.looks.get(&ada_id) == Some(&None)
    })
    .await;
    ada.handle.shutdown().await;
    bo.handle.shutdown().await;
}
