//! The Lightning rail of the wallet thread, as the client drives it: the node starts when the
//! wallet is unlocked, an invoice is made, read and quoted, paid only by the quote's tag after the
//! person's yes, and the node stops when the wallet is locked.

use std::path::Path;
use std::time::{Duration, Instant};

use sanctuary_wallet::lightning::testing::{mine_and_sync, service_config, start_on};
use sanctuary_wallet::lightning::{LightningEvent, ProviderTerms};
use sanctuary_wallet::testchain::TestChain;
use sanctuary_wallet::{LnCommand, LnEvent, WalletCommand, WalletEvent, WalletService, Zeroizing};

const BO: &str = "legal winner thank year wave sausage worth useful legal winner thank yellow";
const WAIT: Duration = Duration::from_secs(60);

fn service(chain: &TestChain, dir: &Path) -> WalletService {
    let mut config = service_config(chain, dir);
    config.lightning.alias = Some("ada".to_owned());
    config.lightning.provider = Some(ProviderTerms::default());
    config.lightning.tip_limit_sat = Some(1_500);
    WalletService::spawn(config).expect("the wallet thread starts")
}

/// The next Lightning event `wanted` picks, skipping others; fails on a Lightning failure.
fn next<T>(service: &WalletService, what: &str, mut wanted: impl FnMut(&LnEvent) -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        match service.next_event(Duration::from_millis(200)) {
            Some(WalletEvent::Lightning(event)) => {
                if let Some(found) = wanted(&event) {
                    return found;
                }
                if let LnEvent::Failed { action, error } = event {
                    panic!("{what}: could not {action}: {error}");
                }
            }
            Some(WalletEvent::Failed { action, error }) => eprintln!("(wallet: could not {action}: {error})"),
            _ => {}
        }
    }
    panic!("{what}: not seen within {WAIT:?}");
}

