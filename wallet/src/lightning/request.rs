//! What a person is asked to pay over Lightning: a BOLT11 invoice or a BOLT12 offer, read from
//! text someone else wrote, checked against the wallet's network, and quoted (amount and the
//! most the routing may cost) before anything is paid.

use std::str::FromStr;

use ldk_node::bitcoin::constants::ChainHash;
use ldk_node::lightning::offers::offer::{Amount as OfferAmount, Offer};
use ldk_node::lightning_invoice::{Bolt11Invoice, Bolt11InvoiceDescriptionRef};

use crate::{WalletNetwork, group_digits as group};

/// The longest payment request read (a BOLT11 invoice with many route hints is a few KiB).
pub const MAX_REQUEST_CHARS: usize = 8 * 1024;
/// The most characters of a payee's description or name shown to the person.
pub const MAX_SHOWN_CHARS: usize = 120;
/// The largest amount a request may ask for or a person may send in one payment: 0.1 BTC. A
/// world of tips and stalls has no use for more, and a number beyond it is a mistake or an
/// attack on the person's attention.
pub const MAX_PAYMENT_MSAT: u64 = 10_000_000 * 1_000;

/// Why a payment request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The text is neither a BOLT11 invoice nor a BOLT12 offer.
    #[error("not a Lightning invoice or offer: {0}")]
    Unreadable(String),
    /// The text is longer than any request we read.
    #[error("the payment request is {0} characters long; at most {MAX_REQUEST_CHARS} are read")]
    TooLong(usize),
    /// It is for another network than the wallet's.
    #[error("the request is for another network than this wallet's ({0})")]
    WrongNetwork(WalletNetwork),
    /// It has expired.
    #[error("the request has expired; ask the payee for a new one")]
    Expired,
    /// It names no amount and none was given.
    #[error("the request names no amount: choose how much to pay")]
    NoAmount,
    /// The amount given differs from the one the invoice names.
    #[error("the invoice asks for exactly {asked} msat, not {given} msat")]
    AmountMismatch {
        /// What the invoice names.
        asked: u64,
        /// What was given.
        given: u64,
    },
    /// The amount is zero or above [`MAX_PAYMENT_MSAT`].
    #[error("{0} msat is not an amount this wallet pays (more than 0, at most {MAX_PAYMENT_MSAT} msat)")]
    BadAmount(u64),
    /// The offer is priced in a currency other than bitcoin.
    #[error("the offer is priced in a currency other than bitcoin")]
    Currency,
}

/// A payment request that was read and checked.
#[derive(Debug, Clone)]
pub enum PaymentRequest {
    /// A BOLT11 invoice: one payment of a fixed (or open) amount to one payment hash.
    Invoice(Bolt11Invoice),
    /// A BOLT12 offer: reusable; the payer's node asks the payee's node for an invoice.
    Offer(Box<Offer>),
}

impl PaymentRequest {
    /// Reads `text` (with or without a `lightning:` prefix, in any case) as an invoice or an
    /// offer for `network`, refusing expired ones and those priced in other currencies.
    pub fn parse(text: &str, network: WalletNetwork) -> Result<PaymentRequest, RequestError> {
        let text = text.trim();
        if text.len() > MAX_REQUEST_CHARS {
            return Err(RequestError::TooLong(text.len()));
        }
        let text = strip_prefix_ignore_case(text, "lightning:");
        let lower = text.to_ascii_lowercase();
        let request = if lower.starts_with("lno1") {
            let offer = Offer::from_str(&lower).map_err(|error| RequestError::Unreadable(format!("{error:?}")))?;
            if !offer.supports_chain(ChainHash::using_genesis_block(network.to_bitcoin())) {
                return Err(RequestError::WrongNetwork(network));
            }
            if offer.is_expired() {
                return Err(RequestError::Expired);
            }
            if matches!(offer.amount(), Some(OfferAmount::Currency { .. })) {
                return Err(RequestError::Currency);
            }
            PaymentRequest::Offer(Box::new(offer))
        } else if lower.starts_with("ln") {
            let invoice =
                Bolt11Invoice::from_str(&lower).map_err(|error| RequestError::Unreadable(error.to_string()))?;
            if invoice.network() != network.to_bitcoin() {
                return Err(RequestError::WrongNetwork(network));
            }
            if invoice.is_expired() {
                return Err(RequestError::Expired);
            }
            PaymentRequest::Invoice(invoice)
        } else {
            return Err(RequestError::Unreadable("it starts with neither lnbc/lntb/lnbcrt nor lno".to_owned()));
        };
        if let Some(asked) = request.amount_msat() {
            check_amount(asked)?;
        }
        Ok(request)
    }

    /// An invoice's payment hash (what its preimage hashes to); offers have none until paid.
    pub fn payment_hash(&self) -> Option<[u8; 32]> {
        use ldk_node::bitcoin::hashes::Hash;
        match self {
            PaymentRequest::Invoice(invoice) => Some(invoice.payment_hash().to_byte_array()),
            PaymentRequest::Offer(_) => None,
        }
    }

    /// The amount the request names, in millisatoshis, if it names one.
    pub fn amount_msat(&self) -> Option<u64> {
        match self {
            PaymentRequest::Invoice(invoice) => invoice.amount_milli_satoshis(),
            PaymentRequest::Offer(offer) => match offer.amount() {
                Some(OfferAmount::Bitcoin { amount_msats }) => Some(amount_msats),
                _ => None,
            },
        }
    }

