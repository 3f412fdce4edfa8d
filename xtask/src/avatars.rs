//! `cargo xtask avatars`: makes the default avatars in `assets/avatars/` from nothing but code,
//! so that they are ours to ship (CC0, like this file's output).
//!
//! Each is a VRM 1.0 model: one skinned mesh of boxes, every box moved rigidly by one bone of
//! the humanoid skeleton, one material whose colours come from a small palette texture (a PNG
//! written here, uncompressed), glowing softly in them so that they read in the neon-lit world
//! (so each is one draw call and ranks Excellent), and a `VRMC_vrm` extension naming its bones. The eight differ in height, build,
//! skin, clothes, hair and what they carry, so that a crowd of them does not look cloned.

use std::path::Path;

use anyhow::Context as _;
use serde_json::{Map, Value, json};

/// An avatar's look.
struct Look {
    name: &'static str,
    /// Height and width against the 1.75 m model.
    height: f32,
    width: f32,
    skin: [f32; 3],
    shirt: [f32; 3],
    trousers: [f32; 3],
    shoes: [f32; 3],
    hair: [f32; 3],
    hair_style: Hair,
    extra: Extra,
}

#[derive(Clone, Copy, PartialEq)]
enum Hair {
    Short,
    Long,
    Bun,
    Hat,
    Bald,
}

#[derive(Clone, Copy, PartialEq)]
enum Extra {
    None,
    Backpack,
    Skirt,
    Scarf,
}

const LOOKS: [Look; 8] = [
    Look {
        name: "aurora",
        height: 1.0,
        width: 1.0,
        skin: [0.87, 0.67, 0.55],
        shirt: [0.85, 0.18, 0.62],
        trousers: [0.15, 0.16, 0.3],
        shoes: [0.95, 0.95, 0.95],
        hair: [0.3, 0.16, 0.08],
        hair_style: Hair::Long,
        extra: Extra::None,
    },
    Look {
        name: "basalt",
        height: 1.08,
        width: 1.12,
        skin: [0.42, 0.27, 0.18],
        shirt: [0.1, 0.55, 0.6],
        trousers: [0.22, 0.22, 0.24],
        shoes: [0.12, 0.1, 0.1],
        hair: [0.05, 0.05, 0.05],
        hair_style: Hair::Short,
        extra: Extra::Backpack,
    },
    Look {
        name: "cirrus",
        height: 0.93,
        width: 0.92,
        skin: [0.96, 0.8, 0.7],
        shirt: [0.95, 0.85, 0.3],
        trousers: [0.55, 0.2, 0.75],
        shoes: [0.3, 0.2, 0.12],
        hair: [0.95, 0.82, 0.45],
        hair_style: Hair::Bun,
        extra: Extra::Skirt,
    },
    Look {
        name: "dune",
        height: 1.03,
        width: 1.04,
        skin: [0.72, 0.5, 0.34],
        shirt: [0.9, 0.45, 0.15],
        trousers: [0.35, 0.28, 0.18],
        shoes: [0.2, 0.15, 0.1],
        hair: [0.2, 0.12, 0.06],
        hair_style: Hair::Hat,
        extra: Extra::Scarf,
    },
    Look {
        name: "ember",
        height: 0.97,
        width: 0.98,
        skin: [0.55, 0.36, 0.24],
        shirt: [0.75, 0.1, 0.12],
        trousers: [0.08, 0.08, 0.1],
        shoes: [0.8, 0.1, 0.1],
        hair: [0.85, 0.3, 0.1],
        hair_style: Hair::Short,
        extra: Extra::None,
    },
    Look {
        name: "fjord",
        height: 1.1,
        width: 0.96,
        skin: [0.93, 0.74, 0.62],
        shirt: [0.2, 0.35, 0.85],
        trousers: [0.6, 0.6, 0.62],
        shoes: [0.1, 0.1, 0.1],
        hair: [0.6, 0.6, 0.62],
        hair_style: Hair::Bald,
        extra: Extra::Backpack,
    },
    Look {
        name: "grove",
        height: 0.96,
        width: 1.06,
        skin: [0.33, 0.21, 0.14],
        shirt: [0.2, 0.7, 0.3],
        trousers: [0.9, 0.88, 0.8],
        shoes: [0.35, 0.5, 0.2],
        hair: [0.08, 0.06, 0.05],
        hair_style: Hair::Long,
        extra: Extra::Skirt,
    },
    Look {
        name: "halo",
        height: 1.02,
        width: 1.0,
        skin: [0.8, 0.6, 0.45],
        shirt: [0.95, 0.95, 0.97],
        trousers: [0.1, 0.45, 0.5],
        shoes: [0.95, 0.7, 0.1],
        hair: [0.55, 0.15, 0.65],
        hair_style: Hair::Bun,
        extra: Extra::Scarf,
    },
];

