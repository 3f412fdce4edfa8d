//! The meeting room's polls in the client: what the node says of them (`Event::Polls`), the
//! chat's `/poll` (list, open, export) and `/vote`, the status line, and the panel (F11, or the
//! VR menu's Polls) with a button per option of the open polls and one to export each poll's
//! results. The panel opens by itself on entering the meeting room, as the room's board.
//!
//! Polls are numbered as the node lists them (the oldest first), in the chat and the panel
//! alike; options count from 1 where people type them.

use std::path::PathBuf;
use std::time::Duration;

use bevy::prelude::*;
use sanctuary_engine::{RegionId, RoomKind};
use sanctuary_net::poll::{MAX_OPEN, MAX_OPTIONS};
use sanctuary_net::{Command, Event, PollView};

use crate::Frame;
use crate::network::{ChatInput, NetLink, Social};
use crate::panels::{PanelAction, PanelContent, PanelPressed, PanelSlot, PanelSpec, Tone, opens_itself_in};
use crate::world::CurrentRegion;

const MEETING: RegionId = RegionId::Room(RoomKind::Meeting);
/// How long a poll stays open when `/poll` does not say.
const DEFAULT_OPEN: Duration = Duration::from_secs(3600);
/// The open polls the panel offers vote buttons for, at most (the newest).
const PANEL_VOTABLE: usize = 2;
/// The polls the panel offers an export button for, at most (the newest).
const PANEL_EXPORTS: usize = 4;

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<Meeting>().add_systems(
        Update,
        (
            (use_panel, poll_commands).chain().in_set(Frame::Input).run_if(resource_exists::<NetLink>),
            fill_panel.in_set(Frame::Present),
        ),
    );
}

/// The polls as the node last said, and the panel.
#[derive(Resource, Debug, Default)]
pub struct Meeting {
    /// Every poll held, the oldest first.
    pub polls: Vec<PollView>,
    /// The panel is open.
    pub panel_open: bool,
    opened_in: Option<RegionId>,
}

impl Meeting {
    /// Takes what the node says of the polls.
    pub fn take(&mut self, event: &Event) {
        if let Event::Polls(polls) = event {
            self.polls = polls.clone();
        }
    }

    /// The status line's part, in the meeting room: how many polls are open.
    pub fn status(&self) -> Option<String> {
        let open = self.polls.iter().filter(|view| view.open).count();
        (open > 0).then(|| format!("{open} poll{} open (F11, /poll)", if open == 1 { "" } else { "s" }))
    }
}

/// What `/poll` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollWord {
    /// List the polls.
    List,
    /// Open a poll.
    Open {
        /// The question.
        question: String,
        /// The options.
        options: Vec<String>,
        /// How long it stays open.
        open_for: Duration,
    },
    /// Write the results of poll `number` (from 1) as CSV, to the file given or one named
    /// after the poll in the Documents folder.
    Export {
        /// Which poll.
        number: usize,
        /// Where.
        to: Option<PathBuf>,
    },
}

const POLL_USAGE: &str =
    "usage: /poll QUESTION | OPTION | OPTION ... [| for 30m] opens a poll; /poll lists them; /poll export N [FILE]";

/// Reads what was typed after `/poll`.
pub fn poll_word(rest: &str) -> Result<PollWord, String> {
    let rest = rest.trim();
    if rest.is_empty() {
        return Ok(PollWord::List);
    }
    if let Some(export) = rest.strip_prefix("export") {
        let export = export.trim();
        let (number, to) = export.split_once(char::is_whitespace).unwrap_or((export, ""));
        let number = number.parse::<usize>().ok().filter(|number| *number >= 1).ok_or(POLL_USAGE)?;
        let to = to.trim();
        return Ok(PollWord::Export { number, to: (!to.is_empty()).then(|| PathBuf::from(to)) });
    }
    let mut parts: Vec<String> = rest.split('|').map(|part| part.trim().to_owned()).collect();
    let mut open_for = DEFAULT_OPEN;
    if let Some(last) = parts.last()
        && let Some(length) = last.strip_prefix("for ")
    {
        open_for = duration(length.trim())?;
        parts.pop();
    }
    if parts.len() < 3 || parts.len() > MAX_OPTIONS + 1 {
        return Err(format!("a poll is a question and 2 to {MAX_OPTIONS} options, between |; {POLL_USAGE}"));
    }
    let question = parts.remove(0);
    Ok(PollWord::Open { question, options: parts, open_for })
}

