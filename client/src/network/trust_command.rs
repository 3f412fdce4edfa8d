//! `/trust`: the keyboard's way to say what one thinks of someone (the avatar menu is the
//! mouse's). `/trust` lists the people here, numbered, with where they stand; `/trust WHO LEVEL`
//! signs and publishes a statement, where WHO is a number from the list, the name of someone
//! here (or of someone one has a word with, online elsewhere) or a key (64 hex digits), and LEVEL is `friend`, `close`, `acquaintance`, `distrust` or
//! `forget` (takes back what was said); a last word `builder` makes it about their building.

use sanctuary_engine::trust::{TrustContext, TrustLevel};
use sanctuary_engine::{Op, PublicKey};
use sanctuary_net::Command;

use super::Social;

/// How to use it, when it was not.
pub(super) const USAGE: &str =
    "usage: /trust lists people here; /trust WHO friend|close|acquaintance|distrust|forget [builder]";

/// The people here, in the order `/trust` numbers them (by name, then key).
fn people_here(social: &Social) -> Vec<(PublicKey, String)> {
    let mut people: Vec<(PublicKey, String)> =
        social.crowd.iter().map(|(key, avatar)| (*key, avatar.name.clone())).collect();
    people.sort_by(|a, b| a.1.to_lowercase().cmp(&b.1.to_lowercase()).then(a.0.cmp(&b.0)));
    people
}

/// Whom `who` names: a number from the list, a name here (ignoring case), or a key.
pub(crate) fn find(social: &Social, who: &str) -> Result<PublicKey, String> {
    let people = people_here(social);
    if let Ok(at) = who.parse::<usize>() {
        return at
            .checked_sub(1)
            .and_then(|at| people.get(at))
            .map(|(key, _)| *key)
            .ok_or_else(|| format!("nobody numbered {who} here; /trust lists them"));
    }
    if let Ok(key) = who.parse::<PublicKey>() {
        return Ok(key);
    }
    let mut named: Vec<&(PublicKey, String)> =
        people.iter().filter(|(_, name)| name.eq_ignore_ascii_case(who)).collect();
    // Not here: someone one has a word with, online elsewhere (the friends list's names).
    let elsewhere: Vec<(PublicKey, String)> = social
        .whereabouts
        .iter()
        .filter(|seen| seen.name.eq_ignore_ascii_case(who))
        .map(|seen| (seen.key, seen.name.clone()))
        .collect();
    if named.is_empty() {
        named = elsewhere.iter().collect();
    }
    match named.as_slice() {
        [(key, _)] => Ok(*key),
        [] => Err(format!("nobody called {who} is here; /trust lists them")),
        _ => Err(format!("{} people here are called {who}: use their number from /trust", named.len())),
    }
}

/// What `/block WHO` does: WHO as for `/trust` (a number from its list, a name here or a key).
pub(super) fn block(social: &mut Social, who: &str) -> Option<Command> {
    if who.is_empty() {
        social.notice("usage: /block WHO (a number from /trust, a name here or a key); /unblock lists".into());
        return None;
    }
    match find(social, who) {
        Ok(key) if Some(key) == social.me => {
            social.notice("you cannot block yourself".into());
            None
        }
        Ok(key) => {
            let name = social.name_of(&key);
            social.notice(format!("{name} is blocked: you no longer see or hear them (/unblock undoes it)"));
            Some(Command::Block(key))
        }
        Err(why) => {
            social.notice(why);
            None
        }
    }
}

/// What `/trust` with `rest` does: a notice, and the statement to sign if there is one.
pub(super) fn trust(social: &mut Social, rest: &str) -> Option<Command> {
    let words: Vec<&str> = rest.split_whitespace().collect();
    if words.is_empty() {
        let people = people_here(social);
        if people.is_empty() {
            social.notice("nobody is here to trust; /trust KEY LEVEL works for anyone".into());
            return None;
        }
        let listed: Vec<String> = people
            .iter()
            .take(20)
            .enumerate()
            .map(|(at, (key, name))| format!("{}. {name} ({})", at + 1, crate::shields::trust_label(social, key).0))
            .collect();
        social.notice(format!("{}; {USAGE}", listed.join(", ")));
        return None;
    }
    let (who, level, context) = match words.as_slice() {
        [who, level] => (*who, *level, TrustContext::People),
        [who, level, "builder" | "builders"] => (*who, *level, TrustContext::Builders),
        _ => {
            social.notice(USAGE.into());
            return None;
        }
    };
    let level = match level.to_lowercase().as_str() {
        "friend" => Some(TrustLevel::Friend),
        "close" | "closefriend" | "close-friend" => Some(TrustLevel::CloseFriend),
        "acquaintance" | "know" => Some(TrustLevel::Acquaintance),
        "distrust" => Some(TrustLevel::Distrust),
        "forget" | "none" => None,
        _ => {
            social.notice(USAGE.into());
            return None;
        }
    };
    let subject = match find(social, who) {
        Ok(key) => key,
        Err(why) => {
            social.notice(why);
            return None;
        }
    };
    if Some(subject) == social.me {
        social.notice("what you think of yourself is yours to keep".into());
        return None;
    }
    let name = social.name_of(&subject);
    let said = match level {
        Some(level) => format!("you say {name} is {} (signed and published)", level.word()),
        None => format!("you take back what you said of {name}"),
    };
    social.notice(said);
    Some(Command::Build(Op::Trust { subject, context, level }))
}

