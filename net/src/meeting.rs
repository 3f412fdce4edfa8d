//! The meeting room's book of polls: pure rules, no I/O. Which polls a room holds, who may open
//! one, which ballots are taken from whom, and how the book is kept on disk. The rules of one
//! poll and its ballots are [`crate::poll`]'s.
//!
//! The rules:
//! - a room holds at most [`MAX_POLLS`]; when full, a new open poll is made room for by a
//!   closed one (a stranger's first, then the one that closed first), and a poll arriving
//!   closed already is refused, so that nobody pushes out a room's past results;
//!   while every poll is open, a poll by someone the person trusts makes room by pushing out
//!   the newest poll of someone they do not (so that a thousand free keys cannot lock the room
//!   for a week), and any other new poll is refused;
//! - one key has at most [`MAX_OPEN_PER_KEY`] polls open at once;
//! - a poll dated later than now (beyond the clocks' skew) is refused;
//! - a ballot said by its voter must be dated near now ([`Arrival::Live`]); one passed on by
//!   someone else is taken as dated ([`Arrival::Kept`]), from anyone while the poll is open
//!   (nobody can date a vote after a close that has not come) and only from the poll's author
//!   once it has closed, so that nobody slips a late vote in through a friend.

use serde::{Deserialize, Serialize};

use crate::poll::{Arrival, Ballot, Ballots, CLOCK_SKEW_US, PollError, SignedPoll};
use crate::whiteboard::{Clear, SignedStroke};

/// The most polls a room holds.
pub const MAX_POLLS: usize = 16;
/// The most polls one key has open at once.
pub const MAX_OPEN_PER_KEY: usize = 2;
/// The most ballots in one message.
pub const MAX_BALLOTS_SAID: usize = 32;

/// What travels about the meeting room's polls (`RegionMessage::Meeting`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MeetingMessage {
    /// A poll, signed by its author: said when opened and again to newcomers, by its author or,
    /// when the author is not here, by whoever holds it.
    Poll(SignedPoll),
    /// Ballots, each signed by its voter: one's own vote, or those of a poll passed on to
    /// newcomers.
    Ballots(Vec<Ballot>),
    /// A stroke drawn on the whiteboard, signed by whoever drew it (see
    /// [`crate::whiteboard`]).
    Stroke(SignedStroke),
    /// A clear of the whiteboard: all of it by its owner, else the signer's own strokes.
    Clear(Clear),
}

impl MeetingMessage {
    /// Checks the shape before the signature is: at most [`MAX_BALLOTS_SAID`] ballots, and a
    /// poll's texts within their bounds.
    pub fn check_shape(&self) -> Result<(), crate::wire::WireError> {
        let ok = match self {
            MeetingMessage::Poll(signed) => signed.poll.check().is_ok(),
            MeetingMessage::Ballots(ballots) => !ballots.is_empty() && ballots.len() <= MAX_BALLOTS_SAID,
            MeetingMessage::Stroke(stroke) => stroke.stroke.check().is_ok(),
            MeetingMessage::Clear(_) => true,
        };
        if ok { Ok(()) } else { Err(crate::wire::WireError::Malformed) }
    }
}

/// A room's polls, the oldest first, with the ballots that count in each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollBook {
    polls: Vec<Ballots>,
}

/// How a book is kept on disk: each poll with its ballots.
type Kept = Vec<(SignedPoll, Vec<Ballot>)>;

impl PollBook {
    /// The polls, the oldest first.
    pub fn polls(&self) -> &[Ballots] {
        &self.polls
    }

    /// The poll with this id.
    pub fn get(&self, id: &[u8; 32]) -> Option<&Ballots> {
        self.polls.iter().find(|ballots| ballots.id() == *id)
    }