/// `30s`, `10m`, `2h` or `3d` (a number alone is minutes), at most a week.
fn duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text}: say how long as 30s, 10m, 2h or 3d (a week at most)");
    let (number, unit) = text.split_at(text.find(|letter: char| !letter.is_ascii_digit()).unwrap_or(text.len()));
    let number: u64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit.trim() {
        "s" => Some(number),
        "" | "m" | "min" => number.checked_mul(60),
        "h" => number.checked_mul(3600),
        "d" => number.checked_mul(86_400),
        _ => None,
    };
    let open_for = Duration::from_secs(seconds.filter(|seconds| *seconds > 0).ok_or_else(bad)?);
    if open_for > MAX_OPEN { Err(bad()) } else { Ok(open_for) }
}

/// The node command for `/vote`: `N OPTION` (poll N as listed; the option's number or the
/// start of its text), or `OPTION` alone when one poll is open.
pub fn vote_command(polls: &[PollView], rest: &str) -> Result<Command, String> {
    let usage = "usage: /vote N OPTION (poll N as /poll lists them; the option's number or its name)";
    let rest = rest.trim();
    let open: Vec<usize> = polls.iter().enumerate().filter(|(_, view)| view.open).map(|(at, _)| at).collect();
    let numbered = rest
        .split_once(char::is_whitespace)
        .and_then(|(number, option)| Some((number.parse::<usize>().ok()?, option.trim())));
    let (at, option) = match numbered {
        Some((number, option)) if number >= 1 && number <= polls.len() => (number - 1, option),
        Some((number, _)) => return Err(format!("there is no poll {number}; /poll lists them")),
        None => match open.as_slice() {
            [only] => (*only, rest),
            [] => return Err("no poll is open here; /poll QUESTION | A | B opens one".into()),
            _ => return Err(usage.into()),
        },
    };
    let view = &polls[at];
    if !view.open {
        return Err(format!("poll {} has closed", at + 1));
    }
    let choice = choice_in(&view.poll.options, option).ok_or_else(|| {
        let listed: Vec<String> =
            view.poll.options.iter().enumerate().map(|(at, option)| format!("{} {option}", at + 1)).collect();
        format!("{option:?} is not an option of poll {}: {}", at + 1, listed.join(", "))
    })?;
    Ok(Command::Vote { poll: view.id, choice })
}

/// The option `typed` names: its number (from 1), its text, or the start of only one option.
fn choice_in(options: &[String], typed: &str) -> Option<u8> {
    if typed.is_empty() {
        return None;
    }
    if let Ok(number) = typed.parse::<usize>() {
        return number.checked_sub(1).filter(|at| *at < options.len()).and_then(|at| u8::try_from(at).ok());
    }
    let typed = typed.to_lowercase();
    let exact = options.iter().position(|option| option.to_lowercase() == typed);
    let starting: Vec<usize> = options
        .iter()
        .enumerate()
        .filter(|(_, option)| option.to_lowercase().starts_with(&typed))
        .map(|(at, _)| at)
        .collect();
    let at = exact.or(if starting.len() == 1 { starting.first().copied() } else { None })?;
    u8::try_from(at).ok()
}

