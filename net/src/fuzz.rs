//! Every decoder of network or disk bytes in this crate as a plain function of bytes, with seed
//! inputs that it accepts, for the fuzzer (`cargo xtask fuzz`, `tests/src/bin/fuzz.rs`).
//!
//! A decoder returns `Some(digest)` of what it accepted (for a signed format: the author,
//! sequence and content it believed) or `None`. For a signed format, an accepted input whose
//! digest is not one of the seeds' is a forgery.

use std::str::FromStr;

use glam::{Quat, Vec3};
use iroh::SecretKey;
use serde::Serialize;

use crate::assets::{Bundle, BundleFile, model_limits};
use crate::node::{ChatLine, DirectLine, OutboxEntry, Profile, Ticket};
use crate::private_room::{HeldRooms, OwnRoom, Removal, RoomCipher, RoomMessage, RoomsFile, room_topic};
use crate::replica::{decode_frame, parse_log};
use crate::store::parse_tail;
use crate::wire::{
    Body, DirectText, PoseFrame, Presence, QuantisedTransform, RegionMessage, Signed, WorldMessage, decode, encode,
};

/// One decoder under test.
#[derive(Debug)]
pub struct Decoder {
    /// What it decodes.
    pub name: &'static str,
    /// Whether it checks signatures (so that accepting a mutated input would be a forgery).
    pub signed: bool,
    /// Inputs it accepts, to mutate.
    pub seeds: Vec<Vec<u8>>,
    /// The decoder.
    pub run: fn(&[u8]) -> Option<[u8; 32]>,
}

/// The scope (topic or recipient) every signed seed is made for.
const SCOPE: [u8; 32] = [0x42; 32];

fn digest<T: Serialize>(value: &T) -> [u8; 32] {
    *blake3::hash(&postcard::to_allocvec(value).unwrap_or_default()).as_bytes()
}

fn signed_digest<T: Body>(message: Signed<T>) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(message.author.as_bytes());
    hasher.update(&message.sequence.to_le_bytes());
    hasher.update(&postcard::to_allocvec(&message.body).unwrap_or_default());
    *hasher.finalize().as_bytes()
}

fn pose(x: f32) -> PoseFrame {
    let at = |dx: f32| QuantisedTransform::new(Vec3::new(x + dx, 1.7, -4.0), Quat::from_rotation_y(x));
    PoseFrame { head: at(0.0), left_hand: at(-0.3), right_hand: at(0.3) }
}

fn secret(seed: u8) -> SecretKey {
    SecretKey::from_bytes(&[seed; 32])
}

fn key(seed: u8) -> sanctuary_engine::PublicKey {
    sanctuary_engine::PublicKey::from_secret_seed(&[seed; 32])
}

/// Length-prefixed records as the chat, private-message and world logs write them.
fn records<T: Serialize>(values: &[T]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for value in values {
        let body = postcard::to_allocvec(value).unwrap_or_default();
        bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&body);
    }
    bytes
}

