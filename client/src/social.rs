//! What the person sees of the others: names above heads, the chat panel and its input box, the
//! connection state and ticket, and the menu that opens on clicking someone.

use bevy::clipboard::{Clipboard, ClipboardRead};
use bevy::input::ButtonState;
use bevy::input::keyboard::{Key, KeyboardInput};
use bevy::prelude::*;
use bevy::window::PrimaryWindow;
use sanctuary_engine::trust::{TrustContext, TrustLevel};
use sanctuary_engine::{Op, PublicKey};
use sanctuary_net::{Command, MAX_TEXT_CHARS, MicState, RelayState};

use crate::Frame;
use crate::chat_command::masked;
use crate::hud::{floating_label, place_label};
use crate::market::{TIP_AMOUNTS, TipAsk, tip_note};
use crate::network::{ChatInput, ChatKind, NetLink, RemoteAvatarView, Social, submit_chat};
use crate::player::{Player, PointerLock};

/// Chat lines shown at once.
const SHOWN_LINES: usize = 9;
/// Names are shown this close, in metres.
const NAME_DISTANCE: f32 = 60.0;

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<AvatarMenu>().add_systems(Startup, spawn_panels).add_systems(
        Update,
        (
            (type_into_chat, pick_avatar, use_avatar_menu, copy_ticket)
                .chain()
                .in_set(Frame::Input)
                .before(crate::cursor::capture_pointer)
                .before(crate::actions::ReadDevices)
                .run_if(resource_exists::<NetLink>),
            (label_new_avatars, place_name_labels, update_net_status, update_chat_panel, show_avatar_menu)
                .chain()
                .in_set(Frame::Present),
        ),
    );
}

/// The person someone clicked, with the menu of what to do.
#[derive(Resource, Debug, Default)]
pub struct AvatarMenu(pub Option<(PublicKey, String)>);

#[derive(Component, Debug)]
struct NetStatusText;

#[derive(Component, Debug)]
struct ChatPanelText;

#[derive(Component, Debug)]
struct MenuPanel;

#[derive(Component, Debug)]
struct MenuTitle;

#[derive(Component, Debug)]
struct MenuVolume;

#[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MenuButton {
    Message,
    Quieter,
    Louder,
    Mute,
    Friend,
    Acquaintance,
    Distrust,
    Block,
    BlockShared,
    /// Tip this many sats.
    Tip(u64),
    Close,
}

#[derive(Component, Debug)]
struct MenuTips;

#[derive(Component, Debug)]
struct MenuTrust;

/// The name floating above a remote avatar.
#[derive(Component, Debug)]
struct NameLabel {
    avatar: Entity,
}

fn panel_node(at: Node) -> Node {
    Node { position_type: PositionType::Absolute, padding: UiRect::axes(Val::Px(10.0), Val::Px(6.0)), ..at }
}

