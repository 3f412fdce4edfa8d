//! `/home`: where a person's things are kept while they are away.
//!
//! - `/home` says the person's key (what `sanctuary node --owner KEY` takes) and the hosts they
//!   name now, numbered;
//! - `/home KEY` names a node (their home node, or a friend's node that will pin their things)
//!   as a host: a signed statement everyone can check, and the request the node answers;
//! - `/home off KEY` (or `/home off N`, a number from the list) takes it back;
//! - `/home KEY MIB MONTHS` asks a node that sells hosting for an invoice: MIB of one's models
//!   kept for MONTHS months (the wallet shows the price for a yes; once paid, the node is named).

use sanctuary_engine::{MAX_HOSTS, Op, PublicKey};
use sanctuary_net::Command;

use super::Social;

/// How to use it, when it was not.
const USAGE: &str = "usage: /home lists where your things are kept; /home NODE-KEY names a node that keeps them \
                     (your home node, or a friend's that pins them); /home NODE-KEY MIB MONTHS buys keeping from a \
                     node that sells it; /home off NODE-KEY (or its number) takes it back";

/// The hosts the person names now, in key order.
fn hosts(social: &Social) -> Vec<PublicKey> {
    match (&social.world, social.me) {
        (Some(world), Some(me)) => world.world().hosts_of(&me),
        _ => Vec::new(),
    }
}

/// What `/home REST` does: a notice, and the statement to sign if any.
pub(super) fn home(social: &mut Social, rest: &str) -> Option<Command> {
    let words: Vec<&str> = rest.split_whitespace().collect();
    let Some(me) = social.me else {
        social.notice("the network is not up yet: try /home again in a moment".into());
        return None;
    };
    let named = hosts(social);
    let (host, kept) = match words.as_slice() {
        [] => {
            let mut text = format!(
                "your key: {me} (start your home node with: sanctuary node --owner {me}); then /home NODE-KEY \
                 with the id it prints."
            );
            if named.is_empty() {
                text += " No node keeps your things yet: while you are away, nobody can fetch your models.";
            } else {
                text += " Your things are kept at:";
                for (at, host) in named.iter().enumerate() {
                    text += &format!(" {}. {host}", at + 1);
                }
            }
            if let Some(line) = social.contributions.get(&me) {
                text += &format!(" By the receipts others signed, you {line}.");
            }
            social.notice(text);
            return None;
        }
        [key] => (*key, true),
        ["off", which] => (*which, false),
        [key, mib, months] => return buy(social, me, key, mib, months),
        _ => {
            social.notice(USAGE.into());
            return None;
        }
    };
    let host = match host.parse::<usize>() {
        Ok(number) if !kept => match number.checked_sub(1).and_then(|at| named.get(at)) {
            Some(host) => *host,
            None => {
                social.notice(format!("no host numbered {number}; /home lists them"));
                return None;
            }
        },
        _ => match host.parse::<PublicKey>() {
            Ok(key) => key,
            Err(error) => {
                social.notice(format!("'{host}' is not a node's key ({error}); {USAGE}"));
                return None;
            }
        },
    };
    if host == me {
        social.notice("that is your own key: name the node's id, which `sanctuary node` prints as it starts".into());
        return None;
    }
    if kept && named.contains(&host) {
        social.notice(format!("{host} keeps your things already"));
        return None;
    }
    if kept && named.len() >= MAX_HOSTS {
        social.notice(format!("you name {MAX_HOSTS} nodes already, the most: /home off one of them first"));
        return None;
    }
    if !kept && !named.contains(&host) {
        social.notice(format!("{host} is not among the nodes that keep your things; /home lists them"));
        return None;
    }
    social.notice(if kept {
        format!("asking {host} to keep your parcel and models (signed, for everyone to see)...")
    } else {
        format!("{host} no longer keeps your things")
    });
    Some(Command::Build(Op::Host { host, kept }))
}

