//! Buying at a Lightning stall (`alpn::SALE`): the buyer's node asks the seller's node for an
//! invoice for a listing; the seller's program makes one with its Lightning node and the
//! seller's node answers it with a voucher, its signature over the listing, the buyer (the
//! connection's key) and the invoice's payment hash (see `sanctuary_engine::trade`). With the
//! preimage the payment reveals, the voucher is the buyer's proof for every peer.
//!
//! Buying hosting from a home node goes the same way: the ask names a size and a number of
//! months, and the node's answer carries an invoice with its signed terms (the person, the
//! size, the months, the price and the payment hash, see
//! [`crate::paid_hosting::sign_terms`]), checked here before the program sees them.
//!
//! Bounds: the protocol answers 8 asks at once, each peer twice and then once every 5 s (16,
//! then 2 a second, from everyone together); an ask is one message of at most 64 bytes read in
//! 10 s, and waits at most [`ANSWER_TIMEOUT`] for the program's answer (at most
//! [`MAX_WAITING`] wait at once); an answer is at most [`MAX_ANSWER_BYTES`], an invoice at most
//! [`MAX_INVOICE_CHARS`] characters, a reason at most 200.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iroh::endpoint::Connection;
use iroh::protocol::{AcceptError, ProtocolHandler};
use sanctuary_engine::{ChangeId, PublicKey};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::Event;
use super::actor::{Internal, Node};
use crate::alpn;
use crate::inbox::RateLimiter;
use crate::paid_hosting::{MAX_MONTHS, MAX_PAID_MIB, Terms, sign_terms, terms_signed};

/// How long an ask waits for the seller's program (its Lightning node makes the invoice).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest invoice an answer carries, in characters.
pub const MAX_INVOICE_CHARS: usize = 2000;
/// The longest answer on the wire.
const MAX_ANSWER_BYTES: usize = 4096;
/// The longest ask on the wire.
const MAX_ASK_BYTES: usize = 64;
/// The longest reason for a refusal, in characters.
const MAX_REASON_CHARS: usize = 200;
/// Asks waiting for the program at once.
const MAX_WAITING: usize = 8;
/// How long the buyer's side waits for the whole exchange.
const DIAL_TIMEOUT: Duration = Duration::from_secs(45);
/// How long reading an ask may take.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Asks from one peer (a burst, then one every 5 s) and from everyone together.
const ASKS_PER_PEER: (u32, f64) = (2, 0.2);
const ASKS_IN_ALL: (u32, f64) = (16, 2.0);

/// What a buyer asks: an invoice for this listing, or for hosting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Ask {
    /// An item at a Lightning stall.
    Listing(ChangeId),
    /// Keeping `mib` MiB of the asker's models for `months` months.
    Hosting { mib: u32, months: u16 },
}

/// The seller's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum SaleAnswer {
    /// An invoice, its payment hash, and the seller's voucher for it.
    Invoice {
        invoice: String,
        payment_hash: [u8; 32],
        #[serde(with = "voucher_bytes")]
        voucher: [u8; 64],
    },
    /// Not now, and why.
    Refused(String),
    /// An invoice for hosting, with the node's signed terms.
    Hosting {
        invoice: String,
        payment_hash: [u8; 32],
        amount_msat: u64,
        #[serde(with = "voucher_bytes")]
        terms: [u8; 64],
    },
}

mod voucher_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 64], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u8; 64], D::Error> {
        let bytes: &[u8] = Deserialize::deserialize(deserializer)?;
        bytes.try_into().map_err(|_| serde::de::Error::invalid_length(bytes.len(), &"64 bytes"))
    }
}

/// What the seller's answer was, as the buyer's program is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaleOffer {
    /// Pay this invoice; the voucher (for us, this listing and `payment_hash`) makes the payment
    /// our proof.
    Invoice {
        /// The BOLT11 invoice (the wallet reads it before paying).
        invoice: String,
        /// The hash the voucher names (the wallet checks that the invoice names it too).
        payment_hash: [u8; 32],
        /// The seller's signature.
        voucher: [u8; 64],
    },
    /// The seller's node refused, or could not be asked.
    Refused(String),
}

