//! The chat box's text becomes what the node is sent: a line, a private message or a command
//! (see [`chat_command`]); lines that look like secrets are held back until confirmed.

use std::hash::{DefaultHasher, Hash, Hasher};

use sanctuary_engine::PublicKey;
use sanctuary_net::{Command, Profile, Ticket};

use super::{ChatInput, NetLink, Social};
use crate::chat_command::{self, ChatCommand};

/// Reads what was typed into the chat box and sends it: a line for the region, a private
/// message, or a command (see [`chat_command`]). Unknown commands and lines that look like
/// secrets are not sent; see [`submission`].
pub fn submit_chat(link: &NetLink, social: &mut Social, input: &mut ChatInput) {
    if let Some(command) = submission(social, input) {
        link.send(command);
    }
}

/// What the node is to be sent for the text in the chat box, if anything; notices, wallet
/// commands and the box itself are updated on the way.
///
/// An unknown command stays in the box, to be corrected, and goes nowhere. A line, message or
/// name that looks like a secret stays in the box with a notice that says why; Enter again on
/// the very same text (to the same person) sends it. Neither is ever echoed into the chat.
pub(super) fn submission(social: &mut Social, input: &mut ChatInput) -> Option<Command> {
    let typed = std::mem::take(&mut input.text);
    let command = chat_command::parse(&typed, input.to.is_some());
    if let Some(secret) = command.outgoing().and_then(chat_command::secret_in) {
        let fingerprint = fingerprint(typed.trim(), input.to.as_ref().map(|(key, _)| key));
        if input.held_back != Some(fingerprint) {
            input.held_back = Some(fingerprint);
            input.text = typed;
            social.notice(secret.notice());
            return None;
        }
    }
    input.held_back = None;
    if let ChatCommand::Unknown { command, suggestion } = &command {
        social.notice(chat_command::unknown_notice(command, *suggestion));
        input.text = typed;
        return None;
    }
    input.open = false;
    let to = input.to.take();
    match command {
        ChatCommand::Empty | ChatCommand::Unknown { .. } => None,
        ChatCommand::Say(text) => Some(Command::Chat(text)),
        ChatCommand::Private(text) => to.map(|(to, _)| Command::Direct { to, text }),
        ChatCommand::Join(ticket) => match ticket.parse::<Ticket>() {
            Ok(ticket) => Some(Command::Join(ticket)),
            Err(error) => {
                social.notice(error.to_string());
                None
            }
        },
        ChatCommand::Import(path) => {
            social.notice(format!("importing {path}..."));
            Some(Command::Import(path.into()))
        }
        ChatCommand::Name(name) => {
            let colour = social.profile.as_ref().map_or([120, 200, 255], |profile| profile.colour);
            let profile = Profile::new(&name, colour);
            if profile.name.is_empty() {
                social.notice("usage: /name YOUR NAME".into());
                return None;
            }
            social.profile = Some(profile.clone());
            Some(Command::Profile(profile))
        }
        ChatCommand::Wallet(line) => {
            input.wallet_commands.push(line);
            None
        }
        ChatCommand::Unblock(which) => unblock(social, which.trim()),
        ChatCommand::Trust(rest) => super::trust_command::trust(social, &rest),
        ChatCommand::LoadModels => {
            input.load_models_here = true;
            None
        }
        ChatCommand::Block(who) => super::trust_command::block(social, who.trim()),
        ChatCommand::GoTo(who) => {
            input.goto = Some(who);
            None
        }
        ChatCommand::Market(rest) => {
            input.market = Some(rest);
            None
        }
        ChatCommand::Avatar(arg) => match crate::avatars::wear_command(&arg, social.wearing) {
            Ok(command) => {
                if let Command::Wear(Some(path)) = &command {
                    social.notice(format!("putting on {}...", path.display()));
                }
                Some(command)
            }
            Err(text) => {
                social.notice(text);
                None
            }
        },
        ChatCommand::Play(path) => crate::cinema::share_command(std::path::Path::new(&path), social),
        ChatCommand::Screen(rest) => {
            use crate::cinema::ScreenWord;
            let give = |name: &str| {
                super::person_named(social, name)
                    .map(|key| Command::Screen(sanctuary_net::screen::ScreenAction::HandOver(*key.as_bytes())))
            };
            let command = match crate::cinema::screen_action(&rest) {
                Ok(ScreenWord::Action(action)) => Ok(Some(Command::Screen(action))),
                Ok(ScreenWord::Give(name)) => give(&name).map(Some),
                Ok(ScreenWord::Own) => {
                    input.own_view = true;
                    Ok(None)
                }
                Err(usage) => Err(usage),
            };
            command.unwrap_or_else(|problem| {
                social.notice(problem);
                None
            })
        }
        ChatCommand::Slides(rest) if crate::pdf_slides::is_pdf(std::path::Path::new(rest.trim())) => {
            input.pdf = Some(rest.trim().into());
            None
        }
        ChatCommand::Slides(rest) => crate::stage_command::present_told(&rest, social),
        ChatCommand::Stage(rest) => crate::stage_command::stage(social, &rest).unwrap_or_else(|problem| {
            social.notice(problem);
            None
        }),
        ChatCommand::Hand(rest) => match rest.trim() {
            "" | "up" => Some(Command::Hand(true)),
            "down" => Some(Command::Hand(false)),
            _ => {
                social.notice("usage: /hand (raise it) or /hand down".into());
                None
            }
        },
        ChatCommand::Poll(rest) => {
            input.poll = Some(("poll", rest));
            None
        }
        ChatCommand::Vote(rest) => {
            input.poll = Some(("vote", rest));
            None
        }
        ChatCommand::Board(rest) => {
            input.board = Some(rest);
            None
        }
        ChatCommand::Home(rest) => super::home_command::home(social, &rest),
        ChatCommand::Room(word, rest) => {
            input.room = Some((word, rest));
            None
        }
        ChatCommand::ShowAvatars(rank) => {
            input.show_avatars = Some(rank);
            None
        }
        ChatCommand::Audio(line) => {
            input.audio_commands.push(line);
            None
        }
        ChatCommand::Usage(usage) => {
            social.notice(usage.into());
            None
        }
    }
}

