//! Going to a friend: `/goto WHO` (a name, a number from `/goto`'s list, or a key) moves the
//! person to the region a friend (or anyone they have a word with) is in, then, once the
//! friend's pose arrives, next to them. `/goto` alone lists who is online and where.

use std::time::Duration;

use bevy::prelude::*;
use sanctuary_engine::PublicKey;
use sanctuary_net::Whereabouts;

use crate::Frame;
use crate::network::{ChatInput, Social};
use crate::player::Player;
use crate::world::{CurrentRegion, EnterRegion};

/// How long a journey waits for the friend's pose in their region before giving up.
const ARRIVAL_WAIT: Duration = Duration::from_secs(15);
/// How far from the friend the person arrives, metres (outside their personal space).
const ARRIVAL_DISTANCE: f32 = 1.8;

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<Journey>().add_systems(
        Update,
        (start_journey.in_set(Frame::Input), arrive_next_to_friend.in_set(Frame::Animate))
            .run_if(resource_exists::<ChatInput>),
    );
}

/// A journey to someone: who, and until when their pose is waited for.
#[derive(Resource, Debug, Default)]
pub struct Journey(Option<(PublicKey, Duration)>);

/// The people online with a word either way, in the order `/goto` numbers them: friends first,
/// then by name.
pub fn online_in_order(social: &Social) -> Vec<&Whereabouts> {
    let mut online: Vec<&Whereabouts> = social.whereabouts.iter().collect();
    let friend = |key: &PublicKey| social.trust.as_ref().is_some_and(|view| view.is_friend(key));
    online.sort_by(|a, b| {
        friend(&b.key)
            .cmp(&friend(&a.key))
            .then(a.name.to_lowercase().cmp(&b.name.to_lowercase()))
            .then(a.key.cmp(&b.key))
    });
    online
}

/// Someone online as a list shows them: "Bo (city)".
pub fn online_text(seen: &Whereabouts) -> String {
    let regions: Vec<String> = seen.regions.iter().map(ToString::to_string).collect();
    format!("{} ({})", seen.name, regions.join(", "))
}

/// Whom `who` names among those online: a number, a name (ignoring case) or a key.
fn find<'a>(online: &[&'a Whereabouts], who: &str) -> Result<&'a Whereabouts, String> {
    if let Ok(at) = who.parse::<usize>() {
        return at
            .checked_sub(1)
            .and_then(|at| online.get(at))
            .copied()
            .ok_or_else(|| format!("nobody numbered {who}; /goto lists them"));
    }
    if let Ok(key) = who.parse::<PublicKey>() {
        return online.iter().find(|seen| seen.key == key).copied().ok_or_else(|| "they are not online".to_owned());
    }
    let named: Vec<&&Whereabouts> = online.iter().filter(|seen| seen.name.eq_ignore_ascii_case(who)).collect();
    match named.as_slice() {
        [seen] => Ok(**seen),
        [] => Err(format!("nobody called {who} is online among the people you have a word with; /goto lists them")),
        _ => Err(format!("{} people online are called {who}: use their number from /goto", named.len())),
    }
}

/// `/goto`: lists, or sets off (into their region, then next to them).
fn start_journey(
    mut input: ResMut<ChatInput>,
    mut social: ResMut<Social>,
    mut journey: ResMut<Journey>,
    mut enter: MessageWriter<EnterRegion>,
    region: Option<Res<CurrentRegion>>,
    time: Res<Time>,
) {
    let Some(who) = input.goto.take() else { return };
    let online = online_in_order(&social);
    if who.is_empty() {
        let listed: Vec<String> =
            online.iter().take(20).enumerate().map(|(at, seen)| format!("{}. {}", at + 1, online_text(seen))).collect();
        let notice = if listed.is_empty() {
            "none of the people you have a word with is online".to_owned()
        } else {
            format!("online: {}; /goto N goes to one", listed.join(", "))
        };
        social.notice(notice);
        return;
    }
    let found = find(&online, who.trim()).map(|seen| (seen.key, seen.name.clone(), seen.regions.first().copied()));
    match found {
        Ok((key, name, Some(target))) => {
            if region.as_ref().is_none_or(|region| region.id() != target) {
                enter.write(EnterRegion(target));
            }
            journey.0 = Some((key, time.elapsed() + ARRIVAL_WAIT));
            social.notice(format!("going to {name} in the {target}"));
        }
        Ok((_, name, None)) => social.notice(format!("{name} is online but in no region")),
        Err(why) => social.notice(why),
    }
}

