//! Models built in code for the model tests: a textured unit cube, as a GLB or a `.gltf`.

use serde_json::{Value, json};

/// The bytes of the cube's BIN buffer before the image: positions, texture coordinates, indices.
pub const GEOMETRY_BYTES: usize = 232;

/// A PNG signature and IHDR chunk declaring `width`×`height`; only the header is ever read.
pub fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut png = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(b"IHDR");
    png.extend_from_slice(&width.to_be_bytes());
    png.extend_from_slice(&height.to_be_bytes());
    // Bit depth 8, colour type RGBA, default compression, filter and interlace, then a CRC that
    // nothing checks.
    png.extend_from_slice(&[8, 6, 0, 0, 0]);
    png.extend_from_slice(&[0, 0, 0, 0]);
    png
}

/// The BIN buffer of a unit cube: 8 positions, 8 texture coordinates, 36 u16 indices, a 16×16 PNG.
pub fn cube_bin() -> Vec<u8> {
    let mut bin = Vec::new();
    for corner in 0..8u8 {
        for axis in 0..3 {
            let coordinate: f32 = if corner >> axis & 1 == 1 { 1.0 } else { -1.0 };
            bin.extend_from_slice(&coordinate.to_le_bytes());
        }
    }
    for corner in 0..8u8 {
        for axis in 0..2 {
            let coordinate = f32::from(corner >> axis & 1);
            bin.extend_from_slice(&coordinate.to_le_bytes());
        }
    }
    let faces: [[u16; 4]; 6] = [[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]];
    for [a, b, c, d] in faces {
        for index in [a, b, c, a, c, d] {
            bin.extend_from_slice(&index.to_le_bytes());
        }
    }
    assert_eq!(bin.len(), GEOMETRY_BYTES);
    bin.extend_from_slice(&png_header(16, 16));
    bin
}

/// The glTF JSON of the cube, with everything in the GLB's BIN chunk.
pub fn cube_json() -> Value {
    let png_bytes = png_header(16, 16).len();
    json!({
        "asset": { "version": "2.0" },
        "scene": 0,
        "scenes": [{ "nodes": [0] }],
        "nodes": [{ "mesh": 0 }],
        "meshes": [{
            "primitives": [{ "attributes": { "POSITION": 0, "TEXCOORD_0": 1 }, "indices": 2, "material": 0 }]
        }],
        "materials": [{ "pbrMetallicRoughness": { "baseColorTexture": { "index": 0 } } }],
        "textures": [{ "source": 0 }],
        "images": [{ "bufferView": 3, "mimeType": "image/png" }],
        "accessors": [
            { "bufferView": 0, "componentType": 5126, "count": 8, "type": "VEC3",
              "min": [-1.0, -1.0, -1.0], "max": [1.0, 1.0, 1.0] },
            { "bufferView": 1, "componentType": 5126, "count": 8, "type": "VEC2" },
            { "bufferView": 2, "componentType": 5123, "count": 36, "type": "SCALAR" }
        ],
        "bufferViews": [
            { "buffer": 0, "byteOffset": 0, "byteLength": 96, "target": 34962 },
            { "buffer": 0, "byteOffset": 96, "byteLength": 64, "target": 34962 },
            { "buffer": 0, "byteOffset": 160, "byteLength": 72, "target": 34963 },
            { "buffer": 0, "byteOffset": GEOMETRY_BYTES, "byteLength": png_bytes }
        ],
        "buffers": [{ "byteLength": GEOMETRY_BYTES + png_bytes }]
    })
}

/// A GLB container: header, JSON chunk padded with spaces, BIN chunk padded with zeros.
pub fn glb(json: &Value, bin: &[u8]) -> Vec<u8> {
    let mut json_bytes = serde_json::to_vec(json).expect("a JSON value serializes");
    json_bytes.resize(json_bytes.len().next_multiple_of(4), b' ');
    let mut bin_bytes = bin.to_vec();
    bin_bytes.resize(bin_bytes.len().next_multiple_of(4), 0);
    let total = 12 + 8 + json_bytes.len() + 8 + bin_bytes.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(b"glTF");
    out.extend_from_slice(&2u32.to_le_bytes());
    out.extend_from_slice(&u32::try_from(total).expect("test models are small").to_le_bytes());
    out.extend_from_slice(&u32::try_from(json_bytes.len()).expect("small").to_le_bytes());
    out.extend_from_slice(b"JSON");
    out.extend_from_slice(&json_bytes);
    out.extend_from_slice(&u32::try_from(bin_bytes.len()).expect("small").to_le_bytes());
    out.extend_from_slice(b"BIN\0");
    out.extend_from_slice(&bin_bytes);
    out
}

/// Gives no file: for models that name none.
pub fn no_files(_: &str) -> Option<Vec<u8>> {
    None
}