    /// Takes a poll by the rules (see the module's documentation), our clock reading `now_us`,
    /// `trusted` saying whose polls may push out strangers'; whether it is new.
    pub fn take_poll(
        &mut self,
        poll: SignedPoll,
        now_us: u64,
        trusted: impl Fn(&[u8; 32]) -> bool,
    ) -> Result<bool, PollError> {
        let id = poll.poll.id();
        if self.get(&id).is_some() {
            return Ok(false);
        }
        if poll.poll.opened_us > now_us.saturating_add(CLOCK_SKEW_US) {
            return Err(PollError::Future);
        }
        let author = poll.poll.author;
        let open = self.polls.iter().filter(|held| held.poll.poll.author == author && held.poll.poll.open_at(now_us));
        if poll.poll.open_at(now_us) && open.count() >= MAX_OPEN_PER_KEY {
            return Err(PollError::TooManyOpen);
        }
        let arriving_open = poll.poll.open_at(now_us);
        let ballots = Ballots::new(poll)?;
        if self.polls.len() >= MAX_POLLS {
            // A poll closed already never pushes out another: else a free key could send
            // closed polls, each pushing out a room's past results.
            if !arriving_open {
                return Err(PollError::BookFull);
            }
            // Strangers' closed polls go first, then the one that closed first.
            let first_closed = self
                .polls
                .iter()
                .enumerate()
                .filter(|(_, held)| !held.poll.poll.open_at(now_us))
                .min_by_key(|(_, held)| (trusted(&held.poll.poll.author), held.poll.poll.closes_us))
                .map(|(at, _)| at);
            let newest_strangers = || {
                self.polls
                    .iter()
                    .enumerate()
                    .filter(|(_, held)| !trusted(&held.poll.poll.author))
                    .max_by_key(|(_, held)| held.poll.poll.opened_us)
                    .map(|(at, _)| at)
            };
            let room = first_closed.or_else(|| if trusted(&author) { newest_strangers() } else { None });
            let Some(at) = room else { return Err(PollError::BookFull) };
            self.polls.remove(at);
        }
        let at = self.polls.partition_point(|held| held.poll.poll.opened_us <= ballots.poll.poll.opened_us);
        self.polls.insert(at, ballots);
        Ok(true)
    }

    /// Takes a ballot said by `from` (see the module's documentation), our clock reading
    /// `now_us`; whether a count changed.
    pub fn take_ballot(&mut self, ballot: Ballot, from: &[u8; 32], now_us: u64) -> Result<bool, PollError> {
        let ballots = self.polls.iter_mut().find(|held| held.id() == ballot.poll).ok_or(PollError::Unknown)?;
        let poll = &ballots.poll.poll;
        let arrival = if *from == ballot.voter {
            Arrival::Live { now_us }
        } else if *from == poll.author || poll.open_at(now_us) {
            Arrival::Kept
        } else {
            return Err(PollError::NotRelayed);
        };
        ballots.take(ballot, arrival)
    }

    /// The book as it is kept on disk.
    pub fn to_kept(&self) -> Kept {
        self.polls.iter().map(|ballots| (ballots.poll.clone(), ballots.ballots().cloned().collect())).collect()
    }

    /// A book read back from disk: every poll and ballot checked again (taken as dated), those
    /// that fail left out. How many were left out.
    pub fn from_kept(kept: Kept) -> (Self, usize) {
        let mut book = PollBook::default();
        let mut dropped = 0usize;
        for (poll, ballots) in kept.into_iter().take(MAX_POLLS) {
            let Ok(mut held) = Ballots::new(poll) else {
                dropped = dropped.saturating_add(1);
                continue;
            };
            for ballot in ballots {
                if held.take(ballot, Arrival::Kept).is_err() {
                    dropped = dropped.saturating_add(1);
                }
            }
            if book.get(&held.id()).is_none() {
                let at = book.polls.partition_point(|other| other.poll.poll.opened_us <= held.poll.poll.opened_us);
                book.polls.insert(at, held);
            }
        }
        (book, dropped)
    }
}

#[cfg(test)]
mod tests {
    use iroh::SecretKey;

    use super::*;
    use crate::poll::Poll;

    const MINUTE: u64 = 60 * 1_000_000;
    const NOW: u64 = 1_000 * MINUTE;

