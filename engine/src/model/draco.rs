//! `KHR_draco_mesh_compression` undone at import: each compressed primitive's Draco stream is
//! decoded (the pure-Rust `draco-core` decoder, under ceilings set from the model limits) and its
//! points and faces written as the plain accessors the primitive already declares. The result
//! reads like any model, with no trace of the extension, so every peer's loader draws it.
//!
//! What a file says is checked against what decodes: every accessor the stream fills must have
//! exactly as many elements as the stream has points (or, for indices, corners), the components
//! its type names, and indices within the points and their component type.

use std::collections::{BTreeMap, HashSet};

use draco_core::{DataType, DecodeLimits, DecoderBuffer, Mesh, MeshDecoder};
use gltf::json;
use gltf::json::accessor::{ComponentType, GenericComponentType, Type};
use gltf::json::mesh::Semantic;
use gltf::json::validation::Checked;
use serde::Deserialize;

use super::files::{ResourceStore, load_buffers};
use super::geometry::{accessor_count_limit, check_buffer_views};
use super::plain::{Bin, append_buffers, push_view, set_one_buffer};
use super::{ModelError, ModelLimits};

/// The extension this module undoes.
pub(super) const DRACO: &str = "KHR_draco_mesh_compression";

/// What a compressed primitive says of its stream (the extension's object).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Compressed {
    buffer_view: usize,
    /// glTF attribute name to the Draco attribute's unique id.
    attributes: BTreeMap<String, u32>,
}

/// Whether `root` has anything compressed with Draco.
pub(super) fn used(root: &json::Root) -> bool {
    root.extensions_used.iter().any(|name| name == DRACO)
        || root.meshes.iter().flat_map(|mesh| &mesh.primitives).any(|primitive| {
            primitive.extensions.as_ref().is_some_and(|extensions| extensions.others.contains_key(DRACO))
        })
}

