//! Voice between peers in one process: Ada speaks (a sentence from espeak-ng, encoded frame by
//! frame and sent every 20 ms as datagrams), Bo stands 5 m away and hears it, Cy stands 30 m
//! away (in sight, past hearing) and gets nothing. Bo's playback is compared with what Ada said.

use std::time::{Duration, Instant};

use glam::{Quat, Vec3};
use sanctuary_engine::{PublicKey, RegionId, RoomKind};
use sanctuary_net::{Command, Hearing, MicState, PoseFrame, QuantisedTransform, VoiceDatagram, VoiceSender};
use sanctuary_tests::peers::{Peer, offline_config, wait_until};
use sanctuary_voice::codec::VoiceEncoder;
use sanctuary_voice::lab::{align, speak};
use sanctuary_voice::packet::VoicePacket;
use sanctuary_voice::stream::{FrameKind, Speaker, frames};
use sanctuary_voice::{FRAME, FRAME_SAMPLES, SAMPLE_RATE, wav};

fn standing_at(x: f32) -> PoseFrame {
    let at = |dx: f32| QuantisedTransform::new(Vec3::new(x + dx, 1.7, -30.0), Quat::IDENTITY);
    PoseFrame { head: at(0.0), left_hand: at(-0.3), right_hand: at(0.3) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speech_reaches_who_is_near_and_nobody_else() {
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().expect("temp dir")).collect();
    let mut ada = Peer::start(offline_config(dirs[0].path(), "Ada", None)).await;
    let mut bo = Peer::start(offline_config(dirs[1].path(), "Bo", Some(&ada.ticket))).await;
    let mut cy = Peer::start(offline_config(dirs[2].path(), "Cy", Some(&ada.ticket))).await;
    let mut ada_voice = ada.handle.take_voice().expect("Ada's voice");
    let mut bo_voice = bo.handle.take_voice().expect("Bo's voice");
    let mut cy_voice = cy.handle.take_voice().expect("Cy's voice");
    assert!(bo.handle.take_voice().is_none(), "voice is taken once");
    let (ada_id, bo_id, cy_id) = (ada.id, bo.id, cy.id);
    for (peer, x) in [(&ada, 0.0), (&bo, 5.0), (&cy, 30.0)] {
        peer.handle.send(Command::Pose(standing_at(x)));
    }
    let sender = ada.handle.voice_sender();
    // Both ways: Ada's node dialled Bo, and Bo's node counts Ada in range (else he drops her
    // first datagrams while he works that out).
    let bo_sender = bo.handle.voice_sender();
    wait_until(&mut [&mut ada, &mut bo, &mut cy], Duration::from_secs(20), "Ada's voice reaches Bo", |_| {
        sender.listener_ids() == vec![bo_id] && bo_sender.listener_ids() == vec![ada_id]
    })
    .await;
    assert!(ada.pose_of(cy_id).is_some(), "Ada sees Cy, past hearing");

    let dir = tempfile::tempdir().expect("temp dir");
    let speech = wav::read_mono(&speak(dir.path(), "Hello Bo. Can you hear me from over here?").expect("speech"))
        .expect("reads the speech");
    // Ada speaks in real time; one datagram in ten is dropped on the way (a lossy link).
    let mut encoder = VoiceEncoder::new().expect("encoder");
    let start = Instant::now();
    let mut sent_at = Vec::new();
    let mut sequence = 0u32;
    for (index, frame) in frames(&speech).iter().enumerate() {
        tokio::time::sleep_until((start + FRAME * index as u32).into()).await;
        let Some(payload) = encoder.encode(frame).expect("encodes") else { continue };
        let packet = VoicePacket { sequence, timestamp: (index * FRAME_SAMPLES) as u32, payload };
        sequence += 1;
        sent_at.push(Instant::now());
        if sequence % 10 != 7 {
            assert_eq!(sender.send(&packet.to_bytes()), 1, "to Bo only");
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Bo plays what arrived, at the times it arrived, 20 ms at a time.
    let mut arrived = Vec::new();
    while let Ok(datagram) = bo_voice.try_recv() {
        assert_eq!(datagram.from, ada_id);
        arrived.push(datagram);
    }
    assert!(arrived.len() * 10 >= sent_at.len() * 8, "{} of {} datagrams arrived", arrived.len(), sent_at.len());
    let mut transit: Vec<f64> = arrived
        .iter()
        .filter_map(|datagram| {
            let packet = VoicePacket::parse(&datagram.bytes).ok()?;
            let sent = sent_at.get(packet.sequence as usize)?;
            Some(datagram.arrival.duration_since(*sent).as_secs_f64() * 1000.0)
        })
        .collect();
    transit.sort_by(f64::total_cmp);
    let mut speaker = Speaker::new().expect("speaker");
    let mut pending = arrived.into_iter().peekable();
    let mut heard = Vec::new();
    let mut voiced = 0;
    for tick in 0..frames(&speech).len() + 50 {
        let now = start + FRAME * tick as u32;
        while let Some(datagram) = pending.next_if(|datagram| datagram.arrival <= now) {
            speaker.push_datagram(&datagram.bytes, datagram.arrival.duration_since(start)).expect("well formed");
        }
        let mut out = [0.0; FRAME_SAMPLES];
        if speaker.next_frame(now.duration_since(start), &mut out) != FrameKind::Silent {
            voiced += 1;
        }
        heard.extend_from_slice(&out);
    }
    let (lag, correlation) = align(&speech, &heard);
    println!(
        "Bo heard Ada: network p50 {:.2} ms, p95 {:.2} ms; mouth to ear {:.1} ms (jitter buffer {:?}); waveform correlation {correlation:.3}",
        transit[transit.len() / 2],
        transit[transit.len() * 95 / 100],
        lag as f64 * 1000.0 / f64::from(SAMPLE_RATE),
        speaker.target_delay(),
    );
    assert!(voiced > 0);
    assert!(correlation >= 0.5, "Bo's playback correlates {correlation:.3} with what Ada said");
    assert!(cy_voice.try_recv().is_err(), "Cy, 30 m away, got a voice datagram");

    // A stranger (a key nobody saw in the region) dials Ada's voice directly: turned away, and
    // nothing it sends reaches her.
    let stranger = iroh::Endpoint::builder(iroh::endpoint::presets::Minimal)
        .relay_mode(iroh::RelayMode::Disabled)
        .bind()
        .await
        .expect("binds");
    let memory = iroh::address_lookup::MemoryLookup::new();
    stranger.address_lookup().expect("lookup").add(memory.clone());
    let ticket: iroh_tickets::endpoint::EndpointTicket = ada.ticket.to_string().parse().expect("ticket");
    memory.add_endpoint_info(ticket.endpoint_addr().clone());
    if let Ok(connection) = stranger.connect(ticket.endpoint_addr().clone(), sanctuary_net::alpn::VOICE).await {
        for sequence in 0..20u32 {
            let packet = VoicePacket { sequence, timestamp: sequence * FRAME_SAMPLES as u32, payload: vec![0xf8; 60] };
            let _ = connection.send_datagram(packet.to_bytes().into());
        }
        let closed = tokio::time::timeout(Duration::from_secs(5), connection.closed()).await;
        assert!(closed.is_ok(), "Ada kept a voice connection from a stranger open");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(ada_voice.try_recv().is_err(), "a stranger's voice reached Ada");

    for peer in [ada, bo, cy] {
        peer.handle.shutdown().await;
    }
}

/// Bo's client (headless, no microphone on this machine, its speakers a WAV file) hears Ada, who
/// stands 3 m to Bo's left and speaks: the recording holds her speech, louder on the left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_plays_a_voice_from_the_side_the_speaker_stands_on() {
    use sanctuary::voice::{VoiceOptions, VoiceState};
    use sanctuary::{NetLink, testing};

    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("temp dir")).collect();
    let mut ada = Peer::start(offline_config(dirs[0].path(), "Ada", None)).await;
    let bo = sanctuary_net::spawn_node(
        &tokio::runtime::Handle::current(),
        offline_config(dirs[1].path(), "Bo", Some(&ada.ticket)),
    );
    let recording = dirs[2].path().join("bo-hears.wav");
    let speech_path = speak(dirs[2].path(), "Bo, I am standing on your left.").expect("speech");
    let speech = wav::read_mono(&speech_path).expect("reads");
    let mut app = testing::logic_app(RegionId::Lobby);
    let mut link = NetLink::from_handle(bo);
    // No input file: this machine has no microphone, which the client must take calmly.
    let options = VoiceOptions { output: Some(recording.clone()), ..VoiceOptions::default() };
    sanctuary::voice::start(&mut app, &options, &mut link);
    app.insert_resource(link);
    testing::run_frames(&mut app, 10);
    let bo_head = testing::player_transform(&mut app);
    let left = bo_head.translation + bo_head.rotation * Vec3::NEG_X * 3.0;
    let ada_pose = PoseFrame {
        head: QuantisedTransform::new(left, Quat::IDENTITY),
        left_hand: QuantisedTransform::new(left, Quat::IDENTITY),
        right_hand: QuantisedTransform::new(left, Quat::IDENTITY),
    };
    ada.handle.send(Command::Pose(ada_pose));
    let sender = ada.handle.voice_sender();
    // Frames at 60 Hz while Ada's node finds Bo in range.
    let deadline = Instant::now() + Duration::from_secs(20);
    while sender.listeners() == 0 {
        assert!(Instant::now() < deadline, "Ada's voice never reached Bo");
        app.update();
        ada.pump();
        tokio::time::sleep(Duration::from_millis(16)).await;
    }
    {
        let state = app.world().resource::<VoiceState>();
        assert!(state.microphone.is_err(), "a microphone on a machine without a sound card?");
        assert!(state.summary().contains("no microphone"), "{}", state.summary());
    }
    // Ada speaks in real time while Bo's client runs.
    let mut encoder = VoiceEncoder::new().expect("encoder");
    let start = Instant::now();
    let mut sequence = 0;
    let input = frames(&speech);
    let mut next_frame = 0;
    let mut loudest = 0.0f32;
    let mut shown_speaking = false;
    while next_frame < input.len() + 25 {
        if next_frame < input.len() && Instant::now() >= start + FRAME * next_frame as u32 {
            if let Some(payload) = encoder.encode(&input[next_frame]).expect("encodes") {
                let packet = VoicePacket { sequence, timestamp: (next_frame * FRAME_SAMPLES) as u32, payload };
                sequence += 1;
                sender.send(&packet.to_bytes());
            }
            next_frame += 1;
        } else if next_frame >= input.len() && Instant::now() >= start + FRAME * next_frame as u32 {
            next_frame += 1;
        }
        app.update();
        let state = app.world().resource::<VoiceState>();
        loudest = loudest.max(state.levels.get(&ada.id).copied().unwrap_or(0.0));
        shown_speaking |= state.speaking(&ada.id) && state.summary().contains("1 speaking");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let speaking = app.world().resource::<VoiceState>().levels.len();
    assert!(
        loudest > sanctuary::voice::SPEAKING_LEVEL,
        "Ada was never shown speaking (loudest level {loudest}): no ring, no \"1 speaking\""
    );
    assert!(shown_speaking, "Ada's level was {loudest}, yet she was never shown speaking");
    drop(app);
    let heard = read_stereo(&recording);
    let loud: Vec<[f32; 2]> = heard.iter().copied().filter(|[l, r]| l.abs() + r.abs() > 0.02).collect();
    assert!(loud.len() > 48_000 / 2, "the recording holds {} loud samples: Ada's speech is missing", loud.len());
    let rms = |channel: usize| {
        (loud.iter().map(|pair| f64::from(pair[channel]).powi(2)).sum::<f64>() / loud.len() as f64).sqrt()
    };
    let (left_level, right_level) = (rms(0), rms(1));
    let decibels = 20.0 * (left_level / right_level).log10();
    println!(
        "Bo's recording: {} loud samples, left {decibels:.1} dB over right; {speaking} speaker(s) shown",
        loud.len()
    );
    assert!(decibels >= 3.0, "Ada on Bo's left is not louder on the left ({decibels:.1} dB)");
    ada.handle.shutdown().await;
}

/// A 16-bit stereo WAV file as (left, right) pairs.
fn read_stereo(path: &std::path::Path) -> Vec<[f32; 2]> {
    let mut reader = hound::WavReader::open(path).expect("the recording opens");
    let samples: Vec<f32> =
        reader.samples::<i16>().map(|sample| f32::from(sample.expect("reads")) / f32::from(i16::MAX)).collect();
    samples.chunks(2).filter(|pair| pair.len() == 2).map(|pair| [pair[0], pair[1]]).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everyone_sees_who_is_muted() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("temp dir")).collect();
    let mut ada = Peer::start(offline_config(dirs[0].path(), "Ada", None)).await;
    let mut bo = Peer::start(offline_config(dirs[1].path(), "Bo", Some(&ada.ticket))).await;
    let (ada_id, bo_id) = (ada.id, bo.id);
    for (peer, x) in [(&ada, 0.0), (&bo, 5.0)] {
        peer.handle.send(Command::Pose(standing_at(x)));
    }
    ada.handle.send(Command::Mic(MicState::Live));
    // What `peer` last heard of Ada's microphone (Ada herself is not asked).
    let sees = move |peer: &Peer, wanted: MicState| {
        peer.id == ada_id
            || peer.mics.iter().rev().find(|(who, _)| *who == ada_id).map(|(_, state)| *state) == Some(wanted)
    };
    wait_until(&mut [&mut ada, &mut bo], Duration::from_secs(20), "Bo hears that Ada's microphone is on", |peer| {
        sees(peer, MicState::Live)
    })
    .await;
    ada.handle.send(Command::Mic(MicState::Muted));
    wait_until(&mut [&mut ada, &mut bo], Duration::from_secs(10), "Bo sees Ada mute herself", |peer| {
        sees(peer, MicState::Muted)
    })
    .await;
    // Someone who arrives later learns it too, without Ada touching anything.
    let mut cy = Peer::start(offline_config(dirs[2].path(), "Cy", Some(&ada.ticket))).await;
    cy.handle.send(Command::Pose(standing_at(-5.0)));
    let limit = Duration::from_secs(20);
    wait_until(&mut [&mut ada, &mut bo, &mut cy], limit, "Cy, arriving later, sees Ada muted", |peer| {
        peer.id == bo_id || sees(peer, MicState::Muted)
    })
    .await;
    assert!(bo.mics.iter().all(|(who, _)| *who == ada_id), "only Ada said anything of her microphone");
}

/// Puts every peer in `region` standing at its `x`, and waits until all see each other there.
async fn gather(peers: &mut [&mut Peer], region: RegionId, at: &[f32]) {
    let ids: Vec<PublicKey> = peers.iter().map(|peer| peer.id).collect();
    for (peer, x) in peers.iter().zip(at) {
        peer.handle.send(Command::Regions(vec![region]));
        peer.handle.send(Command::Pose(standing_at(*x)));
    }
    wait_until(peers, Duration::from_secs(30), "everyone sees everyone in the room", |peer| {
        ids.iter().all(|id| *id == peer.id || peer.presences.contains_key(&(region, *id)))
    })
    .await;
}

/// Sends a few datagrams from `sender` and returns who received any, after a moment.
async fn who_hears(
    sender: &VoiceSender,
    receivers: &mut [(PublicKey, &mut tokio::sync::mpsc::Receiver<VoiceDatagram>)],
) -> Vec<PublicKey> {
    for sequence in 0..25u32 {
        let packet =
            VoicePacket { sequence, timestamp: sequence * FRAME_SAMPLES as u32, payload: vec![0xf8, 0xff, 0xfe] };
        sender.send(&packet.to_bytes());
        tokio::time::sleep(FRAME).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut heard = Vec::new();
    for (id, receiver) in receivers.iter_mut() {
        let mut any = false;
        while receiver.try_recv().is_ok() {
            any = true;
        }
        if any {
            heard.push(*id);
        }
    }
    heard
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_rooms_voice_reaches_only_its_members() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("temp dir")).collect();
    let mut ada = Peer::start(offline_config(dirs[0].path(), "Ada", None)).await;
    let mut bo = Peer::start(offline_config(dirs[1].path(), "Bo", Some(&ada.ticket))).await;
    let mut cy = Peer::start(offline_config(dirs[2].path(), "Cy", Some(&ada.ticket))).await;
    let room = RegionId::Room(RoomKind::Private);
    let (ada_id, bo_id, cy_id) = (ada.id, bo.id, cy.id);
    // All three in Ada's room: she invites Bo and Cy, who take invitations from strangers.
    for (guest, id) in [(&bo, bo_id), (&cy, cy_id)] {
        guest.take_messages_from_strangers();
        ada.handle.send(Command::Invite(id));
    }
    wait_until(&mut [&mut bo, &mut cy], Duration::from_secs(20), "Bo and Cy are invited", |peer| {
        peer.rooms.as_ref().is_some_and(|rooms| rooms.invited_to == vec![ada_id])
    })
    .await;
    for guest in [&bo, &cy] {
        guest.handle.send(Command::Visit(Some(ada_id)));
    }
    gather(&mut [&mut ada, &mut bo, &mut cy], room, &[0.0, 2.0, 4.0]).await;
    let (mut ada_in, mut bo_in, mut cy_in) = (
        ada.handle.take_voice().expect("voice"),
        bo.handle.take_voice().expect("voice"),
        cy.handle.take_voice().expect("voice"),
    );
    // Ada and Bo count only the two of them (as when Cy has just been removed); Cy ignores the
    // rule (as an intruder would).
    let members = Hearing::Members([ada_id, bo_id].into_iter().collect());
    for peer in [&ada, &bo] {
        peer.handle.send(Command::Hearing { region: room, hearing: members.clone() });
    }
    let (ada_out, bo_out, cy_out) = (ada.handle.voice_sender(), bo.handle.voice_sender(), cy.handle.voice_sender());
    wait_until(&mut [&mut ada, &mut bo, &mut cy], Duration::from_secs(20), "Ada and Bo reach each other", |_| {
        ada_out.listener_ids() == vec![bo_id] && bo_out.listener_ids() == vec![ada_id]
    })
    .await;
    assert_eq!(
        who_hears(&ada_out, &mut [(bo_id, &mut bo_in), (cy_id, &mut cy_in)]).await,
        vec![bo_id],
        "Ada reaches Bo only"
    );
    assert_eq!(who_hears(&bo_out, &mut [(ada_id, &mut ada_in), (cy_id, &mut cy_in)]).await, vec![ada_id]);
    // Cy dials them both (he thinks everyone near hears him), but neither takes his voice in.
    wait_until(&mut [&mut ada, &mut bo, &mut cy], Duration::from_secs(20), "Cy dials both", |_| {
        cy_out.listener_ids().len() == 2
    })
    .await;
    assert!(
        who_hears(&cy_out, &mut [(ada_id, &mut ada_in), (bo_id, &mut bo_in)]).await.is_empty(),
        "an outsider reaches no member"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_presenter_reaches_the_whole_hall() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("temp dir")).collect();
    let mut ada = Peer::start(offline_config(dirs[0].path(), "Ada", None)).await;
    let mut bo = Peer::start(offline_config(dirs[1].path(), "Bo", Some(&ada.ticket))).await;
    let mut dee = Peer::start(offline_config(dirs[2].path(), "Dee", Some(&ada.ticket))).await;
    let hall = RegionId::Room(RoomKind::LectureHall);
    // Ada on the stage, Bo in the front row, Dee at the back, 40 m away: beyond a voice's reach.
    gather(&mut [&mut ada, &mut bo, &mut dee], hall, &[0.0, 5.0, 40.0]).await;
    let (ada_id, bo_id, dee_id) = (ada.id, bo.id, dee.id);
    let (mut ada_in, mut bo_in, mut dee_in) = (
        ada.handle.take_voice().expect("voice"),
        bo.handle.take_voice().expect("voice"),
        dee.handle.take_voice().expect("voice"),
    );
    let (ada_out, dee_out) = (ada.handle.voice_sender(), dee.handle.voice_sender());
    let near_only = Duration::from_secs(3);
    tokio::time::sleep(near_only).await;
    assert_eq!(ada_out.listener_ids(), vec![bo_id], "before the stage, only the near hear Ada");
    for peer in [&ada, &bo, &dee] {
        peer.handle.send(Command::Hearing { region: hall, hearing: Hearing::Stage(vec![ada_id]) });
    }
    wait_until(&mut [&mut ada, &mut bo, &mut dee], Duration::from_secs(20), "Ada's voice reaches the back", |_| {
        let mut reached = ada_out.listener_ids();
        reached.sort_by_key(|key| *key.as_bytes());
        let mut wanted = vec![bo_id, dee_id];
        wanted.sort_by_key(|key| *key.as_bytes());
        reached == wanted
    })
    .await;
    let mut heard = who_hears(&ada_out, &mut [(bo_id, &mut bo_in), (dee_id, &mut dee_in)]).await;
    heard.sort_by_key(|key| *key.as_bytes());
    let mut wanted = vec![bo_id, dee_id];
    wanted.sort_by_key(|key| *key.as_bytes());
    assert_eq!(heard, wanted, "the presenter reaches the front and the back");
    // Dee, far at the back, still reaches nobody: the stage is Ada's alone.
    assert!(dee_out.listener_ids().is_empty());
    assert!(who_hears(&dee_out, &mut [(ada_id, &mut ada_in), (bo_id, &mut bo_in)]).await.is_empty());
}