#[test]
fn the_wallet_thread_quotes_then_pays_and_stops_the_node_on_lock() {
    let chain = TestChain::start().expect("the test chain starts");
    let dirs = [tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir")];
    let ada = service(&chain, dirs[0].path());
    // Before the wallet is unlocked there is no node to use.
    ada.send(WalletCommand::Lightning(LnCommand::FundingAddress));
    let refused = next(&ada, "a refusal", |event| match event {
        LnEvent::Failed { error, .. } => Some(error.clone()),
        _ => None,
    });
    assert!(refused.contains("unlock the wallet first") || refused.contains("not started"), "{refused}");

    ada.send(WalletCommand::Create {
        words: None,
        bip39_passphrase: Zeroizing::new(String::new()),
        unlock: Zeroizing::new("correct horse".to_owned()),
    });
    let node_id = next(&ada, "Ada's node runs", |event| match event {
        LnEvent::Running { node_id, .. } => Some(node_id.clone()),
        _ => None,
    });
    ada.send(WalletCommand::Lightning(LnCommand::FundingAddress));
    let address = next(&ada, "a funding address", |event| match event {
        LnEvent::FundingAddress(address) => Some(address.clone()),
        _ => None,
    });
    chain.mine(1, &sanctuary_wallet::lightning::testing::script_of(&address));
    chain.mine(100, &sanctuary_wallet::lightning::testing::nobody());

    // Bo is a plain node; Ada's wallet thread opens a channel to him once its node has the coins.
    let bo = start_on(&chain, BO, dirs[1].path());
    let bo_address = bo.listening().first().cloned().expect("Bo listens");
    let opened = Instant::now();
    loop {
        ada.send(WalletCommand::Lightning(LnCommand::Open {
            peer: bo.node_id(),
            address: bo_address.clone(),
            amount_sat: 500_000,
        }));
        // The node syncs by itself; until it has seen its coins, opening fails for want of funds.
        let outcome = loop {
            match ada.next_event(Duration::from_secs(5)) {
                Some(WalletEvent::Lightning(LnEvent::State { channels, .. })) if !channels.is_empty() => break true,
                Some(WalletEvent::Lightning(LnEvent::Failed { .. })) | None => break false,
                _ => {}
            }
        };
        if outcome {
            break;
        }
        assert!(opened.elapsed() < Duration::from_secs(120), "Ada's node never had the coins to open a channel");
        std::thread::sleep(Duration::from_secs(1));
    }
    // Six blocks; both nodes see the channel ready (Ada's by its own background sync).
    let ready = Instant::now();
    while !bo.channels().iter().any(|channel| channel.state == sanctuary_wallet::lightning::ChannelState::Ready) {
        mine_and_sync(&chain, &[&bo], 1);
        std::thread::sleep(Duration::from_millis(500));
        assert!(ready.elapsed() < Duration::from_secs(120), "the channel never became ready");
    }
    assert_eq!(bo.channels()[0].peer, node_id, "the channel is with Ada's node");
    // With a channel ready, Ada's node makes the offer her profile carries for tips.
    let (mut ready_seen, mut tip_offer) = (false, None);
    while !ready_seen || tip_offer.is_none() {
        let seen = next(&ada, "Ada's channel ready and her offer for tips", |event| match event {
            LnEvent::Happened(LightningEvent::ChannelReady { .. }) => Some(None),
            LnEvent::TipOffer(Some(offer)) => Some(Some(offer.clone())),
            _ => None,
        });
        match seen {
            None => ready_seen = true,
            offer => tip_offer = offer,
        }
    }
    assert!(tip_offer.is_some_and(|offer| offer.starts_with("lno1")));

    // Quote, then pay by the quote's tag.
    let invoice = bo.invoice(21_000_000, "a tip").expect("Bo's invoice");
    ada.send(WalletCommand::Lightning(LnCommand::Quote { text: invoice, amount_msat: None, tag: 7 }));
    let quote = next(&ada, "the quote", |event| match event {
        LnEvent::Quoted { tag: 7, quote, payee } => {
            assert_eq!(payee.as_deref(), Some(bo.node_id().as_str()));
            Some(quote.clone())
        }
        _ => None,
    });
    assert_eq!(quote.line(), "21,000 sat, fee at most 215 sat");
    // A tag that was never quoted pays nothing.
    ada.send(WalletCommand::Lightning(LnCommand::Pay { tag: 8, note: None }));
    next(&ada, "an unknown tag refused", |event| match event {
        LnEvent::Failed { .. } => Some(()),
        _ => None,
    });
    ada.send(WalletCommand::Lightning(LnCommand::Pay { tag: 7, note: None }));
    let payment = next(&ada, "the payment leaves", |event| match event {
        LnEvent::Paying { tag: 7, payment } => Some(payment.clone()),
        _ => None,
    });
    let preimage = next(&ada, "the payment arrives", |event| match event {
        LnEvent::Happened(LightningEvent::PaymentSent { payment: sent, preimage, .. }) if *sent == payment => {
            Some(preimage.clone())
        }
        LnEvent::Happened(LightningEvent::PaymentFailed { reason, .. }) => panic!("the payment failed: {reason}"),
        _ => None,
    });
    assert!(preimage.is_some());
    // Asked again (a program that missed the event), the wallet says the same from the book;
    // of an id it never paid, or one that is not an id, nothing.
    let unknown = "00".repeat(32);
    ada.send(WalletCommand::Lightning(LnCommand::Recheck {
        payments: vec![unknown.clone(), "not an id".into(), payment.clone()],
    }));
    let rechecked = next(&ada, "the payment rechecked", |event| match event {
        LnEvent::Rechecked(LightningEvent::PaymentSent { payment: sent, preimage, .. }) => {
            Some((sent.clone(), preimage.clone()))
        }
        LnEvent::Rechecked(other) => panic!("only the payment made is told of: {other:?}"),
        _ => None,
    });
    assert_eq!(rechecked, (payment.clone(), preimage));
    // The ledger holds the payment beside the on-chain history, and the channel's funding.
    let ledger = dirs[0].path().join("ledger.csv");
    ada.send(WalletCommand::ExportCsv(ledger.clone()));
    let deadline = Instant::now() + WAIT;
    while !matches!(ada.next_event(Duration::from_millis(200)), Some(WalletEvent::Exported(_))) {
        assert!(Instant::now() < deadline, "the ledger was never written");
    }
    let csv = std::fs::read_to_string(&ledger).expect("the ledger");
    assert!(csv.starts_with("date_utc,txid,kind,amount_sats,fee_sats,block_height,network"), "{csv}");
    assert!(csv.lines().any(|line| line.contains(&format!(",{payment},lightning_sent,-21000,0,,regtest"))), "{csv}");
    assert!(csv.lines().any(|line| line.contains(",channel_funds_received,5000000000,")), "{csv}");
    // The same tag is used up.
    ada.send(WalletCommand::Lightning(LnCommand::Pay { tag: 7, note: None }));
    next(&ada, "a spent tag refused", |event| match event {
        LnEvent::Failed { .. } => Some(()),
        _ => None,
    });

    // Tips go through an offer, within the daily limit (1,500 sat here), and say they are tips.
    ada.send(WalletCommand::Lightning(LnCommand::Tip {
        offer: bo.invoice(1_000_000, "not an offer").expect("an invoice"),
        amount_msat: 1_000_000,
        tag: 9,
    }));
    next(&ada, "a tip to an invoice refused", |event| match event {
        LnEvent::Failed { error, .. } if error.contains("through an offer") => Some(()),
        _ => None,
    });
    let bo_offer = bo.offer(None, "Bo's tips", None).expect("Bo's offer");
    ada.send(WalletCommand::Lightning(LnCommand::Tip { offer: bo_offer.clone(), amount_msat: 1_000_000, tag: 10 }));
    let tip = next(&ada, "the tip quoted", |event| match event {
        LnEvent::Quoted { tag: 10, quote, .. } => Some(quote.clone()),
        _ => None,
    });
    assert_eq!(tip.line(), "1,000 sat, fee at most 15 sat");
    ada.send(WalletCommand::Lightning(LnCommand::Pay { tag: 10, note: Some("from Ada".into()) }));
    let received = sanctuary_wallet::lightning::testing::expect(&bo, "Bo receives the tip", |event| match event {
        LightningEvent::PaymentReceived { amount_msat: 1_000_000, note, .. } => Some((1_000_000, note.clone())),
        _ => None,
    });
    assert_eq!(received, (1_000_000, Some("Tip".to_owned())), "a note that is not a tip's is replaced");
    next(&ada, "the tip settles", |event| {
        matches!(event, LnEvent::Happened(LightningEvent::PaymentSent { .. })).then_some(())
    });
    // 1,000 of 1,500 sat tipped today: another 1,000 would go over, and is refused at the quote.
    ada.send(WalletCommand::Lightning(LnCommand::Tip { offer: bo_offer, amount_msat: 1_000_000, tag: 11 }));
    let refused = next(&ada, "a tip over the limit refused", |event| match event {
        LnEvent::Failed { action: "tip", error } => Some(error.clone()),
        _ => None,
    });
    assert!(refused.contains("daily tip limit: 1,000 of 1,500 sat"), "{refused}");

    // Ada sells one item over Lightning: two buyers' invoices for it, and Bo pays both. Her
    // node takes the first payment and sends the second back; an invoice for another item is
    // taken too.
    let sale_invoice = |sale: u8, tag: u64| {
        ada.send(WalletCommand::Lightning(LnCommand::SaleInvoice {
            amount_msat: 2_000_000,
            description: "Glass koi".into(),
            sale: [sale; 32],
            tag,
        }));
        next(&ada, "a sale invoice", |event| match event {
            LnEvent::SaleInvoice { tag: made, invoice, .. } if *made == tag => Some(invoice.clone()),
            _ => None,
        })
    };
    let pay = |invoice: &str| {
        let request = bo.read(invoice).expect("Bo reads the invoice");
        let quote = request.quote(None).expect("a quote");
        bo.pay(&request, &quote, None).expect("Bo pays")
    };
    let (first, second, other) = (sale_invoice(1, 20), sale_invoice(1, 21), sale_invoice(2, 22));
    let paid = pay(&first);
    sanctuary_wallet::lightning::testing::expect_sent(&bo, &paid);
    let returned = pay(&second);
    let reason =
        sanctuary_wallet::lightning::testing::expect(&bo, "the second payment sent back", |event| match event {
            LightningEvent::PaymentFailed { payment, reason } if *payment == returned => Some(reason.clone()),
            LightningEvent::PaymentSent { payment, .. } if *payment == returned => panic!("the item was paid twice"),
            _ => None,
        });
    assert!(!reason.is_empty());
    let paid = pay(&other);
    sanctuary_wallet::lightning::testing::expect_sent(&bo, &paid);

    ada.send(WalletCommand::Lock);
    next(&ada, "the node stops with the lock", |event| (*event == LnEvent::Stopped).then_some(()));
    ada.send(WalletCommand::Lightning(LnCommand::FundingAddress));
    next(&ada, "no node while locked", |event| match event {
        LnEvent::Failed { error, .. } if error.contains("unlock") => Some(()),
        _ => None,
    });
    bo.stop().expect("Bo stops");
}
