//! The meeting room between peers. Polls: Ada opens a poll and Bo sees it; both vote, Bo
//! votes twice and then changes his mind; a hostile peer votes once honestly and then forges
//! ballots (in Ada's name, and one altered after signing), which nobody counts; Cy comes in late
//! and sees the poll with the same tally; the results exported as CSV check vote by vote; a
//! poll opened outside the meeting room, and a vote after the close, are refused; Ada's polls
//! are still there after she restarts. The whiteboard: two peers draw at once and their boards
//! end the same; one erases his own strokes; a late joiner is handed the whole board.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sanctuary_engine::{RegionId, RoomKind};
use sanctuary_net::meeting::MeetingMessage;
use sanctuary_net::poll::{Ballot, verify_csv};
use sanctuary_net::whiteboard::Stroke;
use sanctuary_net::wire::{RegionMessage, encode};
use sanctuary_net::{Command, PollView, Ticket, region_topic};
use sanctuary_tests::hostile::Hostile;
use sanctuary_tests::peers::{Peer, offline_config, wait_until};

const MEETING: RegionId = RegionId::Room(RoomKind::Meeting);

fn in_meeting(dir: &Path, name: &str, join: Option<&Ticket>) -> sanctuary_net::NodeConfig {
    let mut config = offline_config(dir, name, join);
    config.regions = vec![MEETING];
    config
}

fn wall_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_micros() as u64).unwrap_or(0)
}

/// The poll asking `question`, as `peer` last heard.
fn poll<'a>(peer: &'a Peer, question: &str) -> Option<&'a PollView> {
    peer.polls.iter().find(|view| view.poll.question == question)
}

fn tally_is(peer: &Peer, question: &str, tally: &[u32]) -> bool {
    poll(peer, question).is_some_and(|view| view.tally == tally)
}