/// A poll as listed: its number, question, state and tally.
pub fn poll_line(number: usize, view: &PollView, now_us: u64) -> String {
    let state = if view.open {
        let minutes = view.poll.closes_us.saturating_sub(now_us).div_ceil(60_000_000);
        let left = match minutes {
            0..=90 => format!("{minutes} min"),
            91..=2880 => format!("{} h", minutes.div_ceil(60)),
            _ => format!("{} days", minutes.div_ceil(1440)),
        };
        format!("open, {left} left")
    } else {
        "closed".to_owned()
    };
    let counts: Vec<String> =
        view.poll.options.iter().zip(&view.tally).map(|(option, count)| format!("{option} {count}")).collect();
    let trusted = if view.trusted != view.tally {
        let counts: Vec<String> = view.trusted.iter().map(u32::to_string).collect();
        format!(" (those you trust: {})", counts.join(", "))
    } else {
        String::new()
    };
    let mine = view
        .mine
        .and_then(|choice| view.poll.options.get(usize::from(choice)))
        .map_or_else(String::new, |option| format!("; you chose {option}"));
    let voters = view.voters;
    format!("{number}. {} ({state}, {voters} voted): {}{trusted}{mine}", view.poll.question, counts.join(", "))
}

/// Where `/poll export N` writes when not told: the Documents folder (`XDG_DOCUMENTS_DIR`, else
/// `~/Documents`, else the home folder), a file named after the poll.
fn export_path(view: &PollView) -> PathBuf {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let folder = std::env::var_os("XDG_DOCUMENTS_DIR")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|home| home.join("Documents")).filter(|folder| folder.is_dir()))
        .or(home)
        .unwrap_or_else(|| PathBuf::from("."));
    let short: String = view.id.iter().take(4).map(|byte| format!("{byte:02x}")).collect();
    folder.join(format!("poll-{short}.csv"))
}

fn export(view: &PollView, to: Option<PathBuf>, social: &mut Social) -> Command {
    let to = to.unwrap_or_else(|| export_path(view));
    social.notice(format!("writing the results of \"{}\" to {}...", view.poll.question, to.display()));
    Command::ExportPoll { poll: view.id, to }
}

/// `/poll` and `/vote` from the chat box.
fn poll_commands(mut input: ResMut<ChatInput>, meeting: Res<Meeting>, mut social: ResMut<Social>, link: Res<NetLink>) {
    let Some((word, rest)) = input.poll.take() else { return };
    // What is sent, or else what is told in the chat (a list, or why not).
    let command = if word == "vote" {
        vote_command(&meeting.polls, &rest)
    } else {
        poll_word(&rest).and_then(|word| match word {
            PollWord::List => {
                let now = crate::network::now_micros();
                let lines: Vec<String> =
                    meeting.polls.iter().enumerate().map(|(at, view)| poll_line(at + 1, view, now)).collect();
                Err(if lines.is_empty() {
                    "no polls here; /poll QUESTION | A | B opens one (in the meeting room)".into()
                } else {
                    format!("polls: {}; /vote N OPTION votes", lines.join("; "))
                })
            }
            PollWord::Open { question, options, open_for } => Ok(Command::OpenPoll { question, options, open_for }),
            PollWord::Export { number, to } => match meeting.polls.get(number - 1) {
                Some(view) => Ok(export(view, to, &mut social)),
                None => Err(format!("there is no poll {number}; /poll lists them")),
            },
        })
    };
    match command {
        Ok(command) => {
            link.send(command);
        }
        Err(text) => social.notice(text),
    }
}

