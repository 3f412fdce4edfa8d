//! Near poses between peers: people standing close get each other's pose twenty times a second
//! over direct connections (no signature per pose), someone far away gets none of them, and a
//! block stops them at once.

use std::time::{Duration, Instant};

use glam::{Quat, Vec3};
use sanctuary_net::{Command, NEAR_DISTANCE, PoseFrame, QuantisedTransform};
use sanctuary_tests::peers::{Peer, offline_config, wait_until};

fn pose_at(x: f32, turn: f32) -> PoseFrame {
    let at = |dx: f32| QuantisedTransform::new(Vec3::new(x + dx, 1.7, -4.0), Quat::from_rotation_y(turn));
    PoseFrame { head: at(0.0), left_hand: at(-0.3), right_hand: at(0.3) }
}

/// Ada's poses that `peer` got as datagrams.
fn from(peer: &Peer, ada: sanctuary_engine::PublicKey) -> usize {
    peer.near_poses.iter().filter(|(author, _, _)| *author == ada).count()
}

/// Ada turns on the spot, a new pose every 25 ms, for `time`, while everyone's events are taken.
async fn turn(ada: &mut Peer, others: &mut [&mut Peer], time: Duration, from_angle: f32) {
    let start = Instant::now();
    let mut step = 0;
    while start.elapsed() < time {
        step += 1;
        ada.handle.send(Command::Pose(pose_at(0.0, from_angle + step as f32 * 0.01)));
        ada.pump();
        for peer in others.iter_mut() {
            peer.pump();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_people_get_poses_at_twenty_hertz_and_nobody_else_does() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("temp dir")).collect();
    let mut ada = Peer::start(offline_config(dirs[0].path(), "Ada", None)).await;
    let mut bo = Peer::start(offline_config(dirs[1].path(), "Bo", Some(&ada.ticket))).await;
    let mut cy = Peer::start(offline_config(dirs[2].path(), "Cy", Some(&ada.ticket))).await;
    ada.handle.send(Command::Pose(pose_at(0.0, 0.0)));
    bo.handle.send(Command::Pose(pose_at(2.0, 0.0)));
    // Cy stands beyond the near distance: gossip only.
    cy.handle.send(Command::Pose(pose_at(NEAR_DISTANCE + 14.0, 0.0)));
    let ids = [ada.id, bo.id, cy.id];
    wait_until(&mut [&mut ada, &mut bo, &mut cy], Duration::from_secs(5), "everyone sees everyone", |peer| {
        ids.iter().filter(|id| **id != peer.id).all(|id| peer.pose_of(*id).is_some())
    })
    .await;

    // Once Ada and Bo are linked, Bo gets her poses as datagrams.
    let start = Instant::now();
    while from(&bo, ada.id) == 0 {
        assert!(start.elapsed() < Duration::from_secs(10), "Bo got no pose datagram from Ada within 10 s");
        turn(&mut ada, &mut [&mut bo, &mut cy], Duration::from_millis(100), 0.0).await;
    }
    println!("the near link carried a pose after {:?}", start.elapsed());

    // Two seconds of Ada turning: twenty poses a second reach Bo (at least 15 on a busy
    // machine), each newer than the one before, and the last one is where she ended up.
    let before = from(&bo, ada.id);
    turn(&mut ada, &mut [&mut bo, &mut cy], Duration::from_secs(2), 1.0).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    bo.pump();
    cy.pump();
    let got = from(&bo, ada.id) - before;
    println!("Bo got {got} pose datagrams from Ada in 2 s");
    assert!(got >= 30, "{got} near poses in 2 s, fewer than 15 a second");
    assert!(got <= 2 * 25 + 30, "{got} near poses in 2 s: more than the rate allows");
    let stamps: Vec<u64> =
        bo.near_poses.iter().filter(|(author, _, _)| *author == ada.id).map(|(_, stamp, _)| *stamp).collect();
    assert!(stamps.windows(2).all(|pair| pair[0] < pair[1]), "stamps only grow");
    let last = bo.near_poses.iter().rev().find(|(author, _, _)| *author == ada.id).map(|(_, _, pose)| *pose);
    let last_turn = last.expect("a pose").head.rotation().to_euler(glam::EulerRot::YXZ).0;
    assert!(last_turn > 1.5, "the last pose is her latest turn ({last_turn} rad)");
    // Every datagram shown was counted as taken (the count may run ahead of the events read).
    assert!(bo.stats().near_poses >= from(&bo, ada.id) as u64, "counted as taken");
    assert_eq!(from(&cy, ada.id), 0, "Cy stands too far for near poses");
    assert!(cy.stats().near_poses == 0);
    let status = ada.status.as_ref().expect("Ada's node reports its state");
    assert_eq!(status.near_neighbours, 1, "Ada's pose goes to Bo alone at the full rate");

    // Bo blocks Ada: her datagrams stop within a pick of the near set (250 ms).
    bo.handle.send(Command::Block(ada.id));
    turn(&mut ada, &mut [&mut bo], Duration::from_millis(600), 2.0).await;
    let after_block = from(&bo, ada.id);
    turn(&mut ada, &mut [&mut bo], Duration::from_secs(1), 3.0).await;
    assert_eq!(from(&bo, ada.id), after_block, "a blocked neighbour's poses still arrive");
}

fn wall_micros() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_micros() as u64)
}

