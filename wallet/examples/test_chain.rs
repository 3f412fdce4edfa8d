//! The in-process regtest test chain as a program, to try the wallet and the marketplace by hand
//! (or in a screenshot script) without any real chain. Test support only: never a chain for users.
//!
//! ```text
//! cargo run -p sanctuary-wallet --example test_chain -- [PORT]
//! ```
//!
//! It serves Esplora's HTTP API on `http://127.0.0.1:PORT` (default 3002) and reads commands on
//! standard input, one per line:
//!
//! - `fund ADDRESS`: mines a block paying ADDRESS 50 regtest BTC, then 100 more so it matures;
//! - `mine [N]`: mines N blocks (default 1), taking the mempool;
//! - `height`: prints the tip's height;
//! - `lightning`: starts a Lightning node here (a serving node, like a home node) and prints
//!   `NODE_ID@127.0.0.1:PORT` to open channels to;
//! - `invoice SATS [TEXT]`, `offer SATS [TEXT]`: a request from that node, to pay;
//! - `ln`: its channels and balances (after a sync).

use std::io::BufRead;
use std::str::FromStr;

use bdk_wallet::bitcoin::{Address, Network, ScriptBuf};
use sanctuary_wallet::lightning::testing::start_on;
use sanctuary_wallet::testchain::TestChain;

fn main() {
    let port = match std::env::args().nth(1).map(|text| text.parse::<u16>()) {
        None => 3002,
        Some(Ok(port)) => port,
        Some(Err(_)) => {
            eprintln!("usage: test_chain [PORT]");
            std::process::exit(2);
        }
    };
    let chain = match TestChain::start_on(port) {
        Ok(chain) => chain,
        Err(error) => {
            eprintln!("cannot serve on port {port}: {error}");
            std::process::exit(1);
        }
    };
    // Nobody's coins: the reward of blocks mined only to confirm things.
    let burn = ScriptBuf::new_op_return([0u8; 4]);
    chain.mine(1, &burn);
    println!("test chain (regtest) serving Esplora at {}", chain.url());
    let lightning_dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(error) => {
            eprintln!("no temporary directory for the Lightning node: {error}");
            std::process::exit(1);
        }
    };
    let mut node = None;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["fund", address] => {
                match Address::from_str(address).map(|address| address.require_network(Network::Regtest)) {
                    Ok(Ok(address)) => {
                        chain.mine(1, &address.script_pubkey());
                        chain.mine(100, &burn);
                        println!("funded {address}; height {}", chain.height());
                    }
                    _ => println!("not a regtest address: {address}"),
                }
            }
            ["mine"] => {
                chain.mine(1, &burn);
                println!("height {}", chain.height());
            }
            ["mine", count] => match count.parse::<u32>() {
                Ok(count) if count <= 10_000 => {
                    chain.mine(count, &burn);
                    println!("height {}", chain.height());
                }
                _ => println!("mine N: N up to 10000"),
            },
            ["height"] => println!("height {}", chain.height()),
            ["lightning"] if node.is_none() => {
                let started = start_on(
                    &chain,
                    "legal winner thank year wave sausage worth useful legal winner thank yellow",
                    lightning_dir.path(),
                );
                println!("lightning node {}@{}", started.node_id(), started.listening().join(","));
                node = Some(started);
            }
            ["invoice" | "offer", sats, text @ ..] => match (node.as_ref(), sats.parse::<u64>()) {
                (Some(node), Ok(sats)) => {
                    let made = if words[0] == "invoice" {
                        node.invoice(sats * 1000, &text.join(" "))
                    } else {
                        node.offer(Some(sats * 1000), &text.join(" "), None)
                    };
                    match made {
                        Ok(text) => println!("{text}"),
                        Err(error) => println!("{error}"),
                    }
                }
                _ => println!("start the node with `lightning`, then: invoice SATS [TEXT]"),
            },
            ["ln"] => match node.as_ref() {
                Some(node) => {
                    if let Err(error) = node.sync() {
                        println!("sync: {error}");
                    }
                    while let Some(event) = node.next_event() {
                        println!("event: {event:?}");
                    }
                    println!("{:?}", node.balances());
                    for channel in node.channels() {
                        println!("{channel:?}");
                    }
                }
                None => println!("no node: `lightning` starts one"),
            },
            [] => {}
            _ => println!(
                "commands: fund ADDRESS | mine [N] | height | lightning | invoice SATS [TEXT] | offer SATS [TEXT] | ln"
            ),
        }
    }
}
