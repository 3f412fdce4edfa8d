//! AI agents as peers, offline on loopback: labelled on a person's peer with their operator,
//! the greeter welcoming a newcomer once and answering from the README, the agents shield
//! hiding them all, and an agent that floods held to a person's limits.

use std::time::{Duration, Instant};

use glam::{Quat, Vec3};
use sanctuary_agents::{Agents, Config, Script};
use sanctuary_engine::PublicKey;
use sanctuary_engine::shields::{Category, Reach, Shields};
use sanctuary_net::agent::AgentCard;
use sanctuary_net::{Command, PoseFrame, QuantisedTransform, RelayChoice, load_or_create_identity};
use sanctuary_tests::peers::{Peer, offline_config};

/// A greeter and one stroller.
const SCRIPT: &str = r#"(
    agents: [
        (name: "Ada the guide", role: Greeter),
        (name: "Stroller", behaviour: Some("stroll")),
    ],
    behaviours: {
        "stroll": (start: "walk", states: { "walk": (action: Wander(radius: 6.0), seconds: (5.0, 10.0), next: [("walk", 1)]) }),
    },
)"#;

/// Standing at the lobby's arrival point, a little to the left.
fn newcomer_pose() -> PoseFrame {
    let at = |dx: f32| QuantisedTransform::new(Vec3::new(dx, 1.7, 44.0), Quat::from_rotation_y(std::f32::consts::PI));
    PoseFrame { head: at(0.0), left_hand: at(-0.3), right_hand: at(0.3) }
}

