//! Contribution lines: what someone served others, by the receipts those others signed (see
//! `sanctuary_net::receipts`), as a person's menu shows it ("served 1.2 GiB to 40 people, 3 of
//! them you know") and `/home` tells of one's own. Receipts are checked by the node before they
//! come here; how many of their signers the person knows is worked out here, from trust.

use sanctuary_engine::PublicKey;
use sanctuary_engine::trust::Standing;
use sanctuary_net::receipts::{Contribution, SignedReceipt};

use super::Social;

/// The most people whose line is kept (those asked about lately; a new one displaces another).
pub const MAX_CONTRIBUTIONS: usize = 256;

/// The line for a record: the sum, and how many of the receivers `social`'s person knows.
pub fn line(social: &Social, contribution: &Contribution, receipts: &[SignedReceipt]) -> String {
    if contribution.people == 0 {
        return "no receipts yet: nobody has signed for anything they served".to_owned();
    }
    let known = receipts
        .iter()
        .filter_map(|signed| PublicKey::from_bytes(signed.receipt.receiver).ok())
        .filter(|key| matches!(social.standing(key), Standing::Me | Standing::Trusted(_) | Standing::Known))
        .count();
    let known = match known {
        0 => "none of them known to you".to_owned(),
        1 => "1 of them known to you".to_owned(),
        known => format!("{known} of them known to you"),
    };
    format!("{} ({known})", contribution.line())
}

/// A record came (or their node did not answer, `reached` false): its line is kept (a bounded
/// number of them) and the menu told.
pub(super) fn heard(
    social: &mut Social,
    person: PublicKey,
    contribution: &Contribution,
    receipts: &[SignedReceipt],
    reached: bool,
) {
    let line = if reached {
        line(social, contribution, receipts)
    } else {
        "what they served is unknown: their node did not answer".to_owned()
    };
    if !social.contributions.contains_key(&person) && social.contributions.len() >= MAX_CONTRIBUTIONS {
        let other = social.contributions.keys().copied().find(|key| Some(*key) != social.me);
        if let Some(other) = other {
            social.contributions.remove(&other);
        }
    }
    social.contributions.insert(person, line);
    social.contributions_seen = social.contributions_seen.wrapping_add(1);
}

#[cfg(test)]
mod tests {
    use iroh::SecretKey;
    use sanctuary_engine::trust::{Statement, TrustContext, TrustGraph, TrustLevel};
    use sanctuary_net::receipts::Given;

    use super::*;

    fn receipt_from(seed: u8, server: &PublicKey, bytes: u64) -> SignedReceipt {
        let receiver = SecretKey::from_bytes(&[seed; 32]);
        let mut given = Given::default();
        given.add(*server.as_bytes(), bytes, 1, 0, 1);
        given.receipt(&receiver, *server.as_bytes(), 2).expect("counted")
    }

    #[test]
    fn the_line_says_how_many_receivers_the_person_knows() {
        let me = PublicKey::from_secret_seed(&[1; 32]);
        let server = PublicKey::from_secret_seed(&[9; 32]);
        let friend = PublicKey::from_secret_seed(&[2; 32]);
        let mut graph = TrustGraph::default();
        let statement = Statement {
            author: me,
            subject: friend,
            context: TrustContext::People,
            level: Some(TrustLevel::Friend),
            sequence: 1,
        };
        graph.set(statement).expect("a statement");
        let mut social = Social { me: Some(me), ..Social::default() };
        social.trust = Some(std::sync::Arc::new(sanctuary_net::TrustView::compute(&graph, &me)));
        let receipts = vec![receipt_from(2, &server, 3 << 30), receipt_from(3, &server, 1 << 20)];
        let contribution = sanctuary_net::receipts::contribution_of(&receipts, |_| true).0;
        assert_eq!(line(&social, &contribution, &receipts), "served 3.0 GiB to 2 people (1 of them known to you)");
        assert_eq!(
            line(&social, &Contribution::default(), &[]),
            "no receipts yet: nobody has signed for anything they served"
        );

        heard(&mut social, server, &contribution, &receipts, true);
        assert_eq!(social.contributions_seen, 1);
        assert!(social.contributions[&server].starts_with("served 3.0 GiB"));
        for seed in 0..MAX_CONTRIBUTIONS as u32 + 10 {
            let mut bytes = [0u8; 32];
            bytes[..4].copy_from_slice(&seed.to_le_bytes());
            heard(&mut social, PublicKey::from_secret_seed(&bytes), &Contribution::default(), &[], seed % 2 == 0);
        }
        assert_eq!(social.contributions.len(), MAX_CONTRIBUTIONS);
    }
}
