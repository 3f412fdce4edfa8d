//! Buying at a Lightning stall, client to client: Bo lists a model paid over Lightning
//! (`/sell 2100 ln ...`), Ada's node has a channel to his; at his stall Ada presses `F`, her
//! node asks his for an invoice and his voucher, she confirms, pays, and claims the item with
//! the preimage; both clients then settle the sale the same way: Ada owns it.

use std::time::{Duration, Instant};

use sanctuary_engine::{ModelRef, RegionId, home_parcel};
use sanctuary_wallet::lightning::ChannelState;
use sanctuary_wallet::lightning::testing::{nobody, script_of, service_config};
use sanctuary_wallet::testchain::TestChain;

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::testing::{logic_app, offline_node};

/// A client with its wallet thread and network node, standing in the city.
pub(super) fn client(chain: &TestChain, dir: &std::path::Path, name: &str, join: Option<sanctuary_net::Ticket>) -> App {
    let mut app = logic_app(RegionId::City);
    app.init_resource::<WalletUi>().init_resource::<Market>().add_systems(
        Update,
        (read_wallet_events, take_sale_events, wallet_keys, wallet_commands, refresh_market).chain(),
    );
    app.insert_resource(
        WalletLink::start(service_config(chain, &dir.join("wallet"))).expect("the wallet thread starts"),
    );
    app.insert_resource(NetLink::start(offline_node(&dir.join("net"), name, join)).expect("the network node starts"));
    app
}

pub(super) fn wallet(app: &App) -> &WalletUi {
    app.world().resource::<WalletUi>()
}

pub(super) fn typed(app: &mut App, command: &str) {
    app.world_mut().resource_mut::<ChatInput>().wallet_commands.push(command.to_owned());
}

/// A key pressed for one frame (no input plugin clears it in these apps).
pub(super) fn press(app: &mut App, key: KeyCode) {
    app.world_mut().resource_mut::<ButtonInput<KeyCode>>().press(key);
    app.update();
    let mut keys = app.world_mut().resource_mut::<ButtonInput<KeyCode>>();
    keys.release(key);
    keys.clear();
}

fn stand_at(app: &mut App, at: Vec3) {
    let world = app.world_mut();
    let mut players = world.query_filtered::<&mut Transform, With<Player>>();
    for mut transform in players.iter_mut(world) {
        transform.translation = at;
    }
}