fn spawn_panels(mut commands: Commands) {
    let dark = BackgroundColor(Color::srgba(0.02, 0.0, 0.06, 0.6));
    commands.spawn((
        NetStatusText,
        Text::new("network: starting"),
        TextFont::from_font_size(15.0),
        TextColor(Color::srgb(0.8, 1.0, 0.85)),
        dark,
        panel_node(Node { top: Val::Px(10.0), right: Val::Px(10.0), max_width: Val::Px(460.0), ..default() }),
    ));
    commands.spawn((
        ChatPanelText,
        Text::new(""),
        TextFont::from_font_size(16.0),
        TextColor(Color::srgb(0.95, 0.95, 1.0)),
        dark,
        // Above the key help (bottom left), so that the two never overlap on a narrow window.
        panel_node(Node { bottom: Val::Px(112.0), right: Val::Px(10.0), width: Val::Px(460.0), ..default() }),
    ));
    commands
        .spawn((
            MenuPanel,
            BackgroundColor(Color::srgba(0.05, 0.02, 0.12, 0.85)),
            panel_node(Node {
                top: Val::Px(60.0),
                left: Val::Percent(50.0),
                margin: UiRect::left(Val::Px(-110.0)),
                width: Val::Px(220.0),
                flex_direction: FlexDirection::Column,
                row_gap: Val::Px(6.0),
                ..default()
            }),
            Visibility::Hidden,
        ))
        .with_children(|menu| {
            menu.spawn((MenuTitle, Text::new(""), TextFont::from_font_size(18.0), TextColor(Color::WHITE)));
            menu.spawn((
                MenuTrust,
                Text::new(""),
                TextFont::from_font_size(15.0),
                TextColor(Color::srgb(0.9, 0.9, 0.7)),
            ));
            menu.spawn((
                MenuVolume,
                Text::new(""),
                TextFont::from_font_size(15.0),
                TextColor(Color::srgb(0.8, 0.9, 1.0)),
            ));
            menu.spawn((
                MenuTips,
                Text::new(""),
                TextFont::from_font_size(15.0),
                TextColor(Color::srgb(1.0, 0.85, 0.4)),
            ));
            menu.spawn(Node { flex_direction: FlexDirection::Row, column_gap: Val::Px(6.0), ..default() })
                .with_children(|row| {
                    for sats in TIP_AMOUNTS {
                        row.spawn((
                            MenuButton::Tip(sats),
                            Button,
                            Node { padding: UiRect::axes(Val::Px(8.0), Val::Px(4.0)), ..default() },
                            BackgroundColor(Color::srgba(0.55, 0.35, 0.05, 0.9)),
                        ))
                        .with_child((
                            Text::new(crate::market::sats(sats)),
                            TextFont::from_font_size(16.0),
                            TextColor(Color::WHITE),
                        ));
                    }
                });
            for (button, label) in [
                (MenuButton::Message, "Message (M)"),
                (MenuButton::Quieter, "Quieter (-)"),
                (MenuButton::Louder, "Louder (+)"),
                (MenuButton::Mute, "Mute / unmute (0)"),
                (MenuButton::Friend, "Friend (F)"),
                (MenuButton::Acquaintance, "Acquaintance"),
                (MenuButton::Distrust, "Distrust"),
                (MenuButton::Block, "Block (X)"),
                (MenuButton::BlockShared, "Block + tell friends"),
                (MenuButton::Close, "Close (Esc)"),
            ] {
                menu.spawn((
                    button,
                    Button,
                    Node { padding: UiRect::axes(Val::Px(8.0), Val::Px(4.0)), ..default() },
                    BackgroundColor(Color::srgba(0.3, 0.2, 0.6, 0.9)),
                ))
                .with_child((
                    Text::new(label),
                    TextFont::from_font_size(16.0),
                    TextColor(Color::WHITE),
                ));
            }
        });
}

/// Keys type into the chat box while it is open; Enter opens it, sends, and closes it.
fn type_into_chat(
    mut keys: MessageReader<KeyboardInput>,
    held: Res<ButtonInput<KeyCode>>,
    mut input: ResMut<ChatInput>,
    mut social: ResMut<Social>,
    link: Res<NetLink>,
    menu: Res<AvatarMenu>,
    mut clipboard: Option<ResMut<Clipboard>>,
) {
    for key in keys.read() {
        if key.state != ButtonState::Pressed {
            continue;
        }
        if !input.open {
            if matches!(key.logical_key, Key::Enter) && menu.0.is_none() {
                input.open = true;
            }
            continue;
        }
        let control = held.any_pressed([KeyCode::ControlLeft, KeyCode::ControlRight]);
        match &key.logical_key {
            Key::Enter => submit_chat(&link, &mut social, &mut input),
            Key::Escape => {
                input.open = false;
                input.text.clear();
                input.to = None;
                input.held_back = None;
            }
            Key::Backspace => {
                input.text.pop();
            }
            Key::Character(letter) if control && letter.eq_ignore_ascii_case("v") => {
                if let Some(clipboard) = clipboard.as_deref_mut()
                    && let ClipboardRead::Ready(Ok(text)) = clipboard.fetch_text()
                {
                    type_text(&mut input, &text);
                }
            }
            _ if control => {}
            _ => {
                if let Some(text) = &key.text {
                    type_text(&mut input, text);
                }
            }
        }
    }
}

/// Adds typed or pasted text, without control characters, up to the longest line. (Tickets
/// are long, so `/join` gets more room.)
fn type_text(input: &mut ChatInput, text: &str) {
    let limit = if input.text.starts_with("/join") { 4096 } else { MAX_TEXT_CHARS };
    for letter in text.chars().filter(|letter| !letter.is_control()) {
        if input.text.chars().count() >= limit {
            break;
        }
        input.text.push(letter);
    }
}

