//! Coming back and being away: a peer that returns catches up at once, and a home node keeps a
//! builder's models so that a newcomer gets them while the builder is offline.

use std::time::Duration;

use glam::Vec3;
use sanctuary_engine::{
    ModelRef, Object, ObjectKind, Op, ParcelCoord, Placement, PublicKey, RegionId, Rgb, Shape, home_parcel,
};
use sanctuary_net::hosting::{HostingPolicy, Role};
use sanctuary_net::{Command, NodeConfig};
use sanctuary_tests::models::crystal_glb;
use sanctuary_tests::peers::{Peer, offline_config, wait_until};

fn in_city(mut config: NodeConfig) -> NodeConfig {
    config.regions = vec![RegionId::City];
    config
}

/// `peer` imports the crystals model (written into `dir`); returns it.
async fn imports_crystals(peer: &mut Peer, dir: &std::path::Path) -> ModelRef {
    let path = dir.join("crystals.glb");
    std::fs::write(&path, crystal_glb().0).expect("writes");
    peer.handle.send(Command::Import(path));
    wait_until(&mut [&mut *peer], Duration::from_secs(10), "imported", |peer| !peer.imported.is_empty()).await;
    peer.imported[0]
}

/// A newcomer gets `parcel` (object 1 on it) by sync, then `model` asked for with its placer
/// `placer` as the hint, with no fetch failing on the way.
async fn newcomer_gets(peer: &mut Peer, parcel: ParcelCoord, model: ModelRef, placer: PublicKey, from: &str) {
    wait_until(
        &mut [&mut *peer],
        Duration::from_secs(30),
        &format!("the newcomer has the parcel from {from}"),
        |peer| peer.world.parcel(parcel).objects.contains_key(&1),
    )
    .await;
    peer.handle.send(Command::Fetch { model, hint: Some(placer) });
    wait_until(
        &mut [&mut *peer],
        Duration::from_secs(60),
        &format!("the newcomer has the model from {from}"),
        |peer| peer.ready.contains(&model.hash),
    )
    .await;
    assert!(peer.failed.is_empty(), "{:?}", peer.failed);
}

