//! A tip from one client to another through the menu: Ada's client (its wallet thread and
//! Lightning node on the in-process test chain) opens a channel to Bo's node, clicks Bo, picks
//! an amount, sees the confirmation and says yes; Bo's node receives the tip with its note. A
//! second tip would go over Ada's daily limit and is refused before anything is paid.

use std::time::{Duration, Instant};

use sanctuary_engine::RegionId;
use sanctuary_wallet::lightning::testing::{expect, mine_and_sync, nobody, script_of, service_config, start_on};
use sanctuary_wallet::lightning::{ChannelState, LightningEvent};
use sanctuary_wallet::testchain::TestChain;

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::network::Social;
use crate::social::{AvatarMenu, MenuButton, use_avatar_menu};
use crate::testing::{logic_app, offline_node};

const BO: &str = "legal winner thank year wave sausage worth useful legal winner thank yellow";

/// Runs frames (a little apart, for the wallet thread) until `done` or a minute has passed.
fn frames_until(app: &mut App, what: &str, mut done: impl FnMut(&mut App) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(app) {
        assert!(Instant::now() < deadline, "{what}: not within a minute; the wallet said {:?}", wallet(app).message);
        app.update();
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wallet(app: &App) -> &WalletUi {
    app.world().resource::<WalletUi>()
}

fn typed(app: &mut App, command: &str) {
    app.world_mut().resource_mut::<ChatInput>().wallet_commands.push(command.to_owned());
}

/// Clicks a button of the avatar menu.
fn click(app: &mut App, button: MenuButton) {
    let entity = app.world_mut().spawn((button, Interaction::Pressed)).id();
    app.update();
    app.world_mut().despawn(entity);
}

#[test]
fn a_tip_goes_from_the_menu_through_the_confirmation_to_the_other_node() {
    let chain = TestChain::start().expect("the test chain starts");
    let dirs = [tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir")];
    let mut app = logic_app(RegionId::Lobby);
    app.init_resource::<WalletUi>()
        .init_resource::<Market>()
        .init_resource::<AvatarMenu>()
        .add_systems(Update, (use_avatar_menu, read_wallet_events, wallet_keys, wallet_commands).chain());
    let mut config = service_config(&chain, dirs[0].path());
    config.lightning.tip_limit_sat = Some(1_500);
    app.insert_resource(WalletLink::start(config).expect("the wallet thread starts"));
    // The avatar menu speaks to the network node: an offline one.
    let node = offline_node(&dirs[0].path().join("net"), "Ada", None);
    app.insert_resource(NetLink::start(node).expect("the network node starts"));

    // Ada makes her wallet; its Lightning node starts, and she funds it from the chain.
    typed(&mut app, "/wallet create correct-horse");
    frames_until(&mut app, "Ada's node runs", |app| wallet(app).lightning.node_id.is_some());
    typed(&mut app, "/ln address");
    frames_until(&mut app, "a funding address", |app| wallet(app).lightning.funding.is_some());
    let address = wallet(&app).lightning.funding.clone().expect("an address");
    chain.mine(1, &script_of(&address));
    chain.mine(100, &nobody());

    // A channel to Bo's node (opening fails until Ada's node has seen its coins).
    let bo = start_on(&chain, BO, dirs[1].path());
    let bo_at = format!("{}@{}", bo.node_id(), bo.listening().first().expect("Bo listens"));
    let deadline = Instant::now() + Duration::from_secs(120);
    while wallet(&app).lightning.channels.is_empty() {
        assert!(Instant::now() < deadline, "no channel: {:?}", wallet(&app).message);
        typed(&mut app, &format!("/ln open {bo_at} 500000"));
        for _ in 0..100 {
            app.update();
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    while !bo.channels().iter().any(|channel| channel.state == ChannelState::Ready) {
        assert!(Instant::now() < deadline, "the channel never became ready");
        mine_and_sync(&chain, &[&bo], 1);
        std::thread::sleep(Duration::from_millis(500));
    }
    // With a channel ready, Ada's own offer goes out for others to tip her.
    frames_until(&mut app, "Ada's offer for tips", |app| wallet(app).lightning.tips);

    // Bo's profile carries his offer; Cy's carries none.
    let (bo_key, cy_key) = (PublicKey::from_secret_seed(&[2; 32]), PublicKey::from_secret_seed(&[3; 32]));
    let offer = bo.offer(None, "Bo's tips", None).expect("Bo's offer");
    app.world_mut().resource_mut::<Social>().tips.insert(bo_key, offer);
    app.world_mut().resource_mut::<AvatarMenu>().0 = Some((cy_key, "Cy".into()));
    click(&mut app, MenuButton::Tip(100));
    let said = app.world().resource::<Social>().chat.last().map(|entry| entry.text.clone());
    assert!(said.is_some_and(|text| text.contains("Cy takes no tips yet")));

    // Click Bo, Tip 1,000: the confirmation shows the amount and the most the routing may cost.
    app.world_mut().resource_mut::<AvatarMenu>().0 = Some((bo_key, "Bo".into()));
    click(&mut app, MenuButton::Tip(1_000));
    assert!(app.world().resource::<AvatarMenu>().0.is_none(), "the menu closes");
    frames_until(&mut app, "the tip's confirmation", |app| wallet(app).draft.is_some());
    let confirmation = confirm_panel(wallet(&app).draft.as_ref().expect("a draft")).text();
    assert!(confirmation.contains("Tip Bo over Lightning"), "{confirmation}");
    assert!(confirmation.contains("1,000 sats") && confirmation.contains("at most 15 sats"), "{confirmation}");

    // Yes: Bo's node receives it, with Ada's note.
    app.world_mut().resource_mut::<ButtonInput<KeyCode>>().press(KeyCode::KeyY);
    app.update();
    let mut keys = app.world_mut().resource_mut::<ButtonInput<KeyCode>>();
    keys.release(KeyCode::KeyY);
    // No input plugin clears "just pressed" in this app.
    keys.clear();
    assert!(wallet(&app).draft.is_none(), "the yes is taken");
    let received = expect(&bo, "Bo receives the tip", |event| match event {
        LightningEvent::PaymentReceived { amount_msat, note, .. } => Some((*amount_msat, note.clone())),
        _ => None,
    });
    assert_eq!(received, (1_000_000, Some("Tip from Ada".to_owned())));
    frames_until(&mut app, "Ada sees it paid", |app| {
        wallet(app).message.as_ref().is_some_and(|(text, _)| text.starts_with("paid over Lightning"))
    });

    // Another 1,000 would take the day's tips over 1,500 sat: refused before any confirmation.
    app.world_mut().resource_mut::<AvatarMenu>().0 = Some((bo_key, "Bo".into()));
    click(&mut app, MenuButton::Tip(1_000));
    frames_until(&mut app, "the limit refuses", |app| {
        wallet(app).message.as_ref().is_some_and(|(text, ok)| !ok && text.contains("daily tip limit"))
    });
    assert!(wallet(&app).draft.is_none(), "nothing to confirm");
    bo.stop().expect("Bo stops");
}
