//! The meeting room's whiteboard in the client: its wall display shows the board the node holds
//! (`Event::Board`), and a person draws on it with the mouse (a free pointer over the board, or
//! the middle of the view while looking around) or the VR laser and trigger. A stroke shows at
//! once as it is drawn and goes to the node (`Command::Draw`) when the button is let go, or
//! when it reaches the most points a stroke may have and drawing goes on in a new one.
//!
//! The board is painted off the main thread (`board_ink` bounds what it costs); strokes added
//! to a board already painted are painted onto it, anything else paints the board afresh.
//! `/board` says how to draw, chooses the pen (`/board red`, `/board width 4`) and erases one's
//! own strokes (`/board clear`); the meeting panel has the same buttons.

use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Duration;

use bevy::asset::RenderAssetUsages;
use bevy::picking::hover::HoverMap;
use bevy::picking::pointer::PointerId;
use bevy::platform::cell::SyncCell;
use bevy::prelude::*;
use bevy::render::render_resource::{Extent3d, TextureDimension, TextureFormat};
use bevy::window::PrimaryWindow;
use sanctuary_engine::{RegionId, RoomKind, Surface};
use sanctuary_net::whiteboard::{MAX_POINTS, Stroke};
use sanctuary_net::{Command, Event};

use crate::Frame;
use crate::actions::{Actions, InputMode, LaserOnPanel, ReadDevices};
use crate::board_ink::{BOARD_PIXELS, Canvas, Rendered, extend, render};
use crate::materials::ScreenMaterial;
use crate::network::{ChatInput, NetLink, Social};
use crate::panels::{PanelAction, PanelPressed, PanelSpec, Tone};
use crate::player::{Player, PointerLock};
use crate::world::{CurrentRegion, StructureView};

const MEETING: RegionId = RegionId::Room(RoomKind::Meeting);
/// How far from the board one can draw on it, metres (the meeting room is 14 m deep).
const BOARD_REACH: f32 = 14.0;
/// How far the pointer moves on the board, in pixels of the board's picture, before the stroke
/// takes another point.
const POINT_SPACING: f32 = 2.0;
/// How long a stroke we drew shows on top of the board before the node's board holds it.
const SENT_SHOWS_FOR: Duration = Duration::from_secs(5);
/// The widest pen offered (the board takes wider strokes from others, up to its own bound).
pub const MAX_PEN_WIDTH: u8 = 16;
/// The pens: a name and a colour.
pub const PENS: [(&str, [u8; 3]); 6] = [
    ("black", [34, 36, 44]),
    ("blue", [30, 80, 200]),
    ("red", [200, 40, 40]),
    ("green", [30, 140, 60]),
    ("orange", [230, 130, 20]),
    ("purple", [130, 50, 170]),
];

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<Whiteboard>().init_resource::<BoardAim>().add_systems(
        Update,
        (
            (board_commands, draw_on_board)
                .chain()
                .in_set(Frame::Input)
                .after(ReadDevices)
                .run_if(resource_exists::<NetLink>),
            show_board.in_set(Frame::Present),
        ),
    );
}

/// Where the pointer meets the board this frame.
#[derive(Resource, Debug, Default, Clone, Copy, PartialEq)]
pub struct BoardAim {
    /// How far along the pointer the board is, when the pointer is on it.
    pub distance: Option<f32>,
}

/// A painting of the board, done off the main thread.
type Painting = (Rendered, Vec<Stroke>);

/// The board as this client shows it, and the pen.
#[derive(Resource, Default)]
pub struct Whiteboard {
    /// Every stroke, the oldest first, as the node last said.
    strokes: Vec<Stroke>,
    /// `strokes` changed since a painting of them was last started.
    unpainted: bool,
    /// The board painted (without our strokes on their way), and the strokes it shows.
    painted: Option<Painting>,
    /// The painting under way.
    painting: Option<SyncCell<Receiver<Painting>>>,
    /// What shows: the painted board with our strokes on their way on top.
    shown: Option<Canvas>,
    /// `shown` changed since it went onto the screen.
    changed: bool,
    /// The texture the board shows.
    image: Option<Handle<Image>>,
    /// The pen: which of [`PENS`], and its width.
    pen: usize,
    width: u8,
    /// The stroke being drawn (points on the board).
    drawing: Option<Vec<[u16; 2]>>,
    /// Strokes we drew that the node's board does not hold yet, and when they were sent.
    sent: Vec<(Stroke, Duration)>,
}

