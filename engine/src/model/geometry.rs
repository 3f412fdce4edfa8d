//! Buffer views, accessors, meshes, skins and animations: every range checked against its buffer
//! and every index against what it names, before a reader trusts them.

use std::collections::HashMap;
use std::rc::Rc;

use gltf::json;
use gltf::json::accessor::{ComponentType, GenericComponentType, Type};
use gltf::json::animation::Property;
use gltf::json::mesh::{Mode, Semantic};
use gltf::json::validation::Checked;

use super::{ModelError, ModelLimits, read_u16_le, read_u32_le};

/// Where a buffer view lies, after it was checked against its buffer.
#[derive(Debug, Clone, Copy)]
pub(super) struct ViewRange {
    pub(super) buffer: usize,
    pub(super) start: u64,
    pub(super) length: u64,
    pub(super) stride: Option<u64>,
}

/// How an accessor's elements lie in its buffer, after the whole range was checked.
#[derive(Debug, Clone, Copy)]
pub(super) struct AccessorLayout {
    pub(super) buffer: usize,
    /// The first element's offset in the buffer.
    pub(super) start: u64,
    pub(super) stride: u64,
    pub(super) count: u64,
    pub(super) component: ComponentType,
    pub(super) dimensions: Type,
}

/// The triangles and vertices of all mesh primitives.
pub(super) struct Geometry {
    pub(super) triangles: u64,
    pub(super) vertices: u64,
}

/// Every buffer view inside its buffer's declared length (which the real bytes cover).
pub(super) fn check_buffer_views(root: &json::Root) -> Result<Vec<ViewRange>, ModelError> {
    let mut views = Vec::with_capacity(root.buffer_views.len());
    for (view_index, view) in root.buffer_views.iter().enumerate() {
        let bad_view = |reason: String| ModelError::BadBufferView { view: view_index, reason };
        let buffer_index = view.buffer.value();
        let buffer = root
            .buffers
            .get(buffer_index)
            .ok_or_else(|| bad_view(format!("it names buffer {buffer_index}, which does not exist")))?;
        let start = view.byte_offset.map_or(0, |offset| offset.0);
        let length = view.byte_length.0;
        let buffer_length = buffer.byte_length.0;
        if start.checked_add(length).is_none_or(|end| end > buffer_length) {
            return Err(bad_view(format!(
                "its {length} bytes from offset {start} reach past the end of buffer {buffer_index} ({buffer_length} bytes)"
            )));
        }
        let stride = match view.byte_stride {
            Some(stride) => {
                let stride = stride.0 as u64;
                if !(4..=252).contains(&stride) {
                    return Err(bad_view(format!("byteStride {stride} is outside 4..=252")));
                }
                Some(stride)
            }
            None => None,
        };
        views.push(ViewRange { buffer: buffer_index, start, length, stride });
    }
    Ok(views)
}