/// The bones, by VRM name, with their parent (index into this list) and rest position on the
/// 1.75 m model, facing +Z with its left hand at +X (VRM 1.0's T-pose).
const BONES: [(&str, Option<usize>, [f32; 3]); 19] = [
    ("hips", None, [0.0, 0.98, 0.0]),
    ("spine", Some(0), [0.0, 1.08, 0.0]),
    ("chest", Some(1), [0.0, 1.22, 0.0]),
    ("neck", Some(2), [0.0, 1.48, 0.0]),
    ("head", Some(3), [0.0, 1.56, 0.0]),
    ("leftShoulder", Some(2), [0.03, 1.43, 0.0]),
    ("leftUpperArm", Some(5), [0.19, 1.43, 0.0]),
    ("leftLowerArm", Some(6), [0.47, 1.43, 0.0]),
    ("leftHand", Some(7), [0.72, 1.43, 0.0]),
    ("rightShoulder", Some(2), [-0.03, 1.43, 0.0]),
    ("rightUpperArm", Some(9), [-0.19, 1.43, 0.0]),
    ("rightLowerArm", Some(10), [-0.47, 1.43, 0.0]),
    ("rightHand", Some(11), [-0.72, 1.43, 0.0]),
    ("leftUpperLeg", Some(0), [0.095, 0.94, 0.0]),
    ("leftLowerLeg", Some(13), [0.095, 0.52, 0.0]),
    ("leftFoot", Some(14), [0.095, 0.09, 0.0]),
    ("rightUpperLeg", Some(0), [-0.095, 0.94, 0.0]),
    ("rightLowerLeg", Some(16), [-0.095, 0.52, 0.0]),
    ("rightFoot", Some(17), [-0.095, 0.09, 0.0]),
];

fn bone(name: &str) -> usize {
    BONES.iter().position(|(have, _, _)| *have == name).unwrap_or(0)
}

/// A box from `min` to `max` on the 1.75 m model, moved by `bone`.
struct Part {
    min: [f32; 3],
    max: [f32; 3],
    bone: usize,
    colour: [f32; 3],
}

fn part(min: [f32; 3], max: [f32; 3], bone_name: &str, colour: [f32; 3]) -> Part {
    Part { min, max, bone: bone(bone_name), colour }
}