impl Whiteboard {
    /// Takes what the node says of the board.
    pub fn take(&mut self, event: &Event) {
        if let Event::Board(strokes) = event {
            self.strokes = strokes.clone();
            self.unpainted = true;
        }
    }

    fn width(&self) -> u8 {
        if self.width == 0 { 2 } else { self.width }
    }

    /// The pen's name, colour and width.
    fn pen(&self) -> (&'static str, [u8; 3], u8) {
        let (name, colour) = PENS[self.pen.min(PENS.len() - 1)];
        (name, colour, self.width())
    }

    /// The board in a line: its strokes, what cannot be shown, the pen.
    pub fn status(&self) -> String {
        let (name, _, width) = self.pen();
        let mut line = format!("{} strokes, your pen {name} {width}", self.strokes.len());
        if let Some((rendered, _)) = &self.painted {
            if rendered.too_big > 0 {
                line.push_str(&format!(", {} too large to show", rendered.too_big));
            }
            if rendered.hidden > 0 {
                line.push_str(&format!(", {} older ones hidden (the board is too full)", rendered.hidden));
            }
        }
        line
    }

    /// Starts painting the board the node last said, when it is not what shows: onto what
    /// shows when only strokes were added, else afresh.
    fn paint(&mut self) {
        // Only when the node said something new: comparing 4,096 strokes each frame would cost
        // the frame more than the painting.
        if self.painting.is_some() || !std::mem::take(&mut self.unpainted) {
            return;
        }
        if self.painted.as_ref().is_some_and(|(_, shows)| *shows == self.strokes) {
            return;
        }
        let strokes = self.strokes.clone();
        let (width, height) = BOARD_PIXELS;
        let base = self.painted.as_ref().filter(|(_, shows)| strokes.starts_with(shows)).cloned();
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        let job = move || {
            let rendered = match base {
                Some((mut rendered, shows)) => {
                    if extend(&mut rendered, &strokes[shows.len()..]) {
                        rendered
                    } else {
                        render(&strokes, width, height)
                    }
                }
                None => render(&strokes, width, height),
            };
            let _ = sender.send((rendered, strokes));
        };
        match std::thread::Builder::new().name("whiteboard painter".into()).spawn(job) {
            Ok(_) => self.painting = Some(SyncCell::new(receiver)),
            Err(error) => warn!("the whiteboard cannot be painted: {error}"),
        }
    }

    /// Takes a finished painting: it shows, with our strokes on their way on top.
    fn take_painted(&mut self, me: Option<[u8; 32]>, now: Duration) {
        let Some(receiver) = self.painting.as_mut() else { return };
        let painted = match receiver.get().try_recv() {
            Ok(painted) => Some(painted),
            Err(TryRecvError::Empty) => return,
            Err(TryRecvError::Disconnected) => None,
        };
        self.painting = None;
        let Some(painted) = painted else { return };
        // Ours that the board holds now, or that it never took, stop showing on top.
        let held = |stroke: &Stroke| {
            painted.1.iter().any(|on| Some(on.author) == me && on.points == stroke.points && on.colour == stroke.colour)
        };
        self.sent.retain(|(stroke, at)| !held(stroke) && now.saturating_sub(*at) < SENT_SHOWS_FOR);
        let mut shown = painted.0.canvas.clone();
        for (stroke, _) in &self.sent {
            shown.paint(stroke);
        }
        if let Some(points) = &self.drawing {
            let (_, colour, width) = self.pen();
            shown.paint(&Stroke { author: [0; 32], at_us: 0, colour, width, points: points.clone() });
        }
        self.shown = Some(shown);
        self.changed = true;
        self.painted = Some(painted);
    }