/// The panel: every poll with its tally, a button per option of the newest open polls, and
/// an export button for the newest polls.
pub fn meeting_spec(meeting: &Meeting, now_us: u64) -> PanelSpec {
    let mut spec = PanelSpec::new("MEETING ROOM (F11): polls and the whiteboard");
    if meeting.polls.is_empty() {
        spec.line(Tone::Plain, "No polls yet.");
    }
    for (at, view) in meeting.polls.iter().enumerate() {
        spec.line(if view.open { Tone::Good } else { Tone::Plain }, poll_line(at + 1, view, now_us));
    }
    spec.line(Tone::Hint, "/poll QUESTION | A | B [| for 30m] opens a poll");
    let newest_open = meeting.polls.iter().enumerate().rev().filter(|(_, view)| view.open).take(PANEL_VOTABLE);
    for (at, view) in newest_open {
        for (choice, option) in view.poll.options.iter().enumerate() {
            let label = format!("{}: {option}", at + 1);
            spec.button(label, PanelAction::PollVote(at as u8, choice as u8));
        }
    }
    for (at, _) in meeting.polls.iter().enumerate().rev().take(PANEL_EXPORTS) {
        spec.button(format!("Export {}", at + 1), PanelAction::PollExport(at as u8));
    }
    spec
}

/// F11, the VR menu's Polls and the panel's buttons; the panel opens by itself on entering the
/// meeting room.
fn use_panel(
    keys: Res<ButtonInput<KeyCode>>,
    input: Res<ChatInput>,
    mut pressed: MessageReader<PanelPressed>,
    mut meeting: ResMut<Meeting>,
    mut social: ResMut<Social>,
    region: Option<Res<CurrentRegion>>,
    link: Res<NetLink>,
) {
    let mut toggle = keys.just_pressed(KeyCode::F11) && !input.open;
    let here = region.as_ref().map(|region| region.id());
    if opens_itself_in(MEETING, here, &mut meeting.opened_in) {
        meeting.panel_open = true;
    }
    let mut commands = Vec::new();
    for PanelPressed(action) in pressed.read() {
        match *action {
            PanelAction::TogglePolls => toggle = !toggle,
            PanelAction::PollVote(at, choice) if meeting.panel_open => {
                if let Some(view) = meeting.polls.get(usize::from(at)).filter(|view| view.open) {
                    commands.push(Command::Vote { poll: view.id, choice });
                }
            }
            PanelAction::PollExport(at) if meeting.panel_open => {
                if let Some(view) = meeting.polls.get(usize::from(at)) {
                    commands.push(export(view, None, &mut social));
                }
            }
            _ => {}
        }
    }
    if toggle {
        meeting.panel_open = !meeting.panel_open;
    }
    for command in commands {
        link.send(command);
    }
}

fn fill_panel(
    meeting: Res<Meeting>,
    board: Option<Res<crate::whiteboard::Whiteboard>>,
    mut panels: Query<(&PanelSlot, &mut PanelContent)>,
) {
    for (slot, mut content) in &mut panels {
        if *slot != PanelSlot::Polls {
            continue;
        }
        let spec = meeting.panel_open.then(|| {
            let mut spec = meeting_spec(&meeting, crate::network::now_micros());
            if let Some(board) = &board {
                crate::whiteboard::panel_part(board, &mut spec);
            }
            spec
        });
        if content.0 != spec {
            content.0 = spec;
        }
    }
}

#[cfg(test)]
mod tests {
    use sanctuary_net::poll::Poll;

    use super::*;

    const MINUTE: u64 = 60_000_000;

    fn view(seed: u8, open: bool, tally: Vec<u32>) -> PollView {
        let options: Vec<String> =
            ["Noodles", "Tacos", "Tapas"].iter().take(tally.len()).map(|o| o.to_string()).collect();
        PollView {
            id: [seed; 32],
            poll: Poll {
                author: [1; 32],
                opened_us: 0,
                closes_us: 30 * MINUTE,
                question: format!("Lunch {seed}?"),
                options,
            },
            trusted: tally.clone(),
            voters: tally.iter().sum::<u32>() as usize,
            tally,
            mine: None,
            open,
        }
    }