/// A neighbour who speaks the pose protocol without its rules: garbage, wrong sizes and kinds,
/// another region's datagrams, replays, bad dates and a flood are counted and move nothing; a
/// stranger nobody saw pose is not let in at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_neighbours_datagrams_are_counted_and_move_nothing() {
    use sanctuary_engine::RegionId;
    use sanctuary_net::near_pose::PoseDatagram;
    use sanctuary_net::wire::{Presence, RegionMessage, encode};
    use sanctuary_net::{alpn, region_topic};
    use sanctuary_tests::hostile::Hostile;

    let dir = tempfile::tempdir().expect("temp dir");
    let mut ada = Peer::start(offline_config(dir.path(), "Ada", None)).await;
    ada.handle.send(Command::Pose(pose_at(0.0, 0.0)));
    let mallory = Hostile::new(&ada).await;
    let topic = region_topic(RegionId::Lobby);
    let lobby = mallory.join(topic).await;
    let mallory_id = sanctuary_engine::PublicKey::from_bytes(*mallory.secret.public().as_bytes()).expect("a key");
    // Mallory poses a metre from Ada, signed, on gossip: Ada's node picks her as near.
    let presence =
        RegionMessage::Presence(Presence { name: "Mallory".into(), colour: [1, 2, 3], pose: pose_at(1.0, 0.0) });
    let start = Instant::now();
    while ada.pose_of(mallory_id).is_none() {
        assert!(start.elapsed() < Duration::from_secs(10), "Ada never saw Mallory pose");
        let bytes = encode(&mallory.secret, topic.as_bytes(), wall_micros(), &presence).expect("encodes");
        lobby.broadcast(bytes.into()).await.expect("broadcasts");
        tokio::time::sleep(Duration::from_millis(200)).await;
        ada.pump();
    }
    // Past a pick of the near set (250 ms), then dial.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let connection = mallory.endpoint.connect(mallory.target.clone(), alpn::POSE).await.expect("Ada takes the link");
    let before = ada.stats();
    let scope = PoseDatagram::scope_of(topic.as_bytes());
    let now = wall_micros();
    let datagram =
        |scope: [u8; 4], stamp: u64| PoseDatagram { scope, stamp, pose: pose_at(5.0, 0.0) }.encode().to_vec();
    let mut wrong_kind = datagram(scope, now);
    wrong_kind[0] = 9;
    let sends: Vec<Vec<u8>> = vec![
        vec![0xde, 0xad, 0xbe, 0xef],
        vec![0; 48],
        wrong_kind,
        datagram(PoseDatagram::scope_of(region_topic(RegionId::City).as_bytes()), now + 1),
        datagram(scope, now + 2),
        datagram(scope, now + 2),
        datagram(scope, now + 1),
        datagram(scope, now + 3_600_000_000),
        datagram(scope, 1),
    ];
    for bytes in sends {
        connection.send_datagram(bytes.into()).expect("sends");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    ada.pump();
    let after = ada.stats();
    assert_eq!(after.near_poses, before.near_poses + 1, "only the one good datagram was taken: {after:?}");
    assert!(after.malformed >= before.malformed + 4, "garbage, size, kind and region counted: {after:?}");
    // 1970 is older than the last one taken, so it counts as a replay before its date is read.
    assert!(after.replayed >= before.replayed + 3, "the replay, the older one and 1970 counted: {after:?}");
    assert!(after.bad_clock > before.bad_clock, "an hour ahead counted: {after:?}");
    let moved: Vec<_> = ada.near_poses.iter().filter(|(author, _, _)| *author == mallory_id).collect();
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].1, now + 2);

    // A flood: 500 datagrams at once; at most the burst and the rate get through.
    for index in 0..500u64 {
        let _ = connection.send_datagram(datagram(scope, now + 10 + index).into());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    ada.pump();
    let flooded = ada.stats();
    assert!(flooded.near_poses - after.near_poses <= 30 + 25, "the flood got through: {flooded:?}");
    assert!(flooded.flooded > after.flooded, "the flood was counted: {flooded:?}");

    // A stranger who never posed near Ada: the link is turned away after the grace.
    let stranger = Hostile::new(&ada).await;
    let link = stranger.endpoint.connect(stranger.target.clone(), alpn::POSE).await.expect("connects");
    for index in 0..20u64 {
        let _ = link.send_datagram(datagram(scope, wall_micros() + index).into());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let closed = tokio::time::timeout(Duration::from_secs(5), link.closed()).await;
    assert!(closed.is_ok(), "a stranger's pose link stays open");
    ada.pump();
    let stranger_id = sanctuary_engine::PublicKey::from_bytes(*stranger.secret.public().as_bytes()).expect("a key");
    assert!(ada.near_poses.iter().all(|(author, _, _)| *author != stranger_id), "a stranger's pose was taken");
}
