//! Coming back and being away: a peer that returns catches up at once, and a home node keeps a
//! builder's models so that a newcomer gets them while the builder is offline.

use std::time::Duration;

use glam::Vec3;
use sanctuary_engine::{ModelRef, Object, ObjectKind, Op, Placement, RegionId, Rgb, Shape, home_parcel};
use sanctuary_net::{Command, NodeConfig};
use sanctuary_tests::models::crystal_glb;
use sanctuary_tests::peers::{Peer, offline_config, wait_until};

fn in_city(mut config: NodeConfig) -> NodeConfig {
    config.regions = vec![RegionId::City];
    config
}

fn block(parcel: sanctuary_engine::ParcelCoord, x: f32) -> Object {
    let centre = parcel.bounds().center();
    Object {
        kind: ObjectKind::Primitive(Shape::Cuboid),
        placement: Placement::standing(Vec3::new(centre.x + x, 0.0, centre.y), Vec3::ONE),
        colour: Rgb::new(90, 200, 255),
    }
}

/// Ada stays, Bo goes away and comes back while Ada builds. The peer with the smaller id asks
/// for the comparison; when that is the one who stayed, it used to remember having compared
/// with Bo already and wait for the minute's anti-entropy round. Bo now has Ada's change
/// within seconds of coming back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_peer_catches_up_at_once() {
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().expect("temp dir")).collect();
    // Make both identities first, so that the one who stays can be the smaller id.
    let first = Peer::start(in_city(offline_config(dirs[0].path(), "first", None))).await;
    let second = Peer::start(in_city(offline_config(dirs[1].path(), "second", None))).await;
    let (stay_dir, away_dir) = if first.id < second.id { (0, 1) } else { (1, 0) };
    first.handle.shutdown().await;
    second.handle.shutdown().await;

    let mut ada = Peer::start(in_city(offline_config(dirs[stay_dir].path(), "Ada", None))).await;
    let mut bo = Peer::start(in_city(offline_config(dirs[away_dir].path(), "Bo", Some(&ada.ticket)))).await;
    assert!(ada.id < bo.id);
    let parcel = home_parcel(&ada.id);
    ada.handle.send(Command::Build(Op::Claim { parcel }));
    wait_until(&mut [&mut ada, &mut bo], Duration::from_secs(20), "Bo has Ada's claim", |peer| {
        peer.world.parcel(parcel).owner().is_some()
    })
    .await;

    let bo_id = bo.id;
    bo.handle.shutdown().await;
    wait_until(&mut [&mut ada], Duration::from_secs(10), "Ada sees Bo go", |peer| {
        peer.left.contains(&bo_id) || peer.synced.iter().any(|(peer, _, _)| *peer == bo_id)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    ada.handle.send(Command::Build(Op::Put { parcel, epoch: 0, id: 7, object: block(parcel, 0.0) }));
    wait_until(&mut [&mut ada], Duration::from_secs(10), "Ada built", |peer| !peer.built.is_empty()).await;

    let mut bo = Peer::start(in_city(offline_config(dirs[away_dir].path(), "Bo", Some(&ada.ticket)))).await;
    let took = wait_until(&mut [&mut bo], Duration::from_secs(20), "Bo catches up after coming back", |peer| {
        peer.world.parcel(parcel).objects.contains_key(&7)
    })
    .await;
    println!("Bo caught up {took:?} after coming back");
    ada.handle.shutdown().await;
    bo.handle.shutdown().await;
}

/// Ada imports a model and places it; her home node, which keeps the world's models, fetches
/// it by itself. Ada goes offline; Cy arrives later and gets both the parcel and the model from
/// the home node alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_home_node_serves_a_builders_model_while_she_is_away() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("temp dir")).collect();
    let files = tempfile::tempdir().expect("temp dir");
    let mut home_config = in_city(offline_config(dirs[0].path(), "Home", None));
    home_config.keep_models = Some(64 * 1024 * 1024);
    let mut home = Peer::start(home_config).await;
    let mut ada = Peer::start(in_city(offline_config(dirs[1].path(), "Ada", Some(&home.ticket)))).await;

    let (glb, _) = crystal_glb();
    let path = files.path().join("crystals.glb");
    std::fs::write(&path, glb).expect("writes");
    ada.handle.send(Command::Import(path));
    wait_until(&mut [&mut ada], Duration::from_secs(10), "imported", |peer| !peer.imported.is_empty()).await;
    let model: ModelRef = ada.imported[0];
    let parcel = home_parcel(&ada.id);
    ada.handle.send(Command::Build(Op::Claim { parcel }));
    let mut object = block(parcel, 0.0);
    object.kind = ObjectKind::Model(model);
    ada.handle.send(Command::Build(Op::Put { parcel, epoch: 0, id: 1, object }));
    wait_until(&mut [&mut home], Duration::from_secs(30), "the home node keeps Ada's model", |peer| {
        peer.world.parcel(parcel).objects.contains_key(&1) && peer.ready.contains(&model.hash)
    })
    .await;
    ada.handle.shutdown().await;

    let mut cy = Peer::start(in_city(offline_config(dirs[2].path(), "Cy", Some(&home.ticket)))).await;
    wait_until(&mut [&mut cy], Duration::from_secs(30), "Cy has Ada's parcel from the home node", |peer| {
        peer.world.parcel(parcel).objects.contains_key(&1)
    })
    .await;
    cy.handle.send(Command::Fetch { model, hint: Some(ada.id) });
    wait_until(&mut [&mut cy], Duration::from_secs(30), "Cy has Ada's model without Ada", |peer| {
        peer.ready.contains(&model.hash)
    })
    .await;
    assert!(cy.failed.is_empty(), "{:?}", cy.failed);
    home.handle.shutdown().await;
    cy.handle.shutdown().await;
}