/// What a home node answered our ask for hosting, as our program is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostingOffer {
    /// Pay this invoice of `amount_msat`; `terms` is the node's signature over what it sells
    /// (checked already: it names us, the size and months asked, the amount and the hash).
    Invoice {
        /// The BOLT11 invoice (the wallet checks it is for `amount_msat` and `payment_hash`).
        invoice: String,
        /// Its payment hash.
        payment_hash: [u8; 32],
        /// The price.
        amount_msat: u64,
        /// The node's signature over the terms (see [`crate::paid_hosting::Terms`]).
        terms: [u8; 64],
    },
    /// The node refused, or could not be asked.
    Refused(String),
}

/// The asks waiting for the program's answer: who asked, what, since when, and where the
/// answer goes.
#[derive(Debug, Default)]
pub(super) struct SaleDesk {
    waiting: HashMap<u64, (PublicKey, Ask, Instant, oneshot::Sender<Vec<u8>>)>,
    next: u64,
}

impl SaleDesk {
    /// Lets asks older than [`ANSWER_TIMEOUT`] go; whether another may wait.
    fn room(&mut self, now: Instant) -> bool {
        self.waiting.retain(|_, (.., since, _)| now.duration_since(*since) < ANSWER_TIMEOUT);
        self.waiting.len() < MAX_WAITING
    }

    /// Who asked `ask`, and what, if it still waits.
    fn asked(&self, ask: u64) -> Option<(PublicKey, Ask)> {
        self.waiting.get(&ask).map(|(who, what, ..)| (*who, *what))
    }

    /// Keeps an ask waiting; its number.
    fn wait(&mut self, who: PublicKey, ask: Ask, now: Instant, reply: oneshot::Sender<Vec<u8>>) -> u64 {
        self.next += 1;
        self.waiting.insert(self.next, (who, ask, now, reply));
        self.next
    }
}

impl Node {
    /// A buyer asked for an invoice: the program is told when the listing is ours and open;
    /// otherwise the refusal goes back at once.
    pub(super) async fn sale_asked(&mut self, buyer: PublicKey, ask: Ask, reply: oneshot::Sender<Vec<u8>>) {
        let listing = match ask {
            Ask::Listing(listing) => listing,
            Ask::Hosting { mib, months } => return self.hosting_asked(buyer, mib, months, reply).await,
        };
        let now = Instant::now();
        let room = self.sales.room(now);
        let ours = self.replica.world().listings().into_iter().find(|view| view.id == listing);
        let refusal = match ours {
            None => Some("no such listing here"),
            Some(view) if view.seller != self.me_key => Some("that listing is not this seller's"),
            Some(view) if !view.listing.pay_to.is_lightning() => Some("that stall takes on-chain payments"),
            Some(view) if view.withdrawn_at.is_some() => Some("the seller withdrew that listing"),
            Some(_) if !room => Some("the seller is busy; try again in a moment"),
            Some(_) => None,
        };
        if let Some(reason) = refusal {
            let _ = reply.send(encode(&SaleAnswer::Refused(reason.to_owned())));
            return;
        }
        let ask = self.sales.wait(buyer, Ask::Listing(listing), now, reply);
        self.emit(Event::SaleAsked { ask, buyer, listing }).await;
    }

    /// Someone asks us to keep their models for pay: the program is told when this node keeps
    /// anything for others.
    async fn hosting_asked(&mut self, person: PublicKey, mib: u32, months: u16, reply: oneshot::Sender<Vec<u8>>) {
        let now = Instant::now();
        let refusal = if !self.world_sync.hosts() {
            Some("this node keeps nothing for others")
        } else if mib == 0 || mib > MAX_PAID_MIB || months == 0 || months > MAX_MONTHS {
            Some("ask for 1 MiB to 1 TiB, for 1 to 24 months")
        } else if person == self.me_key {
            Some("a node does not sell hosting to itself")
        } else if !self.sales.room(now) {
            Some("the node is busy; try again in a moment")
        } else {
            None
        };
        if let Some(reason) = refusal {
            let _ = reply.send(encode(&SaleAnswer::Refused(reason.to_owned())));
            return;
        }
        let ask = self.sales.wait(person, Ask::Hosting { mib, months }, now, reply);
        self.emit(Event::HostingAsked { ask, person, mib, months }).await;
    }

