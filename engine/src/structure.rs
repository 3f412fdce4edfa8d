//! Structures: the things builders place, made of primitive shapes.

use glam::{Quat, Vec3};
use serde::{Deserialize, Serialize};

/// The primitive shapes a structure can be. Each is a unit shape that the placement scales:
/// a cuboid is 1 m on a side, a sphere and a cylinder are 1 m across, and so on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Shape {
    /// A box, 1 m on each side.
    Cuboid,
    /// A ball, 1 m across.
    Sphere,
    /// An upright cylinder, 1 m across and 1 m tall.
    Cylinder,
    /// An upright cone, 1 m across at the base and 1 m tall.
    Cone,
    /// A ring lying flat: its outside diameter is the placement's x scale (z should match) and
    /// its round tube is as thick as the y scale.
    Ring,
}

impl Shape {
    /// Every shape, in the order a builder's palette lists them.
    pub const ALL: [Shape; 5] = [Shape::Cuboid, Shape::Sphere, Shape::Cylinder, Shape::Cone, Shape::Ring];
}

/// How a surface looks, in terms a renderer of any kind can honour.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Surface {
    /// Plain, lit by the scene's lights.
    Matte,
    /// Gives off its own light; `strength` 1.0 is as bright as its colour, more blooms.
    Glow {
        /// How many times brighter than its colour the surface shines.
        strength: f32,
    },
    /// The glowing street-and-parcel grid of the city, drawn on the ground.
    NeonGrid,
    /// A screen that shows moving pictures (the cinema's, the lecture hall's slides).
    Screen,
}

/// A colour in sRGB, 8 bits a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rgb {
    /// Red.
    pub r: u8,
    /// Green.
    pub g: u8,
    /// Blue.
    pub b: u8,
}

impl Rgb {
    /// A colour from its three channels.
    pub const fn new(r: u8, g: u8, b: u8) -> Self {
        Self { r, g, b }
    }

    /// The channels as floats in `[0, 1]`.
    pub fn to_f32(self) -> [f32; 3] {
        [self.r, self.g, self.b].map(|channel| f32::from(channel) / 255.0)
    }
}

/// Where a structure stands, how it is turned and how big it is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    /// Position of the shape's centre, in metres.
    pub translation: Vec3,
    /// Orientation.
    pub rotation: Quat,
    /// Size along each axis, in metres for the unit shapes.
    pub scale: Vec3,
}

impl Placement {
    /// A shape of `size` centred at `translation`, not turned.
    pub fn new(translation: Vec3, size: Vec3) -> Self {
        Self { translation, rotation: Quat::IDENTITY, scale: size }
    }

    /// A shape of `size` whose base rests on `base` (its centre is half its height above).
    pub fn standing(base: Vec3, size: Vec3) -> Self {
        Self::new(base + Vec3::Y * size.y * 0.5, size)
    }

    /// The same placement turned about the vertical axis by `yaw` radians.
    pub fn turned(mut self, yaw: f32) -> Self {
        self.rotation = Quat::from_rotation_y(yaw) * self.rotation;
        self
    }

    /// The same placement turned by `rotation`.
    pub fn rotated(mut self, rotation: Quat) -> Self {
        self.rotation = rotation * self.rotation;
        self
    }

    /// The highest point of the placed unit shape (every unit shape fits in a 1 m cube).
    pub fn top(&self) -> f32 {
        self.aabb().1.y
    }

    /// The smallest and largest corners of the axis-aligned box around the placed shape.
    pub fn aabb(&self) -> (Vec3, Vec3) {
        let half = self.scale * 0.5;
        (0..8)
            .map(|corner| {
                let sign = |bit: u32| if corner & bit == 0 { -1.0 } else { 1.0 };
                self.translation + self.rotation * (Vec3::new(sign(1), sign(2), sign(4)) * half)
            })
            .fold((Vec3::splat(f32::MAX), Vec3::splat(f32::MIN)), |(low, high), corner| {
                (low.min(corner), high.max(corner))
            })
    }
}

/// One placed primitive: a shape, where it is, its colour and its surface.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Structure {
    /// Which primitive.
    pub shape: Shape,
    /// Where and how big.
    pub placement: Placement,
    /// Its colour.
    pub colour: Rgb,
    /// How it looks.
    pub surface: Surface,
}

impl Structure {
    /// A matte structure.
    pub fn matte(shape: Shape, placement: Placement, colour: Rgb) -> Self {
        Self { shape, placement, colour, surface: Surface::Matte }
    }

    /// A glowing structure.
    pub fn glowing(shape: Shape, placement: Placement, colour: Rgb, strength: f32) -> Self {
        Self { shape, placement, colour, surface: Surface::Glow { strength } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standing_rests_on_its_base() {
        let placement = Placement::standing(Vec3::new(1.0, 2.0, 3.0), Vec3::new(4.0, 10.0, 4.0));
        assert_eq!(placement.translation, Vec3::new(1.0, 7.0, 3.0));
        assert!((placement.top() - 12.0).abs() < 1e-5);
    }

    #[test]
    fn top_accounts_for_rotation() {
        // A 10 m long beam tipped onto its side reaches only half its width up.
        let beam = Placement::new(Vec3::ZERO, Vec3::new(1.0, 10.0, 1.0))
            .rotated(Quat::from_rotation_z(std::f32::consts::FRAC_PI_2));
        assert!((beam.top() - 0.5).abs() < 1e-4, "top was {}", beam.top());
    }
}