/// Every accessor dense, of sane count, and with its last element inside its buffer view.
pub(super) fn check_accessors(
    root: &json::Root,
    views: &[ViewRange],
    limits: &ModelLimits,
) -> Result<Vec<AccessorLayout>, ModelError> {
    let count_limit = accessor_count_limit(limits);
    let mut layouts = Vec::with_capacity(root.accessors.len());
    for (index, accessor) in root.accessors.iter().enumerate() {
        let bad_accessor = |reason: String| ModelError::BadAccessor { index, reason };
        if accessor.sparse.is_some() {
            return Err(bad_accessor("sparse accessors are not supported; export the mesh without them".into()));
        }
        let (Checked::Valid(GenericComponentType(component)), Checked::Valid(dimensions)) =
            (accessor.component_type, accessor.type_)
        else {
            return Err(bad_accessor("its componentType or type is not a glTF value".into()));
        };
        let view_index = accessor.buffer_view.ok_or_else(|| bad_accessor("it has no bufferView".into()))?.value();
        let view = views
            .get(view_index)
            .ok_or_else(|| bad_accessor(format!("it names buffer view {view_index}, which does not exist")))?;
        let count = accessor.count.0;
        if count == 0 {
            return Err(bad_accessor("its count is 0".into()));
        }
        if count > count_limit {
            return Err(bad_accessor(format!("its count {count} is over the limit of {count_limit}")));
        }
        let element_size = element_size(component, dimensions);
        let stride = view.stride.unwrap_or(element_size);
        if stride < element_size {
            return Err(bad_accessor(format!(
                "the byteStride {stride} of buffer view {view_index} is smaller than one element ({element_size} bytes)"
            )));
        }
        let offset = accessor.byte_offset.map_or(0, |offset| offset.0);
        let needed = stride
            .checked_mul(count - 1)
            .and_then(|span| span.checked_add(element_size))
            .and_then(|span| span.checked_add(offset));
        match needed {
            Some(needed) if needed <= view.length => {}
            Some(needed) => {
                return Err(bad_accessor(format!(
                    "it needs {needed} bytes of buffer view {view_index}, which has {}",
                    view.length
                )));
            }
            None => return Err(bad_accessor("the bytes it needs overflow a 64-bit size".into())),
        }
        layouts.push(AccessorLayout {
            buffer: view.buffer,
            start: view.start + offset,
            stride,
            count,
            component,
            dimensions,
        });
    }
    Ok(layouts)
}

/// The most elements one accessor may have, and the most index values read in all: three per
/// vertex or triangle allowed, whichever is more.
pub(super) fn accessor_count_limit(limits: &ModelLimits) -> u64 {
    limits.max_vertices.max(limits.max_triangles).saturating_mul(3)
}

/// The bytes of one element; matrix columns start on 4-byte boundaries, as glTF requires.
pub(super) fn element_size(component: ComponentType, dimensions: Type) -> u64 {
    let component_size = component_size(component);
    let (columns, rows) = match dimensions {
        Type::Scalar => (1, 1),
        Type::Vec2 => (1, 2),
        Type::Vec3 => (1, 3),
        Type::Vec4 => (1, 4),
        Type::Mat2 => (2, 2),
        Type::Mat3 => (3, 3),
        Type::Mat4 => (4, 4),
    };
    let column_size = rows * component_size;
    if columns == 1 { column_size } else { columns * column_size.next_multiple_of(4) }
}

pub(super) fn component_size(component: ComponentType) -> u64 {
    match component {
        ComponentType::I8 | ComponentType::U8 => 1,
        ComponentType::I16 | ComponentType::U16 => 2,
        ComponentType::U32 | ComponentType::F32 => 4,
    }
}

pub(super) fn accessor_layout(accessors: &[AccessorLayout], index: usize) -> Result<AccessorLayout, ModelError> {
    accessors.get(index).copied().ok_or_else(|| ModelError::NotGltf(format!("accessor {index} does not exist")))
}