    /// The program's answer to hosting ask `ask`: an invoice for `amount_msat` (its terms
    /// signed here) or a refusal.
    pub(super) fn answer_hosting(&mut self, ask: u64, answer: Result<(String, [u8; 32], u64), String>) {
        let Some((person, Ask::Hosting { mib, months })) = self.sales.asked(ask) else { return };
        let Some((.., reply)) = self.sales.waiting.remove(&ask) else { return };
        let answer = match answer {
            Ok((invoice, ..)) if invoice.chars().count() > MAX_INVOICE_CHARS => {
                SaleAnswer::Refused("the node's invoice was too long".into())
            }
            Ok((invoice, payment_hash, amount_msat)) => {
                let terms = Terms { host: self.me_key, person, mib, months, amount_msat, payment_hash };
                SaleAnswer::Hosting { invoice, payment_hash, amount_msat, terms: sign_terms(&self.secret, &terms) }
            }
            Err(reason) => SaleAnswer::Refused(reason.chars().take(MAX_REASON_CHARS).collect()),
        };
        let _ = reply.send(encode(&answer));
    }

    /// Asks `host` for an invoice for keeping `mib` MiB of our models for `months` months; the
    /// answer comes as [`Event::HostingOffered`].
    pub(super) fn ask_hosting(&mut self, host: PublicKey, mib: u32, months: u16) {
        let (endpoint, events, me) = (self.endpoint.clone(), self.events.clone(), self.me_key);
        tokio::spawn(async move {
            let ask = Ask::Hosting { mib, months };
            let answer = match tokio::time::timeout(DIAL_TIMEOUT, exchange(endpoint, host, ask)).await {
                Ok(Ok(bytes)) => read_hosting_answer(&bytes, host, me, mib, months),
                Ok(Err(why)) => HostingOffer::Refused(format!("the node could not be asked: {why}")),
                Err(_) => HostingOffer::Refused("the node did not answer in time".into()),
            };
            let _ = events.send(Event::HostingOffered { host, mib, months, offer: answer }).await;
        });
    }

    /// The program's answer to ask `ask`: an invoice (vouched for here) or a refusal.
    pub(super) fn answer_sale(&mut self, ask: u64, answer: Result<(String, [u8; 32]), String>) {
        let Some((buyer, Ask::Listing(listing))) = self.sales.asked(ask) else { return };
        let Some((.., reply)) = self.sales.waiting.remove(&ask) else { return };
        let answer = match answer {
            Ok((invoice, _)) if invoice.chars().count() > MAX_INVOICE_CHARS => {
                SaleAnswer::Refused("the seller's invoice was too long".into())
            }
            Ok((invoice, payment_hash)) => {
                let voucher =
                    sanctuary_engine::trade::sign_voucher(&self.secret.to_bytes(), &listing, &buyer, &payment_hash);
                SaleAnswer::Invoice { invoice, payment_hash, voucher }
            }
            Err(reason) => SaleAnswer::Refused(reason.chars().take(MAX_REASON_CHARS).collect()),
        };
        let _ = reply.send(encode(&answer));
    }

    /// Asks `seller` for an invoice for `listing`; the answer comes as [`Event::SaleOffered`].
    pub(super) fn ask_sale(&mut self, seller: PublicKey, listing: ChangeId) {
        let (endpoint, events) = (self.endpoint.clone(), self.events.clone());
        tokio::spawn(async move {
            let offer =
                match tokio::time::timeout(DIAL_TIMEOUT, exchange(endpoint, seller, Ask::Listing(listing))).await {
                    Ok(Ok(bytes)) => read_answer(&bytes).unwrap_or_else(SaleOffer::Refused),
                    Ok(Err(why)) => SaleOffer::Refused(format!("the seller's node could not be asked: {why}")),
                    Err(_) => SaleOffer::Refused("the seller's node did not answer in time".into()),
                };
            let _ = events.send(Event::SaleOffered { seller, listing, offer }).await;
        });
    }
}

fn encode(answer: &SaleAnswer) -> Vec<u8> {
    postcard::to_allocvec(answer).unwrap_or_default()
}

/// The asking side of the exchange: the answer's bytes.
async fn exchange(endpoint: iroh::Endpoint, to: PublicKey, ask: Ask) -> Result<Vec<u8>, String> {
    let peer = iroh::PublicKey::from_bytes(to.as_bytes()).map_err(|error| error.to_string())?;
    let connection = endpoint.connect(peer, alpn::SALE).await.map_err(|error| error.to_string())?;
    let (mut send, mut recv) = connection.open_bi().await.map_err(|error| error.to_string())?;
    let bytes = postcard::to_allocvec(&ask).map_err(|error| error.to_string())?;
    send.write_all(&bytes).await.map_err(|error| error.to_string())?;
    send.finish().map_err(|error| error.to_string())?;
    let answer = recv.read_to_end(MAX_ANSWER_BYTES).await.map_err(|error| error.to_string())?;
    connection.close(0u32.into(), b"thanks");
    Ok(answer)
}