    /// What the payee wrote about the payment, cleaned for showing (control characters
    /// dropped, at most [`MAX_SHOWN_CHARS`]).
    pub fn description(&self) -> String {
        match self {
            PaymentRequest::Invoice(invoice) => match invoice.description() {
                Bolt11InvoiceDescriptionRef::Direct(description) => shown(&description.to_string()),
                Bolt11InvoiceDescriptionRef::Hash(_) => String::new(),
            },
            PaymentRequest::Offer(offer) => {
                offer.description().map(|text| shown(&text.to_string())).unwrap_or_default()
            }
        }
    }

    /// The payee's Lightning node (BOLT11) or the offer's signing key (BOLT12), as hex, when the
    /// request names one (a BOLT12 offer behind blinded paths may not).
    pub fn payee(&self) -> Option<String> {
        match self {
            PaymentRequest::Invoice(invoice) => Some(invoice.recover_payee_pub_key().to_string()),
            PaymentRequest::Offer(offer) => offer.issuer_signing_pubkey().map(|key| key.to_string()),
        }
    }

    /// Works out what paying this request costs: the amount (the request's, or `amount_msat`
    /// where it names none) and the most the routing may cost ([`fee_cap_msat`]).
    pub fn quote(&self, amount_msat: Option<u64>) -> Result<Quote, RequestError> {
        let amount = match (self.amount_msat(), amount_msat) {
            (Some(asked), Some(given)) if matches!(self, PaymentRequest::Invoice(_)) && asked != given => {
                return Err(RequestError::AmountMismatch { asked, given });
            }
            // An offer may be paid more than it asks (a tip on top); never less.
            (Some(asked), Some(given)) if given < asked => {
                return Err(RequestError::AmountMismatch { asked, given });
            }
            (_, Some(given)) => given,
            (Some(asked), None) => asked,
            (None, None) => return Err(RequestError::NoAmount),
        };
        check_amount(amount)?;
        Ok(Quote { amount_msat: amount, max_fee_msat: fee_cap_msat(amount), description: self.description() })
    }
}

/// What a payment costs, shown to the person before they confirm it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// What the payee receives.
    pub amount_msat: u64,
    /// The most the routing may cost; a route that costs more is not taken.
    pub max_fee_msat: u64,
    /// What the payee wrote about the payment.
    pub description: String,
}

impl Quote {
    /// "1,000 sat, fee at most 15 sat".
    pub fn line(&self) -> String {
        format!(
            "{} sat, fee at most {} sat",
            group(self.amount_msat.div_ceil(1000)),
            group(self.max_fee_msat.div_ceil(1000))
        )
    }
}

/// The most a payment of `amount_msat` may spend on routing: 1 % of it plus 5 sat. A payment
/// over a direct channel costs nothing; one hop through a well-run node costs about a satoshi
/// plus a few hundred millionths of the amount.
pub fn fee_cap_msat(amount_msat: u64) -> u64 {
    (amount_msat / 100).saturating_add(5_000)
}

pub(super) fn check_amount(amount_msat: u64) -> Result<(), RequestError> {
    if amount_msat == 0 || amount_msat > MAX_PAYMENT_MSAT {
        return Err(RequestError::BadAmount(amount_msat));
    }
    Ok(())
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> &'a str {
    match text.get(..prefix.len()) {
        Some(head) if head.eq_ignore_ascii_case(prefix) => &text[prefix.len()..],
        _ => text,
    }
}

/// Text a stranger wrote, made safe to show: control characters dropped, at most
/// [`MAX_SHOWN_CHARS`] characters, an ellipsis where it was cut.
pub fn shown(text: &str) -> String {
    let clean: String = text.chars().filter(|c| !c.is_control()).collect();
    let clean = clean.trim();
    if clean.chars().count() <= MAX_SHOWN_CHARS {
        return clean.to_owned();
    }
    let mut cut: String = clean.chars().take(MAX_SHOWN_CHARS - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_that_is_no_request_is_refused_with_a_reason() {
        for text in ["", "hello", "bc1qexample", "lnbc1garbage", "lno1garbage"] {
            assert!(
                matches!(PaymentRequest::parse(text, WalletNetwork::Regtest), Err(RequestError::Unreadable(_))),
                "{text}"
            );
        }
        let long = "lnbc".to_owned() + &"q".repeat(MAX_REQUEST_CHARS);
        assert!(matches!(PaymentRequest::parse(&long, WalletNetwork::Regtest), Err(RequestError::TooLong(_))));
    }

    #[test]
    fn fee_cap_is_one_percent_plus_five_sat() {
        assert_eq!(fee_cap_msat(100_000), 6_000);
        assert_eq!(fee_cap_msat(0), 5_000);
        assert_eq!(fee_cap_msat(u64::MAX), u64::MAX / 100 + 5_000, "no overflow at the top");
        let quote =
            Quote { amount_msat: 1_234_567_000, max_fee_msat: fee_cap_msat(1_234_567_000), description: String::new() };
        assert_eq!(quote.line(), "1,234,567 sat, fee at most 12,351 sat");
    }

    #[test]
    fn strangers_text_is_cleaned_and_cut_for_showing() {
        assert_eq!(shown("  a\u{7}b\nc  "), "abc");
        let long = "x".repeat(500);
        let cut = shown(&long);
        assert_eq!(cut.chars().count(), MAX_SHOWN_CHARS);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn prefixes_are_stripped_in_any_case() {
        assert_eq!(strip_prefix_ignore_case("LIGHTNING:lnbc1", "lightning:"), "lnbc1");
        assert_eq!(strip_prefix_ignore_case("lnbc1", "lightning:"), "lnbc1");
        assert_eq!(strip_prefix_ignore_case("light", "lightning:"), "light");
    }
}