/// Checks every mesh primitive and counts triangles and vertices within the limits.
pub(super) fn check_meshes(
    root: &json::Root,
    accessors: &[AccessorLayout],
    buffers: &[Rc<[u8]>],
    limits: &ModelLimits,
) -> Result<Geometry, ModelError> {
    let mut geometry = Geometry { triangles: 0, vertices: 0 };
    let mut largest_index: HashMap<usize, u32> = HashMap::new();
    let mut indices_read: u64 = 0;
    let read_limit = accessor_count_limit(limits);
    for (mesh_index, mesh) in root.meshes.iter().enumerate() {
        for primitive in &mesh.primitives {
            let position_index = primitive
                .attributes
                .get(&Checked::Valid(Semantic::Positions))
                .ok_or(ModelError::MissingPosition { mesh: mesh_index })?
                .value();
            let position = accessor_layout(accessors, position_index)?;
            if position.component != ComponentType::F32 || position.dimensions != Type::Vec3 {
                return Err(ModelError::BadAccessor {
                    index: position_index,
                    reason: "POSITION must be VEC3 of FLOAT".into(),
                });
            }
            let vertex_count = position.count;

            for (semantic, accessor_index) in &primitive.attributes {
                if accessor_layout(accessors, accessor_index.value())?.count != vertex_count {
                    return Err(ModelError::AttributeLengthMismatch {
                        mesh: mesh_index,
                        attribute: semantic.to_string(),
                    });
                }
            }
            for (target_index, target) in primitive.targets.iter().flatten().enumerate() {
                let attributes =
                    [("POSITION", target.positions), ("NORMAL", target.normals), ("TANGENT", target.tangents)];
                for (name, accessor_index) in attributes {
                    let Some(accessor_index) = accessor_index else { continue };
                    let layout = accessor_layout(accessors, accessor_index.value())?;
                    if layout.component != ComponentType::F32 || layout.dimensions != Type::Vec3 {
                        return Err(ModelError::BadAccessor {
                            index: accessor_index.value(),
                            reason: format!("morph target {name} must be VEC3 of FLOAT"),
                        });
                    }
                    if layout.count != vertex_count {
                        return Err(ModelError::AttributeLengthMismatch {
                            mesh: mesh_index,
                            attribute: format!("morph target {target_index} {name}"),
                        });
                    }
                }
            }

            let indices = match primitive.indices {
                Some(accessor_index) => {
                    let layout = accessor_layout(accessors, accessor_index.value())?;
                    let unsigned =
                        matches!(layout.component, ComponentType::U8 | ComponentType::U16 | ComponentType::U32);
                    if layout.dimensions != Type::Scalar || !unsigned {
                        return Err(ModelError::BadAccessor {
                            index: accessor_index.value(),
                            reason: "indices must be SCALAR of UNSIGNED_BYTE, UNSIGNED_SHORT or UNSIGNED_INT".into(),
                        });
                    }
                    Some((accessor_index.value(), layout))
                }
                None => None,
            };

            let Checked::Valid(mode) = primitive.mode else {
                return Err(ModelError::NotGltf(format!("mesh {mesh_index} has a primitive of unknown mode")));
            };
            let drawn = indices.map_or(vertex_count, |(_, layout)| layout.count);
            let triangles = match mode {
                Mode::Triangles => drawn / 3,
                Mode::TriangleStrip | Mode::TriangleFan => drawn.saturating_sub(2),
                Mode::Points | Mode::Lines | Mode::LineLoop | Mode::LineStrip => 0,
            };
            geometry.triangles = geometry.triangles.saturating_add(triangles);
            if geometry.triangles > limits.max_triangles {
                return Err(ModelError::TooManyTriangles {
                    triangles: geometry.triangles,
                    limit: limits.max_triangles,
                });
            }
            geometry.vertices = geometry.vertices.saturating_add(vertex_count);
            if geometry.vertices > limits.max_vertices {
                return Err(ModelError::TooManyVertices { vertices: geometry.vertices, limit: limits.max_vertices });
            }

            if let Some((accessor_index, layout)) = indices {
                // Each index accessor is read once however many primitives share it, and all reads
                // together stay within one budget, so aliased accessors cannot multiply the work.
                let largest = match largest_index.get(&accessor_index) {
                    Some(&largest) => largest,
                    None => {
                        indices_read = indices_read.saturating_add(layout.count);
                        if indices_read > read_limit {
                            return Err(ModelError::BadAccessor {
                                index: accessor_index,
                                reason: format!("the indices of all primitives add up to over {read_limit} values"),
                            });
                        }
                        let largest = largest_index_value(accessor_index, &layout, buffers)?;
                        largest_index.insert(accessor_index, largest);
                        largest
                    }
                };
                if u64::from(largest) >= vertex_count {
                    return Err(ModelError::IndexOutOfRange {
                        mesh: mesh_index,
                        index_value: largest,
                        vertices: vertex_count,
                    });
                }
            }
        }
    }
    Ok(geometry)
}