/// Decodes every compressed primitive of `root` and returns the bytes of a GLB's BIN chunk: the
/// original buffers first, each where its views expect it, then the decoded accessors. `root`
/// then has one buffer and no trace of the extension.
pub(super) fn unpack(
    root: &mut json::Root,
    blob: Option<Vec<u8>>,
    store: &mut ResourceStore<'_>,
    limits: &ModelLimits,
) -> Result<Vec<u8>, ModelError> {
    let buffers = load_buffers(root, blob, store)?;
    let views = check_buffer_views(root)?;
    let mut bin = Bin::new(limits.max_bytes);
    append_buffers(root, &buffers, &mut bin)?;
    let ceilings = DecodeLimits::default()
        .with_max_points(accessor_count_limit(limits))
        .with_max_faces(limits.max_triangles)
        .with_max_decoded_bytes(limits.max_bytes);
    // Accessors already given their decoded elements: two primitives may share one.
    let mut filled: HashSet<usize> = HashSet::new();
    for mesh_index in 0..root.meshes.len() {
        for primitive_index in 0..root.meshes[mesh_index].primitives.len() {
            let bad = |reason: String| ModelError::BadDraco { mesh: mesh_index, primitive: primitive_index, reason };
            let primitive = &mut root.meshes[mesh_index].primitives[primitive_index];
            let taken = primitive.extensions.as_mut().and_then(|extensions| extensions.others.remove(DRACO));
            let Some(taken) = taken else { continue };
            let compressed = Compressed::deserialize(&taken)
                .map_err(|error| bad(format!("its {DRACO} object cannot be read: {error}")))?;
            let view = views.get(compressed.buffer_view).ok_or_else(|| {
                bad(format!("its stream is in buffer view {}, which does not exist", compressed.buffer_view))
            })?;
            let start = usize::try_from(view.start).unwrap_or(usize::MAX);
            let end = start.saturating_add(usize::try_from(view.length).unwrap_or(usize::MAX));
            let stream = buffers
                .get(view.buffer)
                .and_then(|buffer| buffer.get(start..end))
                .ok_or_else(|| bad(format!("its stream ({start}..{end}) runs past its buffer")))?;
            // Which accessor each decoded attribute fills, by the primitive's own names.
            let primitive = &root.meshes[mesh_index].primitives[primitive_index];
            let mut targets = Vec::with_capacity(compressed.attributes.len());
            for (name, unique_id) in &compressed.attributes {
                let accessor = primitive
                    .attributes
                    .iter()
                    .find(|(semantic, _)| semantic_name(semantic).as_deref() == Some(name.as_str()))
                    .map(|(_, accessor)| accessor.value())
                    .ok_or_else(|| bad(format!("its stream has {name}, which the primitive does not name")))?;
                targets.push((name.clone(), *unique_id, accessor));
            }
            let indices = primitive.indices.map(|accessor| accessor.value());
            let triangles = primitive.mode == Checked::Valid(json::mesh::Mode::Triangles);
            if !triangles {
                return Err(bad("a Draco stream holds triangles, but the primitive draws another mode".into()));
            }
            // Primitives that only repeat accessors already filled are not decoded again: a file
            // naming one stream from thousands of primitives costs one decode, not thousands.
            if targets.iter().all(|(_, _, accessor)| filled.contains(accessor))
                && indices.is_none_or(|accessor| filled.contains(&accessor))
            {
                continue;
            }
            let decoded = decode(stream, ceilings).map_err(&bad)?;

            for (name, unique_id, accessor_index) in targets {
                if !filled.insert(accessor_index) {
                    continue;
                }
                let accessor = root
                    .accessors
                    .get(accessor_index)
                    .ok_or_else(|| bad(format!("its {name} accessor {accessor_index} does not exist")))?;
                let shape = Shape::of(accessor).map_err(|reason| bad(format!("its {name} accessor: {reason}")))?;
                let attribute = decoded
                    .attribute_by_unique_id(unique_id)
                    .ok_or_else(|| bad(format!("its stream has no attribute {unique_id} for {name}")))?;
                if usize::from(attribute.num_components()) != shape.width {
                    return Err(bad(format!(
                        "its {name} has {} components in the stream but {} in its accessor",
                        attribute.num_components(),
                        shape.width
                    )));
                }
                let points = decoded.num_points();
                if accessor.count.0 != points as u64 {
                    return Err(bad(format!(
                        "its {name} accessor has {} elements but the stream decodes {points} points",
                        accessor.count.0
                    )));
                }
                let values = attribute.read_f32s(points, shape.width);
                let bytes = shape.write(&values, attribute.data_type() == DataType::Float32);
                let offset = bin.append(&bytes)?;
                let view = push_view(root, offset, bytes.len() as u64, None);
                let accessor = &mut root.accessors[accessor_index];
                accessor.buffer_view = Some(view);
                accessor.byte_offset = None;
                accessor.sparse = None;
                if name == "POSITION" {
                    // What was quantized in the stream may lie a hair outside the bounds the
                    // exporter wrote; they are measured again from what decoded.
                    let (min, max) = bounds(&values, shape.width);
                    accessor.min = Some(json::Value::from(min));
                    accessor.max = Some(json::Value::from(max));
                }
            }

            if let Some(accessor_index) = indices
                && filled.insert(accessor_index)
            {
                let accessor = root
                    .accessors
                    .get(accessor_index)
                    .ok_or_else(|| bad(format!("its index accessor {accessor_index} does not exist")))?;
                let shape = Shape::of(accessor).map_err(|reason| bad(format!("its index accessor: {reason}")))?;
                let corners = decoded.num_faces().saturating_mul(3);
                if shape.width != 1 || accessor.count.0 != corners as u64 {
                    return Err(bad(format!(
                        "its index accessor has {} elements but the stream decodes {corners} corners",
                        accessor.count.0
                    )));
                }
                let largest = match shape.component {
                    ComponentType::U8 => u32::from(u8::MAX),
                    ComponentType::U16 => u32::from(u16::MAX),
                    ComponentType::U32 => u32::MAX,
                    _ => return Err(bad("its indices are not unsigned integers".into())),
                };
                let points = decoded.num_points();
                let mut bytes = Vec::with_capacity(corners * component_bytes(shape.component));
                for point in decoded.faces().iter().flatten() {
                    let at = point.0;
                    if at as usize >= points || at > largest {
                        return Err(bad(format!("a face uses point {at} of its {points}")));
                    }
                    match shape.component {
                        ComponentType::U8 => bytes.push(at as u8),
                        ComponentType::U16 => bytes.extend_from_slice(&(at as u16).to_le_bytes()),
                        _ => bytes.extend_from_slice(&at.to_le_bytes()),
                    }
                }
                let offset = bin.append(&bytes)?;
                let view = push_view(root, offset, bytes.len() as u64, None);
                let accessor = &mut root.accessors[accessor_index];
                accessor.buffer_view = Some(view);
                accessor.byte_offset = None;
                accessor.sparse = None;
            }
        }
    }
    root.extensions_used.retain(|name| name != DRACO);
    root.extensions_required.retain(|name| name != DRACO);
    let bytes = bin.into_bytes();
    set_one_buffer(root, bytes.len());
    Ok(bytes)
}