/// The boxes of a look; limbs of the left side, mirrored for the right.
fn parts(look: &Look) -> Vec<Part> {
    let dark = [0.06, 0.06, 0.08];
    let mut parts = vec![
        part([-0.16, 0.88, -0.1], [0.16, 1.04, 0.1], "hips", look.trousers),
        part([-0.15, 1.04, -0.1], [0.15, 1.22, 0.1], "spine", look.shirt),
        part([-0.18, 1.22, -0.11], [0.18, 1.46, 0.11], "chest", look.shirt),
        part([-0.05, 1.45, -0.05], [0.05, 1.55, 0.05], "neck", look.skin),
        part([-0.1, 1.54, -0.1], [0.1, 1.78, 0.11], "head", look.skin),
        part([0.03, 1.65, 0.11], [0.06, 1.68, 0.115], "head", dark),
        part([-0.06, 1.65, 0.11], [-0.03, 1.68, 0.115], "head", dark),
        part([-0.015, 1.61, 0.11], [0.015, 1.64, 0.13], "head", look.skin),
    ];
    for (side, sign) in [("left", 1.0f32), ("right", -1.0)] {
        let x = |a: f32, b: f32| if sign > 0.0 { (a, b) } else { (-b, -a) };
        let bone = |name: &str| format!("{side}{name}");
        let limb = |(x0, x1): (f32, f32), y: (f32, f32), z: (f32, f32), name: &str, colour| {
            part([x0, y.0, z.0], [x1, y.1, z.1], &bone(name), colour)
        };
        parts.push(limb(x(0.16, 0.47), (1.37, 1.48), (-0.055, 0.055), "UpperArm", look.shirt));
        parts.push(limb(x(0.47, 0.72), (1.385, 1.47), (-0.045, 0.045), "LowerArm", look.skin));
        parts.push(limb(x(0.72, 0.83), (1.39, 1.465), (-0.03, 0.04), "Hand", look.skin));
        parts.push(limb(x(0.02, 0.17), (0.52, 0.94), (-0.075, 0.075), "UpperLeg", look.trousers));
        parts.push(limb(x(0.03, 0.16), (0.09, 0.52), (-0.06, 0.06), "LowerLeg", look.trousers));
        parts.push(limb(x(0.03, 0.16), (0.0, 0.09), (-0.06, 0.17), "Foot", look.shoes));
    }
    match look.hair_style {
        Hair::Short => parts.push(part([-0.11, 1.72, -0.12], [0.11, 1.81, 0.1], "head", look.hair)),
        Hair::Long => {
            parts.push(part([-0.11, 1.72, -0.12], [0.11, 1.81, 0.1], "head", look.hair));
            parts.push(part([-0.12, 1.4, -0.14], [0.12, 1.76, -0.07], "head", look.hair));
        }
        Hair::Bun => {
            parts.push(part([-0.11, 1.73, -0.12], [0.11, 1.8, 0.09], "head", look.hair));
            parts.push(part([-0.06, 1.76, -0.19], [0.06, 1.86, -0.09], "head", look.hair));
        }
        Hair::Hat => {
            parts.push(part([-0.17, 1.76, -0.17], [0.17, 1.78, 0.17], "head", look.trousers));
            parts.push(part([-0.11, 1.78, -0.11], [0.11, 1.9, 0.11], "head", look.trousers));
        }
        Hair::Bald => {}
    }
    match look.extra {
        Extra::None => {}
        Extra::Backpack => parts.push(part([-0.14, 1.12, -0.23], [0.14, 1.42, -0.11], "chest", look.trousers)),
        Extra::Skirt => parts.push(part([-0.2, 0.68, -0.14], [0.2, 1.0, 0.14], "hips", look.shirt)),
        Extra::Scarf => parts.push(part([-0.1, 1.42, -0.1], [0.1, 1.5, 0.12], "neck", look.hair)),
    }
    parts
}

/// The model's vertices: position, normal, palette coordinate, bone; and its triangles.
#[derive(Default)]
struct Mesh {
    positions: Vec<[f32; 3]>,
    normals: Vec<[f32; 3]>,
    uvs: Vec<[f32; 2]>,
    joints: Vec<u8>,
    indices: Vec<u16>,
}

