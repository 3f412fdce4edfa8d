//! The adversary: a hostile peer with free keys and a fast link that speaks every protocol
//! Sanctuary has (region and world gossip, world sync, private messages) with garbage,
//! oversized, truncated, replayed, forged, future-dated and flooding input, from one key and
//! from a thousand fresh ones. The honest peers must not panic, must keep their state, must
//! count every refusal, must stay within bounded memory, and must keep hearing each other.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use glam::{Quat, Vec3};
use iroh::SecretKey;
use iroh_gossip::api::GossipSender;
use sanctuary_engine::RegionId;
use sanctuary_net::wire::{DirectText, RegionMessage, WorldMessage, encode};
use sanctuary_net::{
    Command, MAX_MESSAGE_BYTES, PoseFrame, Presence, QuantisedTransform, SharedReplica, alpn, region_topic, world_topic,
};
use sanctuary_tests::hostile::Hostile;
use sanctuary_tests::peers::{Peer, offline_config, wait_until};

fn pose_at(x: f32) -> PoseFrame {
    let at = |dx: f32| QuantisedTransform::new(Vec3::new(x + dx, 1.7, -4.0), Quat::from_rotation_y(x));
    PoseFrame { head: at(0.0), left_hand: at(-0.3), right_hand: at(0.3) }
}

fn presence(x: f32) -> RegionMessage {
    RegionMessage::Presence(Presence { name: "Mallory".into(), colour: [0, 0, 0], pose: pose_at(x) })
}

fn wall_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_micros() as u64).unwrap_or(0)
}

/// This process's resident memory in MiB (Linux), for the record.
fn resident_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// A fresh key made from a number.
fn fresh(index: u64) -> SecretKey {
    let mut seed = [0x5au8; 32];
    seed[..8].copy_from_slice(&index.to_le_bytes());
    SecretKey::from_bytes(&seed)
}

