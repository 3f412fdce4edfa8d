//! Which listings' payments the wallet thread asks the chain source about, and how often.
//!
//! Trade records are free to publish: any key can list, and any key can claim any txid. The trade
//! rule needs, per listing, every payment to the listing's address (`Chain::payments_to`), so a
//! claim by itself asks the server nothing; what a hostile key could still do is make the wallet
//! look at many addresses, again and again. The bounds, all here:
//!
//! - At most [`MAX_LOOKUPS_PER_ROUND`] addresses are looked at in one round: the person's own
//!   listings and purchases first, then the others, the longest waiting first.
//! - Another key's claims bring at most [`MAX_LISTINGS_PER_BUYER`] listings into the watch, and
//!   only claims the chain source has not yet answered count: a key cannot make the wallet ask
//!   about more than a few payments, however many it claims.
//! - Answers are kept. A listing whose leading payment is [`FINAL_DEPTH`] blocks deep and whose
//!   every claim is answered is not looked at again. One with a payment of the price still
//!   confirming (or the person's own) is looked at every round. One with nothing to show for its
//!   claims (a txid the server does not know as a payment to the address), or whose lookup
//!   failed, is looked at again only after a back-off doubling from [`FIRST_BACKOFF`] to
//!   [`MAX_BACKOFF`].
//! - A lookup that fails is backed off; the others of the round go on.
//! - At most [`MAX_ENTRIES`] answers are kept; past that, the ones without any payment of the
//!   price are forgotten first.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use sanctuary_engine::trade::{self, Claim, ListingView, PaymentSeen, SaleState, TxId};
use sanctuary_engine::{ChangeId, PublicKey};

/// The most addresses looked at in one round.
pub const MAX_LOOKUPS_PER_ROUND: usize = 16;
/// The most listings another key's unanswered claims bring into the watch.
pub const MAX_LISTINGS_PER_BUYER: usize = 4;
/// How deep a leading payment must be buried before its listing is not looked at again (the
/// most confirmations a listing may ask for).
pub const FINAL_DEPTH: u32 = trade::MAX_CONFIRMATIONS as u32;
/// The first wait before looking again at a listing with nothing to show or a failed lookup.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(60);
/// The longest such wait.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// The most listings whose answers are kept.
pub const MAX_ENTRIES: usize = 4096;

/// What the watch knows about one listing's address.
#[derive(Debug, Clone)]
struct Entry {
    /// The last answer: every payment to the address the server reported (`None` before any).
    answer: Option<HashMap<TxId, PaymentSeen>>,
    /// When it was last looked at.
    looked: Instant,
    /// When it may be looked at again.
    due: Instant,
    /// The current back-off (zero when none).
    backoff: Duration,
    /// Whether the leading payment was [`FINAL_DEPTH`] deep at the last answer.
    buried: bool,
}

/// The listings to watch, the answers so far, and when to ask again.
#[derive(Debug, Default)]
pub struct TradeWatch {
    listings: Vec<ListingView>,
    me: Option<PublicKey>,
    entries: HashMap<ChangeId, Entry>,
}

/// A lookup that failed in a round.
#[derive(Debug)]
pub struct Failure<E> {
    /// Whether it is the person's own listing or purchase.
    pub mine: bool,
    /// Why.
    pub error: E,
}

impl TradeWatch {
    /// Takes the world's listings and the person's key. Returns whether the person's own
    /// listings or claims changed (worth a round at once).
    pub fn set(&mut self, listings: Vec<ListingView>, me: Option<PublicKey>) -> bool {
        let before = self.own();
        // A listing paid over Lightning has no address to look at: its claims prove themselves.
        self.listings = listings.into_iter().filter(|view| !view.listing.pay_to.is_lightning()).collect();
        self.me = me;
        let present: BTreeSet<ChangeId> = self.listings.iter().map(|view| view.id).collect();
        self.entries.retain(|id, _| present.contains(id));
        let after = self.own();
        !after.is_empty() && after != before
    }