/// A click on someone (under the pointer, or in the middle of the view while looking around)
/// opens the menu for them.
fn pick_avatar(
    mouse: Res<ButtonInput<MouseButton>>,
    lock: Res<PointerLock>,
    input: Res<ChatInput>,
    windows: Query<&Window, With<PrimaryWindow>>,
    cameras: Query<(&Camera, &GlobalTransform), With<Player>>,
    avatars: Query<(&RemoteAvatarView, &GlobalTransform)>,
    buttons: Query<&Interaction, With<Button>>,
    mut menu: ResMut<AvatarMenu>,
) {
    if !mouse.just_pressed(MouseButton::Left) || input.open {
        return;
    }
    if buttons.iter().any(|interaction| *interaction != Interaction::None) {
        return;
    }
    let (Ok(window), Ok((camera, eye))) = (windows.single(), cameras.single()) else { return };
    let point = if lock.locked { Some(window.size() / 2.0) } else { window.cursor_position() };
    let Some(ray) = point.and_then(|point| camera.viewport_to_world(eye, point).ok()) else { return };
    let mut nearest: Option<(f32, &RemoteAvatarView)> = None;
    for (avatar, at) in &avatars {
        // The head and the body below it, as a sphere of 0.7 m around the chest.
        let centre = at.translation() - Vec3::Y * 0.5;
        let along = (centre - ray.origin).dot(*ray.direction);
        if along <= 0.0 {
            continue;
        }
        let miss = (ray.origin + *ray.direction * along).distance(centre);
        if miss < 0.7 && nearest.is_none_or(|(distance, _)| along < distance) {
            nearest = Some((along, avatar));
        }
    }
    if let Some((_, avatar)) = nearest {
        info!("clicked {} ({})", avatar.name, avatar.key.short());
        menu.0 = Some((avatar.key, avatar.name.clone()));
    }
}

