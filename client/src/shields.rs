//! Trust and shields as the person sees them: the word and colour beside each name, others'
//! bodies drawn plain below the avatar shield and faded inside the personal space, strangers'
//! voices turned down, and the shields panel (F6) with the friends list.

use bevy::prelude::*;
use sanctuary_engine::PublicKey;
use sanctuary_engine::shields::{Category, Reach, Shields};
use sanctuary_engine::trust::{Standing, TrustLevel};
use sanctuary_net::Command;

use crate::Frame;
use crate::bodies::{AvatarBody, AvatarHead};
use crate::network::{ChatInput, NetLink, RemoteAvatarView, Social};
use crate::panels::{PanelAction, PanelContent, PanelPressed, PanelSlot, PanelSpec, Tone};
use crate::player::Player;

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<ShieldsPanel>().add_systems(
        Update,
        (
            use_panel.in_set(Frame::Input).run_if(resource_exists::<NetLink>),
            (shield_avatars, shield_voices, fill_panel).in_set(Frame::Present),
        ),
    );
}

/// Whether the shields panel is open.
#[derive(Resource, Debug, Default)]
pub struct ShieldsPanel {
    /// Open (F6).
    pub open: bool,
}

/// The word beside a name, and the colour of the name: red for distrust, grey for a stranger,
/// blue for someone known through others, greens for those the person trusts, gold for a
/// friendship both sides said.
pub fn trust_label(social: &Social, key: &PublicKey) -> (String, Color) {
    let friend = social.trust.as_ref().is_some_and(|view| view.is_friend(key));
    match social.standing(key) {
        _ if friend => ("friend".to_owned(), Color::srgb(1.0, 0.84, 0.35)),
        Standing::Distrusted => ("distrusted".to_owned(), Color::srgb(1.0, 0.35, 0.35)),
        Standing::Stranger => ("stranger".to_owned(), Color::srgb(0.75, 0.75, 0.78)),
        Standing::Known => ("known".to_owned(), Color::srgb(0.55, 0.8, 1.0)),
        Standing::Trusted(TrustLevel::Distrust) => ("distrusted".to_owned(), Color::srgb(1.0, 0.35, 0.35)),
        Standing::Trusted(TrustLevel::Acquaintance) => ("acquaintance".to_owned(), Color::srgb(0.6, 0.95, 0.7)),
        Standing::Trusted(level) => (format!("{} (asked)", level.word()), Color::srgb(0.45, 1.0, 0.5)),
        Standing::Me => ("you".to_owned(), Color::WHITE),
    }
}

/// The look of one remote avatar as dressed, kept to put back.
#[derive(Component, Debug, Clone)]
struct Dressed {
    body: Handle<StandardMaterial>,
    head: Handle<StandardMaterial>,
}

/// The materials shields draw with.
#[derive(Debug)]
struct ShieldLooks {
    plain: Handle<StandardMaterial>,
    ghost: Handle<StandardMaterial>,
}

/// Bodies below the avatar shield are drawn plain grey; anyone the closeness shield does not
/// let close fades to a ghost inside the personal space.
#[allow(clippy::type_complexity)]
fn shield_avatars(
    mut commands: Commands,
    social: Res<Social>,
    player: Query<&GlobalTransform, With<Player>>,
    avatars: Query<(Entity, &RemoteAvatarView, &GlobalTransform, &Children, Option<&Dressed>)>,
    mut bodies: Query<&mut MeshMaterial3d<StandardMaterial>, (With<AvatarBody>, Without<AvatarHead>)>,
    mut heads: Query<&mut MeshMaterial3d<StandardMaterial>, (With<AvatarHead>, Without<AvatarBody>)>,
    mut materials: ResMut<Assets<StandardMaterial>>,
    mut looks: Local<Option<ShieldLooks>>,
) {
    let Ok(eye) = player.single() else { return };
    let looks = looks.get_or_insert_with(|| ShieldLooks {
        plain: materials.add(StandardMaterial {
            base_color: Color::srgb(0.5, 0.5, 0.55),
            perceptual_roughness: 0.9,
            ..default()
        }),
        ghost: materials.add(StandardMaterial {
            base_color: Color::srgba(0.8, 0.85, 1.0, 0.12),
            alpha_mode: AlphaMode::Blend,
            unlit: true,
            ..default()
        }),
    });
    for (entity, avatar, at, children, dressed) in &avatars {
        let Some(dressed) = dressed else {
            // Remember the look the scenery gave them, once it has.
            let body = children.iter().find_map(|child| bodies.get(child).ok().map(|material| material.0.clone()));
            let head = children.iter().find_map(|child| heads.get(child).ok().map(|material| material.0.clone()));
            if let (Some(body), Some(head)) = (body, head) {
                commands.entity(entity).insert(Dressed { body, head });
            }
            continue;
        };
        let standing = social.standing(&avatar.key);
        let distance = at.translation().distance(eye.translation());
        let ghost = social.shields.closeness_alpha(standing, distance) < 1.0;
        let plain = !social.shields.admits(Category::Avatar, standing);
        let body = if ghost {
            &looks.ghost
        } else if plain {
            &looks.plain
        } else {
            &dressed.body
        };
        let head = if ghost { &looks.ghost } else { &dressed.head };
        for child in children.iter() {
            if let Ok(mut material) = bodies.get_mut(child)
                && material.0 != *body
            {
                material.0 = body.clone();
            }
            if let Ok(mut material) = heads.get_mut(child)
                && material.0 != *head
            {
                material.0 = head.clone();
            }
        }
    }
}

