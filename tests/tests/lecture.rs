//! The lecture hall between peers: Ada presents three slides and Bo, in the hall with her, sees
//! each as she moves on; Bo raises his hand, Ada sees it and gives him the floor; Cy comes in
//! late and sees the slide showing; Bo cannot move the slides until Ada hands him the stage, and
//! then his own deck shows for everyone; a hand raised by someone who leaves goes down.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sanctuary_engine::{RegionId, RoomKind};
use sanctuary_net::Command;
use sanctuary_net::stage::StageAction;
use sanctuary_tests::peers::{Peer, offline_config, wait_until};

/// A slide: a PNG of one colour, a different one for each `n`.
fn slide(dir: &Path, name: &str, n: u8) -> PathBuf {
    let path = dir.join(format!("{name}-{n}.png"));
    let colour = image::Rgb([n.wrapping_mul(70), 255 - n.wrapping_mul(50), 40]);
    image::RgbImage::from_pixel(160, 90, colour).save(&path).expect("the slide is written");
    path
}

/// Whether `peer` was handed the slide made from the file at `path` last.
fn shows(peer: &Peer, path: &Path) -> bool {
    let bytes = std::fs::read(path).expect("the slide file");
    peer.slides.last().is_some_and(|(hash, shown)| *shown == bytes && *hash == *blake3::hash(&bytes).as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slides_move_together_hands_reach_the_presenter_and_a_late_joiner_sees_the_slide() {
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().expect("temp dir")).collect();
    let ada_deck: Vec<PathBuf> = (0..3).map(|n| slide(dirs[3].path(), "ada", n)).collect();
    let bo_deck: Vec<PathBuf> = (3..5).map(|n| slide(dirs[3].path(), "bo", n)).collect();
    let hall = RegionId::Room(RoomKind::LectureHall);
    let in_hall = |dir: &Path, name: &str, join: Option<&sanctuary_net::Ticket>| {
        let mut config = offline_config(dir, name, join);
        config.regions = vec![hall];
        config
    };
    let mut ada = Peer::start(in_hall(dirs[0].path(), "Ada", None)).await;
    let mut bo = Peer::start(in_hall(dirs[1].path(), "Bo", Some(&ada.ticket))).await;
    let bo_key = *bo.id.as_bytes();
    wait_until(&mut [&mut ada, &mut bo], Duration::from_secs(20), "Ada and Bo meet in the hall", |peer| {
        peer.status.as_ref().is_some_and(|status| status.neighbours > 0)
    })
    .await;

    // Ada presents; both see her first slide.
    ada.handle.send(Command::Present(ada_deck.clone()));
    let first = wait_until(&mut [&mut ada, &mut bo], Duration::from_secs(20), "both show the first slide", |peer| {
        shows(peer, &ada_deck[0])
    })
    .await;
    let stage = bo.stage.clone().expect("Bo has the stage");
    assert_eq!((stage.state.presenter, stage.state.slides, stage.state.current), (*ada.id.as_bytes(), 3, 0));
    assert!(!stage.ours && ada.stage.as_ref().is_some_and(|view| view.ours));

    // Next, twice, and back: the slides move together.
    for (action, at) in [(StageAction::Next, 1), (StageAction::Next, 2), (StageAction::Previous, 1)] {
        ada.handle.send(Command::Stage(action.clone()));
        let what = format!("both show slide {at} after {action:?}");
        wait_until(&mut [&mut ada, &mut bo], Duration::from_secs(10), &what, |peer| {
            shows(peer, &ada_deck[at]) && peer.stage.as_ref().is_some_and(|view| view.state.current == at as u16)
        })
        .await;
    }

    // Bo raises his hand; Ada sees it, and gives him the floor.
    bo.handle.send(Command::Hand(true));
    let raised = wait_until(&mut [&mut ada, &mut bo], Duration::from_secs(10), "Bo's hand reaches Ada", |peer| {
        peer.stage.as_ref().is_some_and(|view| view.state.hands == vec![bo_key])
    })
    .await;
    ada.handle.send(Command::Stage(StageAction::GiveFloor(bo_key)));
    wait_until(&mut [&mut ada, &mut bo], Duration::from_secs(10), "Bo has the floor", |peer| {
        peer.stage.as_ref().is_some_and(|view| view.state.floor == Some(bo_key) && view.state.hands.is_empty())
    })
    .await;

    // Still here after the 7 s in which someone silent is taken for gone: Bo keeps the floor.
    let still = std::time::Instant::now();
    while still.elapsed() < Duration::from_secs(8) {
        ada.pump();
        bo.pump();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ada.stage.as_ref().and_then(|view| view.state.floor), Some(bo_key), "Bo lost the floor");

    // Only the presenter moves the slides.
    bo.handle.send(Command::Stage(StageAction::Next));
    wait_until(&mut [&mut bo], Duration::from_secs(10), "Bo is told he does not present", |peer| {
        !peer.stage_refused.is_empty()
    })
    .await;
    assert_eq!(ada.stage.as_ref().map(|view| view.state.current), Some(1), "Bo's Next moved nothing");

    // Cy comes in late and sees the slide showing, fetched from whoever holds it.
    let mut cy = Peer::start(in_hall(dirs[2].path(), "Cy", Some(&ada.ticket))).await;
    let late = wait_until(&mut [&mut ada, &mut bo, &mut cy], Duration::from_secs(20), "Cy shows slide 1", |peer| {
        shows(peer, &ada_deck[1])
    })
    .await;
    assert_eq!(cy.stage.as_ref().map(|view| view.state.floor), Some(Some(bo_key)));

    // Ada hands Bo the stage; his deck shows for everyone.
    ada.handle.send(Command::Stage(StageAction::HandOver(bo_key)));
    wait_until(&mut [&mut ada, &mut bo, &mut cy], Duration::from_secs(10), "Bo presents", |peer| {
        peer.stage.as_ref().is_some_and(|view| view.state.presenter == bo_key)
    })
    .await;
    ada.handle.send(Command::Stage(StageAction::Next));
    bo.handle.send(Command::Present(bo_deck.clone()));
    wait_until(&mut [&mut ada, &mut bo, &mut cy], Duration::from_secs(20), "Bo's first slide shows", |peer| {
        shows(peer, &bo_deck[0])
    })
    .await;
    assert!(!ada.stage_refused.is_empty(), "Ada no longer presents");

    // Cy raises her hand and leaves: her hand goes down for everyone.
    let cy_key = *cy.id.as_bytes();
    cy.handle.send(Command::Hand(true));
    wait_until(&mut [&mut ada, &mut bo, &mut cy], Duration::from_secs(10), "Cy's hand reaches Bo", |peer| {
        peer.stage.as_ref().is_some_and(|view| view.state.hands == vec![cy_key])
    })
    .await;
    cy.handle.send(Command::Shutdown);
    wait_until(&mut [&mut ada, &mut bo], Duration::from_secs(10), "Cy's hand goes down as she leaves", |peer| {
        peer.stage.as_ref().is_some_and(|view| view.state.hands.is_empty())
    })
    .await;
    println!(
        "lecture: first slide shown everywhere after {:.0} ms, a hand reached the presenter after {:.0} ms, a late joiner showed the slide after {:.0} ms",
        first.as_secs_f64() * 1000.0,
        raised.as_secs_f64() * 1000.0,
        late.as_secs_f64() * 1000.0
    );
}
