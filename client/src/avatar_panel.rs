//! The avatar picker (F7, or the VR menu's Avatars): wear one of the avatars that ship with
//! Sanctuary or a plain body, and choose up to which rank other people's avatars are shown as
//! they are. `/avatar PATH` wears one's own file, as the panel says.

use bevy::prelude::*;
use sanctuary_engine::avatar::{AvatarRef, Rank};
use sanctuary_net::Command;

use crate::Frame;
use crate::avatars::{Avatars, DEFAULT_AVATARS, wear_command};
use crate::network::{ChatInput, NetLink, Social};
use crate::panels::{PanelAction, PanelContent, PanelPressed, PanelSlot, PanelSpec, Tone};

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<AvatarPanel>().add_systems(
        Update,
        (use_panel.in_set(Frame::Input).run_if(resource_exists::<NetLink>), fill_panel.in_set(Frame::Present)),
    );
}

/// Whether the avatar picker is open.
#[derive(Resource, Debug, Default)]
pub struct AvatarPanel {
    /// Open (F7).
    pub open: bool,
}

/// F7 (or the VR menu's Avatars) opens and closes the picker; its buttons wear an avatar, take
/// it off, or move the rank shown on.
fn use_panel(
    keys: Res<ButtonInput<KeyCode>>,
    input: Res<ChatInput>,
    mut pressed: MessageReader<PanelPressed>,
    mut panel: ResMut<AvatarPanel>,
    mut avatars: ResMut<Avatars>,
    mut social: ResMut<Social>,
    link: Res<NetLink>,
) {
    if keys.just_pressed(KeyCode::F7) && !input.open {
        panel.open = !panel.open;
    }
    for PanelPressed(action) in pressed.read() {
        match action {
            PanelAction::ToggleAvatars => panel.open = !panel.open,
            PanelAction::WearShipped(index) if panel.open => {
                let Some((name, _)) = DEFAULT_AVATARS.get(usize::from(*index)) else { continue };
                match wear_command(name, social.wearing) {
                    Ok(command) => {
                        social.notice(format!("putting on {name}..."));
                        link.send(command);
                    }
                    Err(text) => social.notice(text),
                }
            }
            PanelAction::TakeOff if panel.open => {
                link.send(Command::Wear(None));
            }
            PanelAction::CycleShownRank if panel.open => {
                avatars.show_up_to = next_rank(avatars.show_up_to);
                social.notice(format!("avatars up to {} are shown as they are", avatars.show_up_to));
            }
            _ => {}
        }
    }
}

/// The rank after `rank`, round again after Very poor.
fn next_rank(rank: Rank) -> Rank {
    let at = Rank::ALL.iter().position(|candidate| *candidate == rank).unwrap_or(0);
    Rank::ALL[(at + 1) % Rank::ALL.len()]
}

/// The picker, for the desktop overlay and the VR panel alike.
pub fn avatar_spec(wearing: Option<AvatarRef>, shown_up_to: Rank) -> PanelSpec {
    let mut spec = PanelSpec::new("AVATARS (F7): what you wear, and whose you see");
    let worn = match wearing {
        Some(avatar) => format!("You wear an avatar ranked {}.", avatar.rank),
        None => "You wear a plain body in your colour.".to_owned(),
    };
    spec.line(Tone::Good, worn);
    spec.line(
        Tone::Plain,
        format!("Others' avatars up to {shown_up_to} are shown as they are; the rest as plain bodies."),
    );
    spec.line(Tone::Hint, "/avatar PATH wears your own .glb, .gltf or .vrm (VRM 0.x or 1.0)");
    for (index, (name, _)) in DEFAULT_AVATARS.iter().enumerate() {
        spec.button(*name, PanelAction::WearShipped(u8::try_from(index).unwrap_or(u8::MAX)));
    }
    spec.button("Plain body", PanelAction::TakeOff);
    spec.button(format!("Show up to: {shown_up_to}"), PanelAction::CycleShownRank);
    spec.button("Close", PanelAction::ToggleAvatars);
    spec
}

fn fill_panel(
    panel: Res<AvatarPanel>,
    avatars: Res<Avatars>,
    social: Option<Res<Social>>,
    mut panels: Query<(&PanelSlot, &mut PanelContent)>,
) {
    let wearing = social.and_then(|social| social.wearing);
    for (slot, mut content) in &mut panels {
        if *slot != PanelSlot::Avatars {
            continue;
        }
        let spec = panel.open.then(|| avatar_spec(wearing, avatars.show_up_to));
        if content.0 != spec {
            content.0 = spec;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_picker_offers_every_shipped_avatar_and_says_what_is_worn() {
        let spec = avatar_spec(None, Rank::Poor);
        assert!(spec.text().contains("plain body") && spec.text().contains("up to Poor"), "{}", spec.text());
        for index in 0..DEFAULT_AVATARS.len() {
            assert!(spec.offers(PanelAction::WearShipped(index as u8)));
        }
        assert!(spec.offers(PanelAction::TakeOff) && spec.offers(PanelAction::CycleShownRank));
        let worn = AvatarRef { hash: [1; 32], bytes: 10, rank: Rank::Good };
        assert!(avatar_spec(Some(worn), Rank::Poor).text().contains("ranked Good"));
        // The rank shown goes round.
        let mut rank = Rank::Excellent;
        for _ in 0..Rank::ALL.len() {
            rank = next_rank(rank);
        }
        assert_eq!(rank, Rank::Excellent);
    }
}