impl Mesh {
    fn add_box(&mut self, min: [f32; 3], max: [f32; 3], joint: u8, uv: [f32; 2]) {
        // Each face: its normal axis and sign, then four corners counter-clockwise seen from outside.
        for axis in 0..3 {
            for sign in [-1.0f32, 1.0] {
                let (u, v) = ((axis + 1) % 3, (axis + 2) % 3);
                let at = |a: bool, b: bool| {
                    let mut corner = [0.0; 3];
                    corner[axis] = if sign > 0.0 { max[axis] } else { min[axis] };
                    corner[u] = if a { max[u] } else { min[u] };
                    corner[v] = if b { max[v] } else { min[v] };
                    corner
                };
                let corners = if sign > 0.0 {
                    [at(false, false), at(true, false), at(true, true), at(false, true)]
                } else {
                    [at(false, false), at(false, true), at(true, true), at(true, false)]
                };
                let first = u16::try_from(self.positions.len()).unwrap_or(u16::MAX);
                let mut normal = [0.0; 3];
                normal[axis] = sign;
                for corner in corners {
                    self.positions.push(corner);
                    self.normals.push(normal);
                    self.uvs.push(uv);
                    self.joints.push(joint);
                }
                self.indices.extend([first, first + 1, first + 2, first, first + 2, first + 3]);
            }
        }
    }
}

/// Appends `bytes` to the buffer at a 4-byte boundary; returns (offset, length).
fn append(bin: &mut Vec<u8>, bytes: &[u8]) -> (usize, usize) {
    bin.resize(bin.len().next_multiple_of(4), 0);
    let offset = bin.len();
    bin.extend_from_slice(bytes);
    (offset, bytes.len())
}

fn floats<const N: usize>(values: &[[f32; N]]) -> Vec<u8> {
    values.iter().flatten().flat_map(|value| value.to_le_bytes()).collect()
}

/// The palette's width in pixels: one pixel a colour.
const PALETTE: usize = 8;