    fn secret(seed: u8) -> SecretKey {
        SecretKey::from_bytes(&[seed; 32])
    }

    fn nobody(_: &[u8; 32]) -> bool {
        false
    }

    fn poll(author: u8, question: &str, opened: u64, minutes: u64) -> SignedPoll {
        let poll = Poll {
            author: [0; 32],
            opened_us: opened,
            closes_us: opened + minutes * MINUTE,
            question: question.into(),
            options: vec!["Yes".into(), "No".into()],
        };
        SignedPoll::new(&secret(author), poll).expect("a good poll")
    }

    #[test]
    fn a_key_opens_two_polls_at_once_and_a_full_room_makes_room_from_closed_ones_or_strangers() {
        let mut book = PollBook::default();
        assert_eq!(book.take_poll(poll(1, "One?", NOW, 10), NOW, nobody), Ok(true));
        assert_eq!(book.take_poll(poll(1, "One?", NOW, 10), NOW, nobody), Ok(false), "the same poll twice is one");
        assert_eq!(book.take_poll(poll(1, "Two?", NOW, 10), NOW, nobody), Ok(true));
        assert_eq!(book.take_poll(poll(1, "Three?", NOW, 10), NOW, nobody), Err(PollError::TooManyOpen));
        assert_eq!(book.take_poll(poll(1, "Later?", NOW + 10 * MINUTE, 10), NOW, nobody), Err(PollError::Future));
        // Once one has closed, its author may open another.
        assert_eq!(book.take_poll(poll(1, "Three?", NOW + 11 * MINUTE, 10), NOW + 11 * MINUTE, nobody), Ok(true));

        // The room fills: 13 more from others, the first two of which close early.
        let mut book = PollBook::default();
        for seed in 0..MAX_POLLS as u8 {
            let minutes = if seed < 2 { 1 } else { 60 };
            assert_eq!(book.take_poll(poll(seed + 10, "Q?", NOW + u64::from(seed), minutes), NOW, nobody), Ok(true));
        }
        let later = NOW + 2 * MINUTE;
        assert_eq!(book.take_poll(poll(50, "Q?", later, 60), later, nobody), Ok(true), "the first closed makes room");
        assert_eq!(book.take_poll(poll(51, "Q?", later, 60), later, nobody), Ok(true));
        assert_eq!(book.take_poll(poll(52, "Q?", later, 60), later, nobody), Err(PollError::BookFull));
        assert_eq!(book.polls().len(), MAX_POLLS);
        // A poll that has closed already makes no room for itself.
        assert_eq!(book.take_poll(poll(53, "Old?", NOW, 1), later, nobody), Err(PollError::BookFull));
        // Every poll open, all by strangers: a friend's poll pushes out the newest stranger's.
        let friend = *secret(60).public().as_bytes();
        let friends = |key: &[u8; 32]| *key == friend;
        let newest = book.polls().last().map(|held| held.id());
        assert_eq!(book.take_poll(poll(60, "Friend?", later + 1, 60), later + 1, friends), Ok(true));
        assert!(book.polls().iter().all(|held| Some(held.id()) != newest), "the newest stranger's went");
        assert_eq!(book.take_poll(poll(61, "Q?", later + 2, 60), later + 2, friends), Err(PollError::BookFull));
        assert_eq!(book.polls().len(), MAX_POLLS);
        assert!(book.polls().windows(2).all(|pair| pair[0].poll.poll.opened_us <= pair[1].poll.poll.opened_us));
    }