    /// Whether nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.listings.is_empty()
    }

    /// The person's listings and claims.
    fn own(&self) -> BTreeSet<(ChangeId, Option<TxId>)> {
        let Some(me) = self.me else { return BTreeSet::new() };
        let mut own = BTreeSet::new();
        for view in &self.listings {
            if view.seller == me {
                own.insert((view.id, None));
            }
            own.extend(view.claims.iter().filter(|claim| claim.buyer == me).map(|claim| (view.id, Some(claim.txid))));
        }
        own
    }

    fn is_mine(&self, view: &ListingView) -> bool {
        self.me.is_some_and(|me| view.seller == me || view.claims.iter().any(|claim| claim.buyer == me))
    }

    fn answered(&self, view: &ListingView, claim: &Claim) -> bool {
        self.entries
            .get(&view.id)
            .and_then(|entry| entry.answer.as_ref())
            .is_some_and(|answer| answer.contains_key(&claim.txid))
    }

    /// The listings to look at now, in order, at most [`MAX_LOOKUPS_PER_ROUND`].
    pub fn due(&self, now: Instant) -> Vec<ChangeId> {
        let mut budgets: HashMap<PublicKey, usize> = HashMap::new();
        let mut due: Vec<(bool, Option<Instant>, ChangeId)> = Vec::new();
        for view in &self.listings {
            let entry = self.entries.get(&view.id);
            let all_answered = view.claims.iter().all(|claim| self.answered(view, claim));
            if entry.is_some_and(|entry| entry.buried) && all_answered {
                continue;
            }
            let mine = self.is_mine(view);
            let live = entry
                .and_then(|entry| entry.answer.as_ref())
                .is_some_and(|answer| answer.values().any(|payment| payment.qualifies(view.listing.price_sats)));
            let mut wanted = mine || live;
            let mut keys: Vec<PublicKey> = view
                .claims
                .iter()
                .filter(|claim| Some(claim.buyer) != self.me && !self.answered(view, claim))
                .map(|claim| claim.buyer)
                .collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let used = budgets.entry(key).or_default();
                if *used < MAX_LISTINGS_PER_BUYER {
                    *used += 1;
                    wanted = true;
                }
            }
            if wanted && entry.is_none_or(|entry| now >= entry.due) {
                due.push((!mine, entry.map(|entry| entry.looked), view.id));
            }
        }
        due.sort();
        due.into_iter().take(MAX_LOOKUPS_PER_ROUND).map(|(_, _, id)| id).collect()
    }

    /// Records the answer for a listing (`Err(())` if its lookup failed) at chain height `tip`.
    pub fn record(&mut self, listing: ChangeId, answer: Result<Vec<PaymentSeen>, ()>, tip: u32, now: Instant) {
        let Some(view) = self.listings.iter().find(|view| view.id == listing) else { return };
        let mine = self.is_mine(view);
        let price_sats = view.listing.price_sats;
        let entry = self.entries.entry(listing).or_insert(Entry {
            answer: None,
            looked: now,
            due: now,
            backoff: Duration::ZERO,
            buried: false,
        });
        entry.looked = now;
        let quiet = match answer {
            Ok(payments) => {
                let answer: HashMap<TxId, PaymentSeen> =
                    payments.into_iter().map(|payment| (payment.txid, payment)).collect();
                let depth = match trade::settle(view, &answer, tip).state {
                    SaleState::Owned { confirmations, .. }
                    | SaleState::Unclaimed { confirmations, .. }
                    | SaleState::Pending { confirmations, .. } => confirmations,
                    SaleState::Open | SaleState::Withdrawn => 0,
                    SaleState::Paid { .. } => FINAL_DEPTH,
                };
                entry.buried = depth >= FINAL_DEPTH;
                let all_answered = view.claims.iter().all(|claim| answer.contains_key(&claim.txid));
                let paid = answer.values().any(|payment| payment.qualifies(price_sats));
                entry.answer = Some(answer);
                match entry.buried {
                    // Settled: `due` skips it while every claim is answered.
                    true => !all_answered,
                    // Still confirming, or the person's own: every round.
                    false => !(paid || mine),
                }
            }
            Err(()) => true,
        };
        if quiet {
            entry.backoff = match entry.backoff {
                Duration::ZERO => FIRST_BACKOFF,
                backoff => backoff.saturating_mul(2).min(MAX_BACKOFF),
            };
            entry.due = now.checked_add(entry.backoff).unwrap_or(now);
        } else {
            entry.backoff = Duration::ZERO;
            entry.due = now;
        }
        self.evict();
    }

    /// Forgets answers past [`MAX_ENTRIES`]: first those without any payment of the price, the
    /// ones due last first.
    fn evict(&mut self) {
        let excess = self.entries.len().saturating_sub(MAX_ENTRIES);
        if excess == 0 {
            return;
        }
        let prices: HashMap<ChangeId, u64> =
            self.listings.iter().map(|view| (view.id, view.listing.price_sats)).collect();
        let mut order: Vec<(bool, std::cmp::Reverse<Instant>, ChangeId)> = self
            .entries
            .iter()
            .map(|(id, entry)| {
                let price = prices.get(id).copied().unwrap_or(u64::MAX);
                let paid = entry.answer.as_ref().is_some_and(|answer| answer.values().any(|p| p.qualifies(price)));
                (paid, std::cmp::Reverse(entry.due), *id)
            })
            .collect();
        order.sort();
        for (_, _, id) in order.into_iter().take(excess) {
            self.entries.remove(&id);
        }
    }

    /// One round: looks at what is due with `lookup` (the listing's payments, or why not) and
    /// records the answers; returns the lookups that failed. A failure does not stop the round.
    pub fn round<E>(
        &mut self,
        now: Instant,
        tip: u32,
        mut lookup: impl FnMut(&ListingView) -> Result<Vec<PaymentSeen>, E>,
    ) -> Vec<Failure<E>> {
        let mut failures = Vec::new();
        for listing in self.due(now) {
            let Some(view) = self.listings.iter().find(|view| view.id == listing) else { continue };
            let mine = self.is_mine(view);
            match lookup(view) {
                Ok(payments) => self.record(listing, Ok(payments), tip, now),
                Err(error) => {
                    self.record(listing, Err(()), tip, now);
                    failures.push(Failure { mine, error });
                }
            }
        }
        failures
    }

    /// Every answer kept that has any payment in it, by listing: what `trade::settle` takes for
    /// each listing.
    pub fn payments(&self) -> HashMap<ChangeId, HashMap<TxId, PaymentSeen>> {
        self.entries
            .iter()
            .filter_map(|(id, entry)| Some((*id, entry.answer.clone()?)))
            .filter(|(_, answer)| !answer.is_empty())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use glam::Vec3;
    use sanctuary_engine::trade::{ChainPosition, Listing, PayTo, Title, payment_commitment};
    use sanctuary_engine::{ModelRef, ParcelCoord};

    use super::*;

    fn key(n: u16) -> PublicKey {
        let mut seed = [7u8; 32];
        seed[..2].copy_from_slice(&n.to_le_bytes());
        PublicKey::from_secret_seed(&seed)
    }

    fn id(n: u16) -> ChangeId {
        let mut id = [0u8; 32];
        id[..2].copy_from_slice(&n.to_be_bytes());
        ChangeId(id)
    }

    fn script(n: u16) -> Vec<u8> {
        let [a, b] = n.to_le_bytes();
        vec![0x00, 0x14, a, b]
    }

    fn listing(n: u16, seller: PublicKey, claims: &[(PublicKey, u8)]) -> ListingView {
        ListingView {
            id: id(n),
            seller,
            parcel: ParcelCoord { x: 0, z: 0 },
            listing: Listing {
                item: ModelRef { hash: [1; 32], bytes: 10, triangles: 1, min: [0.0; 3], max: [1.0; 3] },
                title: Title::new("Lamp").expect("title"),
                price_sats: 20_000,
                pay_to: PayTo::new(&script(n)).expect("script"),
                confirmations: 1,
                spot: Vec3::ZERO,
            },
            withdrawn_at: None,
            claims: claims.iter().map(|(buyer, txid)| Claim { buyer: *buyer, txid: TxId([*txid; 32]) }).collect(),
            paid: Vec::new(),
        }
    }

    fn paid(view: &ListingView, buyer: PublicKey, txid: u8, height: Option<u32>) -> PaymentSeen {
        PaymentSeen {
            txid: TxId([txid; 32]),
            paid_sats: 20_000,
            commitments: vec![payment_commitment(&view.id, &buyer)],
            confirmed: height.map(|height| ChainPosition { height, index: 1 }),
        }
    }

    /// A chain source answering from a table by script, counting lookups.
    struct FakeChain {
        by_script: HashMap<Vec<u8>, Vec<PaymentSeen>>,
        failing: Option<Vec<u8>>,
        /// The last round's lookups.
        asked: Vec<ChangeId>,
        /// Every round's lookups, by listing.
        total: HashMap<ChangeId, usize>,
    }

    impl FakeChain {
        fn new() -> FakeChain {
            FakeChain { by_script: HashMap::new(), failing: None, asked: Vec::new(), total: HashMap::new() }
        }

        fn round(&mut self, watch: &mut TradeWatch, now: Instant, tip: u32) -> Vec<Failure<String>> {
            self.asked.clear();
            watch.round(now, tip, |view| {
                self.asked.push(view.id);
                *self.total.entry(view.id).or_default() += 1;
                let script = view.listing.pay_to.script();
                if self.failing.as_ref() == Some(&script) {
                    return Err("the server failed".to_owned());
                }
                Ok(self.by_script.get(&script).cloned().unwrap_or_default())
            })
        }
    }

    #[test]
    fn a_key_brings_a_few_listings_and_a_round_asks_about_sixteen_at_most() {
        let start = Instant::now();
        let mut watch = TradeWatch::default();
        // One key claims on 100 listings: four of them are looked at, ever, while unanswered.
        let spam: Vec<ListingView> =
            (0..100).map(|n| listing(n, key(1), &[(key(2), 1), (key(2), u8::try_from(n).unwrap_or(0))])).collect();
        assert!(!watch.set(spam.clone(), Some(key(999))), "nothing of the person's");
        assert_eq!(watch.due(start), vec![id(0), id(1), id(2), id(3)]);
        let mut chain = FakeChain::new();
        chain.round(&mut watch, start, 100);
        assert_eq!(chain.asked.len(), 4);
        let later = start + MAX_BACKOFF * 3;
        chain.round(&mut watch, later, 100);
        assert_eq!(chain.asked, vec![id(0), id(1), id(2), id(3)], "the same four, after their back-off");
        // 200 keys claiming on 200 more listings: 16 lookups a round, the longest waiting first.
        let mut many = spam;
        many.extend((100..300).map(|n| listing(n, key(1), &[(key(n), 9)])));
        watch.set(many, Some(key(999)));
        let due = watch.due(start + MAX_BACKOFF * 9);
        assert_eq!(due.len(), MAX_LOOKUPS_PER_ROUND);
        assert!(due.iter().all(|listing| listing.0 > id(99).0), "never-looked listings before looked ones");
    }

    #[test]
    fn the_persons_own_trades_come_first_and_wake_the_thread() {
        let now = Instant::now();
        let me = key(500);
        let mut listings: Vec<ListingView> = (0..40).map(|n| listing(n, key(n), &[(key(n + 100), 1)])).collect();
        listings.push(listing(60, key(1), &[(me, 4)]));
        listings.push(listing(61, me, &[]));
        let mut watch = TradeWatch::default();
        assert!(watch.set(listings.clone(), Some(me)), "the person's claim and listing are new");
        assert!(!watch.set(listings.clone(), Some(me)), "nothing new");
        listings[0].claims.push(Claim { buyer: key(300), txid: TxId([3; 32]) });
        assert!(!watch.set(listings.clone(), Some(me)), "others' claims wait for the timer");
        let due = watch.due(now);
        assert_eq!(&due[..2], &[id(60), id(61)]);
        assert_eq!(due.len(), MAX_LOOKUPS_PER_ROUND);
        // The person's own listings are looked at every round, even with nothing paid.
        let mut chain = FakeChain::new();
        chain.round(&mut watch, now, 10);
        assert_eq!(&watch.due(now + Duration::from_secs(30))[..2], &[id(60), id(61)]);
    }

    #[test]
    fn answers_are_kept_buried_sales_rest_and_unknown_payments_back_off() {
        let start = Instant::now();
        let (ada, bo) = (key(2), key(3));
        let sold = listing(1, key(1), &[(ada, 1)]);
        let confirming = listing(2, key(1), &[(bo, 2)]);
        let unknown = listing(3, key(1), &[(key(4), 3)]);
        let mut chain = FakeChain::new();
        chain.by_script.insert(script(1), vec![paid(&sold, ada, 1, Some(100))]);
        chain.by_script.insert(script(2), vec![paid(&confirming, bo, 2, Some(105))]);
        let mut watch = TradeWatch::default();
        watch.set(vec![sold.clone(), confirming, unknown], None);
        chain.round(&mut watch, start, 105);
        assert_eq!(chain.asked, vec![id(1), id(2), id(3)]);
        let answers = watch.payments();
        assert!(answers[&id(1)].contains_key(&TxId([1; 32])) && answers[&id(2)].contains_key(&TxId([2; 32])));
        assert!(!answers.contains_key(&id(3)), "nothing known for the unknown payment");
        // Thirty seconds on: the sale six deep is settled, the one confirming is looked at again,
        // the unknown payment waits out its back-off.
        let mut now = start + Duration::from_secs(30);
        chain.round(&mut watch, now, 106);
        assert_eq!(chain.asked, vec![id(2)]);
        let (mut looked, mut backoff) = (start, FIRST_BACKOFF);
        for _ in 0..8 {
            let due_at = looked + backoff;
            assert!(!watch.due(due_at - Duration::from_secs(1)).contains(&id(3)), "not before {backoff:?}");
            chain.round(&mut watch, due_at, 106);
            assert!(chain.asked.contains(&id(3)), "again after {backoff:?}");
            looked = due_at;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            assert_eq!(watch.entries[&id(3)].due, looked + backoff);
        }
        now = looked;
        assert_eq!(watch.entries[&id(3)].backoff, MAX_BACKOFF, "the wait stops growing");
        assert_eq!(chain.total[&id(1)], 1, "a buried sale is never asked again");
        assert_eq!(chain.total[&id(2)], 10, "one confirming is asked every round");
        // A new claim on the settled sale is asked about once, then backed off like any other.
        let mut sold = sold;
        sold.claims.push(Claim { buyer: key(9), txid: TxId([9; 32]) });
        let keep: Vec<ListingView> = watch.listings.iter().filter(|view| view.id != id(1)).cloned().collect();
        watch.set([vec![sold], keep].concat(), None);
        chain.round(&mut watch, now + MAX_BACKOFF, 106);
        assert!(chain.asked.contains(&id(1)));
        assert!(!watch.due(now + MAX_BACKOFF + Duration::from_secs(30)).contains(&id(1)));
    }

    #[test]
    fn a_failing_lookup_is_backed_off_and_the_round_goes_on() {
        let now = Instant::now();
        let me = key(50);
        let mine = listing(1, me, &[(key(2), 1)]);
        let other = listing(2, key(3), &[(key(4), 2)]);
        let mut chain = FakeChain::new();
        chain.by_script.insert(script(2), vec![paid(&other, key(4), 2, None)]);
        chain.failing = Some(script(1));
        let mut watch = TradeWatch::default();
        watch.set(vec![mine, other], Some(me));
        let failures = chain.round(&mut watch, now, 10);
        assert_eq!(chain.asked, vec![id(1), id(2)], "the failure did not stop the round");
        assert_eq!(failures.len(), 1);
        assert!(failures[0].mine && failures[0].error == "the server failed");
        assert!(watch.payments()[&id(2)].contains_key(&TxId([2; 32])));
        let soon = now + Duration::from_secs(30);
        assert_eq!(watch.due(soon), vec![id(2)], "the failed one waits; the paid one is looked at again");
        assert!(watch.due(now + FIRST_BACKOFF).contains(&id(1)));
    }

    /// One txid claimed on two listings: each listing's answer is its own address's, so a claim
    /// on a second listing cannot change what the first one's payment paid.
    #[test]
    fn each_listing_keeps_the_answer_for_its_own_address() {
        let now = Instant::now();
        let (ada, thief) = (key(2), key(3));
        let real = listing(1, key(1), &[(ada, 1)]);
        let decoy = listing(0, thief, &[(thief, 1)]);
        let mut chain = FakeChain::new();
        chain.by_script.insert(script(1), vec![paid(&real, ada, 1, Some(10))]);
        let mut watch = TradeWatch::default();
        watch.set(vec![decoy.clone(), real.clone()], None);
        chain.round(&mut watch, now, 10);
        let answers = watch.payments();
        let settled = trade::settle(&real, &answers[&id(1)], 10);
        assert_eq!(settled.state, SaleState::Owned { buyer: ada, txid: TxId([1; 32]), confirmations: 1 });
        let none = HashMap::new();
        assert_eq!(trade::settle(&decoy, answers.get(&id(0)).unwrap_or(&none), 10).state, SaleState::Open);
    }
}