/// Runs both clients' frames until `done`, within `limit`.
pub(super) fn until(apps: &mut [&mut App], limit: Duration, what: &str, mut done: impl FnMut(&mut [&mut App]) -> bool) {
    let deadline = Instant::now() + limit;
    while !done(apps) {
        let said: Vec<_> = apps.iter().map(|app| wallet(app).message.clone()).collect();
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}; the wallets said {said:?}");
        for app in apps.iter_mut() {
            app.update();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_lightning_stall_sells_to_the_buyer_who_paid_and_every_client_agrees() {
    let chain = TestChain::start().expect("the test chain starts");
    let dirs = [tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir")];
    let mut bo = client(&chain, dirs[0].path(), "Bo", None);
    let long = Duration::from_secs(90);
    until(&mut [&mut bo], long, "Bo's node up", |apps| apps[0].world().resource::<CityWorld>().me.is_some());
    let ticket = bo.world().resource::<Social>().ticket.clone().expect("Bo's ticket");
    let mut ada = client(&chain, dirs[1].path(), "Ada", Some(ticket.parse().expect("a ticket")));

    // Both make wallets; Ada funds her Lightning node and opens a channel to Bo's.
    typed(&mut bo, "/wallet create bo-passphrase");
    typed(&mut ada, "/wallet create ada-passphrase");
    until(&mut [&mut ada, &mut bo], long, "both nodes run", |apps| {
        apps.iter().all(|app| wallet(app).lightning.node_id.is_some())
    });
    typed(&mut ada, "/ln address");
    until(&mut [&mut ada, &mut bo], long, "a funding address", |apps| wallet(apps[0]).lightning.funding.is_some());
    let address = wallet(&ada).lightning.funding.clone().expect("an address");
    chain.mine(1, &script_of(&address));
    chain.mine(100, &nobody());
    let bo_node = format!(
        "{}@{}",
        wallet(&bo).lightning.node_id.clone().expect("Bo's node"),
        wallet(&bo).lightning.listening.first().expect("Bo listens")
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while wallet(&ada).lightning.channels.is_empty() {
        assert!(Instant::now() < deadline, "no channel: {:?}", wallet(&ada).message);
        typed(&mut ada, &format!("/ln open {bo_node} 500000"));
        for _ in 0..100 {
            ada.update();
            bo.update();
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let ready = |app: &App| wallet(app).lightning.channels.iter().any(|channel| channel.state == ChannelState::Ready);
    while !(ready(&ada) && ready(&bo)) {
        assert!(Instant::now() < deadline, "the channel never became ready");
        chain.mine(1, &nobody());
        for _ in 0..50 {
            ada.update();
            bo.update();
            std::thread::sleep(Duration::from_millis(20));
        }
        // The wallet panel's state comes after a sync round or an event; ask for one.
        typed(&mut ada, "/sync");
        typed(&mut bo, "/sync");
    }

    // Bo stands on his home parcel and lists a model he imported, paid over Lightning.
    let bo_key = bo.world().resource::<CityWorld>().me.expect("Bo's key");
    let home = home_parcel(&bo_key).bounds().center();
    stand_at(&mut bo, Vec3::new(home.x, 1.7, home.y));
    let item = ModelRef { hash: [5; 32], bytes: 4_000, triangles: 12, min: [0.0; 3], max: [1.0; 3] };
    bo.world_mut().resource_mut::<CityWorld>().imported.push(("koi.glb".into(), item));
    typed(&mut bo, "/sell 2100 ln Glass koi");
    until(&mut [&mut ada, &mut bo], long, "Ada's client sees the stall", |apps| {
        apps[0].world().resource::<Market>().standing.len() == 1
    });
    let view = ada.world().resource::<Market>().listings[0].clone();
    assert!(view.listing.pay_to.is_lightning() && view.listing.price_sats == 2_100);

    // Ada at the stall: F, then the confirmation, then Y.
    stand_at(&mut ada, view.listing.spot + Vec3::new(0.0, 1.7, 1.5));
    press(&mut ada, KeyCode::KeyF);
    until(&mut [&mut ada, &mut bo], long, "the purchase's confirmation", |apps| wallet(apps[0]).draft.is_some());
    let confirmation = confirm_panel(wallet(&ada).draft.as_ref().expect("a draft")).text();
    assert!(confirmation.contains("Buy \"Glass koi\" over Lightning"), "{confirmation}");
    assert!(confirmation.contains("2,100 sats"), "{confirmation}");
    press(&mut ada, KeyCode::KeyY);

    // Both clients settle the sale from the claim alone: Ada owns it.
    let ada_key = ada.world().resource::<CityWorld>().me.expect("Ada's key");
    until(&mut [&mut ada, &mut bo], long, "the sale settled on both clients", |apps| {
        apps.iter().all(|app| {
            app.world()
                .resource::<Market>()
                .settled
                .get(&view.id)
                .is_some_and(|settled| matches!(settled.state, SaleState::Paid { buyer, .. } if buyer == ada_key))
        })
    });
    // It joins Ada's palette.
    assert!(ada.world().resource::<CityWorld>().imported.iter().any(|(_, model)| model.hash == item.hash));

    // Asked again, Bo's client refuses: the item is sold.
    ada.world_mut().resource_scope(|world, mut ui: Mut<WalletUi>| {
        sale::ask_to_buy(&view, &mut ui, Some(world.resource::<NetLink>()));
    });
    until(&mut [&mut ada, &mut bo], long, "the refusal", |apps| {
        wallet(apps[0]).message.as_ref().is_some_and(|(text, ok)| !ok && text.contains("this item is sold"))
    });
}
