//! What build mode shows: parcel borders and the ghost as gizmo lines, the build panel, and
//! progress labels over models on their way.

use std::collections::HashSet;

use bevy::prelude::*;
use sanctuary_engine::{Rejection, home_parcel};

use super::{BuildMode, COLOURS, CityWorld, ModelState, ModelView, PaletteItem, palette};
use crate::Frame;
use crate::player::Player;

pub(super) fn plugin(app: &mut App) {
    app.add_systems(Startup, spawn_build_panel)
        .add_systems(Update, (draw_build_gizmos, update_build_panel, place_model_labels).in_set(Frame::Present));
}

/// Parcel borders, the ghost and the selection, drawn as lines.
fn draw_build_gizmos(mut gizmos: Gizmos, mode: Res<BuildMode>, world: Res<CityWorld>) {
    if !mode.on {
        return;
    }
    let Some(me) = world.me else { return };
    let mut parcels = vec![home_parcel(&me)];
    if let Some((parcel, _, _)) = &mode.ghost {
        parcels.push(*parcel);
    }
    for parcel in parcels {
        let bounds = parcel.bounds();
        let owner = world.parcel(parcel).owner();
        let colour = match owner {
            Some(owner) if owner == me => Color::srgb(0.2, 1.0, 0.4),
            None if parcel == home_parcel(&me) => Color::srgb(0.2, 1.0, 0.4),
            Some(_) => Color::srgb(1.0, 0.25, 0.2),
            None => Color::srgb(0.6, 0.6, 0.6),
        };
        let y = 0.06;
        gizmos.lineloop(
            [
                Vec3::new(bounds.min.x, y, bounds.min.y),
                Vec3::new(bounds.max.x, y, bounds.min.y),
                Vec3::new(bounds.max.x, y, bounds.max.y),
                Vec3::new(bounds.min.x, y, bounds.max.y),
            ],
            colour,
        );
    }
    if let Some((_, object, verdict)) = &mode.ghost {
        let (low, high) = object.aabb();
        let colour = if verdict.is_ok() { Color::srgb(0.3, 1.0, 0.5) } else { Color::srgb(1.0, 0.3, 0.25) };
        gizmos.cube(Transform::from_translation((low + high) * 0.5).with_scale(high - low), colour);
    }
    if let Some((parcel, id)) = mode.selected
        && let Some(object) = world.parcel(parcel).objects.get(&id)
    {
        let (low, high) = object.aabb();
        gizmos.cube(
            Transform::from_translation((low + high) * 0.5).with_scale(high - low + Vec3::splat(0.1)),
            Color::srgb(1.0, 0.9, 0.2),
        );
    }
}

/// The build panel on the left.
#[derive(Component, Debug)]
struct BuildPanel;

fn spawn_build_panel(mut commands: Commands) {
    commands.spawn((
        BuildPanel,
        Text::new(""),
        TextFont { font_size: FontSize::Px(15.0), ..default() },
        TextColor(Color::srgb(0.85, 0.95, 1.0)),
        BackgroundColor(Color::srgba(0.0, 0.02, 0.06, 0.7)),
        Node {
            position_type: PositionType::Absolute,
            left: Val::Px(12.0),
            top: Val::Px(96.0),
            padding: UiRect::all(Val::Px(10.0)),
            max_width: Val::Px(420.0),
            ..default()
        },
        Visibility::Hidden,
    ));
}