/// Voices below the voice shield play quietly (distrusted ones not at all).
fn shield_voices(
    social: Res<Social>,
    avatars: Query<&RemoteAvatarView>,
    voice: Option<ResMut<crate::voice::VoiceState>>,
) {
    let Some(mut voice) = voice else { return };
    for avatar in &avatars {
        let factor = social.shields.voice_volume(social.standing(&avatar.key));
        voice.set_shield_factor(avatar.key, factor);
    }
}

/// F6 (or the VR menu's Shields) opens and closes the panel; its buttons move a shield to its
/// next reach.
fn use_panel(
    keys: Res<ButtonInput<KeyCode>>,
    input: Res<ChatInput>,
    mut pressed: MessageReader<PanelPressed>,
    mut panel: ResMut<ShieldsPanel>,
    mut social: ResMut<Social>,
    link: Res<NetLink>,
) {
    if keys.just_pressed(KeyCode::F6) && !input.open {
        panel.open = !panel.open;
    }
    for PanelPressed(action) in pressed.read() {
        match action {
            PanelAction::ToggleShields => panel.open = !panel.open,
            PanelAction::CycleShield(category) if panel.open => {
                let mut shields = social.shields;
                shields.set(*category, next_reach(shields.reach(*category)));
                social.shields = shields;
                link.send(Command::Shields(shields));
            }
            _ => {}
        }
    }
}

/// The reach after `reach`, round again after the strictest.
fn next_reach(reach: Reach) -> Reach {
    let at = Reach::ALL.iter().position(|candidate| *candidate == reach).unwrap_or(0);
    Reach::ALL[(at + 1) % Reach::ALL.len()]
}

/// What a row says: the category, who gets through, and what happens to the others.
fn row_text(shields: &Shields, category: Category) -> String {
    let reach = shields.reach(category);
    let others = match category {
        Category::Voice => format!("others at {:.0} %", shields.quiet_volume * 100.0),
        Category::Avatar => "others drawn plain".to_owned(),
        Category::Chat => "others hidden".to_owned(),
        Category::Direct => "others refused, and told".to_owned(),
        Category::Builds => "others' models as boxes".to_owned(),
        Category::Closeness => "others fade within 1 m".to_owned(),
        Category::Agents => "others' agents hidden".to_owned(),
    };
    if category == Category::Agents && reach == Reach::Nobody {
        format!("{}: all hidden (but my own)", category.label())
    } else if reach == Reach::Everyone && category != Category::Closeness {
        format!("{}: everyone (but the distrusted)", category.label())
    } else {
        format!("{}: {} ({others})", category.label(), reach.label())
    }
}

/// A button's label: the category, short.
fn button_label(category: Category) -> &'static str {
    match category {
        Category::Voice => "Voice",
        Category::Avatar => "Avatars",
        Category::Chat => "Chat",
        Category::Direct => "Messages",
        Category::Builds => "Builds",
        Category::Closeness => "Closeness",
        Category::Agents => "AI agents",
    }
}

/// Names shown in each of the friends lines before the rest are counted.
const LISTED: usize = 8;