/// `/unblock` lists whom we block, numbered; `/unblock N` undoes the N-th.
pub(super) fn unblock(social: &mut Social, which: &str) -> Option<Command> {
    if social.blocked.is_empty() {
        social.notice("you block nobody".into());
        return None;
    }
    let listed = || {
        let keys: Vec<String> = social
            .blocked
            .iter()
            .take(20)
            .enumerate()
            .map(|(at, key)| format!("{}. {}", at + 1, key.short()))
            .collect();
        let more = social.blocked.len().saturating_sub(20);
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        format!("you block {}{more}; /unblock N undoes one", keys.join(", "))
    };
    if which.is_empty() {
        social.notice(listed());
        return None;
    }
    match which.parse::<usize>().ok().and_then(|at| at.checked_sub(1)).and_then(|at| social.blocked.get(at)) {
        Some(key) => {
            let key = *key;
            social.notice(format!("{} is unblocked", key.short()));
            Some(Command::Unblock(key))
        }
        None => {
            let notice = format!("no block numbered {which}: {}", listed());
            social.notice(notice);
            None
        }
    }
}

/// Names a held-back text and its recipient without keeping the text: it stays in memory only,
/// to tell whether Enter was pressed again on the same thing.
fn fingerprint(text: &str, to: Option<&PublicKey>) -> u64 {
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    to.map(PublicKey::as_bytes).hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sanctuary_net::Event;

    use crate::network::handle_event;

    /// A valid 24-word BIP39 phrase (from the BIP39 test vectors).
    const PHRASE: &str = "legal winner thank year wave sausage worth useful legal winner thank year wave sausage \
                          worth useful legal winner thank year wave sausage worth title";

    /// The chat box, open, with `text` typed, addressed to Bo when `private`.
    fn typed(text: &str, private: bool) -> ChatInput {
        let to = private.then(|| (PublicKey::from_secret_seed(&[2; 32]), "Bo".to_owned()));
        ChatInput { open: true, text: text.into(), to, ..ChatInput::default() }
    }

    /// Everything the chat panel would show, one line each.
    fn panel(social: &Social) -> String {
        social.chat.iter().map(|entry| format!("{}\n", entry.text)).collect()
    }

    #[test]
    fn a_crowd_calling_one_a_friend_makes_few_notices() {
        use sanctuary_engine::trust::{Statement, TrustContext, TrustGraph, TrustLevel};
        let me = PublicKey::from_secret_seed(&[1; 32]);
        let mut graph = TrustGraph::new();
        for n in 0..10u8 {
            let author = PublicKey::from_secret_seed(&[n + 10; 32]);
            let level = Some(TrustLevel::Friend);
            let statement = Statement { author, subject: me, context: TrustContext::People, level, sequence: 1 };
            graph.insert(statement).expect("taken");
        }
        let mut social = Social { me: Some(me), ..Social::default() };
        handle_event(&mut social, Event::Trust(std::sync::Arc::new(sanctuary_net::TrustView::compute(&graph, &me))));
        let notices: Vec<&str> = social.chat.iter().map(|entry| entry.text.as_str()).collect();
        assert_eq!(notices.len(), 4, "{notices:?}");
        assert!(notices[3].starts_with("and 7 more call you a friend"), "{notices:?}");
        // The same requests again say nothing new.
        handle_event(&mut social, Event::Trust(std::sync::Arc::new(sanctuary_net::TrustView::compute(&graph, &me))));
        assert_eq!(social.chat.len(), 4);
    }

    #[test]
    fn a_mistyped_wallet_command_is_neither_sent_nor_shown() {
        let mut social = Social::default();
        let secret = format!("/walet restore hunter2hunter2 {PHRASE}");
        let mut input = typed(&secret, false);
        let sent = submission(&mut social, &mut input);
        assert!(sent.is_none(), "an unknown command never leaves the machine: {sent:?}");
        assert!(input.wallet_commands.is_empty(), "nor does it reach the wallet misspelt");
        let shown = panel(&social);
        assert!(!shown.contains("hunter2hunter2") && !shown.contains("sausage"), "no secret on screen: {shown}");
        assert!(shown.contains("unknown command /walet") && shown.contains("/wallet"), "a notice with a hint: {shown}");
        // The same typo in a private message is no different.
        let mut input = typed(&secret, true);
        assert!(submission(&mut social, &mut input).is_none());
        assert!(!panel(&social).contains("hunter2hunter2"));
    }

    #[test]
    fn a_recovery_phrase_said_aloud_is_held_until_confirmed() {
        let mut social = Social::default();
        let mut input = typed(PHRASE, false);
        let sent = submission(&mut social, &mut input);
        assert!(sent.is_none(), "held back: {sent:?}");
        assert_eq!(input.text, PHRASE, "the text stays in the box, so Enter again can send it");
        assert!(input.open);
        let shown = panel(&social);
        assert!(!shown.contains("sausage"), "never echoed: {shown}");
        assert!(shown.contains("recovery phrase") && shown.contains("Enter again"), "says why and how: {shown}");
        // Enter again on the same text sends it, unchanged.
        let sent = submission(&mut social, &mut input);
        assert!(matches!(&sent, Some(Command::Chat(text)) if text == PHRASE), "confirmed: {sent:?}");
        assert!(!input.open && input.text.is_empty());
    }

    #[test]
    fn a_recovery_phrase_in_a_private_message_is_held_until_confirmed() {
        let mut social = Social::default();
        let mut input = typed(PHRASE, true);
        assert!(submission(&mut social, &mut input).is_none(), "held back");
        assert!(input.to.is_some(), "still addressed to Bo");
        assert!(!panel(&social).contains("sausage"));
        let sent = submission(&mut social, &mut input);
        assert!(
            matches!(&sent, Some(Command::Direct { to, text }) if text == PHRASE && *to == PublicKey::from_secret_seed(&[2; 32])),
            "confirmed: {sent:?}"
        );
    }

    #[test]
    fn a_changed_line_needs_its_own_confirmation() {
        let mut social = Social::default();
        let mut input = typed(PHRASE, false);
        assert!(submission(&mut social, &mut input).is_none());
        input.text.push_str(" zoo");
        assert!(submission(&mut social, &mut input).is_none(), "a different text is held again");
        // Cleared with Esc, then typed again from scratch: held again.
        input.held_back = None;
        input.text = PHRASE.to_owned();
        assert!(submission(&mut social, &mut input).is_none());
    }

    #[test]
    fn a_wallet_command_without_its_slash_is_held() {
        for line in ["wallet unlock correcthorse", "\\wallet restore correcthorse", "walet unlock correcthorse"] {
            let mut social = Social::default();
            let mut input = typed(line, false);
            assert!(submission(&mut social, &mut input).is_none(), "{line} is held back");
            let shown = panel(&social);
            assert!(!shown.contains("correcthorse") && shown.contains("passphrase"), "{shown}");
        }
    }

    #[test]
    fn ordinary_chat_is_sent_unchanged() {
        for line in [
            "the cat is on the table",
            "hello, is anyone around? the fountain in the lobby is lovely tonight",
            "I lost my wallet in the city",
            "https://example.com/a/b is a good page",
        ] {
            let mut social = Social::default();
            let sent = submission(&mut social, &mut typed(line, false));
            assert!(matches!(&sent, Some(Command::Chat(text)) if text == line), "{line}: {sent:?}");
            let sent = submission(&mut social, &mut typed(line, true));
            assert!(matches!(&sent, Some(Command::Direct { text, .. }) if text == line), "{line}: {sent:?}");
            assert!(social.chat.is_empty(), "no notice for an ordinary line");
        }
    }

    #[test]
    fn a_double_slash_sends_a_line_that_starts_with_a_slash() {
        let mut social = Social::default();
        let sent = submission(&mut social, &mut typed("//hello", false));
        assert!(matches!(&sent, Some(Command::Chat(text)) if text == "/hello"), "{sent:?}");
        let sent = submission(&mut social, &mut typed("//shrug", true));
        assert!(matches!(&sent, Some(Command::Direct { text, .. }) if text == "/shrug"), "{sent:?}");
    }

    #[test]
    fn commands_go_where_they_belong() {
        let mut social = Social::default();
        for line in ["/wallet unlock correcthorse", "/receive", "/sync", "/send tb1qxyz 1000", "/withdraw"] {
            let mut input = typed(line, false);
            assert!(submission(&mut social, &mut input).is_none(), "{line} is not sent");
            assert_eq!(input.wallet_commands, vec![line.to_owned()], "{line} goes to the wallet");
        }
        let sent = submission(&mut social, &mut typed("/name Ada Lovelace", false));
        assert!(matches!(&sent, Some(Command::Profile(profile)) if profile.name == "Ada Lovelace"), "{sent:?}");
        let sent = submission(&mut social, &mut typed("/import /tmp/chair.glb", true));
        assert!(matches!(&sent, Some(Command::Import(path)) if path.as_os_str() == "/tmp/chair.glb"), "{sent:?}");
        let sent = submission(&mut social, &mut typed("/join not-a-ticket", false));
        assert!(sent.is_none(), "a bad ticket is refused here: {sent:?}");
        // Commands are whole words: `/names` is not `/name`.
        let sent = submission(&mut social, &mut typed("/names", false));
        assert!(sent.is_none(), "{sent:?}");
        assert!(panel(&social).contains("unknown command /names"));
    }

    #[test]
    fn unblock_lists_and_undoes_by_number() {
        let mut social = Social::default();
        assert!(unblock(&mut social, "").is_none());
        assert!(social.chat.iter().any(|entry| entry.text == "you block nobody"));
        let (ada, bo) = (PublicKey::from_secret_seed(&[1; 32]), PublicKey::from_secret_seed(&[2; 32]));
        social.blocked = vec![ada, bo];
        assert!(unblock(&mut social, "").is_none(), "a list, no command");
        assert!(social.chat.iter().any(|entry| entry.text.contains(&format!("1. {}", ada.short()))));
        assert!(matches!(unblock(&mut social, "2"), Some(Command::Unblock(key)) if key == bo));
        assert!(unblock(&mut social, "3").is_none(), "no third");
        assert!(unblock(&mut social, "0").is_none());
        assert!(unblock(&mut social, "ada").is_none());
    }
}