    /// The pointer is on the board at `point` with the button held: the stroke goes on (or
    /// starts), shown at once; a full stroke goes to the node and drawing goes on in a new one.
    fn pen_at(&mut self, point: [u16; 2]) -> Option<Stroke> {
        let (_, colour, width) = self.pen();
        let points = self.drawing.get_or_insert_with(Vec::new);
        let last = points.last().copied();
        if let Some(last) = last
            && board_distance(last, point) < POINT_SPACING
        {
            return None;
        }
        points.push(point);
        if let Some(shown) = &mut self.shown {
            shown.paint_segment(last.unwrap_or(point), point, width, colour);
            self.changed = true;
        }
        if points.len() < MAX_POINTS {
            return None;
        }
        let full = self.lift();
        self.drawing = Some(vec![point]);
        full
    }

    /// The button is let go (or the pointer left the board): the stroke drawn, to send.
    fn lift(&mut self) -> Option<Stroke> {
        let points = self.drawing.take().filter(|points| !points.is_empty())?;
        let (_, colour, width) = self.pen();
        Some(Stroke { author: [0; 32], at_us: 0, colour, width, points })
    }
}

/// How far apart two board points are, in pixels of the board's picture.
fn board_distance(a: [u16; 2], b: [u16; 2]) -> f32 {
    let (width, height) = BOARD_PIXELS;
    let across = (f32::from(a[0]) - f32::from(b[0])) * width as f32 / 65_536.0;
    let down = (f32::from(a[1]) - f32::from(b[1])) * height as f32 / 65_536.0;
    across.hypot(down)
}

/// A point of the board's face (`uv` from its top left, 0 to 1) in board coordinates.
pub fn board_point(uv: Vec2) -> [u16; 2] {
    let unit = |value: f32| (value.clamp(0.0, 1.0) * 65_535.0).round() as u16;
    [unit(uv.x), unit(uv.y)]
}

/// The front face of the board (a screen structure): a panel as `vr_view::panel_hit` takes it.
fn board_face(at: &GlobalTransform) -> (Transform, Vec2) {
    let (scale, rotation, translation) = at.to_scale_rotation_translation();
    let face =
        Transform { translation: translation + rotation * Vec3::Z * (scale.z / 2.0), rotation, scale: Vec3::ONE };
    (face, scale.truncate())
}

/// What `/board` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoardWord {
    /// Say how to draw, and the board's state.
    Help,
    /// Erase one's own strokes.
    Clear,
    /// Take the pen of this index in [`PENS`], and this width when given.
    Pen(Option<usize>, Option<u8>),
}

const BOARD_USAGE: &str = "usage: /board (how to draw), /board clear (erase your strokes), /board COLOUR, \
                           /board width 1-16; colours: black, blue, red, green, orange, purple";

/// Reads what was typed after `/board`.
pub fn board_word(rest: &str) -> Result<BoardWord, String> {
    let words: Vec<String> = rest.split_whitespace().map(str::to_lowercase).collect();
    match words.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] => Ok(BoardWord::Help),
        ["clear"] | ["erase"] => Ok(BoardWord::Clear),
        words => {
            let (mut pen, mut width) = (None, None);
            let mut words = words.iter().peekable();
            while let Some(word) = words.next() {
                let number = if *word == "width" { words.next().copied() } else { Some(*word) };
                if let Some(at) = PENS.iter().position(|(name, _)| name == word) {
                    pen = Some(at);
                } else if let Some(number) = number.and_then(|number| number.parse::<u8>().ok()) {
                    if !(1..=MAX_PEN_WIDTH).contains(&number) {
                        return Err(format!("a pen is 1 to {MAX_PEN_WIDTH} wide"));
                    }
                    width = Some(number);
                } else {
                    return Err(BOARD_USAGE.into());
                }
            }
            Ok(BoardWord::Pen(pen, width))
        }
    }
}

/// The meeting panel's part: the board in a line, a button per pen and one that erases one's
/// own strokes.
pub fn panel_part(board: &Whiteboard, spec: &mut PanelSpec) {
    spec.line(Tone::Plain, format!("Whiteboard: {}", board.status()));
    spec.line(Tone::Hint, "Draw on the wall with the left button (or the trigger); /board for more");
    for (at, (name, _)) in PENS.iter().enumerate().take(4) {
        spec.button(format!("Pen {name}"), PanelAction::BoardPen(at as u8));
    }
    spec.button("Erase my strokes", PanelAction::BoardErase);
}

