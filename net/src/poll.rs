//! A meeting room's polls: pure rules, no I/O. A poll is a question with two to eight options
//! and a closing time, signed by whoever opens it; a ballot is one person's choice, signed by
//! them, for one poll. Ballots are records that stand on their own (not gossip envelopes), so
//! that anyone may pass them on, late joiners get them from whoever holds them, and every vote
//! in a poll's results can be checked by anyone, long after, from the exported CSV alone
//! ([`Ballots::csv`], [`verify_csv`]).
//!
//! The rules:
//! - one ballot counts per key: the latest cast before the poll closes (a later one changes
//!   the vote);
//! - a ballot whose signature does not match its voter, for another poll, for an option the
//!   poll does not have, or cast after it closed, is refused;
//! - a ballot said by its own voter must be cast within [`CLOCK_SKEW_US`] of when it arrives
//!   ([`Arrival::Live`]), so that nobody votes after the close by dating a ballot before it; a
//!   ballot passed on by the poll's author, or read back from disk, is taken as dated
//!   ([`Arrival::Kept`]);
//! - at most [`MAX_VOTERS`] keys are counted per poll.
//!
//! A tally counts every voter, or only those a predicate keeps (the keys one trusts).

use std::collections::BTreeMap;
use std::time::Duration;

use iroh::{PublicKey, SecretKey, Signature};
use serde::{Deserialize, Serialize};

use crate::hex::{from_hex, hex};

/// The longest question, in characters.
pub const MAX_QUESTION_CHARS: usize = 200;
/// The fewest options a poll has.
pub const MIN_OPTIONS: usize = 2;
/// The most options a poll has.
pub const MAX_OPTIONS: usize = 8;
/// The longest option, in characters.
pub const MAX_OPTION_CHARS: usize = 80;
/// The longest a poll stays open.
pub const MAX_OPEN: Duration = Duration::from_secs(7 * 24 * 3600);
/// The most keys counted in one poll.
pub const MAX_VOTERS: usize = 1024;
/// How far a ballot's date may be from when it arrives from its voter, in µs (as far as the
/// clocks of signed messages may be, see `inbox`).
pub const CLOCK_SKEW_US: u64 = 5 * 60 * 1_000_000;

/// What a poll's signature covers, before the poll itself.
const POLL_CONTEXT: &[u8] = b"sanctuary poll v1";
/// What a ballot's signature covers, before the ballot itself.
const BALLOT_CONTEXT: &[u8] = b"sanctuary ballot v1";

/// A question and its options, open from `opened_us` to `closes_us` (µs since 1970 on the
/// author's clock).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Poll {
    /// Who opened it.
    pub author: [u8; 32],
    /// When.
    pub opened_us: u64,
    /// When it closes: ballots cast from then on do not count.
    pub closes_us: u64,
    /// The question.
    pub question: String,
    /// The options, in order.
    pub options: Vec<String>,
}