fn block(parcel: ParcelCoord, x: f32) -> Object {
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
    home_config.hosting = Some(HostingPolicy { keep_all: true, total: 64 * 1024 * 1024, ..HostingPolicy::default() });
    let mut home = Peer::start(home_config).await;
    let mut ada = Peer::start(in_city(offline_config(dirs[1].path(), "Ada", Some(&home.ticket)))).await;

    let model = imports_crystals(&mut ada, files.path()).await;
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
    newcomer_gets(&mut cy, parcel, model, ada.id, "the home node, without Ada").await;
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

/// A home node keeps for its owner, a friend's node for a friend who asks (the pin), and the
/// builder's things stay reachable while any of them runs. Ada links her home node (a signed
/// `Op::Host`) and asks Fay's node to pin her things too; she and Fay are friends (both said
/// so), so Fay's node keeps Ada's model within its per-friend quota. Ada checks that both hold
/// it and signs each a receipt for keeping it. Ada goes offline (and Fay's
/// node for a while): Cy, a newcomer, gets the parcel and the model from Ada's home node, and
/// signs a receipt for it. Then the home node goes and Fay's node comes back: Dee, another
/// newcomer, gets everything from Fay's node, and asks it what it served (the receipts, hers
/// among them). Its record is kept on disk, every receipt signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_builders_things_stay_reachable_through_her_home_node_and_a_friends_pin() {
    use sanctuary_engine::trust::{TrustContext, TrustLevel};

    let dirs: Vec<tempfile::TempDir> = (0..6).map(|_| tempfile::tempdir().expect("temp dir")).collect();
    let files = tempfile::tempdir().expect("temp dir");
    let mut ada = Peer::start(in_city(offline_config(dirs[0].path(), "Ada", None))).await;
    let mut fay = Peer::start(in_city(offline_config(dirs[1].path(), "Fay", None))).await;
    let mut fays_config = in_city(offline_config(dirs[2].path(), "Fay's node", None));
    fays_config.hosting =
        Some(HostingPolicy { owner: Some(fay.id), friend_quota: 8 << 20, total: 64 << 20, ..HostingPolicy::default() });
    let mut fays_node = Peer::start(fays_config.clone()).await;
    let mut home_config = in_city(offline_config(dirs[3].path(), "Ada's home", Some(&fays_node.ticket)));
    home_config.hosting = Some(HostingPolicy { owner: Some(ada.id), total: 64 << 20, ..HostingPolicy::default() });
    let mut home = Peer::start(home_config).await;
    // Ada knows where both nodes are (on the internet, relays and address lookup find them by
    // id; here, with neither, tickets do).
    ada.handle.send(Command::Join(home.ticket.clone()));
    ada.handle.send(Command::Join(fays_node.ticket.clone()));
    fay.handle.send(Command::Join(fays_node.ticket.clone()));

    let model = imports_crystals(&mut ada, files.path()).await;
    let parcel = home_parcel(&ada.id);
    let mut object = block(parcel, 0.0);
    object.kind = ObjectKind::Model(model);
    let friend = |subject| Op::Trust { subject, context: TrustContext::People, level: Some(TrustLevel::Friend) };
    for op in [
        Op::Claim { parcel },
        Op::Put { parcel, epoch: 0, id: 1, object },
        Op::Host { host: home.id, kept: true },
        Op::Host { host: fays_node.id, kept: true },
        friend(fay.id),
    ] {
        ada.handle.send(Command::Build(op));
    }
    fay.handle.send(Command::Build(friend(ada.id)));
    wait_until(&mut [&mut ada], Duration::from_secs(20), "Ada built and said it all", |peer| peer.built.len() == 5)
        .await;
    wait_until(&mut [&mut fay], Duration::from_secs(20), "Fay said it", |peer| peer.built.len() == 1).await;
    assert!(ada.refused.is_empty() && fay.refused.is_empty(), "{:?} {:?}", ada.refused, fay.refused);
    wait_until(&mut [&mut home, &mut fays_node], Duration::from_secs(60), "both nodes keep Ada's model", |peer| {
        peer.ready.contains(&model.hash)
    })
    .await;
    let plan = fays_node.hosting.as_ref().expect("Fay's node worked out what it keeps");
    let kept: Vec<(PublicKey, Role, bool, usize)> =
        plan.kept_for.iter().map(|kept| (kept.person, kept.role, kept.named, kept.models)).collect();
    assert_eq!(kept, vec![(fay.id, Role::Owner, false, 0), (ada.id, Role::Friend, true, 1)]);
    assert_eq!(home.world.world().hosts_of(&ada.id).len(), 2);
    // Ada checks that her hosts hold her model (the last chunk of each of its blobs, verified)
    // and signs receipts saying so: both nodes' records now say they keep it for her.
    let (ada_id, ada_key) = (ada.id, *ada.id.as_bytes());
    wait_until(
        &mut [&mut ada, &mut home, &mut fays_node],
        Duration::from_secs(120),
        "Ada's receipts for keeping",
        |peer| {
            peer.id == ada_id
                || peer.contributions.iter().any(|(person, contribution, receipts, _)| {
                    *person == peer.id
                        && contribution.kept_for >= 1
                        && receipts.iter().any(|signed| {
                            signed.receipt.receiver == ada_key && signed.receipt.kept_bytes >= model.bytes
                        })
                })
        },
    )
    .await;
    ada.handle.shutdown().await;
    fay.handle.shutdown().await;
    // Fay's node is off for a while, so that Cy can only be served by Ada's home node.
    fays_node.handle.shutdown().await;

    let mut cy = Peer::start(in_city(offline_config(dirs[4].path(), "Cy", Some(&home.ticket)))).await;
    newcomer_gets(&mut cy, parcel, model, ada.id, "Ada's home node").await;
    // Ada's name comes with the world too, though nobody has met her.
    let named = cy.world.world().profile_of(&ada.id).map(|(name, _)| name.as_str().to_owned());
    assert_eq!(named.as_deref(), Some("Ada"));
    // Cy signs a receipt for what the home node served and hands it over: the home node's
    // record, which is Cy's word and not its own, now says so.
    let (cy_key, home_id) = (*cy.id.as_bytes(), home.id);
    wait_until(&mut [&mut home, &mut cy], Duration::from_secs(30), "the home node holds Cy's receipt", |peer| {
        peer.id != home_id
            || peer.contributions.iter().any(|(person, _, receipts, _)| {
                *person == peer.id
                    && receipts
                        .iter()
                        .any(|signed| signed.receipt.receiver == cy_key && signed.receipt.blob_bytes >= model.bytes)
            })
    })
    .await;
    cy.handle.shutdown().await;
    home.handle.shutdown().await;

    // Fay's node comes back (its store and world kept) with the home node off: the pin still
    // holds, and Dee gets everything from it.
    fays_config.join.clear();
    let mut fays_node = Peer::start(fays_config).await;
    let mut dee = Peer::start(in_city(offline_config(dirs[5].path(), "Dee", Some(&fays_node.ticket)))).await;
    newcomer_gets(&mut dee, parcel, model, ada.id, "Fay's pin").await;
    let served = fays_node.uploads.counts();
    assert!(served.to.get(dee.id.as_bytes()).is_some_and(|bytes| *bytes > 0), "Fay's node served Dee: {served:?}");
    // Dee asks Fay's node what it served, and checks the receipts that come back: her own
    // among them, once it has been handed over (receipts go out every 5 s).
    let (fays_id, dee_key) = (fays_node.id, *dee.id.as_bytes());
    let mut asked = std::time::Instant::now() - Duration::from_secs(10);
    wait_until(&mut [&mut dee, &mut fays_node], Duration::from_secs(40), "Fay's node's record shows Dee", |peer| {
        if peer.id == fays_id {
            return true;
        }
        if asked.elapsed() >= Duration::from_secs(2) {
            asked = std::time::Instant::now();
            peer.handle.send(Command::AskContribution(fays_id));
        }
        peer.contributions.iter().any(|(person, contribution, receipts, reached)| {
            *person == fays_id
                && *reached
                && contribution.blob_bytes >= model.bytes
                && receipts.iter().any(|signed| signed.receipt.receiver == dee_key && signed.verify().is_ok())
        })
    })
    .await;
    dee.handle.shutdown().await;
    fays_node.handle.shutdown().await;
    // The record is kept, and exported as CSV with every signature.
    let record = sanctuary_net::read_record(dirs[2].path()).expect("the record is read");
    let csv = sanctuary_net::receipts::record_csv(&record);
    assert!(csv.contains(&dee.id.to_string()), "{csv}");
}