/// The friends lines: friendships both sides said, requests waiting, and words not answered.
fn friends_lines(social: &Social) -> Vec<(Tone, String)> {
    let Some(view) = social.trust.as_ref() else { return vec![(Tone::Hint, "trust: working it out...".to_owned())] };
    let name = |key: &PublicKey| {
        let here = social.crowd.get(key).map(|avatar| format!("{} (here)", avatar.name));
        let online = || social.whereabouts.iter().find(|seen| seen.key == *key).map(crate::friends::online_text);
        here.or_else(online).unwrap_or_else(|| format!("{} (offline)", key.short()))
    };
    // The first few names of each list, then a count: a crowd of keys asking fills no panel.
    let list = |keys: Vec<PublicKey>| {
        let mut names: Vec<String> = keys.iter().take(LISTED).map(name).collect();
        if keys.len() > LISTED {
            names.push(format!("and {} more", keys.len() - LISTED));
        }
        if names.is_empty() { "none".to_owned() } else { names.join(", ") }
    };
    let requests = view.requests();
    let asking = if requests.is_empty() { Tone::Plain } else { Tone::Warn };
    vec![
        (
            Tone::Good,
            format!("Friends: {}", list(view.mine.keys().filter(|key| view.is_friend(key)).copied().collect())),
        ),
        (asking, format!("Asking you: {}", list(requests))),
        (Tone::Plain, format!("You asked: {}", list(view.pending()))),
        (Tone::Hint, "Click someone: Friend, Acquaintance, Distrust, Block | /goto NAME | /trust".to_owned()),
    ]
}

/// The shields panel, for the desktop overlay and the VR panel alike.
pub fn shields_spec(social: &Social) -> PanelSpec {
    let mut spec = PanelSpec::new("SHIELDS (F6): who gets through; a button moves its shield on");
    for category in Category::ALL {
        spec.line(Tone::Plain, row_text(&social.shields, category));
    }
    for (tone, line) in friends_lines(social) {
        spec.line(tone, line);
    }
    for category in Category::ALL {
        spec.button(button_label(category), PanelAction::CycleShield(category));
    }
    spec.button("Close", PanelAction::ToggleShields);
    spec
}

fn fill_panel(panel: Res<ShieldsPanel>, social: Res<Social>, mut panels: Query<(&PanelSlot, &mut PanelContent)>) {
    for (slot, mut content) in &mut panels {
        if *slot != PanelSlot::Shields {
            continue;
        }
        let spec = panel.open.then(|| shields_spec(&social));
        if content.0 != spec {
            content.0 = spec;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_cycle_through_every_reach_and_say_what_happens_to_the_others() {
        let mut reach = Reach::Everyone;
        let mut seen = Vec::new();
        for _ in 0..Reach::ALL.len() {
            seen.push(reach);
            reach = next_reach(reach);
        }
        assert_eq!(seen, Reach::ALL.to_vec());
        assert_eq!(reach, Reach::Everyone, "round again");
        let shields = Shields::default();
        assert_eq!(row_text(&shields, Category::Direct), "Private messages: people I know (others refused, and told)");
        assert_eq!(row_text(&shields, Category::Voice), "Voice: people I know (others at 30 %)");
        assert_eq!(row_text(&shields, Category::Chat), "Chat: everyone (but the distrusted)");
        assert_eq!(row_text(&shields, Category::Agents), "AI agents: everyone (but the distrusted)");
        let mut hidden = shields;
        hidden.set(Category::Agents, Reach::Nobody);
        assert_eq!(row_text(&hidden, Category::Agents), "AI agents: all hidden (but my own)");
        hidden.set(Category::Agents, Reach::Friends);
        assert_eq!(row_text(&hidden, Category::Agents), "AI agents: friends (others' agents hidden)");
        let spec = shields_spec(&Social::default());
        assert!(spec.offers(PanelAction::CycleShield(Category::Direct)) && spec.offers(PanelAction::ToggleShields));
        assert!(spec.lines.iter().any(|(_, line)| line.starts_with("Private messages: people I know")));
    }

    #[test]
    fn a_crowd_asking_is_counted_not_listed() {
        use sanctuary_engine::trust::{Statement, TrustContext, TrustGraph};
        let me = PublicKey::from_secret_seed(&[1; 32]);
        let mut graph = TrustGraph::new();
        for n in 0..20u8 {
            let author = PublicKey::from_secret_seed(&[n + 10; 32]);
            let level = Some(TrustLevel::Friend);
            graph
                .insert(Statement { author, subject: me, context: TrustContext::People, level, sequence: 1 })
                .expect("taken");
        }
        let view = sanctuary_net::TrustView::compute(&graph, &me);
        let social = Social { me: Some(me), trust: Some(std::sync::Arc::new(view)), ..Social::default() };
        let lines = friends_lines(&social);
        let asking = &lines[1].1;
        assert!(asking.ends_with("and 12 more"), "{asking}");
        assert_eq!(asking.matches("(offline)").count(), LISTED);
    }

    #[test]
    fn a_stranger_is_grey_and_says_so() {
        let social = Social::default();
        let (word, colour) = trust_label(&social, &PublicKey::from_secret_seed(&[4; 32]));
        assert_eq!(word, "stranger");
        assert_eq!(colour, Color::srgb(0.75, 0.75, 0.78));
    }
}