/// `/home KEY MIB MONTHS`: the ask for an invoice, when the numbers are within bounds.
fn buy(social: &mut Social, me: PublicKey, key: &str, mib: &str, months: &str) -> Option<Command> {
    use sanctuary_net::paid_hosting::{MAX_MONTHS, MAX_PAID_MIB};
    let host = match key.parse::<PublicKey>() {
        Ok(host) if host == me => {
            social
                .notice("that is your own key: name the node's id, which `sanctuary node` prints as it starts".into());
            return None;
        }
        Ok(host) => host,
        Err(error) => {
            social.notice(format!("'{key}' is not a node's key ({error}); {USAGE}"));
            return None;
        }
    };
    let (Ok(mib @ 1..=MAX_PAID_MIB), Ok(months @ 1..=MAX_MONTHS)) = (mib.parse::<u32>(), months.parse::<u16>()) else {
        social
            .notice(format!("ask for 1 to {MAX_PAID_MIB} MiB and 1 to {MAX_MONTHS} months: /home NODE-KEY MIB MONTHS"));
        return None;
    };
    social.notice(format!("asking {} for an invoice: {mib} MiB for {months} month(s)...", host.short()));
    Some(Command::AskHosting { host, mib, months })
}

#[cfg(test)]
mod tests {
    use sanctuary_engine::Change;

    use super::*;

    fn social_with_world() -> (Social, tempfile::TempDir, [u8; 32]) {
        let dir = tempfile::tempdir().expect("temp dir");
        let (world, _) = sanctuary_net::SharedReplica::open(dir.path()).expect("opens");
        let seed = [7; 32];
        let social = Social { me: Some(PublicKey::from_secret_seed(&seed)), world: Some(world), ..Social::default() };
        (social, dir, seed)
    }

    fn last_notice(social: &Social) -> String {
        social.chat.last().map(|entry| entry.text.clone()).unwrap_or_default()
    }

    #[test]
    fn home_names_a_host_lists_it_and_takes_it_back() {
        let (mut social, _dir, seed) = social_with_world();
        let me = social.me.expect("a key");
        let node = PublicKey::from_secret_seed(&[9; 32]);
        assert!(home(&mut social, "").is_none());
        assert!(last_notice(&social).contains(&format!("--owner {me}")), "{}", last_notice(&social));
        assert!(last_notice(&social).contains("No node keeps your things yet"));

        let command = home(&mut social, &node.to_string());
        assert!(matches!(command, Some(Command::Build(Op::Host { host, kept: true })) if host == node));
        // The node signs it; here it is put in the world by hand.
        let world = social.world.clone().expect("a world");
        let signed = Change { author: me, seq: 1, op: Op::Host { host: node, kept: true } }.sign(&seed);
        world.apply_bytes(&[signed.to_bytes()], 1).expect("applied");

        assert!(home(&mut social, "").is_none());
        assert!(last_notice(&social).contains(&format!("1. {node}")), "{}", last_notice(&social));
        assert!(home(&mut social, &node.to_string()).is_none(), "named already");
        let command = home(&mut social, "off 1");
        assert!(matches!(command, Some(Command::Build(Op::Host { host, kept: false })) if host == node));
    }

    #[test]
    fn home_refuses_what_is_not_a_host() {
        let (mut social, _dir, _) = social_with_world();
        let me = social.me.expect("a key");
        assert!(home(&mut social, "not-a-key").is_none());
        assert!(last_notice(&social).contains("is not a node's key"));
        assert!(home(&mut social, &me.to_string()).is_none());
        assert!(last_notice(&social).contains("your own key"));
        assert!(home(&mut social, "off 3").is_none());
        assert!(last_notice(&social).contains("no host numbered 3"));
        assert!(home(&mut social, "a b c d").is_none());
        assert!(last_notice(&social).starts_with("usage: /home"));
    }

    #[test]
    fn home_with_a_size_and_months_asks_for_an_invoice_within_bounds() {
        let (mut social, _dir, _) = social_with_world();
        let me = social.me.expect("a key");
        let node = PublicKey::from_secret_seed(&[9; 32]);
        let command = home(&mut social, &format!("{node} 1024 3"));
        assert!(matches!(command, Some(Command::AskHosting { host, mib: 1024, months: 3 }) if host == node));
        for bad in ["0 3", "1024 0", "1024 25", "99999999 1", "-1 2", "lots 2"] {
            assert!(home(&mut social, &format!("{node} {bad}")).is_none(), "{bad}");
            assert!(last_notice(&social).starts_with("ask for 1 to"), "{bad}: {}", last_notice(&social));
        }
        assert!(home(&mut social, &format!("{me} 10 1")).is_none());
        assert!(last_notice(&social).contains("your own key"));
        assert!(home(&mut social, "nokey 10 1").is_none());
        assert!(last_notice(&social).contains("is not a node's key"));
    }
}