#[cfg(test)]
mod tests {
    use bevy::math::{Quat, Vec3};
    use sanctuary_net::{PoseFrame, Presence, QuantisedTransform};

    use super::*;

    fn social_with(names: &[&str]) -> (Social, Vec<PublicKey>) {
        let mut social = Social::default();
        let at = QuantisedTransform::new(Vec3::new(1.0, 1.7, 2.0), Quat::IDENTITY);
        let pose = PoseFrame { head: at, left_hand: at, right_hand: at };
        let keys: Vec<PublicKey> = (0..names.len()).map(|n| PublicKey::from_secret_seed(&[n as u8 + 10; 32])).collect();
        for (key, name) in keys.iter().zip(names) {
            let presence = Presence { name: (*name).into(), colour: [1, 2, 3], pose };
            social.crowd.insert(*key, 1, &presence, 1);
        }
        (social, keys)
    }

    fn last_notice(social: &Social) -> String {
        social.chat.last().map(|entry| entry.text.clone()).unwrap_or_default()
    }

    #[test]
    fn people_are_named_by_number_name_or_key() {
        let (mut social, keys) = social_with(&["Cy", "bo"]);
        assert!(trust(&mut social, "").is_none());
        assert!(last_notice(&social).starts_with("1. bo (stranger), 2. Cy (stranger)"), "{}", last_notice(&social));
        let sent = trust(&mut social, "2 friend");
        assert!(
            matches!(sent, Some(Command::Build(Op::Trust { subject, level: Some(TrustLevel::Friend), context: TrustContext::People })) if subject == keys[0])
        );
        let sent = trust(&mut social, "BO distrust builder");
        assert!(
            matches!(sent, Some(Command::Build(Op::Trust { subject, level: Some(TrustLevel::Distrust), context: TrustContext::Builders })) if subject == keys[1])
        );
        let hex: String = keys[0].as_bytes().iter().map(|byte| format!("{byte:02x}")).collect();
        let sent = trust(&mut social, &format!("{hex} forget"));
        assert!(matches!(sent, Some(Command::Build(Op::Trust { level: None, .. }))));
    }

    #[test]
    fn block_takes_the_same_names() {
        let (mut social, keys) = social_with(&["Cy", "bo"]);
        assert!(matches!(block(&mut social, "cy"), Some(Command::Block(key)) if key == keys[0]));
        assert!(matches!(block(&mut social, "1"), Some(Command::Block(key)) if key == keys[1]));
        assert!(block(&mut social, "").is_none());
        assert!(block(&mut social, "Zed").is_none());
        social.me = Some(keys[0]);
        assert!(block(&mut social, "Cy").is_none(), "not oneself");
    }

    #[test]
    fn mistakes_get_a_notice_and_send_nothing() {
        let (mut social, _) = social_with(&["Bo", "bo"]);
        assert!(trust(&mut social, "3 friend").is_none());
        assert!(last_notice(&social).contains("nobody numbered 3"));
        assert!(trust(&mut social, "bo friend").is_none());
        assert!(last_notice(&social).contains("2 people here are called bo"));
        assert!(trust(&mut social, "1 adore").is_none());
        assert!(last_notice(&social).starts_with("usage"));
        assert!(trust(&mut social, "Dee friend").is_none());
        assert!(last_notice(&social).contains("nobody called Dee"));
        social.me = Some(PublicKey::from_secret_seed(&[10; 32]));
        assert!(trust(&mut social, "1 friend").is_none(), "not about oneself");
    }
}
