//! Lightning nodes on the in-process test chain, for tests and the payment benchmark
//! (feature `test-chain`; never part of a shipped build).

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use bdk_wallet::bitcoin::{Address, Network, ScriptBuf};

use super::{Lightning, LightningConfig, LightningEvent, LspLink, ProviderTerms};
use crate::testchain::TestChain;
use crate::{Seed, WalletNetwork};

/// How long a test waits for an event before it fails.
pub const WAIT: Duration = Duration::from_secs(60);

/// A free port on loopback (bound and let go; the node binds it again at once).
pub fn free_port() -> SocketAddr {
    match TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|listener| listener.local_addr()) {
        Ok(address) => address,
        Err(error) => panic!("no free port on loopback: {error}"),
    }
}

/// A wallet thread's settings for tests: regtest on `chain`, kept in `dir`, syncing the chain
/// only when asked, with a Lightning node that listens on a free loopback port and syncs by
/// itself.
pub fn service_config(chain: &TestChain, dir: &Path) -> crate::ServiceConfig {
    crate::ServiceConfig {
        dir: dir.to_owned(),
        network: WalletNetwork::Regtest,
        esplora_url: chain.url(),
        sync_every: Duration::from_secs(3600),
        lightning: crate::LightningSettings {
            enabled: true,
            listen: Some(free_port()),
            background_sync: true,
            ..crate::LightningSettings::default()
        },
    }
}

/// A node from `words` in `dir`, on `chain`, listening on loopback, syncing only when asked.
pub fn start_on(chain: &TestChain, words: &str, dir: &Path) -> Lightning {
    start_with(chain, words, dir, None)
}

/// As [`start_on`], getting just-in-time channels from `lsp`.
pub fn start_with(chain: &TestChain, words: &str, dir: &Path, lsp: Option<LspLink>) -> Lightning {
    start_at(&chain.url(), words, dir, lsp)
}

/// As [`start_with`], on the test chain at `esplora_url` (a chain in another process).
pub fn start_at(esplora_url: &str, words: &str, dir: &Path, lsp: Option<LspLink>) -> Lightning {
    let seed = Seed::restore(words, "").unwrap_or_else(|error| panic!("not a test phrase: {error}"));
    let mut config = LightningConfig {
        data_dir: dir.to_path_buf(),
        network: WalletNetwork::Regtest,
        esplora_url: esplora_url.to_owned(),
        listen: Some(free_port()),
        alias: Some("sanctuary test".to_owned()),
        // Every test node may serve (forward into private channels, open channels on demand).
        provider: Some(ProviderTerms::default()),
        lsp,
        background_sync: false,
    };
    // A port let go by `free_port` can be taken by another test's node before this one binds
    // it: a failed start is tried again on another port.
    let mut tries = 0;
    loop {
        match Lightning::start(&seed, &config, None) {
            Ok(node) => return node,
            Err(error) if tries < 3 => {
                eprintln!("a test node did not start ({error}); trying another port");
                tries += 1;
                config.listen = Some(free_port());
            }
            Err(error) => panic!("the node does not start: {error}"),
        }
    }
}

/// The output script of a regtest address.
pub fn script_of(address: &str) -> ScriptBuf {
    match Address::from_str(address).map(|address| address.require_network(Network::Regtest)) {
        Ok(Ok(address)) => address.script_pubkey(),
        _ => panic!("not a regtest address: {address}"),
    }
}

/// A script nobody owns, for blocks mined only to confirm things.
pub fn nobody() -> ScriptBuf {
    ScriptBuf::from_bytes(vec![0x51])
}

/// Mines `blocks` and brings `nodes` up to date.
pub fn mine_and_sync(chain: &TestChain, nodes: &[&Lightning], blocks: u32) {
    chain.mine(blocks, &nobody());
    for node in nodes {
        if let Err(error) = node.sync() {
            panic!("a node does not sync with the test chain: {error}");
        }
    }
}

/// Gives `node` one block reward (50 regtest BTC), mature, and syncs it.
pub fn fund(chain: &TestChain, node: &Lightning) {
    let address = node.funding_address().unwrap_or_else(|error| panic!("no funding address: {error}"));
    chain.mine(1, &script_of(&address));
    mine_and_sync(chain, &[node], 100);
}

/// Waits for the first event `wanted` picks, skipping others; panics after [`WAIT`] with what
/// it saw.
pub fn expect<T>(node: &Lightning, what: &str, mut wanted: impl FnMut(&LightningEvent) -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Some(event) = node.wait_event(Duration::from_millis(200)) {
            if let Some(found) = wanted(&event) {
                return found;
            }
            seen.push(event);
        }
    }
    panic!("{what}: not seen within {WAIT:?}; saw {seen:?}");
}

/// Opens a channel of `sat` from `from` (funded) to `to`, confirms it and waits until both see
/// it ready. Returns the channel's id at `from`.
pub fn open_ready_channel(chain: &TestChain, from: &Lightning, to: &Lightning, sat: u64) -> String {
    let address = to.listening().first().cloned().unwrap_or_else(|| panic!("the node does not listen"));
    let channel =
        from.open_channel(&to.node_id(), &address, sat, None).unwrap_or_else(|error| panic!("no channel: {error}"));
    expect(from, "the opener's channel pending", |event| match event {
        LightningEvent::ChannelPending { channel: id, .. } if *id == channel => Some(()),
        _ => None,
    });
    expect(to, "the other side's channel pending", |event| {
        matches!(event, LightningEvent::ChannelPending { .. }).then_some(())
    });
    mine_and_sync(chain, &[from, to], 6);
    expect(from, "the opener's channel ready", |event| match event {
        LightningEvent::ChannelReady { channel: id, .. } if *id == channel => Some(()),
        _ => None,
    });
    expect(to, "the other side's channel ready", |event| {
        matches!(event, LightningEvent::ChannelReady { .. }).then_some(())
    });
    channel
}

/// Waits until some channel of `node` is ready (the other side connected).
pub fn wait_ready(node: &Lightning) {
    let deadline = Instant::now() + WAIT;
    while !node.channels().iter().any(|channel| channel.state == super::ChannelState::Ready) {
        if Instant::now() >= deadline {
            panic!("no channel became ready within {WAIT:?}: {:?}", node.channels());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the payment `id` made by `node` is sent and returns its routing fee; panics if
/// it fails.
pub fn expect_sent(node: &Lightning, id: &str) -> u64 {
    expect(node, "the payment sent", |event| match event {
        LightningEvent::PaymentSent { payment, fee_msat, .. } if payment == id => Some(*fee_msat),
        LightningEvent::PaymentFailed { payment, reason } if payment == id => panic!("the payment failed: {reason}"),
        _ => None,
    })
}