/// Reads a node's answer to our hosting ask: an invoice whose terms it signed for us, this
/// size and these months, or a refusal.
fn read_hosting_answer(bytes: &[u8], host: PublicKey, person: PublicKey, mib: u32, months: u16) -> HostingOffer {
    let Ok(answer) = postcard::from_bytes::<SaleAnswer>(bytes) else {
        return HostingOffer::Refused("the node's answer is malformed".into());
    };
    match answer {
        SaleAnswer::Hosting { invoice, .. } if invoice.chars().count() > MAX_INVOICE_CHARS || invoice.is_empty() => {
            HostingOffer::Refused("the node's invoice is not an invoice".into())
        }
        SaleAnswer::Hosting { invoice, payment_hash, amount_msat, terms } => {
            let signed = Terms { host, person, mib, months, amount_msat, payment_hash };
            if terms_signed(&signed, &terms) {
                HostingOffer::Invoice { invoice, payment_hash, amount_msat, terms }
            } else {
                HostingOffer::Refused("the node's terms are not signed for this ask: not paying".into())
            }
        }
        SaleAnswer::Refused(reason) => {
            let reason: String = reason.chars().take(MAX_REASON_CHARS).collect();
            HostingOffer::Refused(format!("the node refused: {}", crate::wire::clean_text(&reason)))
        }
        SaleAnswer::Invoice { .. } => HostingOffer::Refused("the node answered something else".into()),
    }
}

/// Reads the seller's answer, within its bounds.
fn read_answer(bytes: &[u8]) -> Result<SaleOffer, String> {
    let answer: SaleAnswer = postcard::from_bytes(bytes).map_err(|_| "the seller's answer is malformed".to_owned())?;
    Ok(match answer {
        SaleAnswer::Invoice { invoice, .. } if invoice.chars().count() > MAX_INVOICE_CHARS || invoice.is_empty() => {
            return Err("the seller's invoice is not an invoice".into());
        }
        SaleAnswer::Invoice { invoice, payment_hash, voucher } => SaleOffer::Invoice { invoice, payment_hash, voucher },
        SaleAnswer::Refused(reason) => {
            let reason: String = reason.chars().take(MAX_REASON_CHARS).collect();
            SaleOffer::Refused(format!("the seller refused: {}", crate::wire::clean_text(&reason)))
        }
        SaleAnswer::Hosting { .. } => return Err("the seller answered something else".into()),
    })
}

/// Takes buyers' asks, a few at once and each peer rarely, and hands them to the node.
#[derive(Debug, Clone)]
pub(super) struct SaleProtocol {
    out: mpsc::Sender<Internal>,
    answering: Arc<tokio::sync::Semaphore>,
    asks: Arc<Mutex<RateLimiter<iroh::PublicKey>>>,
    asks_in_all: Arc<Mutex<RateLimiter<()>>>,
    start: Instant,
}

impl SaleProtocol {
    pub(super) fn new(out: mpsc::Sender<Internal>) -> Self {
        Self {
            out,
            answering: Arc::new(tokio::sync::Semaphore::new(MAX_WAITING)),
            asks: Arc::new(Mutex::new(RateLimiter::with_rate(ASKS_PER_PEER.0, ASKS_PER_PEER.1))),
            asks_in_all: Arc::new(Mutex::new(RateLimiter::with_rate(ASKS_IN_ALL.0, ASKS_IN_ALL.1))),
            start: Instant::now(),
        }
    }
}

