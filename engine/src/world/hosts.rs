//! Where people's things are kept while they are away ([`Op::Host`](super::Op::Host)): a person
//! signs "`host` keeps my parcels and models" (their home node, or a friend's node that pins
//! them), and everyone who wants those models asks the hosts too. The newest statement per
//! author and host counts (ties of sequence broken by change id, so every peer keeps the same
//! one); what it replaces is no longer held.
//!
//! Bounds: [`MAX_HOST_RECORDS`] statements per author, withdrawals included (a withdrawal stays,
//! so that an older copy cannot come back through sync), of which at most [`MAX_HOSTS`] stand.
//! A host decides for itself whether it keeps anything for the people who name it; naming a
//! host costs the host nothing but a refused fetch.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::change::{ChangeId, Rejection};
use crate::identity::PublicKey;

/// The most hosts a person names at once.
pub const MAX_HOSTS: usize = 8;
/// Host statements held per author, withdrawals included.
pub const MAX_HOST_RECORDS: usize = 4 * MAX_HOSTS;

/// Every host statement held.
#[derive(Debug, Default)]
pub(crate) struct Hosts {
    /// The change that holds each statement now, and whether it names the host (or withdraws),
    /// by author and host.
    current: HashMap<(PublicKey, PublicKey), (u64, ChangeId, bool)>,
    /// Statements held per author.
    records: HashMap<PublicKey, usize>,
    /// Each author's standing hosts.
    standing: BTreeMap<PublicKey, BTreeSet<PublicKey>>,
}

impl Hosts {
    /// Takes `author`'s statement (change `id`, sequence `seq`) that `host` keeps their things
    /// (`kept`) or no longer does; returns the change it replaces (no longer held).
    pub(crate) fn insert(
        &mut self,
        author: PublicKey,
        seq: u64,
        host: PublicKey,
        kept: bool,
        id: ChangeId,
    ) -> Result<Option<ChangeId>, Rejection> {
        let previous = self.current.get(&(author, host)).copied();
        if previous.is_some_and(|(held_seq, held_id, _)| (held_seq, held_id) >= (seq, id)) {
            return Err(Rejection::Superseded);
        }
        if previous.is_none() && self.records.get(&author).copied().unwrap_or(0) >= MAX_HOST_RECORDS {
            return Err(Rejection::OverBudget(MAX_HOST_RECORDS));
        }
        self.check(author, host, kept)?;
        self.current.insert((author, host), (seq, id, kept));
        if previous.is_none() {
            *self.records.entry(author).or_default() += 1;
        }
        let standing = self.standing.entry(author).or_default();
        if kept {
            standing.insert(host);
        } else {
            standing.remove(&host);
            if standing.is_empty() {
                self.standing.remove(&author);
            }
        }
        Ok(previous.map(|(_, id, _)| id))
    }

    /// Whether `author` could say now that `host` keeps their things (or no longer does): not
    /// themselves, and not one host too many.
    pub(crate) fn check(&self, author: PublicKey, host: PublicKey, kept: bool) -> Result<(), Rejection> {
        if author == host {
            return Err(Rejection::HostSelf);
        }
        let standing = self.standing.get(&author);
        let already = standing.is_some_and(|hosts| hosts.contains(&host));
        if kept && !already && standing.map_or(0, BTreeSet::len) >= MAX_HOSTS {
            return Err(Rejection::TooManyHosts);
        }
        Ok(())
    }

    /// The hosts `author` names now, in key order.
    pub(crate) fn of(&self, author: &PublicKey) -> Vec<PublicKey> {
        self.standing.get(author).map(|hosts| hosts.iter().copied().collect()).unwrap_or_default()
    }

    /// The people who name `host` now, in key order.
    pub(crate) fn naming(&self, host: &PublicKey) -> Vec<PublicKey> {
        self.standing.iter().filter(|(_, hosts)| hosts.contains(host)).map(|(author, _)| *author).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> PublicKey {
        PublicKey::from_secret_seed(&[seed; 32])
    }

    #[test]
    fn the_newest_statement_counts_and_replaces_the_older() {
        let mut hosts = Hosts::default();
        let (ada, home) = (key(1), key(2));
        assert_eq!(hosts.insert(ada, 5, home, true, ChangeId([5; 32])), Ok(None));
        assert_eq!(hosts.of(&ada), vec![home]);
        assert_eq!(hosts.naming(&home), vec![ada]);
        // An older one, arriving late, changes nothing.
        assert_eq!(hosts.insert(ada, 4, home, false, ChangeId([4; 32])), Err(Rejection::Superseded));
        assert_eq!(hosts.insert(ada, 6, home, false, ChangeId([6; 32])), Ok(Some(ChangeId([5; 32]))));
        assert!(hosts.of(&ada).is_empty());
        assert!(hosts.naming(&home).is_empty());
    }

    #[test]
    fn hosts_are_bounded_and_never_oneself() {
        let mut hosts = Hosts::default();
        let ada = key(1);
        assert_eq!(hosts.insert(ada, 1, ada, true, ChangeId([1; 32])), Err(Rejection::HostSelf));
        for at in 0..MAX_HOSTS {
            let host = key(10 + at as u8);
            assert_eq!(hosts.insert(ada, 2 + at as u64, host, true, ChangeId([at as u8; 32])), Ok(None));
        }
        assert_eq!(hosts.insert(ada, 100, key(200), true, ChangeId([200; 32])), Err(Rejection::TooManyHosts));
        // Withdrawals make room, but each withdrawal stays held, so records run out too.
        let mut seq = 200;
        let mut refused = None;
        for at in 0..MAX_HOST_RECORDS {
            let host = key(100 + at as u8);
            seq += 1;
            if let Err(error) = hosts.insert(ada, seq, host, false, ChangeId([seq as u8; 32])) {
                refused = Some(error);
                break;
            }
        }
        assert_eq!(refused, Some(Rejection::OverBudget(MAX_HOST_RECORDS)));
        assert_eq!(hosts.of(&ada).len(), MAX_HOSTS);
    }
}
