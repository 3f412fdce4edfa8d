//! Buying at a Lightning stall (`alpn::SALE`): the buyer's node asks the seller's node for an
//! invoice for a listing; the seller's program makes one with its Lightning node and the
//! seller's node answers it with a voucher, its signature over the listing, the buyer (the
//! connection's key) and the invoice's payment hash (see `sanctuary_engine::trade`). With the
//! preimage the payment reveals, the voucher is the buyer's proof for every peer.
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

/// What a buyer asks: an invoice for this listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct SaleAsk {
    listing: ChangeId,
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

/// The asks waiting for the program's answer.
#[derive(Debug, Default)]
pub(super) struct SaleDesk {
    waiting: HashMap<u64, (PublicKey, ChangeId, Instant, oneshot::Sender<Vec<u8>>)>,
    next: u64,
}

impl Node {
    /// A buyer asked for an invoice: the program is told when the listing is ours and open;
    /// otherwise the refusal goes back at once.
    pub(super) async fn sale_asked(&mut self, buyer: PublicKey, listing: ChangeId, reply: oneshot::Sender<Vec<u8>>) {
        let now = Instant::now();
        self.sales.waiting.retain(|_, (.., since, _)| now.duration_since(*since) < ANSWER_TIMEOUT);
        let ours = self.replica.world().listings().into_iter().find(|view| view.id == listing);
        let refusal = match ours {
            None => Some("no such listing here"),
            Some(view) if view.seller != self.me_key => Some("that listing is not this seller's"),
            Some(view) if !view.listing.pay_to.is_lightning() => Some("that stall takes on-chain payments"),
            Some(view) if view.withdrawn_at.is_some() => Some("the seller withdrew that listing"),
            Some(_) if self.sales.waiting.len() >= MAX_WAITING => Some("the seller is busy; try again in a moment"),
            Some(_) => None,
        };
        if let Some(reason) = refusal {
            let _ = reply.send(encode(&SaleAnswer::Refused(reason.to_owned())));
            return;
        }
        self.sales.next += 1;
        let ask = self.sales.next;
        self.sales.waiting.insert(ask, (buyer, listing, now, reply));
        self.emit(Event::SaleAsked { ask, buyer, listing }).await;
    }

    /// The program's answer to ask `ask`: an invoice (vouched for here) or a refusal.
    pub(super) fn answer_sale(&mut self, ask: u64, answer: Result<(String, [u8; 32]), String>) {
        let Some((buyer, listing, _, reply)) = self.sales.waiting.remove(&ask) else { return };
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
            let offer = match tokio::time::timeout(DIAL_TIMEOUT, ask(endpoint, seller, listing)).await {
                Ok(Ok(offer)) => offer,
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

/// The buyer's side of the exchange.
async fn ask(endpoint: iroh::Endpoint, seller: PublicKey, listing: ChangeId) -> Result<SaleOffer, String> {
    let peer = iroh::PublicKey::from_bytes(seller.as_bytes()).map_err(|error| error.to_string())?;
    let connection = endpoint.connect(peer, alpn::SALE).await.map_err(|error| error.to_string())?;
    let (mut send, mut recv) = connection.open_bi().await.map_err(|error| error.to_string())?;
    let bytes = postcard::to_allocvec(&SaleAsk { listing }).map_err(|error| error.to_string())?;
    send.write_all(&bytes).await.map_err(|error| error.to_string())?;
    send.finish().map_err(|error| error.to_string())?;
    let answer = recv.read_to_end(MAX_ANSWER_BYTES).await.map_err(|error| error.to_string())?;
    connection.close(0u32.into(), b"thanks");
    read_answer(&answer)
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
        let Ok(SaleAsk { listing }) = postcard::from_bytes::<SaleAsk>(&bytes) else { return Ok(()) };
        let (reply, answer) = oneshot::channel();
        if self.out.try_send(Internal::SaleAsked { buyer, listing, reply }).is_err() {
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
        assert!(
            postcard::to_allocvec(&SaleAsk { listing: ChangeId([9; 32]) }).expect("encodes").len() <= MAX_ASK_BYTES
        );
    }
}