/// Why a poll or a ballot was refused, or a CSV does not check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PollError {
    /// The question is empty or longer than allowed.
    #[error("a question has 1 to {MAX_QUESTION_CHARS} characters")]
    Question,
    /// Too few or too many options, or one empty, too long or twice.
    #[error("a poll has {MIN_OPTIONS} to {MAX_OPTIONS} different options of 1 to {MAX_OPTION_CHARS} characters")]
    Options,
    /// Closing before it opens, or open longer than allowed.
    #[error("a poll stays open for up to 7 days")]
    Duration,
    /// The signature does not match.
    #[error("the signature does not match")]
    Signature,
    /// A ballot for another poll.
    #[error("the ballot is for another poll")]
    OtherPoll,
    /// An option the poll does not have.
    #[error("the poll has no option {0}")]
    NoSuchOption(u8),
    /// Cast once the poll had closed.
    #[error("the poll had closed")]
    Closed,
    /// Dated too far from when it arrived.
    #[error("the ballot's date is more than 5 minutes from now")]
    Stale,
    /// The poll counts as many voters as it may.
    #[error("the poll counts {MAX_VOTERS} voters already")]
    Full,
    /// A ballot for a poll not held (its author says it again to newcomers).
    #[error("no such poll here")]
    Unknown,
    /// Its author has as many polls open as one may.
    #[error("one person may have {} polls open at once", crate::meeting::MAX_OPEN_PER_KEY)]
    TooManyOpen,
    /// The room holds as many polls as it may, all still open.
    #[error("the room holds {} open polls already", crate::meeting::MAX_POLLS)]
    BookFull,
    /// Opened later than now (beyond the clocks' skew).
    #[error("the poll is dated in the future")]
    Future,
    /// Passed on by someone who may not pass it on now.
    #[error("only the poll's author passes on ballots once it has closed")]
    NotRelayed,
    /// A CSV that is not one this program wrote.
    #[error("line {line} of the CSV: {reason}")]
    Csv {
        /// Which line (from 1).
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

impl Poll {
    /// Its id: the BLAKE3 of what it says.
    pub fn id(&self) -> [u8; 32] {
        *blake3::hash(&self.signed_bytes()).as_bytes()
    }

    fn signed_bytes(&self) -> Vec<u8> {
        // Strings, numbers and byte arrays always encode.
        postcard::to_extend(self, POLL_CONTEXT.to_vec()).unwrap_or_default()
    }

    /// Checks the question, the options and the duration.
    pub fn check(&self) -> Result<(), PollError> {
        // Control characters are refused, so that the exported CSV says the text exactly.
        let chars = |text: &str, most: usize| {
            (1..=most).contains(&text.trim().chars().count()) && !text.chars().any(char::is_control)
        };
        if !chars(&self.question, MAX_QUESTION_CHARS) || self.question.chars().count() > MAX_QUESTION_CHARS {
            return Err(PollError::Question);
        }
        let options_ok = (MIN_OPTIONS..=MAX_OPTIONS).contains(&self.options.len())
            && self
                .options
                .iter()
                .all(|option| chars(option, MAX_OPTION_CHARS) && option.chars().count() <= MAX_OPTION_CHARS)
            && self.options.iter().enumerate().all(|(at, option)| !self.options[..at].contains(option));
        if !options_ok {
            return Err(PollError::Options);
        }
        let open = self.closes_us.checked_sub(self.opened_us).filter(|open| *open > 0);
        if open.is_none_or(|open| open > MAX_OPEN.as_micros() as u64) {
            return Err(PollError::Duration);
        }
        Ok(())
    }

    /// Whether it is open when the clock reads `now_us`.
    pub fn open_at(&self, now_us: u64) -> bool {
        now_us < self.closes_us
    }
}

/// A poll and its author's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedPoll {
    /// The poll.
    pub poll: Poll,
    /// Its author's signature of it.
    pub signature: Signature,
}

impl SignedPoll {
    /// Opens `poll` as the owner of `secret` (its author is set to them).
    pub fn new(secret: &SecretKey, mut poll: Poll) -> Result<Self, PollError> {
        poll.author = *secret.public().as_bytes();
        poll.check()?;
        let signature = secret.sign(&poll.signed_bytes());
        Ok(Self { poll, signature })
    }

    /// Checks the poll and its author's signature.
    pub fn verify(&self) -> Result<(), PollError> {
        self.poll.check()?;
        let author = PublicKey::from_bytes(&self.poll.author).map_err(|_| PollError::Signature)?;
        author.verify(&self.poll.signed_bytes(), &self.signature).map_err(|_| PollError::Signature)
    }
}

/// One person's choice in one poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ballot {
    /// The poll's id.
    pub poll: [u8; 32],
    /// Who votes.
    pub voter: [u8; 32],
    /// The option chosen, counting from 0.
    pub choice: u8,
    /// When it was cast, µs since 1970 on the voter's clock.
    pub at_us: u64,
    /// The voter's signature of the above.
    pub signature: Signature,
}

fn ballot_bytes(poll: &[u8; 32], voter: &[u8; 32], choice: u8, at_us: u64) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(BALLOT_CONTEXT.len() + 73);
    bytes.extend_from_slice(BALLOT_CONTEXT);
    bytes.extend_from_slice(poll);
    bytes.extend_from_slice(voter);
    bytes.push(choice);
    bytes.extend_from_slice(&at_us.to_le_bytes());
    bytes
}

