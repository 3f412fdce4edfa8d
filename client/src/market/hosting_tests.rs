//! Paid hosting, client to home node: a home node sells keeping at 1,000 sats per GiB and month
//! (`sanctuary node --sell-hosting 1000`: its wallet made on first start, its hosting desk);
//! Ada's node has a channel to the home node's; she asks for 64 MiB over 2 months, confirms the
//! price her wallet shows, pays, and names the node; the node writes the payment in its book and
//! ledger and its plan keeps for her as someone who paid.

use std::time::{Duration, Instant};

use sanctuary_net::hosting::{HostingPlan, HostingPolicy, Role};
use sanctuary_net::paid_hosting::HostingPrice;
use sanctuary_net::{Event, NetRuntime, NodeHandle, spawn_node};
use sanctuary_wallet::lightning::ChannelState;
use sanctuary_wallet::lightning::testing::{nobody, script_of, service_config};
use sanctuary_wallet::testchain::TestChain;

use super::sale_tests::{client, press, typed, wallet};
#[allow(clippy::wildcard_imports)]
use super::*;
use crate::home_node::seller::Seller;
use crate::testing::offline_node;

/// The home node: its network node, its seller, and what it said.
struct Home {
    _runtime: NetRuntime,
    node: NodeHandle,
    seller: Seller,
    id: String,
    plan: Option<Box<HostingPlan>>,
}

impl Home {
    fn pump(&mut self) {
        while let Some(event) = self.node.try_event() {
            self.seller.net_event(&event, &self.node, &self.id);
            match event {
                Event::Started { id, .. } => {
                    self.id = id.to_string();
                    self.seller.running(&self.node);
                }
                Event::Hosting(plan) => self.plan = Some(plan),
                _ => {}
            }
        }
        self.seller.wallet_events(&self.node);
        self.seller.round(&self.node, false);
    }
}

/// Runs Ada's frames and the home node until `done`, within `limit`.
fn until(ada: &mut App, home: &mut Home, limit: Duration, what: &str, mut done: impl FnMut(&App, &Home) -> bool) {
    let deadline = Instant::now() + limit;
    while !done(ada, home) {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}; Ada's wallet said {:?}", wallet(ada).message);
        ada.update();
        home.pump();
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_home_node_sells_keeping_over_lightning_and_keeps_for_the_payer() {
    let chain = TestChain::start().expect("the test chain starts");
    let dirs = [tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir")];
    let long = Duration::from_secs(90);
    let mut ada = client(&chain, dirs[0].path(), "Ada", None);
    let deadline = Instant::now() + long;
    while ada.world().resource::<Social>().ticket.is_none() {
        assert!(Instant::now() < deadline, "Ada's node never started");
        ada.update();
        std::thread::sleep(Duration::from_millis(10));
    }
    let ticket = ada.world().resource::<Social>().ticket.clone().expect("Ada's ticket");

    // The home node keeps up to 1 GiB and sells keeping; its wallet is made on first start.
    let runtime = NetRuntime::new().expect("a runtime");
    let home_dir = dirs[1].path().join("home");
    let mut config = offline_node(&home_dir, "Home", Some(ticket.parse().expect("a ticket")));
    config.hosting = Some(HostingPolicy { total: 1024 << 20, ..HostingPolicy::default() });
    let node = spawn_node(runtime.handle(), config);
    let seller = Seller::new(
        HostingPrice { sat_per_gib_month: 1_000 },
        Zeroizing::new("home-passphrase".into()),
        service_config(&chain, &home_dir.join("wallet")),
        &home_dir,
    )
    .expect("the seller starts");
    let mut home = Home { _runtime: runtime, node, seller, id: String::new(), plan: None };

    typed(&mut ada, "/wallet create ada-passphrase");
    until(&mut ada, &mut home, long, "both Lightning nodes run", |ada, home| {
        wallet(ada).lightning.node_id.is_some() && home.seller.lightning().is_some() && !home.id.is_empty()
    });
    assert!(home_dir.join("wallet").join("recovery-words.txt").exists(), "the node's words are written once");
    typed(&mut ada, "/ln address");
    until(&mut ada, &mut home, long, "a funding address", |ada, _| wallet(ada).lightning.funding.is_some());
    let address = wallet(&ada).lightning.funding.clone().expect("an address");
    chain.mine(1, &script_of(&address));
    chain.mine(100, &nobody());
    let home_lightning = home.seller.lightning().expect("the node's Lightning address").to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    while wallet(&ada).lightning.channels.is_empty() {
        assert!(Instant::now() < deadline, "no channel: {:?}", wallet(&ada).message);
        typed(&mut ada, &format!("/ln open {home_lightning} 500000"));
        for _ in 0..100 {
            ada.update();
            home.pump();
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    while !wallet(&ada).lightning.channels.iter().any(|channel| channel.state == ChannelState::Ready) {
        assert!(Instant::now() < deadline, "the channel never became ready");
        chain.mine(1, &nobody());
        for _ in 0..50 {
            ada.update();
            home.pump();
            std::thread::sleep(Duration::from_millis(20));
        }
        typed(&mut ada, "/sync");
    }

    // Ada asks for 64 MiB over 2 months: 1,000 sats per GiB and month make 125 sats.
    let host: PublicKey = home.id.parse().expect("the node's key");
    ada.world().resource::<NetLink>().send(Command::AskHosting { host, mib: 64, months: 2 });
    until(&mut ada, &mut home, long, "the hosting confirmation", |ada, _| wallet(ada).draft.is_some());
    let confirmation = confirm_panel(wallet(&ada).draft.as_ref().expect("a draft")).text();
    assert!(confirmation.contains("Keep 64 MiB of your models for 2 month(s)"), "{confirmation}");
    assert!(confirmation.contains("125 sats"), "{confirmation}");
    press(&mut ada, KeyCode::KeyY);

    // Paid: Ada names the node, the node writes the payment down and keeps for her.
    let ada_key = ada.world().resource::<CityWorld>().me.expect("Ada's key");
    until(&mut ada, &mut home, long, "the node keeps for Ada as a payer", |_, home| {
        home.plan.as_ref().is_some_and(|plan| {
            plan.kept_for.iter().any(|kept| kept.person == ada_key && kept.role == Role::Paid && kept.quota == 64 << 20)
        })
    });
    let said = wallet(&ada).message.clone().unwrap_or_default();
    assert!(said.1 && said.0.contains("keeps 64 MiB of your models for 2 month(s)"), "{said:?}");
    let grants = home.seller.desk().book().grants();
    assert_eq!(grants.len(), 1);
    assert_eq!((grants[0].person, grants[0].mib, grants[0].months, grants[0].paid_msat), (ada_key, 64, 2, 125_000));
    let ledger = std::fs::read_to_string(home_dir.join(crate::hosting_desk::LEDGER_FILE)).expect("the ledger");
    assert!(
        ledger.lines().nth(1).is_some_and(|row| row.contains(&ada_key.to_string()) && row.contains(",125,")),
        "{ledger}"
    );
}
