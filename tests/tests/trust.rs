//! Trust between peers in one process: statements travel (Ada's word on Bo and Bo's on Cy reach
//! every peer), trust propagates (Cy becomes known to Ada through Bo), friendship needs both
//! sides, and the private-message shield refuses a stranger with a notice to the sender while a
//! known person's message goes through; the shield holds after a restart and can be lowered.

use std::time::Duration;

use sanctuary_engine::shields::{Category, Reach, Shields};
use sanctuary_engine::trust::{Standing, TrustContext, TrustLevel};
use sanctuary_engine::{Op, RegionId};
use sanctuary_net::{Command, Delivery};
use sanctuary_tests::peers::{Peer, offline_config, wait_until};

fn trust(subject: sanctuary_engine::PublicKey, level: Option<TrustLevel>) -> Command {
    Command::Build(Op::Trust { subject, context: TrustContext::People, level })
}

fn standing(peer: &Peer, key: &sanctuary_engine::PublicKey) -> Option<Standing> {
    peer.trust.as_ref().map(|view| view.standing(key))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_propagates_and_the_shield_refuses_strangers_messages() {
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().expect("temp dir")).collect();
    let mut ada = Peer::start(offline_config(dirs[0].path(), "Ada", None)).await;
    let mut bo = Peer::start(offline_config(dirs[1].path(), "Bo", Some(&ada.ticket))).await;
    let mut cy = Peer::start(offline_config(dirs[2].path(), "Cy", Some(&ada.ticket))).await;
    let mut dee = Peer::start(offline_config(dirs[3].path(), "Dee", Some(&ada.ticket))).await;
    let (ada_id, bo_id, cy_id, dee_id) = (ada.id, bo.id, cy.id, dee.id);

    // Everyone starts a stranger to Ada, and her shields are the defaults.
    wait_until(&mut [&mut ada], Duration::from_secs(10), "Ada's first trust", |peer| peer.trust.is_some()).await;
    assert_eq!(standing(&ada, &cy_id), Some(Standing::Stranger));
    assert_eq!(ada.shields, Some(Shields::default()));

    // Ada calls Bo a friend; Bo calls Cy a friend and Ada a friend back.
    ada.handle.send(trust(bo_id, Some(TrustLevel::Friend)));
    bo.handle.send(trust(cy_id, Some(TrustLevel::Friend)));
    bo.handle.send(trust(ada_id, Some(TrustLevel::Friend)));
    let took =
        wait_until(&mut [&mut ada, &mut bo, &mut cy, &mut dee], Duration::from_secs(20), "statements travel", |peer| {
            let world = peer.world.world();
            let trust = world.trust();
            trust.said(TrustContext::People, &ada_id, &bo_id) == Some(TrustLevel::Friend)
                && trust.said(TrustContext::People, &bo_id, &cy_id) == Some(TrustLevel::Friend)
        })
        .await;
    println!("statements reached all four peers after {took:?}");
    wait_until(&mut [&mut ada], Duration::from_secs(10), "Cy known to Ada through Bo", |peer| {
        standing(peer, &cy_id) == Some(Standing::Known)
    })
    .await;
    let view = ada.trust.clone().expect("trust");
    assert_eq!(view.standing(&bo_id), Standing::Trusted(TrustLevel::Friend));
    assert_eq!(view.standing(&dee_id), Standing::Stranger, "nobody vouches for Dee");
    assert!(view.is_friend(&bo_id), "both said so");
    // Ada sees where her friend is (the lobby); Dee, of whom she said nothing, is not listed.
    wait_until(&mut [&mut ada], Duration::from_secs(10), "Bo's whereabouts", |peer| {
        peer.whereabouts
            .iter()
            .any(|seen| seen.key == bo_id && seen.name == "Bo" && seen.regions == vec![RegionId::Lobby])
    })
    .await;
    assert!(!ada.whereabouts.iter().any(|seen| seen.key == dee_id));
    let cy_score = view.people.score(&cy_id);
    assert!(cy_score > 0.05 && cy_score < view.people.score(&bo_id), "Cy {cy_score} holds less than Bo");
    // Bo sees Ada's friendship as answered; Cy sees Bo's word as a request.
    wait_until(&mut [&mut bo, &mut cy], Duration::from_secs(10), "friendship seen from both sides", |peer| {
        let Some(view) = peer.trust.as_ref() else { return false };
        if peer.id == bo_id { view.is_friend(&ada_id) } else { view.requests() == vec![bo_id] }
    })
    .await;

    // Budgets grow with trust: eight lines at once from Cy (known to Ada) all arrive; of eight
    // from Dee (a stranger to everyone) only a stranger's burst does.
    for index in 0..8 {
        cy.handle.send(Command::Chat(format!("Cy's line {index}")));
        dee.handle.send(Command::Chat(format!("Dee's line {index}")));
    }
    let from = |peer: &Peer, who| peer.chat.iter().filter(|line| line.author == who).count();
    wait_until(&mut [&mut ada], Duration::from_secs(10), "Cy's eight lines", |peer| from(peer, cy_id) == 8).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    ada.pump();
    let dee_lines = from(&ada, dee_id);
    println!("of eight lines at once, Ada took {dee_lines} from a stranger and 8 from someone known");
    assert!((3..=6).contains(&dee_lines), "a stranger's burst is half of chat's ten: {dee_lines}");

    // Dee, a stranger, is refused at Ada's door and told why; Cy, known, gets through.
    dee.handle.send(Command::Direct { to: ada_id, text: "hello from a stranger".into() });
    cy.handle.send(Command::Direct { to: ada_id, text: "hello from Cy".into() });
    wait_until(&mut [&mut ada, &mut cy, &mut dee], Duration::from_secs(20), "the door decides", |peer| {
        if peer.id == dee_id {
            peer.outcomes
                .iter()
                .any(|(_, outcome)| matches!(outcome, Delivery::Refused { reason } if reason.contains("trust")))
        } else if peer.id == cy_id {
            peer.outcomes.iter().any(|(_, outcome)| *outcome == Delivery::Delivered)
        } else {
            peer.direct.iter().any(|line| line.from == cy_id)
        }
    })
    .await;
    assert!(!ada.direct.iter().any(|line| line.from == dee_id), "nothing of Dee's reached Ada");
    assert_eq!(ada.stats().malformed + ada.stats().bad_signature, 0, "nothing forged among honest peers");

    // Ada restarts: her shield holds (defaults kept on disk are still defaults), then she opens
    // it to everyone and Dee's next message arrives.
    ada.handle.shutdown().await;
    // (She comes back through Dee's ticket: offline, that is how Dee learns her new address.)
    let mut ada = Peer::start(offline_config(dirs[0].path(), "Ada", Some(&dee.ticket))).await;
    let mut open = Shields::default();
    open.set(Category::Direct, Reach::Everyone);
    ada.handle.send(Command::Shields(open));
    wait_until(&mut [&mut ada], Duration::from_secs(10), "the shield lowered", |peer| peer.shields == Some(open)).await;
    dee.handle.send(Command::Direct { to: ada_id, text: "may I now?".into() });
    wait_until(&mut [&mut ada, &mut dee], Duration::from_secs(30), "Dee's message through the open door", |peer| {
        if peer.id == dee_id {
            peer.outcomes.iter().any(|(_, outcome)| *outcome == Delivery::Delivered)
        } else {
            peer.direct.iter().any(|line| line.from == dee_id && line.text == "may I now?")
        }
    })
    .await;
    // She mutes Dee (a volume of 0) and turns Cy down: both kept, like blocks.
    ada.handle.send(Command::Volume { person: dee_id, volume: 0.0 });
    ada.handle.send(Command::Volume { person: cy_id, volume: 0.5 });
    ada.handle.shutdown().await;
    let ada = Peer::start(offline_config(dirs[0].path(), "Ada", None)).await;
    let mut ada = ada;
    wait_until(&mut [&mut ada], Duration::from_secs(10), "shields read back", |peer| {
        peer.shields.is_some() && peer.volumes.is_some()
    })
    .await;
    assert_eq!(ada.shields, Some(open), "the shield kept on disk");
    let volumes = ada.volumes.clone().expect("volumes");
    assert!(volumes.contains(&(dee_id, 0.0)) && volumes.contains(&(cy_id, 0.5)) && volumes.len() == 2, "{volumes:?}");
    // Her statement about Bo is in her own world log: still there after the restart.
    wait_until(&mut [&mut ada], Duration::from_secs(10), "trust read back", |peer| {
        peer.trust.as_ref().is_some_and(|view| view.standing(&bo_id) == Standing::Trusted(TrustLevel::Friend))
    })
    .await;

    // Ada takes her word back: Bo is no longer her friend, and Cy no longer known through him.
    ada.handle.send(trust(bo_id, None));
    wait_until(&mut [&mut ada], Duration::from_secs(10), "the word taken back", |peer| {
        peer.trust.as_ref().is_some_and(|view| {
            view.standing(&bo_id) == Standing::Stranger && view.standing(&cy_id) == Standing::Stranger
        })
    })
    .await;
    for peer in [ada, bo, cy, dee] {
        peer.handle.shutdown().await;
    }
}