impl Ballot {
    /// Casts a ballot for option `choice` of `poll` as the owner of `secret`, at `at_us`.
    pub fn cast(secret: &SecretKey, poll: &Poll, choice: u8, at_us: u64) -> Result<Self, PollError> {
        if usize::from(choice) >= poll.options.len() {
            return Err(PollError::NoSuchOption(choice));
        }
        if !poll.open_at(at_us) {
            return Err(PollError::Closed);
        }
        let (id, voter) = (poll.id(), *secret.public().as_bytes());
        let signature = secret.sign(&ballot_bytes(&id, &voter, choice, at_us));
        Ok(Self { poll: id, voter, choice, at_us, signature })
    }

    /// Checks the voter's signature.
    pub fn verify(&self) -> Result<(), PollError> {
        let voter = PublicKey::from_bytes(&self.voter).map_err(|_| PollError::Signature)?;
        let signed = ballot_bytes(&self.poll, &self.voter, self.choice, self.at_us);
        voter.verify(&signed, &self.signature).map_err(|_| PollError::Signature)
    }
}

/// How a ballot came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Said by its voter; our clock reads `now_us`.
    Live {
        /// Now, µs since 1970.
        now_us: u64,
    },
    /// Passed on by the poll's author, or read back from disk: taken as dated.
    Kept,
}

/// A poll and the ballot that counts for each voter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ballots {
    /// The poll, signed.
    pub poll: SignedPoll,
    id: [u8; 32],
    latest: BTreeMap<[u8; 32], Ballot>,
}

impl Ballots {
    /// A poll with no ballots yet (its signature checked).
    pub fn new(poll: SignedPoll) -> Result<Self, PollError> {
        poll.verify()?;
        let id = poll.poll.id();
        Ok(Self { poll, id, latest: BTreeMap::new() })
    }

    /// The poll's id.
    pub fn id(&self) -> [u8; 32] {
        self.id
    }

    /// Takes a ballot by the rules (see the module's documentation); whether the count
    /// changed.
    pub fn take(&mut self, ballot: Ballot, arrival: Arrival) -> Result<bool, PollError> {
        if ballot.poll != self.id {
            return Err(PollError::OtherPoll);
        }
        if usize::from(ballot.choice) >= self.poll.poll.options.len() {
            return Err(PollError::NoSuchOption(ballot.choice));
        }
        if !self.poll.poll.open_at(ballot.at_us) {
            return Err(PollError::Closed);
        }
        if let Arrival::Live { now_us } = arrival
            && ballot.at_us.abs_diff(now_us) > CLOCK_SKEW_US
        {
            return Err(PollError::Stale);
        }
        let held = self.latest.get(&ballot.voter);
        if held.is_some_and(|held| held.at_us >= ballot.at_us) {
            return Ok(false);
        }
        if held.is_none() && self.latest.len() >= MAX_VOTERS {
            return Err(PollError::Full);
        }
        // The signature last: it is the costly check.
        ballot.verify()?;
        self.latest.insert(ballot.voter, ballot);
        Ok(true)
    }

    /// The ballots that count, by voter.
    pub fn ballots(&self) -> impl Iterator<Item = &Ballot> {
        self.latest.values()
    }

    /// The ballot of `voter`, if they voted.
    pub fn ballot_of(&self, voter: &[u8; 32]) -> Option<&Ballot> {
        self.latest.get(voter)
    }

    /// Votes per option, counting the voters `counts` keeps.
    pub fn tally(&self, counts: impl Fn(&[u8; 32]) -> bool) -> Vec<u32> {
        let mut tally = vec![0u32; self.poll.poll.options.len()];
        for ballot in self.latest.values().filter(|ballot| counts(&ballot.voter)) {
            if let Some(count) = tally.get_mut(usize::from(ballot.choice)) {
                *count = count.saturating_add(1);
            }
        }
        tally
    }