/// Reads every index (honouring the stride) and returns the largest.
pub(super) fn largest_index_value(
    accessor_index: usize,
    layout: &AccessorLayout,
    buffers: &[Rc<[u8]>],
) -> Result<u32, ModelError> {
    let unreadable = || ModelError::BadAccessor {
        index: accessor_index,
        reason: "its indices cannot be read from the buffer".into(),
    };
    let bytes = buffers.get(layout.buffer).ok_or_else(unreadable)?;
    let mut largest = 0;
    for element in 0..layout.count {
        // The whole range was checked against the buffer in `check_accessors`; the lookups below
        // still fail softly rather than trust that.
        let at = element
            .checked_mul(layout.stride)
            .and_then(|offset| offset.checked_add(layout.start))
            .and_then(|at| usize::try_from(at).ok())
            .ok_or_else(unreadable)?;
        let value = match layout.component {
            ComponentType::U8 => bytes.get(at).copied().map(u32::from),
            ComponentType::U16 => read_u16_le(bytes, at).map(u32::from),
            _ => read_u32_le(bytes, at),
        }
        .ok_or_else(unreadable)?;
        largest = largest.max(value);
    }
    Ok(largest)
}

/// Skins and animations use accessors of the types the `gltf` readers expect (a mismatch trips
/// their debug assertions or an `unreachable!`).
pub(super) fn check_skins_and_animations(root: &json::Root, accessors: &[AccessorLayout]) -> Result<(), ModelError> {
    for skin in &root.skins {
        let Some(accessor_index) = skin.inverse_bind_matrices else { continue };
        let layout = accessor_layout(accessors, accessor_index.value())?;
        if layout.component != ComponentType::F32 || layout.dimensions != Type::Mat4 {
            return Err(ModelError::BadAccessor {
                index: accessor_index.value(),
                reason: "inverse bind matrices must be MAT4 of FLOAT".into(),
            });
        }
        if layout.count < skin.joints.len() as u64 {
            return Err(ModelError::BadAccessor {
                index: accessor_index.value(),
                reason: format!("it holds {} inverse bind matrices for {} joints", layout.count, skin.joints.len()),
            });
        }
    }
    for (animation_index, animation) in root.animations.iter().enumerate() {
        for channel in &animation.channels {
            let sampler = animation.samplers.get(channel.sampler.value()).ok_or_else(|| {
                ModelError::NotGltf(format!("animation {animation_index} names a sampler that does not exist"))
            })?;
            let input = accessor_layout(accessors, sampler.input.value())?;
            if input.component != ComponentType::F32 || input.dimensions != Type::Scalar {
                return Err(ModelError::BadAccessor {
                    index: sampler.input.value(),
                    reason: "animation key times must be SCALAR of FLOAT".into(),
                });
            }
            let output = accessor_layout(accessors, sampler.output.value())?;
            let (fits, expected) = match channel.target.path {
                Checked::Valid(Property::Translation | Property::Scale) => {
                    (output.component == ComponentType::F32 && output.dimensions == Type::Vec3, "VEC3 of FLOAT")
                }
                Checked::Valid(Property::Rotation) => (
                    output.component != ComponentType::U32 && output.dimensions == Type::Vec4,
                    "VEC4 of FLOAT or normalized integers",
                ),
                Checked::Valid(Property::MorphTargetWeights) => (
                    output.component != ComponentType::U32 && output.dimensions == Type::Scalar,
                    "SCALAR of FLOAT or normalized integers",
                ),
                Checked::Invalid => {
                    return Err(ModelError::NotGltf(format!(
                        "animation {animation_index} targets an unknown property"
                    )));
                }
            };
            if !fits {
                return Err(ModelError::BadAccessor {
                    index: sampler.output.value(),
                    reason: format!("this animation output must be {expected}"),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_columns_are_padded_to_four_bytes() {
        assert_eq!(element_size(ComponentType::F32, Type::Vec3), 12);
        assert_eq!(element_size(ComponentType::U8, Type::Mat2), 8);
        assert_eq!(element_size(ComponentType::I16, Type::Mat3), 24);
        assert_eq!(element_size(ComponentType::F32, Type::Mat4), 64);
    }
}