/// Once the friend's pose is here, the person stands next to them, facing them.
fn arrive_next_to_friend(
    mut journey: ResMut<Journey>,
    mut social: ResMut<Social>,
    region: Option<Res<CurrentRegion>>,
    mut player: Query<(&mut Transform, &mut Player)>,
    time: Res<Time>,
) {
    let Some((key, until)) = journey.0 else { return };
    if time.elapsed() > until {
        journey.0 = None;
        let name = social.name_of(&key);
        social.notice(format!("{name} was not found where they said they were"));
        return;
    }
    let (Some(region), Some(pose)) = (region, social.crowd.get(&key).and_then(|avatar| avatar.latest())) else {
        return;
    };
    let Ok((mut transform, mut player)) = player.single_mut() else { return };
    let them = pose.head.position;
    let facing = (pose.head.rotation * Vec3::NEG_Z).with_y(0.0).normalize_or(Vec3::Z);
    let spot = region.layout.bounds.clamp(them + facing * ARRIVAL_DISTANCE);
    transform.translation = spot;
    player.last_position = spot;
    let towards = (them - spot).with_y(0.0);
    if towards.length_squared() > 1e-4 {
        player.yaw = towards.x.atan2(towards.z);
        transform.rotation = player.rotation();
    }
    journey.0 = None;
    let name = social.name_of(&key);
    social.notice(format!("you are next to {name}"));
}

#[cfg(test)]
mod tests {
    use sanctuary_engine::{RegionId, RoomKind};
    use sanctuary_net::{PoseFrame, Presence, QuantisedTransform};

    use super::*;
    use crate::testing::{logic_app, player_transform};

    #[test]
    fn goto_takes_the_person_into_the_friends_region_and_next_to_them() {
        let mut app = logic_app(RegionId::Lobby);
        app.update();
        let bo = PublicKey::from_secret_seed(&[2; 32]);
        let seen = Whereabouts { key: bo, name: "Bo".into(), regions: vec![RegionId::Room(RoomKind::Cinema)] };
        app.world_mut().resource_mut::<Social>().whereabouts = vec![seen];
        app.world_mut().resource_mut::<ChatInput>().goto = Some("nobody".into());
        app.update();
        let notices = |app: &App| app.world().resource::<Social>().chat.last().map(|entry| entry.text.clone());
        assert!(notices(&app).is_some_and(|text| text.contains("nobody called nobody")), "{:?}", notices(&app));
        app.world_mut().resource_mut::<ChatInput>().goto = Some("bo".into());
        app.update();
        app.update();
        assert_eq!(app.world().resource::<CurrentRegion>().id(), RegionId::Room(RoomKind::Cinema), "into Bo's region");

        // Bo's pose arrives: the person stands next to him, facing him.
        let them = app.world().resource::<CurrentRegion>().layout.spawn + Vec3::new(1.0, 0.0, 1.0);
        let at = QuantisedTransform::new(them, Quat::IDENTITY);
        let presence = Presence {
            name: "Bo".into(),
            colour: [1, 2, 3],
            pose: PoseFrame { head: at, left_hand: at, right_hand: at },
        };
        app.world_mut().resource_mut::<Social>().crowd.insert(bo, 1, &presence, 1);
        app.update();
        let eyes = player_transform(&mut app).translation;
        let apart = (eyes - them).with_y(0.0).length();
        assert!((apart - ARRIVAL_DISTANCE).abs() < 0.05, "{apart} m from Bo");
        assert!(notices(&app).is_some_and(|text| text.contains("next to Bo")));
        assert!(app.world().resource::<Journey>().0.is_none(), "the journey is over");
    }
}