    /// The poll and every ballot that counts, as CSV: lines starting `#` say the poll (and its
    /// signature), then one row per voter, with what their signature covers and the
    /// signature, so that [`verify_csv`] (or anyone with an Ed25519 library) can check each.
    pub fn csv(&self) -> String {
        let poll = &self.poll.poll;
        let mut csv = String::new();
        csv.push_str(&format!("# sanctuary poll,{}\n", hex(&self.id)));
        csv.push_str(&format!("# author,{}\n", hex(&poll.author)));
        csv.push_str(&format!("# opened_us,{}\n# closes_us,{}\n", poll.opened_us, poll.closes_us));
        csv.push_str(&format!("# question,{}\n", quoted(&poll.question)));
        for (at, option) in poll.options.iter().enumerate() {
            csv.push_str(&format!("# option,{at},{}\n", quoted(option)));
        }
        csv.push_str(&format!("# poll signature,{}\n", hex(&self.poll.signature.to_bytes())));
        csv.push_str("voter,choice,option,cast_at_us,signature\n");
        for ballot in self.latest.values() {
            let option = poll.options.get(usize::from(ballot.choice)).map_or("", String::as_str);
            csv.push_str(&format!(
                "{},{},{},{},{}\n",
                hex(&ballot.voter),
                ballot.choice,
                quoted(option),
                ballot.at_us,
                hex(&ballot.signature.to_bytes())
            ));
        }
        csv
    }
}

/// Reads a CSV written by [`Ballots::csv`] and checks everything in it: the poll's signature and
/// id, and every ballot's signature, poll, option and date. The poll and its ballots, which
/// give the tally.
pub fn verify_csv(text: &str) -> Result<Ballots, PollError> {
    let mut fields: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut options: Vec<(u8, String)> = Vec::new();
    let mut rows = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let bad = |reason: &str| PollError::Csv { line: number, reason: reason.to_owned() };
        let cells = split_csv(line.strip_prefix("# ").unwrap_or(line)).ok_or_else(|| bad("unbalanced quotes"))?;
        if line.starts_with("# ") {
            let (key, values) = cells.split_first().ok_or_else(|| bad("empty"))?;
            if key == "option" {
                let [at, option] = values else { return Err(bad("an option is its number and its text")) };
                let at = at.parse::<u8>().map_err(|_| bad("an option's number"))?;
                options.push((at, option.clone()));
            } else {
                fields.insert(key.clone(), values.to_vec());
            }
        } else if line != "voter,choice,option,cast_at_us,signature" && !line.is_empty() {
            rows.push((number, cells));
        }
    }
    let field = |key: &str| {
        fields
            .get(key)
            .and_then(|values| values.first())
            .cloned()
            .ok_or_else(|| PollError::Csv { line: 0, reason: format!("no {key} line") })
    };
    let number = |key: &str| {
        field(key)?.parse::<u64>().map_err(|_| PollError::Csv { line: 0, reason: format!("{key} is not a number") })
    };
    options.sort_by_key(|(at, _)| *at);
    if options.iter().enumerate().any(|(expected, (at, _))| usize::from(*at) != expected) {
        return Err(PollError::Csv { line: 0, reason: "the options are not numbered 0, 1, 2...".into() });
    }
    let poll = Poll {
        author: from_hex(&field("author")?).ok_or(PollError::Signature)?,
        opened_us: number("opened_us")?,
        closes_us: number("closes_us")?,
        question: field("question")?,
        options: options.into_iter().map(|(_, option)| option).collect(),
    };
    let signature = Signature::from_bytes(&from_hex(&field("poll signature")?).ok_or(PollError::Signature)?);
    let mut ballots = Ballots::new(SignedPoll { poll, signature })?;
    if from_hex::<32>(&field("sanctuary poll")?) != Some(ballots.id) {
        return Err(PollError::OtherPoll);
    }
    for (line, cells) in rows {
        let bad = |reason: &str| PollError::Csv { line, reason: reason.to_owned() };
        let [voter, choice, _, at_us, signature] = cells.as_slice() else {
            return Err(bad("a ballot is voter, choice, option, cast_at_us, signature"));
        };
        let ballot = Ballot {
            poll: ballots.id,
            voter: from_hex(voter).ok_or_else(|| bad("the voter is not a key"))?,
            choice: choice.parse().map_err(|_| bad("the choice is not a number"))?,
            at_us: at_us.parse().map_err(|_| bad("the date is not a number"))?,
            signature: Signature::from_bytes(&from_hex(signature).ok_or_else(|| bad("the signature is not one"))?),
        };
        if ballots.latest.contains_key(&ballot.voter) {
            return Err(bad("a second ballot from one voter"));
        }
        ballots.take(ballot, Arrival::Kept).map_err(|error| bad(&error.to_string()))?;
    }
    Ok(ballots)
}