/// The GLB of one look.
fn avatar(look: &Look) -> anyhow::Result<Vec<u8>> {
    let scale = |p: [f32; 3]| [p[0] * look.width, p[1] * look.height, p[2] * look.width];
    let mut mesh = Mesh::default();
    let mut colours: Vec<[f32; 3]> = Vec::new();
    for part in parts(look) {
        let cell = match colours.iter().position(|colour| *colour == part.colour) {
            Some(cell) => cell,
            None => {
                colours.push(part.colour);
                colours.len() - 1
            }
        };
        anyhow::ensure!(cell < PALETTE, "{} has more than {PALETTE} colours", look.name);
        let uv = [(cell as f32 + 0.5) / PALETTE as f32, 0.5];
        mesh.add_box(scale(part.min), scale(part.max), u8::try_from(part.bone)?, uv);
    }
    let pixels: Vec<[u8; 3]> =
        (0..PALETTE).map(|cell| colours.get(cell).copied().unwrap_or([0.0; 3]).map(srgb_byte)).collect();
    let palette = png(PALETTE as u32, 1, &pixels);
    let rest: Vec<[f32; 3]> = BONES.iter().map(|(_, _, at)| scale(*at)).collect();
    let vertices = mesh.positions.len();
    let (mut low, mut high) = ([f32::MAX; 3], [f32::MIN; 3]);
    for position in &mesh.positions {
        for axis in 0..3 {
            low[axis] = low[axis].min(position[axis]);
            high[axis] = high[axis].max(position[axis]);
        }
    }

    let mut bin = Vec::new();
    let mut views = Vec::new();
    let mut view = |bin: &mut Vec<u8>, bytes: Vec<u8>, target: Option<u32>| {
        let (offset, length) = append(bin, &bytes);
        let mut view = json!({ "buffer": 0, "byteOffset": offset, "byteLength": length });
        if let Some(target) = target {
            view["target"] = json!(target);
        }
        views.push(view);
        views.len() - 1
    };
    let positions = view(&mut bin, floats(&mesh.positions), Some(34962));
    let normals = view(&mut bin, floats(&mesh.normals), Some(34962));
    let uvs = view(&mut bin, floats(&mesh.uvs), Some(34962));
    let joints: Vec<u8> = mesh.joints.iter().flat_map(|joint| [*joint, 0, 0, 0]).collect();
    let joints = view(&mut bin, joints, Some(34962));
    let weights: Vec<[f32; 4]> = vec![[1.0, 0.0, 0.0, 0.0]; vertices];
    let weights = view(&mut bin, floats(&weights), Some(34962));
    let indices: Vec<u8> = mesh.indices.iter().flat_map(|index| index.to_le_bytes()).collect();
    let indices = view(&mut bin, indices, Some(34963));
    // The inverse bind matrices undo each bone's rest position (no bone is turned at rest).
    let inverse_binds: Vec<[f32; 16]> = rest
        .iter()
        .map(|at| [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, -at[0], -at[1], -at[2], 1.0])
        .collect();
    let inverse_binds = view(&mut bin, floats(&inverse_binds), None);
    let palette = view(&mut bin, palette, None);

    let accessor = |view: usize, component: u32, kind: &str, count: usize| json!({ "bufferView": view, "componentType": component, "count": count, "type": kind });
    let mut position_accessor = accessor(positions, 5126, "VEC3", vertices);
    position_accessor["min"] = json!(low);
    position_accessor["max"] = json!(high);
    let accessors = vec![
        position_accessor,
        accessor(normals, 5126, "VEC3", vertices),
        accessor(uvs, 5126, "VEC2", vertices),
        accessor(joints, 5121, "VEC4", vertices),
        accessor(weights, 5126, "VEC4", vertices),
        accessor(indices, 5123, "SCALAR", mesh.indices.len()),
        accessor(inverse_binds, 5126, "MAT4", BONES.len()),
    ];

    // Node 0 is the avatar, node 1 its mesh, node 2 + i bone i.
    let mut nodes =
        vec![json!({ "name": look.name, "children": [1, 2] }), json!({ "name": "body", "mesh": 0, "skin": 0 })];
    let mut human_bones = Map::new();
    for (index, (name, parent, _)) in BONES.iter().enumerate() {
        let parent_at = parent.map_or([0.0; 3], |parent| rest[parent]);
        let local = [rest[index][0] - parent_at[0], rest[index][1] - parent_at[1], rest[index][2] - parent_at[2]];
        let children: Vec<usize> = BONES
            .iter()
            .enumerate()
            .filter(|(_, (_, child_parent, _))| *child_parent == Some(index))
            .map(|(child, _)| child + 2)
            .collect();
        let mut node = json!({ "name": name, "translation": local });
        if !children.is_empty() {
            node["children"] = json!(children);
        }
        nodes.push(node);
        human_bones.insert((*name).to_owned(), json!({ "node": index + 2 }));
    }
    let document = json!({
        "asset": { "version": "2.0", "generator": "sanctuary xtask avatars" },
        "extensionsUsed": ["VRMC_vrm", "KHR_materials_emissive_strength"],
        "extensions": { "VRMC_vrm": {
            "specVersion": "1.0",
            "meta": {
                "name": look.name,
                "version": "1",
                "authors": ["Sanctuary"],
                "licenseUrl": "https://creativecommons.org/publicdomain/zero/1.0/",
                "avatarPermission": "everyone",
                "commercialUsage": "corporation",
                "creditNotation": "unnecessary",
                "allowRedistribution": true,
                "modification": "allowModification"
            },
            "humanoid": { "humanBones": human_bones },
            "firstPerson": { "meshAnnotations": [{ "node": 1, "type": "auto" }] }
        } },
        "scene": 0,
        "scenes": [{ "nodes": [0] }],
        "nodes": nodes,
        "skins": [{ "joints": (2..2 + BONES.len()).collect::<Vec<_>>(), "skeleton": 2, "inverseBindMatrices": 6 }],
        "meshes": [{ "name": "body", "primitives": [{
            "attributes": { "POSITION": 0, "NORMAL": 1, "TEXCOORD_0": 2, "JOINTS_0": 3, "WEIGHTS_0": 4 },
            "indices": 5,
            "material": 0
        }] }],
        "materials": [{
            "name": "body",
            "pbrMetallicRoughness": {
                "baseColorTexture": { "index": 0 }, "metallicFactor": 0.0, "roughnessFactor": 0.8
            },
            "emissiveTexture": { "index": 0 },
            "emissiveFactor": [1.0, 1.0, 1.0],
            "extensions": { "KHR_materials_emissive_strength": { "emissiveStrength": GLOW } }
        }],
        "textures": [{ "source": 0, "sampler": 0 }],
        "samplers": [{ "magFilter": 9728, "minFilter": 9728 }],
        "images": [{ "bufferView": palette, "mimeType": "image/png" }],
        "accessors": accessors,
        "bufferViews": views,
        "buffers": [{ "byteLength": bin.len() }]
    });
    glb(&document, &bin)
}