/// A holder of a model that fails (it has nothing, or it is gone) is passed over for another
/// that has it; with no good holder the fetch fails with a clear reason (and the node tries
/// again later, see `node/world.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_comes_from_another_holder_when_one_fails() {
    use iroh::address_lookup::MemoryLookup;
    use iroh::endpoint::presets;
    use iroh::protocol::Router;
    use iroh::{Endpoint, RelayMode};
    use sanctuary_net::{AssetError, AssetStore, model_limits};

    async fn holder(dir: &std::path::Path) -> (AssetStore, Endpoint, Router) {
        let store = AssetStore::open(dir).await.expect("store");
        let endpoint = Endpoint::builder(presets::Minimal).relay_mode(RelayMode::Disabled).bind().await.expect("binds");
        let router = Router::builder(endpoint.clone())
            .accept(iroh_blobs::ALPN, iroh_blobs::BlobsProtocol::new(store.store(), None))
            .spawn();
        (store, endpoint, router)
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let (_empty, empty, _empty_router) = holder(&dir.path().join("empty")).await;
    let (_gone, gone, gone_router) = holder(&dir.path().join("gone")).await;
    let (good, good_endpoint, _good_router) = holder(&dir.path().join("good")).await;
    let path = dir.path().join("crystal.glb");
    std::fs::write(&path, crystal_glb().0).expect("writes");
    let (model, _) = good.import(&path).await.expect("imports");
    let gone_addr = gone.addr();
    gone_router.shutdown().await.expect("shuts down");

    let fetcher = AssetStore::open(&dir.path().join("fetcher")).await.expect("store");
    let endpoint = Endpoint::builder(presets::Minimal).relay_mode(RelayMode::Disabled).bind().await.expect("binds");
    let memory = MemoryLookup::new();
    endpoint.address_lookup().expect("lookup").add(memory.clone());
    for addr in [empty.addr(), gone_addr, good_endpoint.addr()] {
        memory.add_endpoint_info(addr);
    }
    let downloader = fetcher.downloader(&endpoint);
    let without = tokio::time::timeout(
        Duration::from_secs(60),
        fetcher.fetch(&downloader, model.hash, &model_limits(), vec![empty.id(), gone.id()], |_, _| {}),
    )
    .await
    .expect("fails in time");
    assert!(matches!(without, Err(AssetError::Unavailable(_))), "{without:?}");
    let summary = tokio::time::timeout(
        Duration::from_secs(60),
        fetcher.fetch(
            &downloader,
            model.hash,
            &model_limits(),
            vec![empty.id(), gone.id(), good_endpoint.id()],
            |_, _| {},
        ),
    )
    .await
    .expect("arrives in time")
    .expect("the good holder serves it");
    assert!(summary.triangles > 0);
    assert!(fetcher.checked_model(model.hash, &model_limits()).await.is_ok());
}