/// `/board` from the chat box and the panel's pen and erase buttons.
fn board_commands(
    mut input: ResMut<ChatInput>,
    mut pressed: MessageReader<PanelPressed>,
    mut board: ResMut<Whiteboard>,
    mut social: ResMut<Social>,
    link: Res<NetLink>,
) {
    let mut words: Vec<Result<BoardWord, String>> =
        input.board.take().map(|rest| board_word(&rest)).into_iter().collect();
    for PanelPressed(action) in pressed.read() {
        match *action {
            PanelAction::BoardPen(at) => words.push(Ok(BoardWord::Pen(Some(usize::from(at)), None))),
            PanelAction::BoardErase => words.push(Ok(BoardWord::Clear)),
            _ => {}
        }
    }
    for word in words {
        match word {
            Ok(BoardWord::Help) => social.notice(format!(
                "the whiteboard: {}. In the meeting room, hold the left button on the wall display and draw \
                 (while looking around, the middle of the view draws; in VR, the laser and the trigger). {BOARD_USAGE}",
                board.status()
            )),
            Ok(BoardWord::Clear) => {
                link.send(Command::ClearBoard);
                social.notice("erasing your strokes from the board".into());
            }
            Ok(BoardWord::Pen(pen, width)) => {
                if let Some(pen) = pen {
                    board.pen = pen.min(PENS.len() - 1);
                }
                if let Some(width) = width {
                    board.width = width;
                }
                let (name, _, width) = board.pen();
                social.notice(format!("your pen: {name}, {width} wide"));
            }
            Err(problem) => social.notice(problem),
        }
    }
}

/// Draws with the pointer on the board: the mouse through the camera (the middle of the view
/// while looking around), or the laser in VR.
#[allow(clippy::too_many_arguments)]
fn draw_on_board(
    actions: Res<Actions>,
    mode: Res<InputMode>,
    lock: Res<PointerLock>,
    input: Res<ChatInput>,
    on_panel: Res<LaserOnPanel>,
    region: Option<Res<CurrentRegion>>,
    windows: Query<&Window, With<PrimaryWindow>>,
    cameras: Query<(&Camera, &GlobalTransform), With<Player>>,
    hovered: Option<Res<HoverMap>>,
    nodes: Query<(), With<Node>>,
    screens: Query<(&StructureView, &GlobalTransform)>,
    mut aim: ResMut<BoardAim>,
    mut board: ResMut<Whiteboard>,
    time: Res<Time<Real>>,
    link: Res<NetLink>,
) {
    let in_room = region.is_some_and(|region| region.id() == MEETING);
    let ray = if *mode == InputMode::Vr {
        actions.point
    } else {
        let point = windows
            .single()
            .ok()
            .and_then(|window| if lock.locked { Some(window.size() / 2.0) } else { window.cursor_position() });
        cameras.single().ok().zip(point).and_then(|((camera, eye), point)| camera.viewport_to_world(eye, point).ok())
    };
    // The mouse over a panel or a button is on the panel, not on the board behind it.
    let over_ui = hovered
        .as_ref()
        .and_then(|hovered| hovered.get(&PointerId::Mouse))
        .is_some_and(|hits| hits.keys().any(|entity| nodes.contains(*entity)));
    let on_ui = on_panel.0 || (*mode != InputMode::Vr && over_ui);
    let hit = ray.filter(|_| in_room && !on_ui && !input.open).and_then(|ray| {
        screens.iter().filter(|(StructureView(structure), _)| structure.surface == Surface::Screen).find_map(
            |(_, at)| {
                let (face, size) = board_face(at);
                crate::vr_view::panel_hit(ray, &face, size, BOARD_REACH)
            },
        )
    });
    aim.distance = hit.map(|(distance, _)| distance);
    let stroke = match hit {
        Some((_, uv)) if actions.select.held => board.pen_at(board_point(uv)),
        _ => board.lift(),
    };
    if let Some(stroke) = stroke {
        board.sent.push((stroke.clone(), time.elapsed()));
        link.send(Command::Draw(stroke));
    }
}

