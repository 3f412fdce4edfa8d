//! The whiteboard's strokes drawn into pixels: pure, no Bevy, so that what a board costs to
//! draw is bounded and tested here.
//!
//! A stroke is a chain of round-capped segments (capsules) filled row by row, each pixel of a
//! segment written once. Strokes come from anyone, and one as wide as the board allows, zigzagging
//! corner to corner through 256 points, would take seconds to draw; so a stroke that would cost
//! more than [`MAX_STROKE_COST`] pixel writes is left out, and a whole board draws at most
//! [`BOARD_BUDGET`] of them, newest first: older strokes past the budget stay hidden (and are
//! counted). Every peer applies the same rules to the same strokes, so everyone sees the same
//! board.

use sanctuary_net::whiteboard::Stroke;

/// The board's picture, across and down: the meeting room's wall display is 5 m by 2.6 m.
pub const BOARD_PIXELS: (u32, u32) = (1024, 532);
/// The board's colour.
pub const PAPER: [u8; 3] = [240, 241, 236];
/// The most pixel writes one stroke may cost and still be drawn (an honest marker stroke across
/// the whole board costs well under a tenth of it).
pub const MAX_STROKE_COST: u64 = 4_000_000;
/// The most pixel writes drawing a whole board may cost (about 50 ms on one core).
pub const BOARD_BUDGET: u64 = 48_000_000;

/// Board coordinates run 0 to 65535 across and down.
const BOARD_UNITS: f32 = 65_536.0;

/// An RGBA picture of the board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canvas {
    /// Pixels across.
    pub width: u32,
    /// Pixels down.
    pub height: u32,
    /// Four bytes a pixel, row by row from the top.
    pub rgba: Vec<u8>,
}

/// A point on the canvas, in pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Dot {
    x: f32,
    y: f32,
}

impl Canvas {
    /// A clean board of `width` by `height` pixels.
    pub fn blank(width: u32, height: u32) -> Self {
        let pixels = width as usize * height as usize;
        let mut rgba = Vec::with_capacity(pixels * 4);
        for _ in 0..pixels {
            rgba.extend_from_slice(&[PAPER[0], PAPER[1], PAPER[2], 255]);
        }
        Self { width, height, rgba }
    }

    fn dot(&self, point: [u16; 2]) -> Dot {
        Dot {
            x: (f32::from(point[0]) + 0.5) * self.width as f32 / BOARD_UNITS,
            y: (f32::from(point[1]) + 0.5) * self.height as f32 / BOARD_UNITS,
        }
    }

    /// A stroke's radius in pixels (its width is in 1/256 of the board's width).
    fn radius(&self, width: u8) -> f32 {
        (f32::from(width) * self.width as f32 / 256.0 / 2.0).max(0.75)
    }

    /// The pixel writes drawing `stroke` costs: an upper bound, so that it can be checked
    /// before drawing.
    pub fn cost(&self, stroke: &Stroke) -> u64 {
        let radius = self.radius(stroke.width);
        let rows = u64::from((2.0 * radius).ceil() as u32 + 2);
        let mut cost = 0u64;
        let mut previous: Option<Dot> = None;
        for point in &stroke.points {
            let dot = self.dot(*point);
            let from = previous.unwrap_or(dot);
            let length = (dot.x - from.x).hypot(dot.y - from.y).ceil() as u64;
            // A capsule fits in a rectangle as long as the segment and its caps and as wide as
            // the stroke; and each row it crosses is looked at once.
            let rise = (dot.y - from.y).abs().ceil() as u64;
            cost = cost.saturating_add((length + rows) * rows + rise + rows);
            previous = Some(dot);
        }
        cost
    }

    /// Draws `stroke` on the canvas, whatever it costs (see [`render`] for the bounds).
    pub fn paint(&mut self, stroke: &Stroke) {
        let radius = self.radius(stroke.width);
        let mut previous: Option<Dot> = None;
        for point in &stroke.points {
            let dot = self.dot(*point);
            self.capsule(previous.unwrap_or(dot), dot, radius, stroke.colour);
            previous = Some(dot);
        }
    }