    #[test]
    fn strangers_closed_polls_make_room_before_friends_past_results() {
        let friend = *secret(60).public().as_bytes();
        let friends = |key: &[u8; 32]| *key == friend;
        let mut book = PollBook::default();
        // A friend's poll closed first; a stranger's closed later; the rest stay open.
        assert_eq!(book.take_poll(poll(60, "Results?", NOW, 1), NOW, friends), Ok(true));
        assert_eq!(book.take_poll(poll(70, "Spam?", NOW, 2), NOW, friends), Ok(true));
        for seed in 0..(MAX_POLLS - 2) as u8 {
            assert_eq!(book.take_poll(poll(seed + 10, "Q?", NOW, 60), NOW, friends), Ok(true));
        }
        let later = NOW + 3 * MINUTE;
        assert_eq!(book.take_poll(poll(80, "New?", later, 60), later, friends), Ok(true));
        let questions: Vec<&str> = book.polls().iter().map(|held| held.poll.poll.question.as_str()).collect();
        assert!(questions.contains(&"Results?") && !questions.contains(&"Spam?"), "{questions:?}");
    }

    #[test]
    fn only_the_author_passes_on_ballots_after_the_close() {
        let mut book = PollBook::default();
        let signed = poll(1, "Lunch?", NOW, 10);
        let (id, author) = (signed.poll.id(), signed.poll.author);
        book.take_poll(signed.clone(), NOW, nobody).expect("opens");
        let vote =
            |seed: u8, choice: u8, at: u64| Ballot::cast(&secret(seed), &signed.poll, choice, at).expect("casts");
        let cy = *secret(3).public().as_bytes();
        // Bo votes himself; Cy passes on Dee's vote while the poll is open.
        let bo = vote(2, 0, NOW + MINUTE);
        assert_eq!(book.take_ballot(bo.clone(), &bo.voter, NOW + MINUTE), Ok(true));
        assert_eq!(book.take_ballot(vote(4, 1, NOW + MINUTE), &cy, NOW + 2 * MINUTE), Ok(true));
        // Once closed, Cy may not pass on Eve's vote dated before the close; the author may.
        let eve = vote(5, 1, NOW + 9 * MINUTE);
        assert_eq!(book.take_ballot(eve.clone(), &cy, NOW + 11 * MINUTE), Err(PollError::NotRelayed));
        assert_eq!(book.take_ballot(eve, &author, NOW + 11 * MINUTE), Ok(true));
        // Eve herself, dating a vote before the close an hour after it, is refused.
        let late = vote(5, 0, NOW + 9 * MINUTE);
        assert_eq!(book.take_ballot(late.clone(), &late.voter, NOW + 70 * MINUTE), Err(PollError::Stale));
        // A ballot for a poll not held.
        let other = Ballot { poll: [7; 32], ..bo };
        assert_eq!(book.take_ballot(other, &cy, NOW), Err(PollError::Unknown));
        assert_eq!(book.get(&id).expect("held").tally(|_| true), vec![1, 2]);

        // Kept and read back, it is the same; a damaged ballot is left out and counted.
        let mut kept = book.to_kept();
        let (again, dropped) = PollBook::from_kept(kept.clone());
        assert_eq!((again, dropped), (book.clone(), 0));
        let bo_kept = kept[0].1.iter_mut().find(|ballot| ballot.choice == 0).expect("Bo's vote");
        bo_kept.choice = 1;
        let (again, dropped) = PollBook::from_kept(kept);
        assert_eq!(dropped, 1);
        assert_eq!(again.get(&id).expect("held").tally(|_| true), vec![0, 2]);
    }

    #[test]
    fn a_message_of_too_many_ballots_or_a_bad_poll_is_malformed() {
        let signed = poll(1, "Lunch?", NOW, 10);
        let ballot = Ballot::cast(&secret(2), &signed.poll, 0, NOW).expect("casts");
        assert!(MeetingMessage::Ballots(vec![ballot.clone(); MAX_BALLOTS_SAID]).check_shape().is_ok());
        assert!(MeetingMessage::Ballots(vec![ballot; MAX_BALLOTS_SAID + 1]).check_shape().is_err());
        assert!(MeetingMessage::Ballots(Vec::new()).check_shape().is_err());
        let mut bad = signed.clone();
        bad.poll.options.truncate(1);
        assert!(MeetingMessage::Poll(bad).check_shape().is_err());
        assert!(MeetingMessage::Poll(signed).check_shape().is_ok());
    }
}