/// A pause now and then, so that the attacker's own send queue (which drops what does not fit)
/// passes the flood on rather than throwing most of it away.
async fn pace(sent: u64) {
    if sent.is_multiple_of(50) {
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}

async fn broadcast(topic: &mut GossipSender, bytes: Vec<u8>) {
    tokio::time::timeout(Duration::from_secs(10), topic.broadcast(bytes::Bytes::from(bytes)))
        .await
        .expect("the attacker's gossip takes the message within 10 s")
        .expect("sends");
}

/// One hostile peer, every protocol, every kind of bad input; then a thousand fresh keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_peer_on_every_protocol_harms_no_one() {
    let (ada_dir, bo_dir) = (tempfile::tempdir().expect("temp dir"), tempfile::tempdir().expect("temp dir"));
    let mut ada = Peer::start(offline_config(ada_dir.path(), "Ada", None)).await;
    let bo = Peer::start(offline_config(bo_dir.path(), "Bo", Some(&ada.ticket))).await;
    // The door's own defences are tested here: Ada takes strangers' private messages (the
    // default shield refuses them before any of this is looked at).
    ada.take_messages_from_strangers();
    let bo_id = bo.id;
    bo.handle.send(Command::Pose(pose_at(1.0)));
    wait_until(&mut [&mut ada], Duration::from_secs(5), "Ada sees Bo", |peer| peer.pose_of(bo_id).is_some()).await;
    let world_before = ada.world.state_hash();
    let rss_before = resident_mib();

    let mallory = Hostile::new(&ada).await;
    let topic = region_topic(RegionId::Lobby);
    let mut lobby = mallory.join(topic).await;
    let _world = mallory.join(world_topic()).await;
    let now = wall_micros();
    let signed = |sequence: u64, body: &RegionMessage| encode(&mallory.secret, topic.as_bytes(), sequence, body);

    println!("attack: region gossip");
    // Region gossip: garbage, oversized, truncated, forged, misdirected, replayed, badly dated.
    broadcast(&mut lobby, vec![0xde, 0xad, 0xbe, 0xef]).await;
    broadcast(&mut lobby, vec![7; MAX_MESSAGE_BYTES + 100]).await;
    let real = signed(now, &presence(9.0)).expect("encodes");
    broadcast(&mut lobby, real[..real.len() / 2].to_vec()).await;
    let mut forged = real.clone();
    forged[..32].copy_from_slice(bo_id.as_bytes());
    broadcast(&mut lobby, forged).await;
    broadcast(&mut lobby, encode(&mallory.secret, world_topic().as_bytes(), now + 1, &presence(9.0)).expect("encodes"))
        .await;
    broadcast(&mut lobby, real.clone()).await;
    broadcast(&mut lobby, real).await;
    broadcast(&mut lobby, signed(u64::MAX - 1, &presence(1.0)).expect("encodes")).await;
    broadcast(&mut lobby, signed(now + 3_600_000_000, &presence(1.0)).expect("encodes")).await;
    broadcast(&mut lobby, signed(now - 3_600_000_000, &presence(1.0)).expect("encodes")).await;
    // A chat line that would fake a line from Bo and clear a terminal.
    let spoof = RegionMessage::Chat { name: "Mallory".into(), text: "hi\n<Bo> my words are\u{1b}[2J".into() };
    broadcast(&mut lobby, signed(now + 2, &spoof).expect("encodes")).await;
    // A line recorded a minute before the last one, played now (its own chat lane is not spent).
    let recorded = RegionMessage::Chat { name: "Mallory".into(), text: "said a minute ago".into() };
    broadcast(&mut lobby, signed(now - 60_000_000, &recorded).expect("encodes")).await;
    println!("attack: one-key flood");
    // A flood of correctly signed poses from one key: refused before gossip relays it, and
    // Mallory is cut off.
    for index in 0..2_000u64 {
        broadcast(&mut lobby, signed(now + 10 + index, &presence(index as f32)).expect("encodes")).await;
        pace(index).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while ada.stats().cut_off == 0 {
        assert!(Instant::now() < deadline, "the flooder was not cut off: {:?}", ada.stats());
        ada.pump();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rejoined = tokio::time::timeout(
        Duration::from_secs(3),
        mallory.gossip.subscribe_and_join(region_topic(RegionId::City), vec![mallory.target.id]),
    )
    .await;
    assert!(!matches!(rejoined, Ok(Ok(_))), "a neighbour cut off came back at once");
    println!("attack: 1,000 fresh keys");
    // A thousand fresh keys, each announcing itself on the world topic and posing, through a
    // fresh endpoint (the last one is cut off).
    let sybils = Hostile::new(&ada).await;
    let mut lobby = sybils.join(topic).await;
    let mut world = sybils.join(world_topic()).await;
    for index in 0..1_000u64 {
        let key = fresh(index);
        let here = WorldMessage::Here { regions: vec![RegionId::Lobby], name: format!("sybil {index}") };
        broadcast(&mut world, encode(&key, world_topic().as_bytes(), now + index, &here).expect("encodes")).await;
        pace(index).await;
    }
    // Keys that only say they are here do not make Ada slow her poses down: the crowd that sets
    // her pose rate is the people whose poses she took (Bo, and Mallory before the flood).
    wait_until(&mut [&mut ada], Duration::from_secs(10), "Ada hears the sybils", |peer| {
        peer.status.as_ref().is_some_and(|status| status.known_peers >= 500)
    })
    .await;
    let status = ada.status.clone().expect("a status");
    assert!(status.crowd <= 2, "sybils that never posed count in the crowd: {status:?}");
    for index in 0..1_000u64 {
        let key = fresh(index);
        for step in 0..3u64 {
            let bytes =
                encode(&key, topic.as_bytes(), now + index * 10 + step, &presence(step as f32)).expect("encodes");
            broadcast(&mut lobby, bytes).await;
        }
        pace(index * 3).await;
    }

    println!("attack: private messages");
    // Private messages: garbage, oversized, signed for someone else, in someone else's name,
    // then a flood of valid ones.
    assert_eq!(mallory.direct(&[1, 2, 3, 4, 5]).await, b"no");
    assert_ne!(mallory.direct(&vec![0; 3 * MAX_MESSAGE_BYTES]).await, b"ok");
    let ada_key = *ada.id.as_bytes();
    let text = |body: &str| DirectText { name: "Mallory".into(), text: body.into() };
    let misdirected = encode(&mallory.secret, bo_id.as_bytes(), now, &text("for Bo")).expect("encodes");
    assert_eq!(mallory.direct(&misdirected).await, b"no");
    let in_bo_name = encode(&fresh(5_000), &ada_key, now, &text("I am Bo")).expect("encodes");
    assert_eq!(mallory.direct(&in_bo_name).await, b"no");
    // The same message twice (as a sender that missed the "ok" resends it): stored once.
    let once = encode(&mallory.secret, &ada_key, now + 50, &text("hello once")).expect("encodes");
    assert_eq!(mallory.direct(&once).await, b"ok");
    assert_eq!(mallory.direct(&once).await, b"ok", "a copy is acknowledged");
    let mut answered_ok = 0;
    for index in 0..30u64 {
        let bytes = encode(&mallory.secret, &ada_key, now + 100 + index, &text("spam")).expect("encodes");
        if mallory.direct(&bytes).await == b"ok" {
            answered_ok += 1;
        }
    }
    assert!(answered_ok < 30, "the private-message flood was throttled ({answered_ok} of 30 taken)");

    println!("attack: world sync");
    // World sync: a frame that claims 4 GiB, one that is not a frame, and two syncs that never
    // finish; an honest sync still gets its answer meanwhile.
    for bytes in [vec![0xff, 0xff, 0xff, 0xff], vec![3, 0, 0, 0, 0xff, 0xfe, 0xfd]] {
        if let Ok(connection) = mallory.endpoint.connect(mallory.target.clone(), alpn::WORLD).await
            && let Ok((mut send, mut recv)) = connection.open_bi().await
        {
            let _ = send.write_all(&bytes).await;
            let _ = send.finish();
            let answer = tokio::time::timeout(Duration::from_secs(5), recv.read_to_end(1 << 20)).await;
            assert!(!matches!(answer, Ok(Ok(ref bytes)) if !bytes.is_empty()), "garbage got an answer");
        }
    }
    let mut stalled = Vec::new();
    for _ in 0..2 {
        if let Ok(connection) = mallory.endpoint.connect(mallory.target.clone(), alpn::WORLD).await
            && let Ok((mut send, recv)) = connection.open_bi().await
        {
            let _ = send.write_all(&[0]).await;
            stalled.push((connection, send, recv));
        }
    }
    // Mallory has asked too often by now and is turned away; someone else is answered.
    let scratch = tempfile::tempdir().expect("temp dir");
    let (replica, _) = SharedReplica::open(scratch.path()).expect("opens");
    let cy = Hostile::new(&ada).await;
    let connection = cy.endpoint.connect(cy.target.clone(), alpn::WORLD).await.expect("connects");
    let report =
        tokio::time::timeout(Duration::from_secs(20), sanctuary_net::replica::sync_with(&replica, &connection))
            .await
            .expect("an honest sync is answered while two stall")
            .expect("syncs");
    println!("a sync beside two stalled ones: received {}", report.received);

    println!("attack: counting");
    // Every kind of refusal is counted; nothing panicked.
    let counted = |stats: &sanctuary_net::StatsSnapshot| {
        stats.malformed >= 2
            && stats.too_large >= 1
            && stats.bad_signature >= 2
            && stats.replayed >= 1
            && stats.bad_clock >= 3
            && stats.flooded >= 100
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !counted(&ada.stats()) {
        assert!(Instant::now() < deadline, "not every kind of hostile message was counted: {:?}", ada.stats());
        ada.pump();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = ada.stats();
    println!("Ada's counters after the attack: {stats:?}");
    assert_eq!(stats.panicked, 0);
    ada.pump();
    assert_eq!(ada.direct.iter().filter(|line| line.text == "hello once").count(), 1, "stored and shown once");
    for line in ada.chat.iter().filter(|line| line.name == "Mallory") {
        assert!(!line.text.chars().any(char::is_control), "a control character reached the chat: {:?}", line.text);
    }

    // Honest state unchanged, honest traffic flowing.
    assert_eq!(ada.world.state_hash(), world_before, "the world is untouched");
    let started = Instant::now();
    bo.handle.send(Command::Chat("still here".into()));
    bo.handle.send(Command::Pose(pose_at(5.0)));
    wait_until(&mut [&mut ada], Duration::from_secs(5), "Bo is still heard", |peer| {
        peer.chat.iter().any(|line| line.text == "still here") && peer.pose_of(bo_id) == Some(pose_at(5.0))
    })
    .await;
    println!("Bo heard {:?} after the attack", started.elapsed());
    let rss_after = resident_mib();
    println!(
        "resident memory of the test process (both honest peers and the attacker): {rss_before:?} MiB before, {rss_after:?} MiB after"
    );
    if let Some(after) = rss_after {
        assert!(after < 1024, "resident memory {after} MiB");
    }

    drop(stalled);
    let _ = cy.router.shutdown().await;
    let _ = mallory.router.shutdown().await;
    let _ = sybils.router.shutdown().await;
    ada.handle.shutdown().await;
    bo.handle.shutdown().await;
}