impl ProtocolHandler for SaleProtocol {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let peer = connection.remote_id();
        let Ok(buyer) = PublicKey::from_bytes(*peer.as_bytes()) else { return Ok(()) };
        let now = self.start.elapsed();
        let allowed = self.asks.lock().is_ok_and(|mut asks| asks.allow(peer, now))
            && self.asks_in_all.lock().is_ok_and(|mut asks| asks.allow((), now));
        let permit = if allowed { self.answering.clone().try_acquire_owned().ok() } else { None };
        let Some(_permit) = permit else { return Ok(()) };
        let Ok(Ok((mut send, mut recv))) = tokio::time::timeout(READ_TIMEOUT, connection.accept_bi()).await else {
            return Ok(());
        };
        let Ok(Ok(bytes)) = tokio::time::timeout(READ_TIMEOUT, recv.read_to_end(MAX_ASK_BYTES)).await else {
            return Ok(());
        };
        let Ok(ask) = postcard::from_bytes::<Ask>(&bytes) else { return Ok(()) };
        let (reply, answer) = oneshot::channel();
        if self.out.try_send(Internal::SaleAsked { buyer, ask, reply }).is_err() {
            return Ok(());
        }
        let answer = match tokio::time::timeout(ANSWER_TIMEOUT, answer).await {
            Ok(Ok(answer)) => answer,
            _ => encode(&SaleAnswer::Refused("the seller's wallet did not answer in time".into())),
        };
        if tokio::time::timeout(READ_TIMEOUT, send.write_all(&answer)).await.is_ok() {
            let _ = send.finish();
            let _ = tokio::time::timeout(READ_TIMEOUT, connection.closed()).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_within_their_bounds() {
        let invoice = SaleAnswer::Invoice { invoice: "lnbcrt1xyz".into(), payment_hash: [3; 32], voucher: [4; 64] };
        assert_eq!(
            read_answer(&encode(&invoice)),
            Ok(SaleOffer::Invoice { invoice: "lnbcrt1xyz".into(), payment_hash: [3; 32], voucher: [4; 64] })
        );
        let huge =
            SaleAnswer::Invoice { invoice: "l".repeat(MAX_INVOICE_CHARS + 1), payment_hash: [3; 32], voucher: [4; 64] };
        assert!(read_answer(&encode(&huge)).is_err());
        let rude = SaleAnswer::Refused(format!("no\u{202e}{}", "x".repeat(500)));
        let Ok(SaleOffer::Refused(reason)) = read_answer(&encode(&rude)) else { panic!("a refusal") };
        assert!(!reason.contains('\u{202e}') && reason.chars().count() <= 240, "{reason}");
        assert!(read_answer(&[0xff, 0xff, 0xff]).is_err());
        // An ask fits its bound.
        assert!(postcard::to_allocvec(&Ask::Listing(ChangeId([9; 32]))).expect("encodes").len() <= MAX_ASK_BYTES);
        let big = Ask::Hosting { mib: u32::MAX, months: u16::MAX };
        assert!(postcard::to_allocvec(&big).expect("encodes").len() <= MAX_ASK_BYTES);
    }

    #[test]
    fn hosting_answers_hold_only_when_signed_for_this_ask() {
        let secret = iroh::SecretKey::from_bytes(&[5; 32]);
        let host = PublicKey::from_bytes(*secret.public().as_bytes()).expect("a key");
        let person = PublicKey::from_secret_seed(&[6; 32]);
        let terms = Terms { host, person, mib: 100, months: 2, amount_msat: 19_532, payment_hash: [1; 32] };
        let answer = SaleAnswer::Hosting {
            invoice: "lnbcrt1xyz".into(),
            payment_hash: [1; 32],
            amount_msat: 19_532,
            terms: sign_terms(&secret, &terms),
        };
        let bytes = encode(&answer);
        assert!(matches!(
            read_hosting_answer(&bytes, host, person, 100, 2),
            HostingOffer::Invoice { amount_msat: 19_532, .. }
        ));
        // Terms for another size, other months or another person do not hold.
        for (mib, months, who) in [(101, 2, person), (100, 3, person), (100, 2, host)] {
            assert!(matches!(read_hosting_answer(&bytes, host, who, mib, months), HostingOffer::Refused(_)));
        }
        // A listing's answer where hosting was asked, or a listing's reader given hosting.
        let sale = encode(&SaleAnswer::Invoice { invoice: "lnbcrt1".into(), payment_hash: [3; 32], voucher: [4; 64] });
        assert!(matches!(read_hosting_answer(&sale, host, person, 100, 2), HostingOffer::Refused(_)));
        assert!(read_answer(&bytes).is_err());
        assert!(matches!(read_hosting_answer(&[0xff; 3], host, person, 100, 2), HostingOffer::Refused(_)));
    }
}
