//! Building the city between peers, offline on loopback: two builders see each other's work, a
//! non-owner's change is refused everywhere, a late joiner catches up from a peer that is not
//! the author, and an imported model travels by hash with progress.

use std::time::Duration;

use glam::Vec3;
use sanctuary_engine::{
    Change, ModelRef, Object, ObjectKind, Op, ParcelCoord, Placement, PublicKey, RegionId, Rgb, Shape, home_parcel,
};
use sanctuary_net::{Command, NodeConfig};
use sanctuary_tests::models::{crystal_glb, write_plinth};
use sanctuary_tests::peers::{Peer, offline_config, wait_until};

fn in_city(mut config: NodeConfig) -> NodeConfig {
    config.regions = vec![RegionId::City];
    config
}

fn boxed(parcel: ParcelCoord, x: f32, height: f32) -> Object {
    let centre = parcel.bounds().center();
    Object {
        kind: ObjectKind::Primitive(Shape::Cuboid),
        placement: Placement::standing(Vec3::new(centre.x + x, 0.0, centre.y), Vec3::new(1.0, height, 1.0)),
        colour: Rgb::new(255, 80, 20),
    }
}

fn put(parcel: ParcelCoord, id: u64, object: Object) -> Op {
    Op::Put { parcel, epoch: 0, id, object }
}

fn objects_on(peer: &Peer, parcel: ParcelCoord) -> usize {
    peer.world.parcel(parcel).objects.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_builders_and_a_late_joiner_converge() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("temp dir")).collect();
    let mut ada = Peer::start(in_city(offline_config(dirs[0].path(), "Ada", None))).await;
    let mut bo = Peer::start(in_city(offline_config(dirs[1].path(), "Bo", Some(&ada.ticket)))).await;
    let (ada_home, bo_home) = (home_parcel(&ada.id), home_parcel(&bo.id));

    // Each claims a home and builds on it.
    ada.handle.send(Command::Build(Op::Claim { parcel: ada_home }));
    bo.handle.send(Command::Build(Op::Claim { parcel: bo_home }));
    wait_until(&mut [&mut ada, &mut bo], Duration::from_secs(5), "claims made", |peer| peer.built.len() == 1).await;
    for id in 0..3 {
        ada.handle.send(Command::Build(put(ada_home, id, boxed(ada_home, id as f32 * 2.0 - 2.0, 2.0 + id as f32))));
        bo.handle.send(Command::Build(put(bo_home, id, boxed(bo_home, 0.0, 1.0 + id as f32))));
    }
    // Bo tries to build on Ada's land: his own node refuses it.
    bo.handle.send(Command::Build(put(ada_home, 99, boxed(ada_home, 0.0, 1.0))));
    wait_until(&mut [&mut ada, &mut bo], Duration::from_secs(10), "both see both parcels built", |peer| {
        objects_on(peer, ada_home) == 3 && objects_on(peer, bo_home) == 3
    })
    .await;
    assert_eq!(bo.refused.len(), 1, "Bo's change on Ada's land is refused: {:?}", bo.refused);
    assert!(bo.refused[0].1.contains("belongs to"), "says why: {}", bo.refused[0].1);
    assert_eq!(ada.world.state_hash(), bo.world.state_hash());

    // A peer that does not play by the rules signs a change for Ada's parcel with its own key.
    // Whichever way it arrives (gossip and sync both hand bytes to the replica), every peer's
    // replica refuses it.
    let seed = [9u8; 32];
    let intruder = PublicKey::from_secret_seed(&seed);
    let forged = Change { author: intruder, seq: 1, op: put(ada_home, 7, boxed(ada_home, 4.0, 3.0)) }.sign(&seed);
    for peer in [&ada, &bo] {
        let applied = peer.world.apply_bytes(&[forged.to_bytes()], 1).expect("stored");
        assert_eq!(applied.refused, 1);
        assert!(applied.new.is_empty());
        assert_eq!(objects_on(peer, ada_home), 3);
    }

    // Ada goes away. Cy arrives late, knowing only Bo: she gets Ada's parcel from Bo.
    let hash = ada.world.state_hash();
    ada.handle.shutdown().await;
    let mut cy = Peer::start(in_city(offline_config(dirs[2].path(), "Cy", Some(&bo.ticket)))).await;
    // The world is shared with the node, so the objects can show before the node's word that
    // the sync ended has been read: both are waited for (the test once raced between them).
    let bo_id = bo.id;
    let took = wait_until(&mut [&mut cy], Duration::from_secs(10), "Cy catches up from Bo", |peer| {
        objects_on(peer, ada_home) == 3
            && objects_on(peer, bo_home) == 3
            && peer.synced.iter().any(|(from, received, _)| *from == bo_id && *received >= 8)
    })
    .await;
    println!("the late joiner caught up in {took:?}");
    assert_eq!(cy.world.state_hash(), hash, "byte-identical state");

    // Everything is still there after everyone restarts.
    bo.handle.shutdown().await;
    cy.handle.shutdown().await;
    for (index, dir) in dirs.iter().enumerate() {
        let peer = Peer::start(in_city(offline_config(dir.path(), "Again", None))).await;
        assert_eq!(peer.world.state_hash(), hash, "peer {index} after a restart");
        peer.handle.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_model_travels_by_hash() {
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().expect("temp dir")).collect();
    let files = tempfile::tempdir().expect("temp dir");
    let mut ada = Peer::start(in_city(offline_config(dirs[0].path(), "Ada", None))).await;
    let mut bo = Peer::start(in_city(offline_config(dirs[1].path(), "Bo", Some(&ada.ticket)))).await;

    // A .glb and a .gltf with its buffer and texture in files beside it.
    let (glb, crystal_triangles) = crystal_glb();
    let glb_path = files.path().join("crystals.glb");
    std::fs::write(&glb_path, glb).expect("writes");
    let gltf_path = write_plinth(files.path()).expect("writes");
    ada.handle.send(Command::Import(glb_path));
    ada.handle.send(Command::Import(gltf_path));
    wait_until(&mut [&mut ada], Duration::from_secs(10), "both imported", |peer| peer.imported.len() == 2).await;
    let crystals: ModelRef =
        *ada.imported.iter().find(|model| model.triangles as usize == crystal_triangles).expect("the crystals");
    let plinth: ModelRef = *ada.imported.iter().find(|model| model.triangles == 12).expect("the plinth");

    // A broken file gets a clear message, not a panic.
    let broken = files.path().join("broken.glb");
    std::fs::write(&broken, b"glTF\x02\0\0\0garbage").expect("writes");
    ada.handle.send(Command::Import(broken));
    wait_until(&mut [&mut ada], Duration::from_secs(10), "the broken file is refused", |peer| !peer.failed.is_empty())
        .await;
    assert!(ada.failed[0].1.contains("broken.glb"), "names the file: {}", ada.failed[0].1);

    // Bo fetches both from Ada by hash, with progress, and they pass the checks.
    for model in [crystals, plinth] {
        bo.handle.send(Command::Fetch { model, hint: Some(ada.id) });
    }
    wait_until(&mut [&mut bo], Duration::from_secs(20), "Bo has both models", |peer| {
        peer.ready.contains(&crystals.hash) && peer.ready.contains(&plinth.hash)
    })
    .await;
    assert!(bo.failed.is_empty(), "{:?}", bo.failed);
    assert!(bo.progress.iter().any(|(done, total)| done == total && *total == plinth.bytes));
    let texture = bo.assets.read_file(plinth.hash, "textures/stripes.png").await.expect("the texture came along");
    assert!(texture.starts_with(b"\x89PNG"));

    // A model nobody has fails cleanly.
    let missing = ModelRef { hash: [3; 32], bytes: 10, triangles: 1, min: [0.0; 3], max: [1.0; 3] };
    bo.handle.send(Command::Fetch { model: missing, hint: Some(ada.id) });
    wait_until(&mut [&mut bo], Duration::from_secs(20), "the missing model fails", |peer| {
        peer.failed.iter().any(|(hash, _)| *hash == missing.hash)
    })
    .await;
    ada.handle.shutdown().await;
    bo.handle.shutdown().await;
}