    #[test]
    fn poll_words_are_read_from_what_was_typed() {
        assert_eq!(poll_word(""), Ok(PollWord::List));
        assert_eq!(
            poll_word("Where do we eat? | Noodles | Tacos | for 30m"),
            Ok(PollWord::Open {
                question: "Where do we eat?".into(),
                options: vec!["Noodles".into(), "Tacos".into()],
                open_for: Duration::from_secs(1800),
            })
        );
        assert!(matches!(poll_word("Q | A | B"), Ok(PollWord::Open { open_for, .. }) if open_for == DEFAULT_OPEN));
        assert_eq!(poll_word("export 2"), Ok(PollWord::Export { number: 2, to: None }));
        assert_eq!(
            poll_word("export 1 /tmp/my results.csv"),
            Ok(PollWord::Export { number: 1, to: Some(PathBuf::from("/tmp/my results.csv")) })
        );
        for wrong in
            ["Q | only one", "Q", "Q | A | B | for ever", "Q | A | B | for 8d", "export", "export 0", "Q|A|B|for 0m"]
        {
            assert!(poll_word(wrong).is_err(), "{wrong:?} was read");
        }
        let nine = format!("Q{}", " | x".repeat(MAX_OPTIONS + 1));
        assert!(poll_word(&nine).is_err(), "more than {MAX_OPTIONS} options");
    }

    #[test]
    fn a_vote_names_its_poll_and_option_by_number_or_text() {
        let polls = vec![view(1, false, vec![1, 0]), view(2, true, vec![0, 2, 1])];
        let voted = |typed: &str| match vote_command(&polls, typed) {
            Ok(Command::Vote { poll, choice }) => Some((poll[0], choice)),
            _ => None,
        };
        assert_eq!(voted("2 tac"), Some((2, 1)));
        assert_eq!(voted("2 3"), Some((2, 2)));
        assert_eq!(voted("noodles"), Some((2, 0)), "one is open");
        assert!(vote_command(&polls, "2 ta").is_err_and(|text| text.contains("1 Noodles")), "ambiguous");
        assert!(vote_command(&polls, "1 noodles").is_err_and(|text| text.contains("closed")));
        assert!(vote_command(&polls, "3 noodles").is_err_and(|text| text.contains("no poll 3")));
        assert!(vote_command(&polls, "2 4").is_err());
        assert!(vote_command(&polls[..1], "noodles").is_err_and(|text| text.contains("no poll is open")));
    }

    #[test]
    fn the_panel_lists_the_polls_and_offers_votes_on_the_open_ones() {
        let mut meeting = Meeting::default();
        let mut open = view(2, true, vec![1, 2, 0]);
        open.mine = Some(1);
        open.trusted = vec![0, 1, 0];
        meeting.take(&Event::Polls(vec![view(1, false, vec![1, 0]), open]));
        let spec = meeting_spec(&meeting, 10 * MINUTE);
        let text = spec.text();
        assert!(text.contains("1. Lunch 1? (closed, 1 voted): Noodles 1, Tacos 0"), "{text}");
        assert!(text.contains("2. Lunch 2? (open, 20 min left, 3 voted)"), "{text}");
        let mut long = view(3, true, vec![0, 0]);
        long.poll.closes_us = 3 * 24 * 60 * MINUTE;
        assert!(poll_line(3, &long, 0).contains("open, 3 days left"));
        long.poll.closes_us = 24 * 60 * MINUTE - 5 * MINUTE;
        assert!(poll_line(3, &long, 0).contains("open, 24 h left"));
        assert!(text.contains("(those you trust: 0, 1, 0); you chose Tacos"), "{text}");
        for action in [PanelAction::PollVote(1, 0), PanelAction::PollVote(1, 2), PanelAction::PollExport(0)] {
            assert!(spec.offers(action), "{action:?} is not offered:\n{text}");
        }
        assert!(!spec.offers(PanelAction::PollVote(0, 0)), "no votes on a closed poll");
        assert_eq!(meeting.status().as_deref(), Some("1 poll open (F11, /poll)"));
    }
}