/// A CSV field in quotes, quotes inside doubled; line breaks (which a poll's text never has
/// after cleaning) become spaces so that a row stays one line.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace(['\n', '\r'], " ").replace('"', "\"\""))
}

/// The fields of one CSV line (quoted ones unquoted); `None` when a quote is left open.
fn split_csv(line: &str) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    if quoted {
        return None;
    }
    fields.push(field);
    Some(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: u64 = 60 * 1_000_000;

    fn secret(seed: u8) -> SecretKey {
        SecretKey::from_bytes(&[seed; 32])
    }

    fn lunch(author: u8) -> SignedPoll {
        let poll = Poll {
            author: [0; 32],
            opened_us: 1_000 * MINUTE,
            closes_us: 1_010 * MINUTE,
            question: "Where do we eat, \"today\"?".into(),
            options: vec!["Noodles".into(), "Tacos, spicy".into(), "Soup".into()],
        };
        SignedPoll::new(&secret(author), poll).expect("a good poll")
    }

    #[test]
    fn a_poll_tallies_a_double_a_changed_and_a_forged_vote() {
        let signed = lunch(1);
        let poll = signed.poll.clone();
        let mut ballots = Ballots::new(signed).expect("opens");
        let now = 1_001 * MINUTE;
        let live = Arrival::Live { now_us: now };
        let vote = |seed: u8, choice: u8, at: u64| Ballot::cast(&secret(seed), &poll, choice, at).expect("casts");
        assert_eq!(ballots.take(vote(2, 0, now), live), Ok(true));
        assert_eq!(ballots.take(vote(3, 1, now), live), Ok(true));
        assert_eq!(ballots.take(vote(4, 1, now), live), Ok(true));
        // The same ballot twice counts once.
        assert_eq!(ballots.take(vote(2, 0, now), live), Ok(false));
        // Bo changes his mind; an older ballot of his, arriving late, does not undo it.
        assert_eq!(ballots.take(vote(3, 2, now + 1), live), Ok(true));
        assert_eq!(ballots.take(vote(3, 1, now - 5), live), Ok(false));
        // A forged ballot: Dee's key, signed by Eve.
        let mut forged = vote(5, 0, now);
        forged.voter = *secret(4).public().as_bytes();
        forged.at_us = now + 9;
        assert_eq!(ballots.take(forged, live), Err(PollError::Signature));
        // A ballot whose choice was changed after signing.
        let mut altered = vote(6, 0, now);
        altered.choice = 2;
        assert_eq!(ballots.take(altered, live), Err(PollError::Signature));
        assert_eq!(ballots.tally(|_| true), vec![1, 1, 1], "Ada noodles, Bo soup (changed), Cy tacos");
        // Counting only trusted keys.
        let trusted = *secret(2).public().as_bytes();
        assert_eq!(ballots.tally(|voter| *voter == trusted), vec![1, 0, 0]);
    }

    #[test]
    fn ballots_out_of_time_or_place_are_refused() {
        let signed = lunch(1);
        let poll = signed.poll.clone();
        let mut ballots = Ballots::new(signed).expect("opens");
        let closes = poll.closes_us;
        assert_eq!(Ballot::cast(&secret(2), &poll, 0, closes).map(|_| ()), Err(PollError::Closed));
        assert_eq!(Ballot::cast(&secret(2), &poll, 3, closes - 1).map(|_| ()), Err(PollError::NoSuchOption(3)));
        // Cast just before the close and said an hour later by its voter: too late.
        let late = Ballot::cast(&secret(2), &poll, 0, closes - 1).expect("casts");
        assert_eq!(ballots.take(late.clone(), Arrival::Live { now_us: closes + 60 * MINUTE }), Err(PollError::Stale));
        // Passed on by the author, who had it in time: taken.
        assert_eq!(ballots.take(late, Arrival::Kept), Ok(true));
        let other = lunch(9);
        let mut elsewhere = Ballot::cast(&secret(3), &other.poll, 0, closes - 1).expect("casts");
        elsewhere.poll = [7; 32];
        assert_eq!(ballots.take(elsewhere, Arrival::Kept), Err(PollError::OtherPoll));
        // A poll whose text was changed after signing does not open.
        let mut altered = lunch(1);
        altered.poll.options[2] = "Salad".into();
        assert_eq!(Ballots::new(altered).map(|_| ()), Err(PollError::Signature));
    }

    #[test]
    fn polls_are_bounded() {
        let good = lunch(1).poll;
        let bad = [
            Poll { question: " ".into(), ..good.clone() },
            Poll { question: "two\nlines".into(), ..good.clone() },
            Poll { question: "q".repeat(MAX_QUESTION_CHARS + 1), ..good.clone() },
            Poll { options: vec!["Yes".into()], ..good.clone() },
            Poll { options: (0..=MAX_OPTIONS).map(|n| n.to_string()).collect(), ..good.clone() },
            Poll { options: vec!["Yes".into(), "Yes".into()], ..good.clone() },
            Poll { options: vec!["Yes".into(), "o".repeat(MAX_OPTION_CHARS + 1)], ..good.clone() },
            Poll { closes_us: good.opened_us, ..good.clone() },
            Poll { closes_us: good.opened_us + MAX_OPEN.as_micros() as u64 + 1, ..good.clone() },
            Poll { closes_us: 0, ..good.clone() },
        ];
        for poll in bad {
            assert!(SignedPoll::new(&secret(1), poll.clone()).is_err(), "{poll:?} was opened");
        }
        // A full poll takes no new voter, but its voters may still change their vote.
        let signed = lunch(1);
        let poll = signed.poll.clone();
        let mut ballots = Ballots::new(signed).expect("opens");
        let at = poll.opened_us + 1;
        for n in 0..MAX_VOTERS as u32 {
            let mut seed = [0u8; 32];
            seed[..4].copy_from_slice(&n.to_le_bytes());
            let voter = SecretKey::from_bytes(&seed);
            ballots.take(Ballot::cast(&voter, &poll, 0, at).expect("casts"), Arrival::Kept).expect("counts");
        }
        let newcomer = Ballot::cast(&secret(200), &poll, 0, at).expect("casts");
        assert_eq!(ballots.take(newcomer, Arrival::Kept), Err(PollError::Full));
        let changed = Ballot::cast(&SecretKey::from_bytes(&[0; 32]), &poll, 1, at + 1).expect("casts");
        assert_eq!(ballots.take(changed, Arrival::Kept), Ok(true));
        assert_eq!(ballots.tally(|_| true), vec![MAX_VOTERS as u32 - 1, 1, 0]);
    }

    #[test]
    fn the_csv_lets_anyone_check_every_vote() {
        let signed = lunch(1);
        let poll = signed.poll.clone();
        let mut ballots = Ballots::new(signed).expect("opens");
        for (seed, choice) in [(2, 0), (3, 1), (4, 1)] {
            let ballot = Ballot::cast(&secret(seed), &poll, choice, poll.opened_us + u64::from(seed)).expect("casts");
            ballots.take(ballot, Arrival::Kept).expect("counts");
        }
        let csv = ballots.csv();
        assert!(csv.contains("# question,\"Where do we eat, \"\"today\"\"?\""), "{csv}");
        assert!(csv.contains(",1,\"Tacos, spicy\","), "{csv}");
        let read = verify_csv(&csv).expect("the CSV checks");
        assert_eq!(read, ballots, "the same poll and ballots");
        assert_eq!(read.tally(|_| true), vec![1, 2, 0]);
        // Someone edits a vote in the file: found, with its line.
        let voter = hex(secret(3).public().as_bytes());
        let edited = csv.replace(&format!("{voter},1,\"Tacos, spicy\""), &format!("{voter},0,\"Noodles\""));
        assert_ne!(edited, csv);
        assert!(matches!(verify_csv(&edited), Err(PollError::Csv { reason, .. }) if reason.contains("signature")));
        // Or the question.
        let reworded = csv.replace("Where do we eat", "Where do we sleep");
        assert_eq!(verify_csv(&reworded).map(|_| ()), Err(PollError::Signature));
        // A ballot row copied twice.
        let row = csv.lines().last().expect("a ballot row").to_owned();
        assert!(verify_csv(&format!("{csv}{row}\n")).is_err());
        assert!(verify_csv("not a poll").is_err());
        assert!(verify_csv("# question,\"open quote\n").is_err());
    }
}
