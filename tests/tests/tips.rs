//! Tip offers between peers: Bo says the offer he takes tips through, Ada hears it (and so can
//! tip him from his avatar's menu); a newcomer hears it at once; Bo takes it back; text that is
//! not an offer is refused before it leaves.

use std::time::Duration;

use sanctuary_net::Command;
use sanctuary_tests::peers::{Peer, offline_config, standing, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tip_offer_is_heard_by_whoever_is_near_and_taken_back() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("temp dir")).collect();
    let mut ada = Peer::start(offline_config(dirs[0].path(), "Ada", None)).await;
    let mut bo = Peer::start(offline_config(dirs[1].path(), "Bo", Some(&ada.ticket))).await;
    let bo_id = bo.id;
    ada.handle.send(Command::Pose(standing(0.0)));
    bo.handle.send(Command::Pose(standing(2.0)));
    wait_until(&mut [&mut ada, &mut bo], Duration::from_secs(20), "Ada sees Bo", |peer| {
        peer.id == bo_id || peer.pose_of(bo_id).is_some()
    })
    .await;
    // Someone who never took tips says nothing about them.
    assert!(!ada.tips.contains_key(&bo_id));

    // Not an offer: refused by Bo's own node, never sent.
    bo.handle.send(Command::TipOffer(Some("<b>pay me</b>".into())));
    wait_until(&mut [&mut bo], Duration::from_secs(5), "the refusal", |peer| {
        peer.notices.iter().any(|notice| notice.contains("not a Lightning offer"))
    })
    .await;

    let offer = format!("lno1{}", "qpzry9x8gf2tvdw0s3jn54khce6mua7l".repeat(14));
    bo.handle.send(Command::TipOffer(Some(offer.clone())));
    wait_until(&mut [&mut ada, &mut bo], Duration::from_secs(10), "Ada hears Bo's offer", |peer| {
        peer.id == bo_id || peer.tips.get(&bo_id).is_some_and(|heard| heard.as_deref() == Some(offer.as_str()))
    })
    .await;

    // A newcomer hears it without waiting for the keepalive.
    let mut cy = Peer::start(offline_config(dirs[2].path(), "Cy", Some(&ada.ticket))).await;
    cy.handle.send(Command::Pose(standing(4.0)));
    wait_until(&mut [&mut ada, &mut bo, &mut cy], Duration::from_secs(20), "Cy hears Bo's offer", |peer| {
        peer.id == bo_id || peer.tips.get(&bo_id).is_some_and(|heard| heard.is_some())
    })
    .await;

    bo.handle.send(Command::TipOffer(None));
    wait_until(&mut [&mut ada, &mut bo, &mut cy], Duration::from_secs(10), "the offer taken back", |peer| {
        peer.id == bo_id || peer.tips.get(&bo_id) == Some(&None)
    })
    .await;
    ada.handle.shutdown().await;
}