/// Ada and Bo in the meeting room, keeping their files in the first two of `dirs`, once they
/// are gossip neighbours.
async fn ada_and_bo_meet(dirs: &[tempfile::TempDir]) -> (Peer, Peer) {
    let mut ada = Peer::start(in_meeting(dirs[0].path(), "Ada", None)).await;
    let mut bo = Peer::start(in_meeting(dirs[1].path(), "Bo", Some(&ada.ticket))).await;
    wait_until(&mut [&mut ada, &mut bo], Duration::from_secs(20), "Ada and Bo meet in the meeting room", |peer| {
        peer.status.as_ref().is_some_and(|status| status.neighbours > 0)
    })
    .await;
    (ada, bo)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_counts_one_vote_per_key_and_a_late_joiner_sees_the_same_tally() {
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().expect("temp dir")).collect();
    let (mut ada, mut bo) = ada_and_bo_meet(&dirs).await;

    // Ada opens a poll; both see it, with no votes.
    let lunch = "Where do we eat?";
    let options = vec!["Noodles".to_owned(), "Tacos".to_owned(), "Soup".to_owned()];
    let hour = Duration::from_secs(3600);
    ada.handle.send(Command::OpenPoll { question: lunch.into(), options: options.clone(), open_for: hour });
    wait_until(&mut [&mut ada, &mut bo], Duration::from_secs(10), "both see the poll", |peer| {
        tally_is(peer, lunch, &[0, 0, 0])
    })
    .await;
    let view = poll(&bo, lunch).expect("Bo sees the poll").clone();
    assert_eq!((view.poll.author, view.poll.options.clone(), view.open), (*ada.id.as_bytes(), options, true));

    // Ada votes noodles; Bo votes tacos twice, then changes to soup.
    ada.handle.send(Command::Vote { poll: view.id, choice: 0 });
    bo.handle.send(Command::Vote { poll: view.id, choice: 1 });
    bo.handle.send(Command::Vote { poll: view.id, choice: 1 });
    wait_until(&mut [&mut ada, &mut bo], Duration::from_secs(10), "Ada noodles, Bo tacos", |peer| {
        tally_is(peer, lunch, &[1, 1, 0])
    })
    .await;
    bo.handle.send(Command::Vote { poll: view.id, choice: 2 });
    wait_until(&mut [&mut ada, &mut bo], Duration::from_secs(10), "Bo changed to soup", |peer| {
        tally_is(peer, lunch, &[1, 0, 1]) && poll(peer, lunch).is_some_and(|view| view.voters == 2)
    })
    .await;
    assert_eq!(poll(&bo, lunch).and_then(|view| view.mine), Some(2), "Bo's own choice is his latest");

    // A hostile peer votes tacos once, honestly; then forges Ada's vote for tacos, and sends a
    // ballot of its own altered after signing (soup made noodles).
    let mallory = Hostile::new(&ada).await;
    let topic = mallory.join(region_topic(MEETING)).await;
    let now = wall_micros();
    let honest = Ballot::cast(&mallory.secret, &view.poll, 1, now).expect("casts");
    let mut forged = Ballot::cast(&mallory.secret, &view.poll, 1, now + 1).expect("casts");
    forged.voter = *ada.id.as_bytes();
    let mut altered = Ballot::cast(&mallory.secret, &view.poll, 2, now + 2).expect("casts");
    altered.choice = 0;
    for (sequence, ballots) in [vec![honest], vec![forged, altered]].into_iter().enumerate() {
        let message = RegionMessage::Meeting(MeetingMessage::Ballots(ballots));
        // The sequence is the sender's clock in µs, as honest nodes send it.
        let bytes = encode(&mallory.secret, region_topic(MEETING).as_bytes(), now + sequence as u64, &message)
            .expect("encodes");
        topic.broadcast(bytes.into()).await.expect("sends");
    }
    wait_until(&mut [&mut ada, &mut bo], Duration::from_secs(10), "Mallory's one honest vote counts", |peer| {
        tally_is(peer, lunch, &[1, 1, 1])
    })
    .await;
    // Give the forged ones time to arrive: they change nothing.
    let settle = std::time::Instant::now();
    wait_until(&mut [&mut ada, &mut bo], Duration::from_secs(3), "a moment", |_| {
        settle.elapsed() > Duration::from_secs(1)
    })
    .await;
    for peer in [&ada, &bo] {
        let view = poll(peer, lunch).expect("held");
        assert_eq!((view.tally.clone(), view.voters), (vec![1, 1, 1], 3), "forged votes are not counted");
        assert_eq!(view.trusted, vec![u32::from(view.mine == Some(0)), 0, u32::from(view.mine == Some(2))]);
    }
    mallory.router.shutdown().await.expect("the hostile node stops");

    // Cy comes in late, knowing only Bo: she sees the poll and its tally.
    let mut cy = Peer::start(in_meeting(dirs[2].path(), "Cy", Some(&bo.ticket))).await;
    wait_until(&mut [&mut ada, &mut bo, &mut cy], Duration::from_secs(20), "Cy sees the tally", |peer| {
        tally_is(peer, lunch, &[1, 1, 1])
    })
    .await;

    // The results, exported by Cy, check vote by vote.
    let csv_path = dirs[3].path().join("lunch.csv");
    cy.handle.send(Command::ExportPoll { poll: view.id, to: csv_path.clone() });
    wait_until(&mut [&mut cy], Duration::from_secs(10), "the CSV is written", |peer| !peer.exported.is_empty()).await;
    let csv = std::fs::read_to_string(&csv_path).expect("the CSV");
    let checked = verify_csv(&csv).expect("every vote checks");
    assert_eq!(checked.tally(|_| true), vec![1, 1, 1]);
    let tampered = csv.replacen(",2,\"Soup\",", ",0,\"Noodles\",", 1);
    assert_ne!(tampered, csv, "the CSV has Bo's vote for soup");
    assert!(verify_csv(&tampered).is_err(), "a vote changed in the CSV no longer checks");

    // A short poll closes; a vote after it is refused, and one key has two polls open at most.
    ada.handle.send(Command::OpenPoll {
        question: "Quick?".into(),
        options: vec!["Yes".into(), "No".into()],
        open_for: Duration::from_secs(2),
    });
    wait_until(&mut [&mut bo], Duration::from_secs(10), "Bo sees the quick poll", |peer| {
        poll(peer, "Quick?").is_some()
    })
    .await;
    let quick = poll(&bo, "Quick?").expect("held").id;
    ada.handle.send(Command::OpenPoll {
        question: "Third?".into(),
        options: vec!["A".into(), "B".into()],
        open_for: hour,
    });
    wait_until(&mut [&mut ada], Duration::from_secs(10), "a third open poll is refused", |peer| {
        peer.poll_refused.iter().any(|reason| reason.contains("polls open at once"))
    })
    .await;
    wait_until(&mut [&mut ada, &mut bo], Duration::from_secs(10), "the quick poll closes", |peer| {
        poll(peer, "Quick?").is_some_and(|view| !view.open)
    })
    .await;
    bo.handle.send(Command::Vote { poll: quick, choice: 0 });
    wait_until(&mut [&mut bo], Duration::from_secs(10), "Bo's late vote is refused", |peer| {
        peer.poll_refused.iter().any(|reason| reason.contains("closed"))
    })
    .await;

    // Outside the meeting room there are no polls to open.
    let mut dee = Peer::start(offline_config(dirs[3].path(), "Dee", None)).await;
    dee.handle.send(Command::OpenPoll {
        question: "Here?".into(),
        options: vec!["A".into(), "B".into()],
        open_for: hour,
    });
    wait_until(&mut [&mut dee], Duration::from_secs(10), "Dee's poll in the lobby is refused", |peer| {
        peer.poll_refused.iter().any(|reason| reason.contains("meeting room"))
    })
    .await;
    dee.handle.shutdown().await;

    // Ada's polls and their votes are still there after a restart.
    ada.handle.shutdown().await;
    bo.handle.shutdown().await;
    cy.handle.shutdown().await;
    let mut again = Peer::start(in_meeting(dirs[0].path(), "Ada", None)).await;
    wait_until(&mut [&mut again], Duration::from_secs(10), "Ada's polls come back", |peer| {
        tally_is(peer, lunch, &[1, 1, 1]) && poll(peer, "Quick?").is_some()
    })
    .await;
    again.handle.shutdown().await;
}