fn update_build_panel(
    mode: Res<BuildMode>,
    world: Res<CityWorld>,
    mut panel: Query<(&mut Text, &mut Visibility), With<BuildPanel>>,
) {
    let Ok((mut text, mut visibility)) = panel.single_mut() else { return };
    *visibility = if mode.on { Visibility::Visible } else { Visibility::Hidden };
    if !mode.on {
        return;
    }
    let mut lines = vec!["BUILD MODE (B to leave)".to_owned()];
    if let Some(me) = world.me {
        let home = home_parcel(&me);
        lines.push(format!("your home parcel: ({}, {})  H goes there", home.x, home.z));
    }
    for (index, item) in palette(&world).iter().enumerate() {
        let name = match item {
            PaletteItem::Shape(shape) => format!("{shape:?}"),
            PaletteItem::Model(name, model) => format!("{name} ({} triangles)", model.triangles),
        };
        let key = if index < 5 { format!("{}", index + 1) } else { "6".to_owned() };
        let marker = if index == mode.palette { ">" } else { " " };
        lines.push(format!("{marker} {key} {name}"));
    }
    let colour = COLOURS[mode.colour % COLOURS.len()];
    lines.push(format!(
        "colour (V): #{:02x}{:02x}{:02x}   turn (R): {} deg",
        colour.r,
        colour.g,
        colour.b,
        mode.turns * 15
    ));
    match &mode.ghost {
        Some((parcel, _, Ok(()))) => lines.push(format!("click to place on ({}, {})", parcel.x, parcel.z)),
        Some((_, _, Err(Rejection::NotHome { home }))) => {
            lines.push(format!("not your land: your home parcel is ({}, {}); H goes there", home.x, home.z))
        }
        Some((_, _, Err(rejection))) => lines.push(format!("cannot place here: {rejection}")),
        None => lines.push("point at the ground of a parcel".into()),
    }
    if let Some((parcel, id)) = mode.selected {
        lines.push(format!("selected #{} on ({}, {}):", id % 10_000, parcel.x, parcel.z));
        lines.push("  I/K J/L move, U/O up/down, R turn, +/- size, G colour, X delete, Esc".into());
    } else {
        lines.push("click an object to select it; Tab or 1-6 palette".into());
    }
    lines.push("Ctrl+Z undo, Ctrl+Y redo; /import PATH in chat adds a model".into());
    for (hash, state) in &world.models {
        if let ModelState::Fetching { done, total } = state {
            let percent = if *total > 0 { done * 100 / total } else { 0 };
            lines.push(format!("fetching model {:02x}{:02x}...: {percent} %", hash[0], hash[1]));
        }
    }
    if let Some((feedback, ok)) = &world.feedback {
        lines.push(format!("{} {feedback}", if *ok { "[ok]" } else { "[!]" }));
    }
    let joined = lines.join("\n");
    if text.0 != joined {
        text.0 = joined;
    }
}

/// A progress label over a model that is still on its way.
#[derive(Component, Debug)]
struct ModelLabel(Entity);

fn place_model_labels(
    mut commands: Commands,
    world: Res<CityWorld>,
    models: Query<(Entity, &ModelView, &GlobalTransform)>,
    mut labels: Query<(Entity, &ModelLabel, &mut Text, &mut Node, &mut Visibility, &ComputedNode)>,
    cameras: Query<(&Camera, &GlobalTransform), With<Player>>,
) {
    let Ok(camera) = cameras.single() else { return };
    let mut labelled = HashSet::new();
    for (label, ModelLabel(anchor), mut text, mut node, mut visibility, computed) in &mut labels {
        let Ok((_, view, at)) = models.get(*anchor) else {
            commands.entity(label).despawn();
            continue;
        };
        labelled.insert(*anchor);
        let wording = match world.models.get(&view.model.hash) {
            Some(ModelState::Fetching { done, total }) if *total > 0 => {
                format!("model arriving: {} %", done * 100 / total)
            }
            Some(ModelState::Fetching { .. }) | None => "model arriving...".to_owned(),
            Some(ModelState::Failed(reason)) => format!("model unavailable: {reason}"),
            Some(ModelState::Ready) => {
                commands.entity(label).despawn();
                continue;
            }
        };
        if text.0 != wording {
            text.0 = wording;
        }
        let top = at.translation() + Vec3::Y * (view.model.max[1] + 0.5);
        crate::hud::place_label(camera, top, 60.0, &mut node, &mut visibility, computed);
    }
    for (entity, view, _) in &models {
        if !labelled.contains(&entity) && world.models.get(&view.model.hash) != Some(&ModelState::Ready) {
            commands.spawn((ModelLabel(entity), crate::hud::floating_label("model arriving...", 14.0, Color::WHITE)));
        }
    }
}