/// The menu's buttons and keys: M (or the button) opens a private message, - and + turn their
/// voice down and up, Esc closes.
#[allow(clippy::too_many_arguments)]
pub(crate) fn use_avatar_menu(
    keys: Res<ButtonInput<KeyCode>>,
    buttons: Query<(&Interaction, &MenuButton), Changed<Interaction>>,
    mut menu: ResMut<AvatarMenu>,
    voice: Option<ResMut<crate::voice::VoiceState>>,
    link: Res<NetLink>,
    mut social: ResMut<Social>,
    mut input: ResMut<ChatInput>,
    mut lock: ResMut<PointerLock>,
    mut cursor: Query<&mut bevy::window::CursorOptions, With<PrimaryWindow>>,
    wallet: Option<ResMut<crate::market::WalletUi>>,
) {
    let Some((key, name)) = menu.0.clone() else { return };
    // The menu needs the pointer.
    if lock.locked {
        lock.locked = false;
        if let Ok(mut cursor) = cursor.single_mut() {
            cursor.visible = true;
            cursor.grab_mode = bevy::window::CursorGrabMode::None;
        }
    }
    let pressed = |which: MenuButton| {
        buttons.iter().any(|(interaction, button)| *interaction == Interaction::Pressed && *button == which)
    };
    let step = if keys.any_just_pressed([KeyCode::Minus, KeyCode::NumpadSubtract]) || pressed(MenuButton::Quieter) {
        -crate::voice::VOLUME_STEP
    } else if keys.any_just_pressed([KeyCode::Equal, KeyCode::NumpadAdd]) || pressed(MenuButton::Louder) {
        crate::voice::VOLUME_STEP
    } else {
        0.0
    };
    let mute = keys.any_just_pressed([KeyCode::Digit0, KeyCode::Numpad0]) || pressed(MenuButton::Mute);
    if (step != 0.0 || mute)
        && let Some(mut voice) = voice
    {
        let volume = match (mute, voice.volume(&key) <= 0.0) {
            (true, true) => 1.0,
            (true, false) => 0.0,
            (false, _) => voice.volume(&key) + step,
        };
        voice.set_volume(key, volume);
        // Kept by the node, so that a mute holds after a restart.
        link.send(Command::Volume { person: key, volume: voice.volume(&key) });
        // The menu shows the new volume.
        menu.set_changed();
    }
    // Trust: Friend again takes the word back; each statement is signed and published.
    let said = social.trust.as_ref().and_then(|view| view.mine.get(&key).copied());
    let word = if keys.just_pressed(KeyCode::KeyF) || pressed(MenuButton::Friend) {
        Some(if said >= Some(TrustLevel::Friend) { None } else { Some(TrustLevel::Friend) })
    } else if pressed(MenuButton::Acquaintance) {
        Some(if said == Some(TrustLevel::Acquaintance) { None } else { Some(TrustLevel::Acquaintance) })
    } else if pressed(MenuButton::Distrust) {
        Some(if said == Some(TrustLevel::Distrust) { None } else { Some(TrustLevel::Distrust) })
    } else {
        None
    };
    if let Some(level) = word {
        link.send(Command::Build(Op::Trust { subject: key, context: TrustContext::People, level }));
        let notice = match level {
            Some(TrustLevel::Friend) => {
                format!("you call {name} a friend (signed and published; friends once they say so too)")
            }
            Some(TrustLevel::Acquaintance) => format!("you know {name} (signed and published)"),
            Some(_) => format!("you distrust {name}: their trust counts against them for you and those who trust you"),
            None => format!("you took back what you said of {name}"),
        };
        social.notice(notice);
        menu.0 = None;
        return;
    }
    if pressed(MenuButton::BlockShared) {
        // The block is private; the distrust that goes with it is signed and published, so that
        // those who trust the person keep the key at a distance too.
        link.send(Command::Block(key));
        link.send(Command::Build(Op::Trust {
            subject: key,
            context: TrustContext::People,
            level: Some(TrustLevel::Distrust),
        }));
        social.notice(format!("{name} is blocked, and your distrust of them is published for those who trust you"));
        menu.0 = None;
        return;
    }
    if keys.just_pressed(KeyCode::KeyX) || pressed(MenuButton::Block) {
        link.send(Command::Block(key));
        social.notice(format!("{name} is blocked: you no longer see or hear them (/unblock undoes it)"));
        menu.0 = None;
        return;
    }
    let tip = buttons.iter().find_map(|(interaction, button)| match button {
        MenuButton::Tip(sats) if *interaction == Interaction::Pressed => Some(*sats),
        _ => None,
    });
    if let Some(sats) = tip {
        match (social.tips.get(&key), wallet) {
            (Some(offer), Some(mut wallet)) => {
                let me = social.profile.as_ref().map_or("someone", |profile| profile.name.as_str());
                let note = tip_note(me);
                wallet.tip_asked = Some(TipAsk { offer: offer.clone(), name: name.clone(), sats, note });
            }
            (Some(_), None) => social.notice("tipping needs the wallet, which is not running".to_owned()),
            (None, _) => social.notice(format!("{name} takes no tips yet (their wallet has no Lightning channel)")),
        }
        menu.0 = None;
        return;
    }
    if keys.just_pressed(KeyCode::KeyM) || pressed(MenuButton::Message) {
        input.open = true;
        input.text.clear();
        input.held_back = None;
        input.to = Some((key, name));
        menu.0 = None;
    } else if keys.just_pressed(KeyCode::Escape) || pressed(MenuButton::Close) {
        menu.0 = None;
    }
}

/// F3 puts our ticket on the clipboard.
fn copy_ticket(
    keys: Res<ButtonInput<KeyCode>>,
    mut social: ResMut<Social>,
    clipboard: Option<ResMut<Clipboard>>,
    input: Res<ChatInput>,
) {
    if !keys.just_pressed(KeyCode::F3) || input.open {
        return;
    }
    let Some(ticket) = social.ticket.clone() else { return };
    let result = match clipboard {
        Some(mut clipboard) => clipboard.set_text(ticket).map_err(|error| error.to_string()),
        None => Err("no clipboard".to_owned()),
    };
    let notice = match result {
        Ok(()) => "your ticket is on the clipboard: send it to a friend".to_owned(),
        Err(error) => format!("could not copy the ticket ({error}); it is printed in the terminal"),
    };
    social.chat.push(crate::network::ChatEntry { kind: ChatKind::Notice, text: notice, order: u64::MAX });
}

fn label_new_avatars(mut commands: Commands, avatars: Query<(Entity, &RemoteAvatarView), Added<RemoteAvatarView>>) {
    for (entity, avatar) in &avatars {
        let [r, g, b] = avatar.colour.map(|channel| f32::from(channel) / 255.0);
        let colour = Color::srgb(r, g, b).mix(&Color::WHITE, 0.5);
        commands.spawn((NameLabel { avatar: entity }, floating_label(avatar.name.clone(), 20.0, colour)));
    }
}