/// A stroke across the board at height `y`, in `colour`.
fn stroke(y: u16, colour: [u8; 3]) -> Stroke {
    Stroke { author: [0; 32], at_us: 0, colour, width: 4, points: (0..20).map(|x| [x * 3000, y]).collect() }
}

/// The strokes on `peer`'s board, as (author, height), in the order drawn.
fn drawn(peer: &Peer) -> Vec<([u8; 32], u16)> {
    peer.board.iter().map(|stroke| (stroke.author, stroke.points[0][1])).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whiteboard_strokes_drawn_at_once_end_the_same_and_a_late_joiner_gets_the_board() {
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().expect("temp dir")).collect();
    let (mut ada, mut bo) = ada_and_bo_meet(&dirs).await;
    let (ada_key, bo_key) = (*ada.id.as_bytes(), *bo.id.as_bytes());

    // Both draw at once, interleaved: both boards end the same, in the same order.
    for at in 0..8u16 {
        ada.handle.send(Command::Draw(stroke(1000 + at, [200, 30, 30])));
        bo.handle.send(Command::Draw(stroke(2000 + at, [30, 30, 200])));
    }
    wait_until(&mut [&mut ada, &mut bo], Duration::from_secs(10), "both boards hold all 16 strokes", |peer| {
        peer.board.len() == 16
    })
    .await;
    assert_eq!(drawn(&ada), drawn(&bo), "the same strokes in the same order on both");
    assert_eq!(drawn(&ada).iter().filter(|(author, _)| *author == bo_key).count(), 8);

    // Nobody owns the meeting room's board: Bo's clear takes only his own strokes.
    bo.handle.send(Command::ClearBoard);
    wait_until(&mut [&mut ada, &mut bo], Duration::from_secs(10), "Bo's strokes are gone on both", |peer| {
        peer.board.len() == 8 && peer.board.iter().all(|stroke| stroke.author == ada_key)
    })
    .await;

    // Cy comes in late: she is handed the whole board by a neighbour.
    let mut cy = Peer::start(in_meeting(dirs[2].path(), "Cy", Some(&bo.ticket))).await;
    wait_until(&mut [&mut ada, &mut bo, &mut cy], Duration::from_secs(20), "Cy has the board", |peer| {
        peer.board.len() == 8
    })
    .await;
    assert_eq!(drawn(&cy), drawn(&ada));

    // Outside the meeting room there is no board to draw on.
    let mut dee = Peer::start(offline_config(dirs[3].path(), "Dee", None)).await;
    dee.handle.send(Command::Draw(stroke(5, [0, 0, 0])));
    wait_until(&mut [&mut dee], Duration::from_secs(10), "Dee's stroke in the lobby is refused", |peer| {
        peer.board.is_empty() && peer.board_refused.iter().any(|reason| reason.contains("meeting room"))
    })
    .await;
    for peer in [dee, ada, bo, cy] {
        peer.handle.shutdown().await;
    }
}