fn region_seeds() -> Vec<Vec<u8>> {
    let mut messages = vec![
        RegionMessage::Presence(Presence { name: "Ada".into(), colour: [1, 2, 3], pose: pose(1.0) }),
        RegionMessage::Chat { name: "Bo".into(), text: "hello there, how is the city?".into() },
        RegionMessage::Leave,
        RegionMessage::Change(vec![7; 120]),
        RegionMessage::Mic(crate::MicState::Muted),
        RegionMessage::Look(Some(sanctuary_engine::avatar::AvatarRef {
            hash: [5; 32],
            bytes: 40_000,
            rank: sanctuary_engine::avatar::Rank::Good,
        })),
        RegionMessage::Look(None),
        RegionMessage::Tips(Some(format!("lno1{}", "qpzry9x8gf2tvdw0s3jn54khce6mua7l".repeat(10)))),
        RegionMessage::Tips(None),
        // Signed by its operator for `secret(1)`, who signs these seeds.
        RegionMessage::Agent(crate::agent::AgentCard::issue(&secret(9), &secret(1).public())),
        RegionMessage::Crowd(crate::cells::CrowdSummary {
            cell: crate::cells::Cell { x: -2, y: 3, z: 1 },
            count: 130,
            dots: vec![crate::cells::Dot { at: [10, 200, 3], colour: [200, 40, 90] }; 3],
        }),
        RegionMessage::Screen(crate::screen::ScreenMessage::State(crate::screen::ScreenState {
            version: 3,
            controller: [4; 32],
            queue: vec![crate::screen::FilmEntry {
                hash: [5; 32],
                bytes: 1 << 20,
                name: "film.mp4".into(),
                by: [4; 32],
            }],
            current: 0,
            clock: crate::screen::Clock::Playing { position_ms: 1500, since_us: 1_700_000_000_000_000 },
        })),
        RegionMessage::Stage(crate::stage::StageMessage::State(crate::stage::StageState {
            version: 9,
            presenter: [4; 32],
            slides: 3,
            current: 1,
            slide: Some(crate::stage::SlideRef { hash: [6; 32], bytes: 90_000 }),
            next: Some(crate::stage::SlideRef { hash: [7; 32], bytes: 80_000 }),
            hands: vec![[8; 32], [9; 32]],
            floor: Some([10; 32]),
        })),
        RegionMessage::Stage(crate::stage::StageMessage::Hand { up: true }),
        RegionMessage::Stage(crate::stage::StageMessage::Holding {
            slides: vec![[6; 32], [7; 32]],
            at: crate::screen::Dialable {
                direct: vec![std::net::SocketAddr::from(([127, 0, 0, 1], 4433))],
                relay: None,
            },
        }),
        RegionMessage::Screen(crate::screen::ScreenMessage::Holding {
            film: [5; 32],
            at: crate::screen::Dialable {
                direct: vec![std::net::SocketAddr::from(([127, 0, 0, 1], 4433))],
                relay: Some("https://relay.example/".into()),
            },
        }),
    ];
    let voter = secret(11);
    let poll = crate::poll::Poll {
        author: [0; 32],
        opened_us: 1_700_000_000_000_000,
        closes_us: 1_700_000_600_000_000,
        question: "Which day?".into(),
        options: vec!["Monday".into(), "Friday".into()],
    };
    if let Ok(signed) = crate::poll::SignedPoll::new(&voter, poll) {
        if let Ok(ballot) = crate::poll::Ballot::cast(&voter, &signed.poll, 1, 1_700_000_100_000_000) {
            messages.push(RegionMessage::Meeting(crate::meeting::MeetingMessage::Ballots(vec![ballot])));
        }
        messages.push(RegionMessage::Meeting(crate::meeting::MeetingMessage::Poll(signed)));
    }
    let stroke = crate::whiteboard::Stroke {
        author: [0; 32],
        at_us: 1_700_000_100_000_000,
        colour: [20, 30, 200],
        width: 4,
        points: vec![[100, 200], [300, 400], [65_535, 0]],
    };
    if let Ok(signed) = crate::whiteboard::SignedStroke::new(&voter, stroke) {
        messages.push(RegionMessage::Meeting(crate::meeting::MeetingMessage::Stroke(signed)));
    }
    let clear = crate::whiteboard::Clear::new(&voter, 1_700_000_200_000_000);
    messages.push(RegionMessage::Meeting(crate::meeting::MeetingMessage::Clear(clear)));
    messages
        .iter()
        .enumerate()
        .filter_map(|(at, body)| encode(&secret(1), &SCOPE, 100 + at as u64, body).ok())
        .collect()
}

fn world_seeds() -> Vec<Vec<u8>> {
    let here = WorldMessage::Here { regions: vec![sanctuary_engine::RegionId::Lobby], name: "Cy".into() };
    [here, WorldMessage::Gone].iter().filter_map(|body| encode(&secret(2), &SCOPE, 7, body).ok()).collect()
}

fn direct_seeds() -> Vec<Vec<u8>> {
    let body = DirectText { name: "Ada".into(), text: "only for you".into() };
    encode(&secret(3), &SCOPE, 9, &body).into_iter().collect()
}