/// Puts each name above its head on screen, or hides it out of view; removes names of people
/// who left. Someone who muted their microphone is shown so.
fn place_name_labels(
    mut commands: Commands,
    social: Res<Social>,
    worn: Option<Res<crate::avatars::Avatars>>,
    cameras: Query<(&Camera, &GlobalTransform), With<Player>>,
    avatars: Query<(&RemoteAvatarView, &GlobalTransform)>,
    mut labels: Query<(Entity, &NameLabel, &mut Text, &mut TextColor, &mut Node, &mut Visibility, &ComputedNode)>,
) {
    let Ok(view) = cameras.single() else { return };
    for (entity, label, mut text, mut colour, mut node, mut visibility, computed) in &mut labels {
        let Ok((avatar, at)) = avatars.get(label.avatar) else {
            commands.entity(entity).despawn();
            continue;
        };
        let (word, trust_colour) = crate::shields::trust_label(&social, &avatar.key);
        let agent = social.agents.contains_key(&avatar.key);
        let mut shown = format!("{} - {word}", name_shown(&avatar.name, social.mics.get(&avatar.key).copied(), agent));
        // While their avatar comes (or when it is not shown), the label says so.
        if let Some(note) = worn.as_ref().and_then(|worn| crate::avatars::label_note(&worn.shown(&avatar.key))) {
            shown = format!("{shown} - {note}");
        }
        if text.0 != shown {
            text.0 = shown;
        }
        if colour.0 != trust_colour {
            colour.0 = trust_colour;
        }
        let above = at.translation() + Vec3::Y * 0.45;
        place_label(view, above, NAME_DISTANCE, &mut node, &mut visibility, computed);
    }
}

/// The avatar menu's line for how loud someone is played.
fn volume_line(volume: f32) -> String {
    if volume <= 0.0 { "voice: silenced".to_owned() } else { format!("voice: {:.0} %", volume * 100.0) }
}

/// The label above someone: their name, whether they are an AI agent (always said), and
/// whether they muted themselves.
fn name_shown(name: &str, mic: Option<MicState>, agent: bool) -> String {
    let name = if agent { format!("{name} [AI agent]") } else { name.to_owned() };
    match mic {
        Some(MicState::Muted) => format!("{name} [muted]"),
        _ => name,
    }
}

fn update_net_status(
    social: Res<Social>,
    link: Option<Res<NetLink>>,
    voice: Option<Res<crate::voice::VoiceState>>,
    mut status: Query<&mut Text, With<NetStatusText>>,
) {
    let Ok(mut text) = status.single_mut() else { return };
    let shown = match (&link, &social.failure, &social.status) {
        (None, _, _) => "network off (single player)".to_owned(),
        (_, Some(error), _) => format!("network failed: {error}"),
        (Some(link), None, Some(status)) => {
            let relay = match status.relay {
                RelayState::Disabled => "offline mode (this machine and LAN)",
                RelayState::Connecting => "online: reaching a relay...",
                RelayState::Connected => "online via relay",
            };
            let name = social.profile.as_ref().map_or("", |profile| profile.name.as_str());
            let ticket = social.ticket.as_deref().map_or("...".to_owned(), |ticket| {
                format!("{}...{}", &ticket[..ticket.len().min(18)], &ticket[ticket.len().saturating_sub(6)..])
            });
            let refused = link.stats().rejected();
            let outbox =
                if status.outbox > 0 { format!(" | {} waiting to send", status.outbox) } else { String::new() };
            format!(
                "{name} | {relay}\n{} here | {} known | {refused} refused{outbox}\nticket {ticket}  (F3 copies)",
                social.crowd.len(),
                status.known_peers,
            )
        }
        (Some(_), None, None) => "network: starting".to_owned(),
    };
    let shown = match &voice {
        Some(voice) => format!("{shown}\n{}", voice.summary()),
        None => shown,
    };
    if text.0 != shown {
        text.0 = shown;
    }
}