/// How strongly the avatars glow in their own colours.
const GLOW: f32 = 1.5;

/// A linear colour channel as an sRGB byte (textures hold sRGB).
fn srgb_byte(linear: f32) -> u8 {
    let linear = linear.clamp(0.0, 1.0);
    let srgb = if linear <= 0.003_130_8 { linear * 12.92 } else { 1.055 * linear.powf(1.0 / 2.4) - 0.055 };
    (srgb * 255.0).round() as u8
}

/// An RGB PNG, its pixel data deflated as stored (uncompressed) blocks: a few bytes for a
/// palette, and no compression library needed.
fn png(width: u32, height: u32, pixels: &[[u8; 3]]) -> Vec<u8> {
    let mut raw = Vec::new();
    for row in pixels.chunks(width as usize) {
        raw.push(0); // No filter.
        raw.extend(row.iter().flatten());
    }
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (index, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(index + 1 == blocks.len()));
        let length = block.len() as u16;
        zlib.extend_from_slice(&length.to_le_bytes());
        zlib.extend_from_slice(&(!length).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    zlib.extend_from_slice(&adler32(&raw).to_be_bytes());
    let mut header = Vec::new();
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    for (kind, data) in [(b"IHDR", header), (b"IDAT", zlib), (b"IEND", Vec::new())] {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut chunk = kind.to_vec();
        chunk.extend_from_slice(&data);
        out.extend_from_slice(&chunk);
        out.extend_from_slice(&crc32(&chunk).to_be_bytes());
    }
    out
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for byte in bytes {
        a = (a + u32::from(*byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A GLB container: header, JSON chunk padded with spaces, BIN chunk padded with zeros.
fn glb(document: &Value, bin: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut json = serde_json::to_vec(document)?;
    json.resize(json.len().next_multiple_of(4), b' ');
    let mut bin = bin.to_vec();
    bin.resize(bin.len().next_multiple_of(4), 0);
    let total = u32::try_from(12 + 8 + json.len() + 8 + bin.len())?;
    let mut out = Vec::new();
    out.extend_from_slice(b"glTF");
    out.extend_from_slice(&2u32.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(&u32::try_from(json.len())?.to_le_bytes());
    out.extend_from_slice(b"JSON");
    out.extend_from_slice(&json);
    out.extend_from_slice(&u32::try_from(bin.len())?.to_le_bytes());
    out.extend_from_slice(b"BIN\0");
    out.extend_from_slice(&bin);
    Ok(out)
}

/// Writes every default avatar into `assets/avatars/`.
pub fn make() -> anyhow::Result<()> {
    let dir = crate::workspace_root().join("assets").join("avatars");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot make {}", dir.display()))?;
    for look in &LOOKS {
        let path = dir.join(format!("{}.glb", look.name));
        write(&path, &avatar(look)?)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_avatars_are_what_this_code_makes() {
        let dir = crate::workspace_root().join("assets").join("avatars");
        for look in &LOOKS {
            let path = dir.join(format!("{}.glb", look.name));
            let shipped = std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            let made = avatar(look).expect("makes");
            assert!(shipped == made, "{} differs from what `cargo xtask avatars` makes; run it again", path.display());
        }
    }
}