fn sync_frame_seeds() -> Vec<Vec<u8>> {
    // Frames as postcard writes them: a variant index, then its contents.
    let summary: Vec<(u32, [u8; 32])> = vec![(3, [9; 32]); 256];
    let mut frames = vec![[vec![0u8], postcard::to_allocvec(&summary).unwrap_or_default()].concat()];
    frames.push([vec![1u8], postcard::to_allocvec(&vec![[5u8; 32]; 4]).unwrap_or_default()].concat());
    frames.push(vec![2]);
    frames.push([vec![3u8], postcard::to_allocvec(&vec![[6u8; 32]; 2]).unwrap_or_default()].concat());
    frames.push([vec![4u8], postcard::to_allocvec(&vec![vec![1u8; 40]; 3]).unwrap_or_default()].concat());
    frames.push(vec![5]);
    frames
}

fn world_log_seed() -> Vec<Vec<u8>> {
    let mut bytes = Vec::new();
    for body in [vec![1u8; 100], vec![2u8; 300]] {
        bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&body);
        bytes.extend_from_slice(&blake3::hash(&body).as_bytes()[..8]);
    }
    vec![bytes]
}

fn chat_log_seed() -> Vec<Vec<u8>> {
    let line = |at: u64| ChatLine {
        region: sanctuary_engine::RegionId::Lobby,
        author: key(1),
        name: "Ada".into(),
        text: format!("line {at}"),
        sequence: at,
    };
    vec![records(&[line(1), line(2), line(3)])]
}

fn direct_log_seed() -> Vec<Vec<u8>> {
    let line = |id: u64| DirectLine { id, from: key(1), to: key(2), name: "Ada".into(), text: format!("note {id}") };
    vec![records(&[line(1), line(2)])]
}

fn outbox_seed() -> Vec<Vec<u8>> {
    let line = DirectLine { id: 5, from: key(1), to: key(2), name: "Ada".into(), text: "later".into() };
    let entries = vec![OutboxEntry::new(line, direct_seeds().pop().unwrap_or_default())];
    vec![postcard::to_allocvec(&entries).unwrap_or_default()]
}

fn manifest_seed() -> Vec<Vec<u8>> {
    let bundle = Bundle {
        main: "model.gltf".into(),
        files: vec![
            BundleFile { name: "model.gltf".into(), hash: [1; 32], size: 1200 },
            BundleFile { name: "buffer.bin".into(), hash: [2; 32], size: 4800 },
        ],
    };
    vec![postcard::to_allocvec(&bundle).unwrap_or_default()]
}

fn ticket_seed() -> Vec<Vec<u8>> {
    let addr = iroh::EndpointAddr::from(secret(4).public());
    vec![iroh_tickets::endpoint::EndpointTicket::new(addr).to_string().into_bytes()]
}

/// The key of the room whose sealed messages are fuzzed.
const ROOM_KEY: [u8; 32] = [0x17; 32];

/// A private room's key and a removal, from the owner `secret(1)` to the member `secret(2)`.
fn room_message_seeds() -> Vec<Vec<u8>> {
    let mut room = OwnRoom { epoch: 1_700_000_000_000_000, key: ROOM_KEY, members: Default::default() };
    room.members.insert(*secret(2).public().as_bytes());
    room.members.insert(*secret(3).public().as_bytes());
    let removal = Removal::issue(&secret(1), *secret(2).public().as_bytes(), room.epoch + 1);
    vec![RoomMessage::Key(room.signed(&secret(1))).to_bytes(), RoomMessage::Removed(removal).to_bytes()]
}

fn rooms_file_seed() -> Vec<Vec<u8>> {
    let own = OwnRoom { epoch: 5, key: ROOM_KEY, members: [[7; 32]].into_iter().collect() };
    let mut held = HeldRooms::default();
    let key = own.signed(&secret(4));
    let _ = held.take(RoomMessage::Key(key));
    vec![postcard::to_allocvec(&RoomsFile { own, held }).unwrap_or_default()]
}