/// A second peer's client, headless, draws Ada's built parcel from the changes it synced:
/// her objects replace the generated city there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_client_draws_a_built_parcel() {
    use bevy::prelude::{Children, Entity, Transform, With};
    use sanctuary::{NetLink, ParcelView, Player, StructureView};

    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().expect("temp dir")).collect();
    let mut ada = Peer::start(in_city(offline_config(dirs[0].path(), "Ada", None))).await;
    let ada_home = home_parcel(&ada.id);
    ada.handle.send(Command::Build(Op::Claim { parcel: ada_home }));
    wait_until(&mut [&mut ada], Duration::from_secs(5), "claimed", |peer| peer.built.len() == 1).await;
    for id in 0..2 {
        ada.handle.send(Command::Build(put(ada_home, id, boxed(ada_home, id as f32 * 3.0, 2.0))));
    }
    wait_until(&mut [&mut ada], Duration::from_secs(5), "built", |peer| peer.built.len() == 3).await;

    let bo = sanctuary_net::spawn_node(
        &tokio::runtime::Handle::current(),
        in_city(offline_config(dirs[1].path(), "Bo", Some(&ada.ticket))),
    );
    let mut app = sanctuary::testing::logic_app(RegionId::City);
    app.insert_resource(NetLink::from_handle(bo));
    let centre = ada_home.bounds().center();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let built_colour = Rgb::new(255, 80, 20);
    loop {
        {
            let world = app.world_mut();
            let mut players = world.query_filtered::<&mut Transform, With<Player>>();
            for mut transform in players.iter_mut(world) {
                transform.translation = Vec3::new(centre.x, 1.7, centre.y - 7.0);
            }
        }
        app.update();
        let world = app.world_mut();
        let mut parcels = world.query::<(&ParcelView, &Children)>();
        let shown: Vec<Entity> = parcels
            .iter(world)
            .filter(|(view, _)| view.0 == ada_home)
            .flat_map(|(_, children)| children.iter().copied().collect::<Vec<_>>())
            .collect();
        let ours = shown
            .iter()
            .filter(|child| world.get::<StructureView>(**child).is_some_and(|view| view.0.colour == built_colour))
            .count();
        if ours == 2 && shown.len() == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "Bo's client shows {ours} of Ada's 2 objects among {} children",
            shown.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ada.handle.shutdown().await;
}