/// Ticks the agents and pumps the peers until `done`, or panics with `what` after `limit`.
async fn wait(
    agents: &mut Agents,
    peers: &mut [&mut Peer],
    limit: Duration,
    what: &str,
    mut done: impl FnMut(&[&mut Peer]) -> bool,
) {
    let start = Instant::now();
    loop {
        agents.tick();
        for peer in peers.iter_mut() {
            peer.pump();
        }
        if done(peers) {
            return;
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn start_agents(dir: &std::path::Path, join: &Peer) -> Agents {
    let config = Config {
        data_dir: dir.to_owned(),
        script: Script::parse(SCRIPT).expect("the script reads"),
        relays: RelayChoice::Disabled,
        lan_discovery: false,
        join: vec![join.ticket.clone()],
    };
    Agents::start(config, &tokio::runtime::Handle::current()).expect("the agents start")
}

fn operator_of(dir: &std::path::Path) -> PublicKey {
    let secret = load_or_create_identity(dir).expect("the operator's key");
    PublicKey::from_bytes(*secret.public().as_bytes()).expect("a key")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_are_labelled_and_the_greeter_welcomes_a_newcomer_once() {
    let (bo_dir, operator_dir) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let mut bo = Peer::start(offline_config(bo_dir.path(), "Bo", None)).await;
    bo.handle.send(Command::Pose(newcomer_pose()));
    let mut agents = start_agents(operator_dir.path(), &bo);
    let operator = operator_of(operator_dir.path());

    // Both agents appear on Bo's peer, with their names, labelled as run by the operator.
    wait(&mut agents, &mut [&mut bo], Duration::from_secs(20), "both agents seen and labelled", |peers| {
        let bo = &peers[0];
        bo.agents.len() == 2
            && bo.agents.values().all(|by| *by == operator)
            && bo.agents.keys().all(|agent| bo.pose_of(*agent).is_some())
    })
    .await;
    let keys = agents.keys();
    let greeter = keys[0].1.expect("the greeter is up");
    assert_eq!(bo.presences[&(sanctuary_engine::RegionId::Lobby, greeter)].name, "Ada the guide");

    // The greeter walks up, says hello, points to the portals and the keys.
    wait(&mut agents, &mut [&mut bo], Duration::from_secs(30), "the greeting", |peers| {
        peers[0].chat.iter().filter(|line| line.author == greeter).count() >= 3
    })
    .await;
    let said: Vec<&str> = bo.chat.iter().filter(|line| line.author == greeter).map(|line| line.text.as_str()).collect();
    assert!(said[0].starts_with("Hello Bo, welcome to Sanctuary!"), "{said:?}");
    assert!(said[1].contains("portals") && said[2].contains("F1"), "{said:?}");

    // A question is answered from the README.
    bo.handle.send(Command::Chat("where can I build?".into()));
    wait(&mut agents, &mut [&mut bo], Duration::from_secs(15), "an answer", |peers| {
        peers[0]
            .chat
            .iter()
            .any(|line| line.author == greeter && line.text.starts_with("Bo: ") && line.text.contains("parcel"))
    })
    .await;

    // Greeted once: a while later there is still one hello, and none after the agents restart.
    let until = Instant::now() + Duration::from_secs(4);
    wait(&mut agents, &mut [&mut bo], Duration::from_secs(10), "a few seconds more", |_| Instant::now() >= until).await;
    agents.stop().await;
    let mut agents = start_agents(operator_dir.path(), &bo);
    let until = Instant::now() + Duration::from_secs(8);
    wait(&mut agents, &mut [&mut bo], Duration::from_secs(20), "the agents back", |peers| {
        Instant::now() >= until && peers[0].pose_of(greeter).is_some()
    })
    .await;
    let hellos = bo.chat.iter().filter(|line| line.author == greeter && line.text.starts_with("Hello")).count();
    assert_eq!(hellos, 1, "greeted exactly once");
    agents.stop().await;
    bo.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_shield_hides_every_agent_until_it_opens() {
    let (bo_dir, operator_dir) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let mut bo = Peer::start(offline_config(bo_dir.path(), "Bo", None)).await;
    bo.handle.send(Command::Pose(newcomer_pose()));
    let mut agents = start_agents(operator_dir.path(), &bo);
    wait(&mut agents, &mut [&mut bo], Duration::from_secs(20), "the agents seen", |peers| {
        peers[0].agents.keys().filter(|agent| peers[0].pose_of(**agent).is_some()).count() == 2
    })
    .await;
    let hidden: Vec<PublicKey> = bo.agents.keys().copied().collect();

    let mut shields = Shields::default();
    shields.set(Category::Agents, Reach::Nobody);
    bo.handle.send(Command::Shields(shields));
    wait(&mut agents, &mut [&mut bo], Duration::from_secs(5), "both agents gone", |peers| {
        hidden.iter().all(|agent| peers[0].left.contains(agent))
    })
    .await;
    // Neither seen nor heard while hidden, though they keep walking and the greeter talks.
    for agent in &hidden {
        bo.presences.remove(&(sanctuary_engine::RegionId::Lobby, *agent));
    }
    let chat_before = bo.chat.len();
    let until = Instant::now() + Duration::from_secs(6);
    wait(&mut agents, &mut [&mut bo], Duration::from_secs(10), "six seconds hidden", |_| Instant::now() >= until).await;
    assert!(hidden.iter().all(|agent| bo.pose_of(*agent).is_none()), "no pose from a hidden agent");
    assert!(bo.chat[chat_before..].iter().all(|line| !hidden.contains(&line.author)), "no line from a hidden agent");

    // Opened again, they come back labelled.
    bo.agents.clear();
    bo.handle.send(Command::Shields(Shields::default()));
    wait(&mut agents, &mut [&mut bo], Duration::from_secs(10), "the agents back, labelled", |peers| {
        hidden.iter().all(|agent| peers[0].agents.contains_key(agent) && peers[0].pose_of(*agent).is_some())
    })
    .await;
    agents.stop().await;
    bo.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_floods_is_held_to_a_persons_limits_and_a_forged_card_is_refused() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
    let mut bo = Peer::start(offline_config(dirs[0].path(), "Bo", None)).await;
    bo.handle.send(Command::Pose(newcomer_pose()));
    let operator = load_or_create_identity(dirs[2].path()).expect("the operator's key");
    let agent_key = load_or_create_identity(dirs[1].path()).expect("the agent's key");
    let mut config = offline_config(dirs[1].path(), "Spammy", Some(&bo.ticket));
    config.agent = Some(AgentCard::issue(&operator, &agent_key.public()));
    let mut spammy = Peer::start(config).await;
    spammy.handle.send(Command::Pose(newcomer_pose()));
    let agent = key_of(&agent_key);
    sanctuary_tests::peers::wait_until(
        &mut [&mut bo, &mut spammy],
        Duration::from_secs(10),
        "the agent labelled",
        |peer| peer.id == agent || peer.agents.contains_key(&agent),
    )
    .await;

    // A hundred lines at once: a person's chat lane takes ten, then two a second.
    let before = bo.stats().flooded;
    for n in 0..100 {
        spammy.handle.send(Command::Chat(format!("buy my stuff {n}")));
    }
    let until = Instant::now() + Duration::from_secs(3);
    sanctuary_tests::peers::wait_until(&mut [&mut bo], Duration::from_secs(6), "three seconds", |_| {
        Instant::now() >= until
    })
    .await;
    let heard = bo.chat.iter().filter(|line| line.author == spammy.id).count();
    assert!((5..=18).contains(&heard), "{heard} of 100 lines taken");
    assert!(bo.stats().flooded >= before + 50, "the rest refused as a flood: {:?}", bo.stats());

    // A card for another key does not even start.
    let mut config = offline_config(dirs[2].path(), "Forger", None);
    config.agent = Some(AgentCard::issue(&operator, &agent_key.public()));
    let mut handle = sanctuary_net::spawn_node(&tokio::runtime::Handle::current(), config);
    let failed = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match handle.next_event().await {
                Some(sanctuary_net::Event::Failed(reason)) => return reason,
                Some(_) => {}
                None => return String::new(),
            }
        }
    })
    .await
    .expect("the node answers");
    assert!(failed.contains("not for this key"), "{failed}");
    bo.handle.shutdown().await;
    spammy.handle.shutdown().await;
}

fn key_of(secret: &iroh::SecretKey) -> PublicKey {
    PublicKey::from_bytes(*secret.public().as_bytes()).expect("a key")
}