/// Region messages said in a private room: signed for its topic, then sealed with its key.
fn sealed_seeds() -> Vec<Vec<u8>> {
    let topic = room_topic(secret(1).public().as_bytes(), &ROOM_KEY);
    let cipher = RoomCipher::new(&ROOM_KEY);
    let chat = RegionMessage::Chat { name: "Ada".into(), text: "in here".into() };
    let presence = RegionMessage::Presence(Presence { name: "Bo".into(), colour: [1, 2, 3], pose: pose(1.0) });
    [chat, presence]
        .iter()
        .enumerate()
        .filter_map(|(at, message)| encode(&secret(2), topic.as_bytes(), 10 + at as u64, message).ok())
        .map(|bytes| cipher.seal(&bytes))
        .collect()
}

/// A receipt Bo signs for Ada, and a record of two.
fn receipt_seeds() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let server = *secret(1).public().as_bytes();
    let mut signed = Vec::new();
    for receiver in [2, 3] {
        let mut given = crate::receipts::Given::default();
        given.add(server, 123_456, 3, 17, 1_700_000_000);
        signed.extend(given.receipt(&secret(receiver), server, 1_700_000_100));
    }
    let one = signed.iter().take(1).map(crate::receipts::SignedReceipt::to_bytes).collect();
    (one, vec![postcard::to_allocvec(&signed).unwrap_or_default()])
}

