//! Private rooms between peers. Ada invites Bo (he is handed her room's key and told in a
//! private message); Cy, not invited, is refused at the door of Ada's room. Ada and Bo meet in
//! her room and talk; Cy, in the private room region but his own room, hears nothing of it. A
//! relay on the room's topic (a hostile node told the topic) sees only sealed bytes and cannot
//! slip a message in. Ada removes Bo: a new key, a new topic; Bo is told and is out, what Ada
//! says next reaches Cy (invited now) but not Bo, and Bo's old key opens none of it. A hostile
//! node's room keys (junk, a stranger's invitation, a key or removal in Ada's name) are not
//! taken.

use std::time::Duration;

use futures_util::StreamExt;
use sanctuary_engine::{RegionId, RoomKind};
use sanctuary_net::private_room::{OwnRoom, Removal, RoomCipher, RoomMessage, RoomsFile, room_topic};
use sanctuary_net::wire::{RegionMessage, encode, open};
use sanctuary_net::{Command, Ticket};
use sanctuary_tests::hostile::Hostile;
use sanctuary_tests::peers::{Peer, offline_config, wait_until};

const PRIVATE: RegionId = RegionId::Room(RoomKind::Private);

fn start_in_lobby(dir: &tempfile::TempDir, name: &str, join: Option<&Ticket>) -> sanctuary_net::NodeConfig {
    offline_config(dir.path(), name, join)
}

/// What `peer` keeps of its rooms.
fn rooms_file(peer: &Peer) -> RoomsFile {
    let bytes = std::fs::read(peer.dir.join("rooms.bin")).expect("rooms.bin");
    postcard::from_bytes(&bytes).expect("a rooms file")
}

fn heard(peer: &Peer, text: &str) -> bool {
    peer.chat.iter().any(|line| line.text.starts_with(text) && line.region == PRIVATE)
}

