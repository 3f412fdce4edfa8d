//! Private rooms in the client: `/invite WHO` and `/uninvite WHO` (for one's own room; WHO as
//! for `/trust`: a name here or of a friend online, or a key),
//! `/room` (who is invited, and whose rooms one may enter), `/room NAME` (go to their room,
//! when invited) and `/room mine`; what the node says of the rooms (`Event::Rooms`), and the
//! status line in the private room. The door itself is the node's: it enters a room only with
//! a key that admits us.

use bevy::prelude::*;
use sanctuary_engine::{PublicKey, RegionId, RoomKind};
use sanctuary_net::{Command, Event, RoomsView};

use crate::Frame;
use crate::network::{ChatInput, NetLink, Social, find_person};
use crate::world::{CurrentRegion, EnterRegion};

const PRIVATE: RegionId = RegionId::Room(RoomKind::Private);

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<Rooms>()
        .add_systems(Update, room_commands.in_set(Frame::Input).run_if(resource_exists::<NetLink>));
}

/// The private rooms as the node last said.
#[derive(Resource, Debug, Default)]
pub struct Rooms {
    /// Our room's members, the rooms we may enter, and whose room the private room is now.
    pub view: Option<RoomsView>,
}

impl Rooms {
    /// Takes what the node says of the rooms.
    pub fn take(&mut self, event: &Event) {
        if let Event::Rooms(view) = event {
            self.view = Some(view.clone());
        }
    }

    /// The status line's part in the private room: whose it is and who may come in.
    pub fn status(&self, social: &Social) -> Option<String> {
        let view = self.view.as_ref()?;
        Some(match view.visiting {
            Some(owner) => format!("{}'s room (only those invited come in)", social.name_of(&owner)),
            None if view.members.is_empty() => "your room, nobody invited (/invite NAME)".to_owned(),
            None => {
                let names: Vec<String> = view.members.iter().take(6).map(|key| social.name_of(key)).collect();
                let more = view.members.len().saturating_sub(6);
                let more = if more > 0 { format!(" and {more} more") } else { String::new() };
                format!("your room, open to {}{more}", names.join(", "))
            }
        })
    }
}

/// What `/room` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomWord {
    /// Say who is invited and whose rooms one may enter.
    List,
    /// Go to one's own room.
    Mine,
    /// Go to the room of the person named.
    Visit(String),
}

/// Reads what was typed after `/room`.
pub fn room_word(rest: &str) -> RoomWord {
    match rest.trim() {
        "" => RoomWord::List,
        "mine" | "me" | "my" | "own" => RoomWord::Mine,
        name => RoomWord::Visit(name.to_owned()),
    }
}

/// The owner of a room one may enter whose name (here, or among those whose whereabouts we
/// know) or key starts with `name`.
pub fn owner_named(view: &RoomsView, social: &Social, name: &str) -> Result<PublicKey, String> {
    let wanted = name.trim().to_lowercase();
    let named = |key: &PublicKey| {
        let mut names = vec![key.short().to_lowercase(), social.name_of(key).to_lowercase()];
        names.extend(social.whereabouts.iter().filter(|seen| seen.key == *key).map(|seen| seen.name.to_lowercase()));
        names
    };
    let found: Vec<(PublicKey, bool)> = view
        .invited_to
        .iter()
        .filter_map(|key| {
            let names = named(key);
            names.iter().any(|known| known.starts_with(&wanted)).then(|| (*key, names.contains(&wanted)))
        })
        .collect();
    match found.iter().find(|(_, exact)| *exact).or(found.first().filter(|_| found.len() == 1)) {
        Some((key, _)) if !wanted.is_empty() => Ok(*key),
        _ if found.len() > 1 => Err(format!("you are invited to several rooms of people called {name}; type more")),
        _ => Err(format!("you are not invited to a room of anyone called {name}; /room lists yours")),
    }
}

/// The list `/room` gives.
pub fn rooms_line(view: &RoomsView, social: &Social) -> String {
    let names = |keys: &[PublicKey]| keys.iter().map(|key| social.name_of(key)).collect::<Vec<_>>().join(", ");
    let members = if view.members.is_empty() { "nobody yet".to_owned() } else { names(&view.members) };
    let invited = if view.invited_to.is_empty() {
        "nobody's yet".to_owned()
    } else {
        format!("{} (/room NAME goes there)", names(&view.invited_to))
    };
    format!(
        "your private room is open to {members}; /invite NAME and /uninvite NAME change that. You may enter the rooms of {invited}; /room mine goes to yours"
    )
}

/// `/room`, `/invite` and `/uninvite` from the chat box.
fn room_commands(
    mut input: ResMut<ChatInput>,
    rooms: Res<Rooms>,
    mut social: ResMut<Social>,
    link: Res<NetLink>,
    region: Option<Res<CurrentRegion>>,
    mut enter: MessageWriter<EnterRegion>,
) {
    let Some((word, rest)) = input.room.take() else { return };
    let Some(view) = &rooms.view else {
        return social.notice("the private rooms are not ready yet".into());
    };
    let here = region.is_some_and(|region| region.id() == PRIVATE);
    let outcome = match word {
        "invite" | "uninvite" => {
            find_person(&social, rest.trim()).map_err(|problem| format!("{problem} (or give their key)")).map(|key| {
                let name = social.name_of(&key);
                if word == "invite" {
                    link.send(Command::Invite(key));
                    format!("{name} may come into your private room now; they were told")
                } else {
                    link.send(Command::Uninvite(key));
                    format!("{name} is out of your private room; the room has a new key they do not hold")
                }
            })
        }
        _ => match room_word(&rest) {
            RoomWord::List => Ok(rooms_line(view, &social)),
            RoomWord::Mine => {
                link.send(Command::Visit(None));
                if !here {
                    enter.write(EnterRegion(PRIVATE));
                }
                Ok("to your private room".into())
            }
            RoomWord::Visit(name) => owner_named(view, &social, &name).map(|owner| {
                link.send(Command::Visit(Some(owner)));
                if !here {
                    enter.write(EnterRegion(PRIVATE));
                }
                format!("to {}'s private room", social.name_of(&owner))
            }),
        },
    };
    match outcome {
        Ok(text) | Err(text) => social.notice(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> PublicKey {
        PublicKey::from_secret_seed(&[seed; 32])
    }

    #[test]
    fn room_words_and_owners_by_name_or_key() {
        assert_eq!(room_word(" "), RoomWord::List);
        assert_eq!(room_word("mine"), RoomWord::Mine);
        assert_eq!(room_word("Ada"), RoomWord::Visit("Ada".into()));
        let social = Social::default();
        let view = RoomsView { members: vec![], invited_to: vec![key(1), key(2)], visiting: None };
        let short = key(2).short();
        assert_eq!(owner_named(&view, &social, &short[..6]), Ok(key(2)));
        assert!(owner_named(&view, &social, "Zed").is_err());
        assert!(owner_named(&view, &social, "").is_err());
        assert!(rooms_line(&view, &social).contains("nobody yet"));
    }
}