/// Every decoder of this crate, with its seeds.
pub fn decoders() -> Vec<Decoder> {
    vec![
        Decoder {
            name: "region message (gossip)",
            signed: true,
            seeds: region_seeds(),
            run: |bytes| decode::<RegionMessage>(bytes, &SCOPE).ok().map(signed_digest),
        },
        Decoder {
            name: "world message (gossip)",
            signed: true,
            seeds: world_seeds(),
            run: |bytes| decode::<WorldMessage>(bytes, &SCOPE).ok().map(signed_digest),
        },
        Decoder {
            name: "private message",
            signed: true,
            seeds: direct_seeds(),
            run: |bytes| decode::<DirectText>(bytes, &SCOPE).ok().map(signed_digest),
        },
        Decoder {
            name: "private room key (alpn::ROOM)",
            signed: true,
            seeds: room_message_seeds(),
            run: |bytes| {
                RoomMessage::open(bytes, secret(1).public().as_bytes(), secret(2).public().as_bytes())
                    .ok()
                    .map(|message| digest(&message))
            },
        },
        Decoder {
            name: "private room message (gossip, sealed)",
            signed: true,
            seeds: sealed_seeds(),
            run: |bytes| {
                let plain = RoomCipher::new(&ROOM_KEY).open(bytes).ok()?;
                let topic = room_topic(secret(1).public().as_bytes(), &ROOM_KEY);
                decode::<RegionMessage>(&plain, topic.as_bytes()).ok().map(signed_digest)
            },
        },
        Decoder {
            name: "private rooms (disk)",
            signed: false,
            seeds: rooms_file_seed(),
            run: |bytes| {
                let file: RoomsFile = postcard::from_bytes(bytes).ok()?;
                let me = [7; 32];
                Some(digest(&RoomsFile { own: file.own, held: file.held.checked(&me) }))
            },
        },
        Decoder {
            name: "world sync frame",
            signed: false,
            seeds: sync_frame_seeds(),
            run: |bytes| {
                decode_frame(bytes).ok().map(|frame| *blake3::hash(format!("{frame:?}").as_bytes()).as_bytes())
            },
        },
        Decoder {
            name: "world log (disk)",
            signed: false,
            seeds: world_log_seed(),
            run: |bytes| {
                let (records, good) = parse_log(bytes);
                (good > 0).then(|| digest(&records))
            },
        },
        Decoder {
            name: "chat log (disk)",
            signed: false,
            seeds: chat_log_seed(),
            run: |bytes| {
                let lines: Vec<ChatLine> = parse_tail(bytes, 200);
                (!lines.is_empty()).then(|| digest(&lines))
            },
        },
        Decoder {
            name: "private-message log (disk)",
            signed: false,
            seeds: direct_log_seed(),
            run: |bytes| {
                let lines: Vec<DirectLine> = parse_tail(bytes, usize::MAX);
                (!lines.is_empty()).then(|| digest(&lines))
            },
        },
        Decoder {
            name: "outbox (disk)",
            signed: false,
            seeds: outbox_seed(),
            run: |bytes| postcard::from_bytes::<Vec<OutboxEntry>>(bytes).ok().map(|entries| digest(&entries)),
        },
        Decoder {
            name: "profile (disk)",
            signed: false,
            seeds: vec![postcard::to_allocvec(&Profile::new("Ada", [1, 2, 3])).unwrap_or_default()],
            run: |bytes| postcard::from_bytes::<Profile>(bytes).ok().map(|profile| digest(&profile)),
        },
        Decoder {
            name: "model manifest (blob)",
            signed: false,
            seeds: manifest_seed(),
            run: |bytes| {
                let bundle: Bundle = postcard::from_bytes(bytes).ok()?;
                (bundle.files.len() <= model_limits().max_files).then(|| digest(&bundle))
            },
        },
        Decoder {
            name: "contribution receipt (alpn::RECEIPT)",
            signed: true,
            seeds: receipt_seeds().0,
            run: |bytes| {
                let signed = crate::receipts::SignedReceipt::from_bytes(bytes).ok()?;
                signed.verify().ok().map(|()| digest(&signed))
            },
        },
        Decoder {
            name: "contribution record (alpn::RECEIPT, answered)",
            // A shorter length prefix leaves a true subset of the receipts: no forgery, but
            // not the seed's digest either; each receipt's signature is the decoder above's.
            signed: false,
            seeds: receipt_seeds().1,
            run: |bytes| {
                let receipts: Vec<crate::receipts::SignedReceipt> = postcard::from_bytes(bytes).ok()?;
                let held = crate::receipts::checked_record(secret(1).public().as_bytes(), receipts);
                (!held.is_empty()).then(|| digest(&held))
            },
        },
        Decoder {
            name: "status page request (loopback HTTP)",
            signed: false,
            seeds: vec![
                b"GET / HTTP/1.1\r\nHost: 127.0.0.1:7780\r\nAccept: text/html\r\n\r\n".to_vec(),
                b"GET /status.json HTTP/1.1\r\nhost: localhost:7780\r\n\r\n".to_vec(),
            ],
            run: |bytes| {
                let response = crate::status_page::respond(bytes, 7780, &crate::status_page::StatusSnapshot::default());
                response.starts_with(b"HTTP/1.1 200 ").then(|| *blake3::hash(&response).as_bytes())
            },
        },
        Decoder {
            name: "near pose datagram (alpn::POSE)",
            signed: false,
            seeds: vec![
                crate::near_pose::PoseDatagram { scope: [1, 2, 3, 4], stamp: 1_790_000_000_000_000, pose: pose(1.0) }
                    .encode()
                    .to_vec(),
            ],
            run: |bytes| {
                crate::near_pose::PoseDatagram::decode(bytes).ok().map(|datagram| digest(&datagram.encode().to_vec()))
            },
        },
        Decoder {
            name: "ticket (pasted text)",
            signed: false,
            seeds: ticket_seed(),
            run: |bytes| {
                let text = String::from_utf8_lossy(bytes);
                Ticket::from_str(&text).ok().map(|ticket| *blake3::hash(ticket.to_string().as_bytes()).as_bytes())
            },
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_decoder_accepts_its_seeds() {
        for decoder in decoders() {
            assert!(!decoder.seeds.is_empty(), "{} has seeds", decoder.name);
            for seed in &decoder.seeds {
                assert!((decoder.run)(seed).is_some(), "{} accepts its own seed", decoder.name);
            }
            assert!((decoder.run)(&[0xff; 3]).is_none(), "{} refuses junk", decoder.name);
        }
    }
}