/// Marks the screen that shows the board.
#[derive(Component)]
struct ShowingBoard;

/// Paints the board off the main thread, puts what shows onto the texture, and the texture onto
/// the meeting room's wall display.
#[allow(clippy::too_many_arguments)]
fn show_board(
    mut commands: Commands,
    time: Res<Time<Real>>,
    social: Option<Res<Social>>,
    mut board: ResMut<Whiteboard>,
    region: Option<Res<CurrentRegion>>,
    mut images: ResMut<Assets<Image>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
    screens: Query<(Entity, &StructureView), (With<MeshMaterial3d<ScreenMaterial>>, Without<ShowingBoard>)>,
) {
    if region.is_none_or(|region| region.id() != MEETING) {
        // The display went with the room: the next visit starts afresh, with the same pen.
        if board.image.is_some() || !board.strokes.is_empty() {
            let (pen, width) = (board.pen, board.width);
            *board = Whiteboard { pen, width, ..Whiteboard::default() };
        }
        return;
    }
    let me = social.and_then(|social| social.me).map(|key| *key.as_bytes());
    board.take_painted(me, time.elapsed());
    board.paint();
    let handle = match &board.image {
        Some(handle) => handle.clone(),
        None => {
            let (width, height) = BOARD_PIXELS;
            let shown = Canvas::blank(width, height);
            let handle = images.add(Image::new(
                Extent3d { width, height, depth_or_array_layers: 1 },
                TextureDimension::D2,
                shown.rgba.clone(),
                TextureFormat::Rgba8UnormSrgb,
                RenderAssetUsages::RENDER_WORLD | RenderAssetUsages::MAIN_WORLD,
            ));
            board.shown.get_or_insert(shown);
            board.image = Some(handle.clone());
            handle
        }
    };
    for (entity, StructureView(structure)) in &screens {
        if structure.surface == Surface::Screen {
            let material = materials.add(crate::materials::picture_on_screen(handle.clone()));
            commands
                .entity(entity)
                .remove::<MeshMaterial3d<ScreenMaterial>>()
                .insert((MeshMaterial3d(material), ShowingBoard));
        }
    }
    if !board.changed {
        return;
    }
    board.changed = false;
    if let (Some(shown), Some(mut image)) = (&board.shown, images.get_mut(&handle)) {
        match &mut image.data {
            Some(data) if data.len() == shown.rgba.len() => data.copy_from_slice(&shown.rgba),
            data => *data = Some(shown.rgba.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn board_words_choose_the_pen_and_erase() {
        assert_eq!(board_word(""), Ok(BoardWord::Help));
        assert_eq!(board_word(" clear "), Ok(BoardWord::Clear));
        assert_eq!(board_word("Red"), Ok(BoardWord::Pen(Some(2), None)));
        assert_eq!(board_word("width 4"), Ok(BoardWord::Pen(None, Some(4))));
        assert_eq!(board_word("blue 8"), Ok(BoardWord::Pen(Some(1), Some(8))));
        assert!(board_word("width 0").is_err());
        assert!(board_word("width 99").is_err());
        assert!(board_word("width").is_err());
        assert!(board_word("chartreuse").is_err());
    }

    #[test]
    fn the_face_of_the_board_maps_to_board_points() {
        // The meeting room's display: 5 m by 2.6 m, 8 cm deep, facing +z.
        let at = GlobalTransform::from(Transform::from_xyz(0.0, 2.4, -6.85).with_scale(Vec3::new(5.0, 2.6, 0.08)));
        let (face, size) = board_face(&at);
        let toward = |x: f32, y: f32| Ray3d::new(Vec3::new(x, y, 0.0), Dir3::NEG_Z);
        let (distance, uv) = crate::vr_view::panel_hit(toward(-2.0, 3.4), &face, size, BOARD_REACH).expect("hits");
        assert!((distance - 6.81).abs() < 1e-3);
        let point = board_point(uv);
        // 0.5 m from the left edge of 5 m, 0.3 m below the top of 2.6 m.
        assert!((6400..6700).contains(&point[0]) && (7400..7700).contains(&point[1]), "{point:?}");
        assert!(crate::vr_view::panel_hit(toward(2.6, 2.4), &face, size, BOARD_REACH).is_none(), "beside it");
        assert!(crate::vr_view::panel_hit(toward(0.0, 2.4), &face, size, 5.0).is_none(), "out of reach");
        assert_eq!(board_point(Vec2::new(-1.0, 2.0)), [0, 65535]);
    }

    #[test]
    fn a_stroke_drawn_shows_at_once_and_goes_when_lifted_or_full() {
        let mut board = Whiteboard { shown: Some(Canvas::blank(BOARD_PIXELS.0, BOARD_PIXELS.1)), ..Default::default() };
        assert_eq!(board.pen_at([1000, 1000]), None);
        assert!(board.changed && board.shown != Some(Canvas::blank(BOARD_PIXELS.0, BOARD_PIXELS.1)), "shown at once");
        // A point closer than the spacing is not taken.
        assert_eq!(board.pen_at([1010, 1000]), None);
        assert_eq!(board.drawing.as_ref().map(Vec::len), Some(1));
        let stroke = board.lift().expect("a stroke");
        assert_eq!((stroke.points.len(), stroke.width, stroke.colour), (1, 2, PENS[0].1));
        assert_eq!(board.lift(), None, "lifted once");
        // A long line goes out in strokes of the most points, each starting where the last ended.
        let mut sent = Vec::new();
        for step in 0..320u16 {
            sent.extend(board.pen_at([step * 200, 30000]));
        }
        sent.extend(board.lift());
        assert_eq!(sent.iter().map(|stroke| stroke.points.len()).collect::<Vec<_>>(), vec![MAX_POINTS, 65]);
        assert_eq!(sent[1].points[0], sent[0].points[MAX_POINTS - 1]);
    }

    #[test]
    fn a_board_with_strokes_added_is_painted_onto_and_a_changed_one_afresh() {
        let line = |y: u16, colour: [u8; 3]| Stroke {
            author: [1; 32],
            at_us: u64::from(y),
            colour,
            width: 4,
            points: vec![[1000, y], [60000, y]],
        };
        let mut board = Whiteboard::default();
        let wait = |board: &mut Whiteboard| {
            board.paint();
            while board.painting.is_some() {
                board.take_painted(None, Duration::ZERO);
                std::thread::sleep(Duration::from_millis(2));
            }
        };
        board.take(&Event::Board(vec![line(10000, [200, 0, 0])]));
        wait(&mut board);
        board.take(&Event::Board(vec![line(10000, [200, 0, 0]), line(40000, [0, 0, 200])]));
        wait(&mut board);
        let added = board.shown.clone().expect("shown");
        assert_eq!(added, render(&board.strokes, BOARD_PIXELS.0, BOARD_PIXELS.1).canvas);
        // The first stroke erased: painted afresh.
        board.take(&Event::Board(vec![line(40000, [0, 0, 200])]));
        wait(&mut board);
        assert_eq!(board.shown, Some(render(&board.strokes, BOARD_PIXELS.0, BOARD_PIXELS.1).canvas));
        assert_ne!(board.shown, Some(added));
        // Our stroke on its way shows on top until the board holds it.
        let ours = Stroke { author: [7; 32], ..line(20000, [0, 200, 0]) };
        board.sent.push((ours.clone(), Duration::from_secs(1)));
        board.take(&Event::Board(vec![line(40000, [0, 0, 200]), line(50000, [0, 0, 200])]));
        wait(&mut board);
        assert_eq!(board.sent.len(), 1, "still on its way");
        board.take(&Event::Board(vec![line(40000, [0, 0, 200]), line(50000, [0, 0, 200]), ours.clone()]));
        board.paint();
        while board.painting.is_some() {
            board.take_painted(Some([7; 32]), Duration::from_secs(2));
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(board.sent.is_empty(), "held by the board");
    }
}
