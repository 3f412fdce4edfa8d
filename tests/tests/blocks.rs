//! Blocking between peers in one process: once Bo blocks Ada, her chat, private messages,
//! presence, microphone state and voice stop reaching him at once, while Cy (who does not block
//! her) still gets them all; after Bo restarts, the block holds; once he unblocks her, her chat
//! reaches him again.

use std::time::Duration;

use glam::{Quat, Vec3};
use sanctuary_engine::PublicKey;
use sanctuary_net::{Command, MicState, PoseFrame, QuantisedTransform, VoiceDatagram};
use sanctuary_tests::peers::{Peer, offline_config, wait_until};
use tokio::sync::mpsc::Receiver;

fn standing_at(x: f32) -> PoseFrame {
    let at = |dx: f32| QuantisedTransform::new(Vec3::new(x + dx, 1.7, -30.0), Quat::IDENTITY);
    PoseFrame { head: at(0.0), left_hand: at(-0.3), right_hand: at(0.3) }
}

/// Whether anything arrived on `voice` (emptying it).
fn heard(voice: &mut Receiver<VoiceDatagram>) -> bool {
    let mut any = false;
    while voice.try_recv().is_ok() {
        any = true;
    }
    any
}

/// Ada talks for half a second: 25 small datagrams to whoever her node finds in range.
async fn ada_speaks(ada: &Peer) {
    let sender = ada.handle.voice_sender();
    for _ in 0..25 {
        sender.send(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0xf8, 0xff, 0xfe]);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_key_stops_reaching_the_blocker_at_once_and_after_a_restart() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("temp dir")).collect();
    let mut ada = Peer::start(offline_config(dirs[0].path(), "Ada", None)).await;
    let mut bo = Peer::start(offline_config(dirs[1].path(), "Bo", Some(&ada.ticket))).await;
    let mut cy = Peer::start(offline_config(dirs[2].path(), "Cy", Some(&ada.ticket))).await;
    // Bo and Cy take strangers' private messages (the default shield refuses them).
    bo.take_messages_from_strangers();
    cy.take_messages_from_strangers();
    let (ada_id, bo_id, cy_id): (PublicKey, PublicKey, PublicKey) = (ada.id, bo.id, cy.id);
    for (peer, x) in [(&ada, 0.0), (&bo, 3.0), (&cy, -3.0)] {
        peer.handle.send(Command::Pose(standing_at(x)));
    }
    let (mut bo_voice, mut cy_voice) = (bo.handle.take_voice().expect("voice"), cy.handle.take_voice().expect("voice"));
    wait_until(&mut [&mut ada, &mut bo, &mut cy], Duration::from_secs(30), "everyone sees everyone", |peer| {
        [ada_id, bo_id, cy_id].iter().all(|id| *id == peer.id || peer.pose_of(*id).is_some())
    })
    .await;

    bo.handle.send(Command::Block(ada_id));
    wait_until(&mut [&mut bo], Duration::from_secs(5), "Bo's block takes", |peer| {
        peer.blocks == vec![ada_id] && peer.left.contains(&ada_id)
    })
    .await;
    bo.presences.clear();
    let voice_range = Duration::from_millis(600);
    tokio::time::sleep(voice_range).await;
    heard(&mut bo_voice);

    // Ada says, writes, moves, mutes and speaks; Cy gets it all, Bo nothing.
    let line = "you cannot hear this, Bo";
    ada.handle.send(Command::Chat(line.into()));
    ada.handle.send(Command::Direct { to: bo_id, text: "a private word for Bo".into() });
    ada.handle.send(Command::Direct { to: cy_id, text: "a private word for Cy".into() });
    ada.handle.send(Command::Pose(standing_at(0.5)));
    ada.handle.send(Command::Mic(MicState::Muted));
    ada_speaks(&ada).await;
    wait_until(&mut [&mut ada, &mut bo, &mut cy], Duration::from_secs(20), "Cy hears all of Ada", |peer| {
        peer.id != cy_id
            || (peer.chat.iter().any(|said| said.text == line)
                && peer.direct.iter().any(|message| message.from == ada_id)
                && peer.mics.iter().any(|(who, _)| *who == ada_id))
    })
    .await;
    assert!(heard(&mut cy_voice), "Cy hears Ada's voice");
    tokio::time::sleep(Duration::from_secs(1)).await;
    bo.pump();
    assert!(!bo.chat.iter().any(|said| said.author == ada_id), "Bo got Ada's chat");
    assert!(!bo.direct.iter().any(|message| message.from == ada_id), "Bo got Ada's private message");
    assert!(bo.presences.keys().all(|(_, who)| *who != ada_id), "Bo still sees Ada");
    assert!(!bo.mics.iter().any(|(who, _)| *who == ada_id), "Bo got Ada's microphone state");
    assert!(!heard(&mut bo_voice), "Bo hears Ada's voice");

    // After a restart the block holds, and nothing of hers comes back from the logs.
    bo.handle.shutdown().await;
    let mut bo = Peer::start(offline_config(dirs[1].path(), "Bo", Some(&ada.ticket))).await;
    bo.handle.send(Command::Pose(standing_at(3.0)));
    wait_until(&mut [&mut bo], Duration::from_secs(5), "Bo's list is read back", |peer| peer.blocks == vec![ada_id])
        .await;
    let again = "still blocked after your restart";
    ada.handle.send(Command::Chat(again.into()));
    wait_until(&mut [&mut ada, &mut bo, &mut cy], Duration::from_secs(20), "Cy hears Ada again", |peer| {
        peer.id != cy_id || peer.chat.iter().any(|said| said.text == again)
    })
    .await;
    // Bo has met the others again (he sees Cy), and still nothing of Ada.
    wait_until(&mut [&mut ada, &mut bo, &mut cy], Duration::from_secs(20), "Bo sees Cy again", |peer| {
        peer.id != bo_id || peer.pose_of(cy_id).is_some()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    bo.pump();
    assert!(!bo.chat.iter().chain(&bo.history).any(|said| said.author == ada_id), "Ada's chat after the restart");
    assert!(bo.pose_of(ada_id).is_none(), "Bo sees Ada after the restart");

    // Unblocked, she is back.
    bo.handle.send(Command::Unblock(ada_id));
    let welcome = "welcome back, Bo";
    wait_until(&mut [&mut bo], Duration::from_secs(5), "the block is undone", |peer| peer.blocks.is_empty()).await;
    ada.handle.send(Command::Chat(welcome.into()));
    wait_until(&mut [&mut ada, &mut bo, &mut cy], Duration::from_secs(20), "Bo hears Ada again", |peer| {
        peer.id != bo_id || peer.chat.iter().any(|said| said.text == welcome)
    })
    .await;
}