/// The mesh one Draco stream holds, decoded under `ceilings`.
fn decode(stream: &[u8], ceilings: DecodeLimits) -> Result<Mesh, String> {
    let mut buffer = DecoderBuffer::new(stream).with_limits(ceilings);
    let mut mesh = Mesh::new();
    MeshDecoder::new()
        .decode(&mut buffer, &mut mesh)
        .map_err(|error| format!("its Draco stream ({} bytes) does not decode: {error}", stream.len()))?;
    Ok(mesh)
}

/// A glTF attribute's name as the extension writes it (`POSITION`, `TEXCOORD_0`, ...).
fn semantic_name(semantic: &Checked<Semantic>) -> Option<String> {
    match semantic {
        Checked::Valid(semantic) => match json::serialize::to_value(semantic) {
            Ok(json::Value::String(name)) => Some(name),
            _ => None,
        },
        Checked::Invalid => None,
    }
}

/// How an accessor's elements are written: component type, components and normalisation.
struct Shape {
    component: ComponentType,
    width: usize,
    normalized: bool,
}

impl Shape {
    fn of(accessor: &json::Accessor) -> Result<Shape, String> {
        let (Checked::Valid(GenericComponentType(component)), Checked::Valid(dimensions)) =
            (accessor.component_type, accessor.type_)
        else {
            return Err("its componentType or type is not a glTF value".into());
        };
        let width = match dimensions {
            Type::Scalar => 1,
            Type::Vec2 => 2,
            Type::Vec3 => 3,
            Type::Vec4 => 4,
            _ => return Err("a matrix cannot come from a Draco stream".into()),
        };
        Ok(Shape { component, width, normalized: accessor.normalized })
    }

    /// `values` (as the stream stores them, widened to floats) in this accessor's form;
    /// `floats` when the stream stored floats.
    fn write(&self, values: &[f32], floats: bool) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(values.len() * component_bytes(self.component));
        for &value in values {
            // Integers as the stream stores them; floats the stream holds for a normalised
            // integer accessor are scaled into it first. Casts saturate at the type's ends.
            let scale = match self.component {
                _ if !(self.normalized && floats) => 1.0,
                ComponentType::I8 => 127.0,
                ComponentType::U8 => 255.0,
                ComponentType::I16 => 32767.0,
                ComponentType::U16 => 65535.0,
                ComponentType::U32 | ComponentType::F32 => 1.0,
            };
            let value = if self.component == ComponentType::F32 { value } else { (value * scale).round() };
            match self.component {
                ComponentType::I8 => bytes.push((value as i8) as u8),
                ComponentType::U8 => bytes.push(value as u8),
                ComponentType::I16 => bytes.extend_from_slice(&(value as i16).to_le_bytes()),
                ComponentType::U16 => bytes.extend_from_slice(&(value as u16).to_le_bytes()),
                ComponentType::U32 => bytes.extend_from_slice(&(value as u32).to_le_bytes()),
                ComponentType::F32 => bytes.extend_from_slice(&value.to_le_bytes()),
            }
        }
        bytes
    }
}

