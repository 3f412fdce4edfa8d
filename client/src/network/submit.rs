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