fn update_chat_panel(
    social: Res<Social>,
    input: Res<ChatInput>,
    link: Option<Res<NetLink>>,
    mut panel: Query<(&mut Text, &mut Visibility), With<ChatPanelText>>,
) {
    let Ok((mut text, mut visibility)) = panel.single_mut() else { return };
    if link.is_none() {
        *visibility = Visibility::Hidden;
        return;
    }
    let mut shown = String::new();
    let start = social.chat.len().saturating_sub(SHOWN_LINES);
    for entry in &social.chat[start..] {
        let prefix = match entry.kind {
            ChatKind::Said => "",
            ChatKind::Private => "",
            ChatKind::Notice => "* ",
        };
        shown.push_str(prefix);
        shown.push_str(&entry.text);
        shown.push('\n');
    }
    if input.open {
        let to = input.to.as_ref().map_or_else(|| "say".to_owned(), |(_, name)| format!("to {name}"));
        // Passphrases and recovery phrases are never shown, only a wallet command's word and
        // verb; then the last 60 letters.
        let masked = masked(&input.text);
        let count = masked.chars().count();
        let typed: String = masked.chars().skip(count.saturating_sub(60)).collect();
        shown.push_str(&format!("{to} > {typed}_"));
    } else {
        shown.push_str("Enter: chat   click someone: message them");
    }
    if text.0 != shown {
        text.0 = shown;
    }
    *visibility = Visibility::Inherited;
}

#[allow(clippy::type_complexity)]
fn show_avatar_menu(
    menu: Res<AvatarMenu>,
    social: Res<Social>,
    link: Option<Res<NetLink>>,
    mut seen: Local<u64>,
    voice: Option<Res<crate::voice::VoiceState>>,
    mut panel: Query<&mut Visibility, With<MenuPanel>>,
    mut title: Query<&mut Text, (With<MenuTitle>, Without<MenuVolume>, Without<MenuTrust>)>,
    mut volume: Query<&mut Text, (With<MenuVolume>, Without<MenuTrust>)>,
    mut trust: Query<&mut Text, (With<MenuTrust>, Without<MenuVolume>, Without<MenuTitle>)>,
    mut tips: Query<&mut Text, (With<MenuTips>, Without<MenuTrust>, Without<MenuVolume>, Without<MenuTitle>)>,
) {
    let records_came = *seen != social.contributions_seen;
    *seen = social.contributions_seen;
    if !menu.is_changed() && !records_came {
        return;
    }
    // What they served, by others' receipts: asked for as the menu opens.
    if menu.is_changed()
        && let (Some((key, _)), Some(link)) = (&menu.0, &link)
    {
        link.send(Command::AskContribution(*key));
    }
    for mut visibility in &mut panel {
        *visibility = if menu.0.is_some() { Visibility::Inherited } else { Visibility::Hidden };
    }
    if let (Some((_, name)), Ok(mut title)) = (&menu.0, title.single_mut()) {
        title.0.clone_from(name);
    }
    if let (Some((key, _)), Ok(mut line)) = (&menu.0, trust.single_mut()) {
        let served = social.contributions.get(key).map_or("asking what they served...", String::as_str);
        line.0 = format!("{}\n{served}", why_trusted(&social, key));
    }
    if let (Some((key, _)), Ok(mut line)) = (&menu.0, tips.single_mut()) {
        line.0 = if social.tips.contains_key(key) {
            "Tip over Lightning (you confirm first):".to_owned()
        } else {
            "takes no tips yet".to_owned()
        };
    }
    if let (Some((key, _)), Ok(mut line)) = (&menu.0, volume.single_mut()) {
        line.0 = match &voice {
            Some(voice) => volume_line(voice.volume(key)),
            None => "voice off".to_owned(),
        };
    }
}

/// "Why do I trust this person": their standing, and the strongest chain of statements from the
/// person to them.
fn why_trusted(social: &Social, key: &PublicKey) -> String {
    let (word, _) = crate::shields::trust_label(social, key);
    let path = match (&social.world, social.me) {
        (Some(world), Some(me)) => world.world().trust().path(&me, key, TrustContext::People),
        _ => None,
    };
    match path {
        Some(path) if path.len() > 2 => {
            let names: Vec<String> = path
                .iter()
                .map(|step| if Some(*step) == social.me { "you".to_owned() } else { social.name_of(step) })
                .collect();
            format!("{word}: {}", names.join(" > "))
        }
        Some(_) => format!("{word}: your own word"),
        None => format!("{word}: no chain of trust reaches them"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_is_always_labelled_as_one() {
        assert_eq!(name_shown("Ada", None, false), "Ada");
        assert_eq!(name_shown("Ada", Some(MicState::Muted), false), "Ada [muted]");
        assert_eq!(name_shown("Ada the guide", Some(MicState::Muted), true), "Ada the guide [AI agent] [muted]");
        assert_eq!(name_shown("Ada the guide", Some(MicState::Live), true), "Ada the guide [AI agent]");
    }
}