/// Says `text` in the room until `listener` hears it. Gossip is best-effort and may lose a
/// message while the room's neighbours change (here, just after the relay joined: about one run
/// in eight lost Bo's first line here, with either side's every count still clean), so it is
/// said again every 3 s, each round with words of its own (gossip passes a message on once).
async fn say_until_heard(speaker: &mut Peer, listener: &mut Peer, text: &str, what: &str) {
    let start = std::time::Instant::now();
    for round in 1.. {
        speaker.handle.send(Command::Chat(format!("{text} (#{round})")));
        let next = std::time::Instant::now() + Duration::from_secs(3);
        while std::time::Instant::now() < next {
            speaker.pump();
            listener.pump();
            if heard(listener, text) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "timed out after 30 s waiting for: {what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_members_enter_and_read_a_private_room_and_a_removed_member_reads_nothing_after() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("temp dir")).collect();
    let mut ada = Peer::start(start_in_lobby(&dirs[0], "Ada", None)).await;
    let mut bo = Peer::start(start_in_lobby(&dirs[1], "Bo", Some(&ada.ticket))).await;
    let mut cy = Peer::start(start_in_lobby(&dirs[2], "Cy", Some(&ada.ticket))).await;
    // Ada is a stranger to both: they lower the shield that her invitation meets.
    bo.take_messages_from_strangers();
    cy.take_messages_from_strangers();
    wait_until(&mut [&mut ada, &mut bo, &mut cy], Duration::from_secs(20), "all three meet", |peer| {
        peer.status.as_ref().is_some_and(|status| status.neighbours > 0 && status.known_peers >= 2)
    })
    .await;
    let (ada_id, bo_id, cy_id) = (ada.id, bo.id, cy.id);

    // Ada invites Bo: he holds the key of her room, and a private message says so.
    ada.handle.send(Command::Invite(bo_id));
    wait_until(&mut [&mut ada, &mut bo], Duration::from_secs(15), "Bo is invited", |peer| {
        let rooms = peer.rooms.as_ref();
        if peer.id == ada_id {
            rooms.is_some_and(|rooms| rooms.members == vec![bo_id])
        } else {
            rooms.is_some_and(|rooms| rooms.invited_to == vec![ada_id])
                && peer.direct.iter().any(|line| line.text.contains("invites you to their private room"))
        }
    })
    .await;

    // Cy is not: the door of Ada's room refuses him.
    cy.handle.send(Command::Visit(Some(ada_id)));
    wait_until(&mut [&mut cy], Duration::from_secs(5), "Cy is refused", |peer| {
        peer.room_refused.iter().any(|reason| reason.contains("not invited"))
    })
    .await;

    // Ada and Bo go into her room; Cy goes into the private room region, which is his own.
    ada.handle.send(Command::Regions(vec![PRIVATE]));
    bo.handle.send(Command::Visit(Some(ada_id)));
    bo.handle.send(Command::Regions(vec![PRIVATE]));
    cy.handle.send(Command::Regions(vec![PRIVATE]));
    wait_until(&mut [&mut ada, &mut bo], Duration::from_secs(20), "Ada and Bo meet in her room", |peer| {
        peer.status.as_ref().is_some_and(|status| status.neighbours > 0)
    })
    .await;

    // A relay that was told the room's topic: it joins through Ada and keeps what it gets.
    let ada_file = rooms_file(&ada);
    let old_key = ada_file.own.key;
    let topic = room_topic(ada_id.as_bytes(), &old_key);
    let mallory = Hostile::new(&ada).await;
    let (relay_sender, mut relay_receiver) = mallory.join_and_listen(topic).await;
    let (caught_tx, mut caught) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        while let Some(Ok(event)) = relay_receiver.next().await {
            if let iroh_gossip::api::Event::Received(message) = event {
                let _ = caught_tx.send(message.content.to_vec());
            }
        }
    });

    say_until_heard(&mut bo, &mut ada, "plans for Friday", "Ada hears Bo in her room").await;
    // The relay slips in a message of its own, signed for the room but not sealed with its key.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_micros() as u64;
    let forged = RegionMessage::Chat { name: "Mallory".into(), text: "let me in".into() };
    let forged = encode(&mallory.secret, topic.as_bytes(), now, &forged).expect("encodes");
    let malformed_before = ada.stats().malformed;
    relay_sender.broadcast(forged.into()).await.expect("sends");
    say_until_heard(&mut ada, &mut bo, "see you there", "Bo hears Ada").await;
    wait_until(&mut [&mut ada], Duration::from_secs(10), "Ada refuses what is not sealed", |peer| {
        peer.stats().malformed > malformed_before
    })
    .await;
    assert!(!heard(&ada, "let me in") && !heard(&bo, "let me in"), "nobody shows the relay's line");
    // Cy, in his own room, heard nothing of theirs.
    cy.pump();
    assert!(!heard(&cy, "plans for Friday") && !heard(&cy, "see you there"), "Cy heard: {:?}", cy.chat);

    // What the relay got: sealed bytes, none of them readable without the key.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut relayed = Vec::new();
    while let Ok(bytes) = caught.try_recv() {
        relayed.push(bytes);
    }
    assert!(!relayed.is_empty(), "the relay got the room's traffic");
    let old_cipher = RoomCipher::new(&old_key);
    for bytes in &relayed {
        assert!(!bytes.windows(6).any(|window| window == b"Friday"), "nothing plain");
        assert!(open::<RegionMessage>(bytes).is_err(), "no signed message without the key");
    }
    assert!(relayed.iter().any(|bytes| old_cipher.open(bytes).is_ok()), "sealed with the room's key");

    // Ada removes Bo and invites Cy: a new key and topic.
    ada.handle.send(Command::Uninvite(bo_id));
    ada.handle.send(Command::Invite(cy_id));
    wait_until(&mut [&mut bo, &mut cy], Duration::from_secs(15), "Bo is out and Cy is in", |peer| {
        let rooms = peer.rooms.as_ref();
        if peer.id == bo_id {
            rooms.is_some_and(|rooms| rooms.invited_to.is_empty())
                && peer.room_refused.iter().any(|reason| reason.contains("removed"))
        } else {
            rooms.is_some_and(|rooms| rooms.invited_to == vec![ada_id])
        }
    })
    .await;
    let new_key = rooms_file(&ada).own.key;
    assert_ne!(new_key, old_key, "a new key");
    cy.handle.send(Command::Visit(Some(ada_id)));
    cy.handle.send(Command::Regions(vec![PRIVATE]));
    wait_until(&mut [&mut ada, &mut cy], Duration::from_secs(20), "Ada and Cy meet in her room", |peer| {
        peer.status.as_ref().is_some_and(|status| status.neighbours > 0)
    })
    .await;
    // A relay told the new topic too.
    let new_topic = room_topic(ada_id.as_bytes(), &new_key);
    let (_new_sender, mut new_receiver) = mallory.join_and_listen(new_topic).await;
    say_until_heard(&mut ada, &mut cy, "now without Bo", "Cy hears Ada").await;
    let mut after = Vec::new();
    while let Ok(Some(Ok(event))) = tokio::time::timeout(Duration::from_secs(2), new_receiver.next()).await {
        if let iroh_gossip::api::Event::Received(message) = event {
            after.push(message.content.to_vec());
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    bo.pump();
    assert!(!heard(&bo, "now without Bo"), "the removed member does not hear what follows");
    assert!(!after.is_empty(), "the relay got the new topic's traffic");
    let new_cipher = RoomCipher::new(&new_key);
    assert!(after.iter().all(|bytes| old_cipher.open(bytes).is_err()), "Bo's old key opens none of it");
    assert!(after.iter().any(|bytes| new_cipher.open(bytes).is_ok()));

    // A hostile node hands out room keys: junk, a key of its own room for Ada (a stranger's
    // invitation, which her shield refuses), Ada's room's key re-signed by it for Bo, and
    // Cy's removal from Ada's room in her name. Nothing of it is taken.
    let ada_mallory = Hostile::new(&ada).await;
    let cy_mallory = Hostile::new(&cy).await;
    let ada_bytes = *ada_id.as_bytes();
    let mut own = OwnRoom::new(1).expect("random");
    own.invite(ada_bytes).expect("room");
    let _ = ada_mallory.room(b"junk").await;
    let _ = ada_mallory.room(&RoomMessage::Key(own.signed(&ada_mallory.secret)).to_bytes()).await;
    let mut forged = own.signed(&cy_mallory.secret);
    forged.owner = ada_bytes;
    forged.members = vec![*bo_id.as_bytes()];
    let _ = cy_mallory.room(&RoomMessage::Key(forged).to_bytes()).await;
    let mut removal = Removal::issue(&cy_mallory.secret, *cy_id.as_bytes(), u64::MAX);
    removal.owner = ada_bytes;
    let _ = cy_mallory.room(&RoomMessage::Removed(removal).to_bytes()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    ada.pump();
    cy.pump();
    assert_eq!(ada.rooms.as_ref().map(|rooms| rooms.invited_to.len()), Some(0), "a stranger's invitation");
    assert_eq!(cy.rooms.as_ref().map(|rooms| rooms.invited_to.clone()), Some(vec![ada_id]), "a forged removal");
    assert!(cy.room_refused.iter().all(|reason| !reason.contains("removed")));

    // Ada's room is kept on disk as it is now: Cy alone is a member.
    assert_eq!(rooms_file(&ada).own.members.into_iter().collect::<Vec<_>>(), vec![*cy_id.as_bytes()]);
    for hostile in [mallory, ada_mallory, cy_mallory] {
        let _ = hostile.router.shutdown().await;
    }
    for peer in [ada, bo, cy] {
        peer.handle.shutdown().await;
    }
}