fn component_bytes(component: ComponentType) -> usize {
    match component {
        ComponentType::I8 | ComponentType::U8 => 1,
        ComponentType::I16 | ComponentType::U16 => 2,
        ComponentType::U32 | ComponentType::F32 => 4,
    }
}

/// The smallest and largest of each component.
fn bounds(values: &[f32], width: usize) -> (Vec<f32>, Vec<f32>) {
    let mut min = vec![f32::INFINITY; width];
    let mut max = vec![f32::NEG_INFINITY; width];
    for element in values.chunks_exact(width) {
        for (slot, value) in element.iter().enumerate() {
            min[slot] = min[slot].min(*value);
            max[slot] = max[slot].max(*value);
        }
    }
    let finite =
        |values: Vec<f32>| values.into_iter().map(|value| if value.is_finite() { value } else { 0.0 }).collect();
    (finite(min), finite(max))
}

#[cfg(test)]
mod tests {
    use draco_core::{EncoderBuffer, EncoderOptions, FaceIndex, GeometryAttributeType, MeshEncoder, PointAttribute};

    use super::*;

    const POSITIONS: [[f32; 3]; 4] = [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.5]];
    const FACES: [[u32; 3]; 2] = [[0, 1, 2], [2, 1, 3]];

    /// A Draco stream of two triangles with float positions, written by draco-core's encoder.
    fn stream() -> Vec<u8> {
        let mut mesh = Mesh::new();
        let mut positions = PointAttribute::new();
        positions.init(GeometryAttributeType::Position, 3, DataType::Float32, false, POSITIONS.len());
        for (index, value) in POSITIONS.iter().flatten().enumerate() {
            positions.buffer_mut().write(index * 4, &value.to_le_bytes());
        }
        mesh.add_attribute(positions);
        mesh.set_num_faces(FACES.len());
        for (index, face) in FACES.iter().enumerate() {
            mesh.set_face(FaceIndex(index as u32), face.map(Into::into));
        }
        let mut encoder = MeshEncoder::new();
        encoder.set_mesh(mesh);
        let mut buffer = EncoderBuffer::new();
        encoder.encode(&EncoderOptions::new(), &mut buffer).expect("encodes");
        buffer.data().to_vec()
    }

    /// A GLB whose one primitive is the Draco `stream`; its accessors claim `points` positions.
    fn compressed_model(stream: &[u8], points: usize) -> Vec<u8> {
        let mut bin = stream.to_vec();
        bin.resize(bin.len().next_multiple_of(4), 0);
        let json = format!(
            r#"{{"asset":{{"version":"2.0"}},
            "extensionsUsed":["KHR_draco_mesh_compression"],"extensionsRequired":["KHR_draco_mesh_compression"],
            "buffers":[{{"byteLength":{}}}],
            "bufferViews":[{{"buffer":0,"byteOffset":0,"byteLength":{}}}],
            "accessors":[
              {{"componentType":5126,"count":{points},"type":"VEC3","min":[0,0,0],"max":[1,1,0.5]}},
              {{"componentType":5123,"count":6,"type":"SCALAR"}}],
            "meshes":[{{"primitives":[{{"attributes":{{"POSITION":0}},"indices":1,
              "extensions":{{"KHR_draco_mesh_compression":{{"bufferView":0,"attributes":{{"POSITION":0}}}}}}}}]}}],
            "nodes":[{{"mesh":0}}],"scenes":[{{"nodes":[0]}}],"scene":0}}"#,
            bin.len(),
            stream.len()
        );
        super::super::plain::glb(json.as_bytes(), &bin)
    }

    #[test]
    fn a_draco_model_is_made_plain_with_the_same_triangles() {
        let limits = ModelLimits::default();
        let main = compressed_model(&stream(), POSITIONS.len());
        let refusal = super::super::inspect_model(&main, &|_| None, &limits).expect_err("not plain");
        assert!(refusal.to_string().contains(DRACO), "{refusal}");

        let plain = super::super::plain_model(&main, &|_| None, &limits).expect("decodes").expect("was compressed");
        let summary = super::super::inspect_model(&plain, &|_| None, &limits).expect("plain now");
        assert_eq!(summary.triangles, 2);
        assert_eq!(summary.vertices, 4);
        assert!(!plain.windows(DRACO.len()).any(|window| window == DRACO.as_bytes()), "no trace of it left");

        // The decoder may renumber points; the triangles, as corners, are what must survive.
        let gltf = gltf::Gltf::from_slice(&plain).expect("parses");
        let bin = gltf.blob.clone().expect("one BIN chunk");
        let primitive = gltf.document.meshes().next().expect("mesh").primitives().next().expect("primitive");
        let reader = primitive.reader(|_| Some(&bin));
        let positions: Vec<[f32; 3]> = reader.read_positions().expect("positions").collect();
        let indices: Vec<u32> = reader.read_indices().expect("indices").into_u32().collect();
        let flat: Vec<u32> = FACES.iter().flatten().copied().collect();
        assert_eq!(as_corners(&indices, &positions), as_corners(&flat, &POSITIONS));
    }

    /// Each triangle as its corners' positions (in millimetres), in an order that does not
    /// depend on how the points were numbered.
    fn as_corners(indices: &[u32], positions: &[[f32; 3]]) -> Vec<Vec<[u32; 3]>> {
        let mut triangles: Vec<Vec<[u32; 3]>> = indices
            .chunks(3)
            .map(|corners| {
                let mut corners: Vec<[u32; 3]> =
                    corners.iter().map(|at| positions[*at as usize].map(|value| (value * 1000.0) as u32)).collect();
                corners.sort_unstable();
                corners
            })
            .collect();
        triangles.sort();
        triangles
    }

    #[test]
    fn a_stream_that_does_not_match_its_accessors_is_refused() {
        let limits = ModelLimits::default();
        // The accessor claims more points than the stream holds.
        let lying = compressed_model(&stream(), 40);
        let error = super::super::plain_model(&lying, &|_| None, &limits).expect_err("refused");
        assert!(error.to_string().contains("decodes 4 points"), "{error}");

        // A stream that is not Draco at all, and one cut short.
        let junk = compressed_model(&[0x44, 0x52, 0x41, 0x43, 0x4f, 2, 2, 1, 0, 0, 9, 9], 4);
        let error = super::super::plain_model(&junk, &|_| None, &limits).expect_err("refused");
        assert!(error.to_string().contains("does not decode"), "{error}");
        let whole = stream();
        let cut = compressed_model(&whole[..whole.len() / 2], 4);
        let error = super::super::plain_model(&cut, &|_| None, &limits).expect_err("refused");
        assert!(error.to_string().contains("Draco"), "{error}");

        // More faces than the model may have: refused by the decoder's ceiling.
        let tight = ModelLimits { max_triangles: 1, ..ModelLimits::default() };
        let error = super::super::plain_model(&compressed_model(&whole, 4), &|_| None, &tight).expect_err("refused");
        assert!(error.to_string().contains("Draco"), "{error}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// A stream changed anywhere, as a hostile file would, is decoded or refused; it never
        /// panics, and whatever decodes is a model within the limits.
        #[test]
        fn a_damaged_stream_is_refused_or_read_never_a_panic(
            changes in proptest::collection::vec((0usize..4096, proptest::prelude::any::<u8>()), 1..8),
            cut in 0usize..4096,
        ) {
            let mut damaged = stream();
            for (at, byte) in changes {
                let at = at % damaged.len();
                damaged[at] = byte;
            }
            damaged.truncate(cut.max(1).min(damaged.len()));
            let limits = ModelLimits::default();
            if let Ok(Some(plain)) = super::super::plain_model(&compressed_model(&damaged, 4), &|_| None, &limits) {
                proptest::prop_assert!(super::super::inspect_model(&plain, &|_| None, &limits).is_ok());
            }
        }
    }
}