    /// Draws one segment of a stroke being drawn (`from` to `to`, in board coordinates).
    pub fn paint_segment(&mut self, from: [u16; 2], to: [u16; 2], width: u8, colour: [u8; 3]) {
        let radius = self.radius(width);
        self.capsule(self.dot(from), self.dot(to), radius, colour);
    }

    /// Fills every pixel whose centre lies within `radius` of the segment `a`–`b`.
    fn capsule(&mut self, a: Dot, b: Dot, radius: f32, colour: [u8; 3]) {
        if self.width == 0 || self.height == 0 {
            return;
        }
        let (dx, dy) = (b.x - a.x, b.y - a.y);
        let length_sq = dx * dx + dy * dy;
        let top = (a.y.min(b.y) - radius).floor().max(0.0) as u32;
        let bottom = ((a.y.max(b.y) + radius).ceil().max(0.0) as u32).min(self.height - 1);
        let radius_sq = radius * radius;
        for row in top..=bottom {
            let y = row as f32 + 0.5;
            // The capsule is convex: its cut by this row is one span, the union of the cuts of
            // its two end discs and of the band between them.
            let mut span: Option<(f32, f32)> = None;
            let mut widen = |from: f32, to: f32| {
                if from <= to {
                    span = Some(span.map_or((from, to), |(low, high)| (low.min(from), high.max(to))));
                }
            };
            for end in [a, b] {
                let rise = y - end.y;
                let half = radius_sq - rise * rise;
                if half >= 0.0 {
                    let half = half.sqrt();
                    widen(end.x - half, end.x + half);
                }
            }
            if length_sq > 1e-6 {
                // Points p = (x, y) with 0 <= (p - a)·d <= |d|² and |(p - a)×d| <= r|d|.
                let (mut low, mut high) = (f32::NEG_INFINITY, f32::INFINITY);
                let mut within = |coefficient: f32, constant: f32, least: f32, most: f32| {
                    // least <= coefficient·x + constant <= most
                    if coefficient.abs() < 1e-6 {
                        if constant < least || constant > most {
                            low = f32::INFINITY;
                        }
                    } else {
                        let (first, second) = ((least - constant) / coefficient, (most - constant) / coefficient);
                        low = low.max(first.min(second));
                        high = high.min(first.max(second));
                    }
                };
                let rise = y - a.y;
                within(dx, -a.x * dx + rise * dy, 0.0, length_sq);
                let reach = radius * length_sq.sqrt();
                within(-dy, a.x * dy + rise * dx, -reach, reach);
                widen(low, high);
            }
            let Some((low, high)) = span else { continue };
            // Pixels whose centres (column + 0.5) fall within the span.
            let first = (low - 0.5).ceil().max(0.0);
            let last = (high - 0.5).floor().min(self.width as f32 - 1.0);
            if first > last {
                continue;
            }
            let start = (row as usize * self.width as usize + first as usize) * 4;
            let end = (row as usize * self.width as usize + last as usize + 1) * 4;
            for pixel in self.rgba[start..end].chunks_exact_mut(4) {
                pixel[..3].copy_from_slice(&colour);
            }
        }
    }
}

/// A board drawn, and what of it could not be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The picture.
    pub canvas: Canvas,
    /// Strokes left out for costing more than [`MAX_STROKE_COST`] each.
    pub too_big: usize,
    /// Older strokes left out once the newest had spent [`BOARD_BUDGET`].
    pub hidden: usize,
    /// The pixel writes spent on it.
    pub spent: u64,
}

/// Draws `strokes` (the oldest first) on a clean board of `width` by `height` pixels, within
/// the bounds of the module.
pub fn render(strokes: &[Stroke], width: u32, height: u32) -> Rendered {
    let mut canvas = Canvas::blank(width, height);
    let mut drawn = vec![false; strokes.len()];
    let (mut spent, mut too_big, mut hidden) = (0u64, 0, 0);
    for (at, stroke) in strokes.iter().enumerate().rev() {
        let cost = canvas.cost(stroke);
        if cost > MAX_STROKE_COST {
            too_big += 1;
        } else if spent.saturating_add(cost) > BOARD_BUDGET {
            hidden += 1;
        } else {
            spent += cost;
            drawn[at] = true;
        }
    }
    for (stroke, _) in strokes.iter().zip(&drawn).filter(|(_, drawn)| **drawn) {
        canvas.paint(stroke);
    }
    Rendered { canvas, too_big, hidden, spent }
}

