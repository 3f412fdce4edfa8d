//! Spatial cells between peers: in the lobby, people far apart hear each other only as their
//! cells' summaries (a dot where they are, no name, no pose), and as one comes within reach
//! their signed presence arrives; coming back out, they turn into a dot again.

use std::time::Duration;

use glam::{Quat, Vec3};
use sanctuary_net::cells::{BLOCK_REACH, CELL_SIZE, Cell, rank};
use sanctuary_net::{Command, PoseFrame, QuantisedTransform};
use sanctuary_tests::peers::{Peer, offline_config, wait_until};

fn floating_at(at: Vec3) -> PoseFrame {
    let hand = |dx: f32| QuantisedTransform::new(at + Vec3::new(dx, -0.6, 0.0), Quat::IDENTITY);
    PoseFrame { head: QuantisedTransform::new(at, Quat::IDENTITY), left_hand: hand(-0.3), right_hand: hand(0.3) }
}

/// Whether `peer` was told of a far dot within a cell's step of `at`.
fn sees_a_dot_at(peer: &Peer, at: Vec3) -> bool {
    peer.far.as_ref().is_some_and(|(dots, _)| dots.iter().any(|dot| dot.position.distance(at) < 0.5))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn far_people_are_dots_until_they_come_within_reach() {
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().expect("temp dir")).collect();
    let mut ada = Peer::start(offline_config(dirs[0].path(), "Ada", None)).await;
    let mut bo = Peer::start(offline_config(dirs[1].path(), "Bo", Some(&ada.ticket))).await;
    let ada_at = Vec3::new(5.0, 1.7, 5.0);
    // Bo floats high above the lobby's floor: four cells up, well past the block's reach.
    let bo_far = Vec3::new(10.0, 1.7 + 4.0 * CELL_SIZE, 12.0);
    assert!(bo_far.distance(ada_at) > 3.0 * BLOCK_REACH);
    ada.handle.send(Command::Pose(floating_at(ada_at)));
    bo.handle.send(Command::Pose(floating_at(bo_far)));
    let (ada_id, bo_id) = (ada.id, bo.id);
    wait_until(&mut [&mut ada, &mut bo], Duration::from_secs(20), "each sees the other as a far dot", |peer| {
        let other = if peer.id == ada_id { bo_far } else { ada_at };
        sees_a_dot_at(peer, other)
    })
    .await;
    assert!(ada.far.as_ref().is_some_and(|(_, people)| *people >= 1));
    // Neither heard the other's presence: the cells kept it in their own topics.
    assert!(ada.pose_of(bo_id).is_none(), "Ada heard the pose of someone far off");
    assert!(bo.pose_of(ada_id).is_none(), "Bo heard the pose of someone far off");
    let status = ada.status.clone().expect("a status");
    assert_eq!(status.cells, 8, "the lobby's block is two cells each way in three axes");

    // Bo floats down next to Ada: she gets his presence and he hers.
    let bo_near = ada_at + Vec3::new(3.0, 0.0, 0.0);
    bo.handle.send(Command::Pose(floating_at(bo_near)));
    wait_until(&mut [&mut ada, &mut bo], Duration::from_secs(20), "each hears the other near", |peer| {
        let (other, at) = if peer.id == ada_id { (bo_id, bo_near) } else { (ada_id, ada_at) };
        peer.pose_of(other).is_some_and(|pose| pose.head.position().distance(at) < 0.01)
    })
    .await;
    // Near, Bo is no dot of Ada's: his cell is one she listens on.
    assert_eq!(
        Cell::of(sanctuary_engine::RegionId::Lobby, bo_near),
        Cell::of(sanctuary_engine::RegionId::Lobby, ada_at)
    );
    wait_until(&mut [&mut ada], Duration::from_secs(10), "Ada's far crowd empties", |peer| {
        peer.far.as_ref().is_some_and(|(dots, _)| dots.is_empty())
    })
    .await;
}

/// Whoever ranks lowest in a cell reports it; when that one restarts, the other still remembers
/// its presence from before, so "not heard there" does not hold. Its first summary counts only
/// itself, which asks it in again at once: the two see each other within seconds, not after the
/// old presence has been forgotten (7 s) and the next summary has come round (5 s more).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reporter_that_restarts_is_found_again_at_once() {
    let lobby = sanctuary_engine::RegionId::Lobby;
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().expect("temp dir")).collect();
    let ada = Peer::start(offline_config(dirs[0].path(), "Ada", None)).await;
    let bo = Peer::start(offline_config(dirs[1].path(), "Bo", Some(&ada.ticket))).await;
    let here = Vec3::new(5.0, 1.7, 5.0);
    let cell = Cell::of(lobby, here);
    let bo_reports = rank(bo.id.as_bytes(), lobby, cell) < rank(ada.id.as_bytes(), lobby, cell);
    let (mut stays, mut reporter, reporter_dir, reporter_name) =
        if bo_reports { (ada, bo, dirs[1].path(), "Bo") } else { (bo, ada, dirs[0].path(), "Ada") };
    let (stays_id, reporter_id) = (stays.id, reporter.id);
    stays.handle.send(Command::Pose(floating_at(here)));
    reporter.handle.send(Command::Pose(floating_at(here + Vec3::X)));
    wait_until(&mut [&mut stays, &mut reporter], Duration::from_secs(20), "the two see each other", |peer| {
        let other = if peer.id == stays_id { reporter_id } else { stays_id };
        peer.pose_of(other).is_some()
    })
    .await;

    // The reporter moves (so the other has just heard it) and restarts at once.
    reporter.handle.send(Command::Pose(floating_at(here + 1.5 * Vec3::X)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    reporter.handle.shutdown().await;
    stays.pump();
    stays.presences.clear();
    let mut reporter = Peer::start(offline_config(reporter_dir, reporter_name, Some(&stays.ticket))).await;
    reporter.handle.send(Command::Pose(floating_at(here + Vec3::X)));
    wait_until(&mut [&mut stays, &mut reporter], Duration::from_secs(5), "the two see each other again", |peer| {
        let other = if peer.id == stays_id { reporter_id } else { stays_id };
        peer.pose_of(other).is_some()
    })
    .await;
}