/// Draws `added` (newer strokes) onto a board already drawn, leaving out strokes too big to
/// draw; `false`, with nothing drawn, when that would spend more than [`BOARD_BUDGET`] on the
/// board in all (it is then drawn afresh with [`render`], which hides the oldest).
pub fn extend(rendered: &mut Rendered, added: &[Stroke]) -> bool {
    let costs: Vec<u64> = added.iter().map(|stroke| rendered.canvas.cost(stroke)).collect();
    let spending: u64 = costs.iter().filter(|cost| **cost <= MAX_STROKE_COST).sum();
    if rendered.spent.saturating_add(spending) > BOARD_BUDGET {
        return false;
    }
    for (stroke, cost) in added.iter().zip(costs) {
        if cost > MAX_STROKE_COST {
            rendered.too_big += 1;
        } else {
            rendered.canvas.paint(stroke);
        }
    }
    rendered.spent += spending;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const INK: [u8; 3] = [20, 30, 200];

    fn stroke(points: &[[u16; 2]], width: u8) -> Stroke {
        Stroke { author: [1; 32], at_us: 1, colour: INK, width, points: points.to_vec() }
    }

    fn inked(canvas: &Canvas, x: u32, y: u32) -> bool {
        let at = (y * canvas.width + x) as usize * 4;
        canvas.rgba[at..at + 3] == INK
    }

    fn inked_count(canvas: &Canvas) -> usize {
        canvas.rgba.chunks_exact(4).filter(|pixel| pixel[..3] == INK).count()
    }

    #[test]
    fn a_line_covers_its_pixels_and_nothing_far_from_it() {
        let mut canvas = Canvas::blank(256, 128);
        // Across the middle, width 4/256 of the board: 4 pixels here.
        canvas.paint(&stroke(&[[8192, 32768], [57344, 32768]], 4));
        assert!(inked(&canvas, 32, 64) && inked(&canvas, 128, 64) && inked(&canvas, 223, 64));
        assert!(inked(&canvas, 128, 62) && inked(&canvas, 128, 65), "its width");
        assert!(!inked(&canvas, 128, 60) && !inked(&canvas, 128, 68), "not beyond it");
        assert!(!inked(&canvas, 20, 64) && !inked(&canvas, 240, 64), "not past its round ends");
        // About length × width plus the caps.
        let count = inked_count(&canvas);
        assert!((750..=850).contains(&count), "{count} pixels");
    }

    #[test]
    fn a_diagonal_is_as_wide_as_a_straight_line_and_a_dot_is_round() {
        let mut canvas = Canvas::blank(256, 256);
        canvas.paint(&stroke(&[[0, 0], [65535, 65535]], 8));
        // 8 px wide: across the diagonal about 8 / cos 45° ≈ 11 pixels of each row.
        let row: usize = (0..256).filter(|x| inked(&canvas, *x, 128)).count();
        assert!((10..=13).contains(&row), "{row} pixels across");
        let mut dot = Canvas::blank(256, 256);
        dot.paint(&stroke(&[[32768, 32768]], 16));
        // A disc of radius 8: about 201 pixels.
        let count = inked_count(&dot);
        assert!((190..=215).contains(&count), "{count} pixels");
        assert!(inked(&dot, 128, 121) && inked(&dot, 121, 128) && !inked(&dot, 121, 121));
    }

    #[test]
    fn strokes_at_the_edges_stay_on_the_board() {
        let mut canvas = Canvas::blank(64, 32);
        canvas.paint(&stroke(&[[0, 0], [65535, 0], [65535, 65535], [0, 65535], [0, 0]], 64));
        assert_eq!(canvas.rgba.len(), 64 * 32 * 4, "nothing written past it");
        assert!(inked(&canvas, 0, 0) && inked(&canvas, 63, 31));
        let mut empty = Canvas::blank(0, 0);
        empty.paint(&stroke(&[[10, 10], [20, 20]], 1));
        assert!(empty.rgba.is_empty());
    }

    #[test]
    fn the_cost_bounds_the_work() {
        let (width, height) = BOARD_PIXELS;
        let canvas = Canvas::blank(width, height);
        for (points, pen) in [
            (vec![[0, 0], [65535, 65535]], 64u8),
            (vec![[100, 30000], [60000, 31000], [2000, 500]], 2),
            (vec![[40000, 40000]], 10),
        ] {
            let line = stroke(&points, pen);
            let mut drawn = canvas.clone();
            drawn.paint(&line);
            assert!(inked_count(&drawn) as u64 <= canvas.cost(&line), "{points:?} at {pen}");
        }
        // An honest marker stroke across the board is cheap; a hostile one is not drawn.
        let marker: Vec<[u16; 2]> = (0..256).map(|at| [at * 255, 30000 + (at % 7) * 100]).collect();
        assert!(canvas.cost(&stroke(&marker, 3)) < MAX_STROKE_COST / 10);
        let zigzag: Vec<[u16; 2]> = (0..256u16).map(|at| [if at % 2 == 0 { 0 } else { 65535 }, at * 255]).collect();
        assert!(canvas.cost(&stroke(&zigzag, 64)) > MAX_STROKE_COST);
    }

    #[test]
    fn a_hostile_board_draws_within_budget_keeping_the_newest() {
        let (width, height) = BOARD_PIXELS;
        let zigzag: Vec<[u16; 2]> = (0..256u16).map(|at| [if at % 2 == 0 { 0 } else { 65535 }, at * 255]).collect();
        let mut strokes: Vec<Stroke> = (0..4096u16)
            .map(|at| {
                // Wide bars across the board, each just under the cost of one stroke.
                let y = at.wrapping_mul(97) % 65000;
                stroke(&[[0, y], [65535, y], [0, y.wrapping_add(300)]], 64)
            })
            .collect();
        strokes.extend((0..3).map(|_| stroke(&zigzag, 64)));
        strokes.push(stroke(&[[30000, 30000], [35000, 30000]], 2));
        let rendered = render(&strokes, width, height);
        assert_eq!(rendered.too_big, 3, "the zigzags");
        assert!(rendered.hidden > 4000, "most bars are past the budget: {}", rendered.hidden);
        let newest = Canvas::blank(width, height).dot([32000, 30000]);
        let at = (newest.y as u32 * width + newest.x as u32) as usize * 4;
        assert_eq!(&rendered.canvas.rgba[at..at + 3], &INK, "the newest is drawn, on top");
    }

    #[test]
    fn drawing_more_onto_a_board_equals_drawing_it_whole() {
        let strokes = [
            stroke(&[[1000, 1000], [30000, 20000]], 3),
            Stroke { colour: [200, 0, 0], ..stroke(&[[20000, 1000], [5000, 40000]], 6) },
            stroke(&[[50000, 50000]], 12),
        ];
        let whole = render(&strokes, 300, 160);
        let mut part = render(&strokes[..1], 300, 160);
        assert!(extend(&mut part, &strokes[1..]));
        assert_eq!(part, whole);
        let (width, height) = BOARD_PIXELS;
        let zigzag: Vec<[u16; 2]> = (0..256u16).map(|at| [if at % 2 == 0 { 0 } else { 65535 }, at * 255]).collect();
        let mut big = render(&[], width, height);
        assert!(extend(&mut big, &[stroke(&zigzag, 64)]));
        assert_eq!((big.too_big, &big.canvas), (1, &Canvas::blank(width, height)), "left out");
        // Past the budget a board is drawn afresh, so that it shows what a newcomer's shows.
        let bar = |y: u16| stroke(&[[0, y], [65535, y], [0, y + 300]], 64);
        let mut full = render(&(0..60).map(|at| bar(at * 1000)).collect::<Vec<_>>(), width, height);
        assert_eq!(full.hidden, 0);
        let before = full.clone();
        assert!(!extend(&mut full, &(0..10).map(|at| bar(at * 1000 + 500)).collect::<Vec<_>>()));
        assert_eq!(full, before, "nothing drawn");
    }
}
