//! Imported models are checked before Bevy's loader sees them (R5): a valid model passes with the
//! right counts, and every broken or oversized model in the corpus below, all built in code, gets
//! its specific error and never a panic, a stack overflow or a huge allocation.

use std::collections::HashMap;

use proptest::prelude::*;
use sanctuary_engine::{ModelError, ModelLimits, ModelSummary, inspect_model, referenced_files};
use serde_json::{Value, json};
use support::{GEOMETRY_BYTES, cube_bin, cube_json, glb, no_files, png_header};

#[allow(dead_code, reason = "each test file uses some of the shared builders")]
mod support;

/// The cube as a `.gltf` naming `model.bin` and `textures/my tex.png`, with those files.
fn cube_gltf() -> (Value, HashMap<String, Vec<u8>>) {
    let mut json = cube_json();
    json["buffers"][0] = json!({ "uri": "model.bin", "byteLength": GEOMETRY_BYTES });
    json["bufferViews"].as_array_mut().expect("an array").pop();
    json["images"][0] = json!({ "uri": "textures/my%20tex.png" });
    let bin = cube_bin();
    let files = HashMap::from([
        ("model.bin".to_owned(), bin[..GEOMETRY_BYTES].to_vec()),
        ("textures/my tex.png".to_owned(), png_header(16, 16)),
    ]);
    (json, files)
}

/// Inspects the cube's BIN chunk under `json`, with the default limits.
fn inspect_glb(json: &Value) -> Result<ModelSummary, ModelError> {
    inspect_model(&glb(json, &cube_bin()), &no_files, &ModelLimits::default())
}

/// Inspects a `.gltf` JSON with the given files, with the default limits.
fn inspect_gltf(json: &Value, files: &HashMap<String, Vec<u8>>) -> Result<ModelSummary, ModelError> {
    let main = serde_json::to_vec(json).expect("a JSON value serializes");
    inspect_model(&main, &|name| files.get(name).cloned(), &ModelLimits::default())
}

fn bad_accessor_reason(result: Result<ModelSummary, ModelError>, expected_index: usize) -> String {
    match result {
        Err(ModelError::BadAccessor { index, reason }) if index == expected_index => reason,
        other => panic!("expected BadAccessor for accessor {expected_index}, got {other:?}"),
    }
}

/// The cube as a GLB passes and is counted right.
#[test]
fn valid_glb_passes() {
    let summary = inspect_glb(&cube_json()).expect("the cube is valid");
    let bytes = glb(&cube_json(), &cube_bin()).len() as u64;
    assert_eq!(
        summary,
        ModelSummary {
            triangles: 12,
            vertices: 8,
            bytes,
            textures: vec![(16, 16)],
            meshes: 1,
            bounds: Some(([-1.0; 3], [1.0; 3])),
            materials: 1,
            bones: 0,
            texture_bytes: 16 * 16 * 16 / 3,
            humanoid: None,
        }
    );
    assert_eq!(referenced_files(&glb(&cube_json(), &cube_bin()), &ModelLimits::default()), Ok(vec![]));
}

/// The cube as a `.gltf` with separate files passes, counting the files' bytes too.
#[test]
fn valid_gltf_with_files_passes() {
    let (json, files) = cube_gltf();
    let summary = inspect_gltf(&json, &files).expect("the cube is valid");
    let main_bytes = serde_json::to_vec(&json).expect("serializes").len();
    let file_bytes: usize = files.values().map(Vec::len).sum();
    assert_eq!(summary.triangles, 12);
    assert_eq!(summary.textures, vec![(16, 16)]);
    assert_eq!(summary.bytes, (main_bytes + file_bytes) as u64);
}

/// The files a `.gltf` names are listed once each, percent-decoded.
#[test]
fn referenced_files_are_listed_decoded() {
    let (mut json, _) = cube_gltf();
    json["images"].as_array_mut().expect("an array").push(json!({ "uri": "textures/my%20tex.png" }));
    let main = serde_json::to_vec(&json).expect("serializes");
    assert_eq!(
        referenced_files(&main, &ModelLimits::default()),
        Ok(vec!["model.bin".to_owned(), "textures/my tex.png".to_owned()])
    );
}

/// A buffer and an image embedded as `data:` URIs are decoded and checked like any other.
#[test]
fn embedded_data_uris_are_decoded() {
    let (mut json, _) = cube_gltf();
    let bin = cube_bin();
    json["buffers"][0]["uri"] =
        json!(format!("data:application/octet-stream;base64,{}", base64(&bin[..GEOMETRY_BYTES])));
    json["images"][0]["uri"] = json!(format!("data:image/png;base64,{}", base64(&png_header(20, 10))));
    let summary = inspect_gltf(&json, &HashMap::new()).expect("embedded data is valid");
    assert_eq!(summary.textures, vec![(20, 10)]);

    json["buffers"][0]["uri"] = json!("data:application/octet-stream;base64,!!!!");
    assert!(matches!(inspect_gltf(&json, &HashMap::new()), Err(ModelError::BadDataUri(_))));
    json["buffers"][0]["uri"] = json!("data:text/plain;base64,AAAA");
    assert!(matches!(inspect_gltf(&json, &HashMap::new()), Err(ModelError::BadDataUri(_))));
}

/// A test-side base64 encoder (standard alphabet, padded), independent of the one under test.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let group = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let bits = u32::from(group[0]) << 16 | u32::from(group[1]) << 8 | u32::from(group[2]);
        for position in 0..4 {
            if position <= chunk.len() {
                out.push(char::from(ALPHABET[(bits >> (18 - 6 * position) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A JPEG image is sized from its frame header.
#[test]
fn jpeg_images_are_sized_from_their_header() {
    let mut bin = cube_bin();
    bin.truncate(GEOMETRY_BYTES);
    // SOI, APP0 (length 4), SOF0: length 11, precision 8, height 0x0100, width 0x0200, one component.
    bin.extend_from_slice(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0, 0xFF, 0xC0, 0, 11, 8, 1, 0, 2, 0, 1, 1, 0x11, 0]);
    bin.extend_from_slice(&[0xFF, 0xD9]);
    let image_bytes = bin.len() - GEOMETRY_BYTES;
    let mut json = cube_json();
    json["bufferViews"][3]["byteLength"] = json!(image_bytes);
    json["buffers"][0]["byteLength"] = json!(bin.len());
    json["images"][0]["mimeType"] = json!("image/jpeg");
    let summary = inspect_model(&glb(&json, &bin), &no_files, &ModelLimits::default()).expect("valid");
    assert_eq!(summary.textures, vec![(512, 256)]);
}

/// Every cut of the GLB is refused (its header length no longer matches) without a panic.
#[test]
fn truncated_glb_is_refused_at_every_cut() {
    let whole = glb(&cube_json(), &cube_bin());
    for length in (0..whole.len()).step_by(7) {
        let result = inspect_model(&whole[..length], &no_files, &ModelLimits::default());
        assert!(matches!(result, Err(ModelError::NotGltf(_))), "cut at {length}: {result:?}");
    }
    // The same cuts with the header's length patched to match get past the header and still fail.
    for length in (12..whole.len()).step_by(7) {
        let mut cut = whole[..length].to_vec();
        cut[8..12].copy_from_slice(&u32::try_from(length).expect("small").to_le_bytes());
        assert!(inspect_model(&cut, &no_files, &ModelLimits::default()).is_err(), "patched cut at {length}");
    }
}

/// A GLB with a broken header or chunk is not glTF.
#[test]
fn broken_glb_container_is_not_gltf() {
    let whole = glb(&cube_json(), &cube_bin());
    let patched = |at: usize, bytes: &[u8]| {
        let mut copy = whole.clone();
        copy[at..at + bytes.len()].copy_from_slice(bytes);
        inspect_model(&copy, &no_files, &ModelLimits::default())
    };
    let cases = [
        ("wrong magic", patched(0, b"glTX")),
        ("version 1", patched(4, &1u32.to_le_bytes())),
        ("declared length 0 (under the header size)", patched(8, &0u32.to_le_bytes())),
        ("declared length 4", patched(8, &4u32.to_le_bytes())),
        ("declared length too long", patched(8, &u32::MAX.to_le_bytes())),
        ("JSON chunk too long", patched(12, &u32::MAX.to_le_bytes())),
        ("JSON chunk type", patched(16, b"BIN\0")),
        ("unknown chunk type", patched(16, b"XML ")),
    ];
    for (name, result) in cases {
        assert!(matches!(result, Err(ModelError::NotGltf(_))), "{name}: {result:?}");
    }
    let json_length = u32::from_le_bytes(whole[12..16].try_into().expect("four bytes")) as usize;
    let bin_length_at = 20 + json_length;
    let result = patched(bin_length_at, &u32::MAX.to_le_bytes());
    assert!(matches!(result, Err(ModelError::NotGltf(_))), "BIN chunk too long: {result:?}");
}

/// Bytes that are not JSON at all, or JSON that is not glTF, are not glTF.
#[test]
fn garbage_is_not_gltf() {
    let limits = ModelLimits::default();
    for garbage in [&b""[..], b"{", b"\xFF\xFE{}", b"[1,2,3]", b"{\"asset\": 5}", b"hello", &[0u8; 64]] {
        let result = inspect_model(garbage, &no_files, &limits);
        assert!(matches!(result, Err(ModelError::NotGltf(_))), "{garbage:?}: {result:?}");
    }
    let mut json = cube_json();
    json["meshes"][0]["primitives"][0]["indices"] = json!(99);
    assert!(matches!(inspect_glb(&json), Err(ModelError::NotGltf(_))));
}

/// A primitive whose POSITION names a missing accessor is refused (the gltf crate's own
/// validation would index out of bounds on it).
#[test]
fn position_naming_a_missing_accessor_is_refused() {
    let mut json = cube_json();
    json["meshes"][0]["primitives"][0]["attributes"]["POSITION"] = json!(4_000_000);
    assert!(matches!(inspect_glb(&json), Err(ModelError::NotGltf(message)) if message.contains("POSITION")));
}

/// An accessor of count 0 is refused.
#[test]
fn accessor_count_zero_is_refused() {
    let mut json = cube_json();
    json["accessors"][1]["count"] = json!(0);
    assert!(bad_accessor_reason(inspect_glb(&json), 1).contains("count is 0"));
}

/// A huge count is refused by the budget, and with the budget lifted by the overflow check.
#[test]
fn huge_accessor_count_is_refused() {
    let mut json = cube_json();
    json["accessors"][2]["count"] = json!(4_294_967_295u64);
    assert!(bad_accessor_reason(inspect_glb(&json), 2).contains("over the limit"));

    json["accessors"][2]["count"] = json!(u64::MAX);
    let unlimited = ModelLimits { max_vertices: u64::MAX, max_triangles: u64::MAX, ..ModelLimits::default() };
    let result = inspect_model(&glb(&json, &cube_bin()), &no_files, &unlimited);
    assert!(bad_accessor_reason(result, 2).contains("overflow"));

    json["accessors"][2]["count"] = json!(1_000_000);
    let result = inspect_model(&glb(&json, &cube_bin()), &no_files, &unlimited);
    assert!(bad_accessor_reason(result, 2).contains("needs"));
}

/// A byteStride outside 4..=252, or smaller than one element, is refused.
#[test]
fn bad_byte_stride_is_refused() {
    let mut json = cube_json();
    json["bufferViews"][0]["byteStride"] = json!(1);
    assert!(matches!(inspect_glb(&json), Err(ModelError::NotGltf(message)) if message.contains("byteStride")));

    json["bufferViews"][0]["byteStride"] = json!(8);
    json["bufferViews"][0]["byteLength"] = json!(96);
    assert!(bad_accessor_reason(inspect_glb(&json), 0).contains("smaller than one element"));
}

/// A buffer view reaching past its buffer is refused, even with offsets that would overflow.
#[test]
fn buffer_view_beyond_buffer_is_refused() {
    let mut json = cube_json();
    json["bufferViews"][1]["byteLength"] = json!(100_000);
    assert!(matches!(inspect_glb(&json), Err(ModelError::BadBufferView { view: 1, .. })));

    json["bufferViews"][1]["byteLength"] = json!(64);
    json["bufferViews"][1]["byteOffset"] = json!(u64::MAX - 10);
    assert!(matches!(inspect_glb(&json), Err(ModelError::BadBufferView { view: 1, .. })));
}

/// A buffer declaring more bytes than the BIN chunk or file holds is refused.
#[test]
fn buffer_longer_than_its_bytes_is_refused() {
    let mut json = cube_json();
    json["buffers"][0]["byteLength"] = json!(10_000);
    assert!(matches!(inspect_glb(&json), Err(ModelError::BufferTooShort { buffer: 0, declared: 10_000, .. })));

    let (json, mut files) = cube_gltf();
    files.get_mut("model.bin").expect("present").truncate(100);
    assert_eq!(
        inspect_gltf(&json, &files),
        Err(ModelError::BufferTooShort { buffer: 0, declared: GEOMETRY_BYTES as u64, actual: 100 })
    );

    let json = cube_json();
    let without_bin = {
        let mut bytes = serde_json::to_vec(&json).expect("serializes");
        bytes.resize(bytes.len().next_multiple_of(4), b' ');
        let total = 20 + bytes.len();
        let mut out = b"glTF".to_vec();
        out.extend_from_slice(&2u32.to_le_bytes());
        out.extend_from_slice(&u32::try_from(total).expect("small").to_le_bytes());
        out.extend_from_slice(&u32::try_from(bytes.len()).expect("small").to_le_bytes());
        out.extend_from_slice(b"JSON");
        out.extend_from_slice(&bytes);
        out
    };
    assert_eq!(
        inspect_model(&without_bin, &no_files, &ModelLimits::default()),
        Err(ModelError::MissingBinChunk { buffer: 0 })
    );
}

/// An index naming a vertex past the last is refused.
#[test]
fn index_out_of_range_is_refused() {
    let mut bin = cube_bin();
    bin[160 + 2 * 5..160 + 2 * 6].copy_from_slice(&8u16.to_le_bytes());
    let result = inspect_model(&glb(&cube_json(), &bin), &no_files, &ModelLimits::default());
    assert_eq!(result, Err(ModelError::IndexOutOfRange { mesh: 0, index_value: 8, vertices: 8 }));
}

/// An index accessor pointing outside its buffer view, or at a view that does not exist, is refused.
#[test]
fn index_accessor_outside_its_view_is_refused() {
    let mut json = cube_json();
    json["accessors"][2]["byteOffset"] = json!(64);
    assert!(bad_accessor_reason(inspect_glb(&json), 2).contains("needs"));

    let mut json = cube_json();
    json["accessors"][2]["bufferView"] = json!(42);
    assert!(matches!(inspect_glb(&json), Err(ModelError::NotGltf(_))));
}

/// Indices must be unsigned scalars.
#[test]
fn indices_of_the_wrong_type_are_refused() {
    let mut json = cube_json();
    json["accessors"][2]["type"] = json!("VEC2");
    json["accessors"][2]["count"] = json!(18);
    assert!(bad_accessor_reason(inspect_glb(&json), 2).contains("indices must be"));
}

/// A primitive without POSITION, or a TEXCOORD_0 shorter than POSITION, is refused.
#[test]
fn missing_or_mismatched_attributes_are_refused() {
    let mut json = cube_json();
    json["meshes"][0]["primitives"][0]["attributes"].as_object_mut().expect("an object").remove("POSITION");
    assert_eq!(inspect_glb(&json), Err(ModelError::MissingPosition { mesh: 0 }));

    let mut json = cube_json();
    json["accessors"][1]["count"] = json!(4);
    assert_eq!(
        inspect_glb(&json),
        Err(ModelError::AttributeLengthMismatch { mesh: 0, attribute: "TEXCOORD_0".to_owned() })
    );

    let mut json = cube_json();
    json["accessors"][0]["type"] = json!("VEC2");
    assert!(bad_accessor_reason(inspect_glb(&json), 0).contains("POSITION"));
}

/// Sparse accessors are refused with a clear message.
#[test]
fn sparse_accessors_are_refused() {
    let mut json = cube_json();
    json["accessors"][1]["sparse"] = json!({
        "count": 1,
        "indices": { "bufferView": 2, "componentType": 5123 },
        "values": { "bufferView": 1 }
    });
    assert!(bad_accessor_reason(inspect_glb(&json), 1).contains("sparse"));
}

/// An animation whose rotations are u32 (the gltf reader's `unreachable!`) is refused.
#[test]
fn animation_outputs_of_the_wrong_type_are_refused() {
    let mut json = cube_json();
    json["animations"] = json!([{
        "channels": [{ "sampler": 0, "target": { "node": 0, "path": "rotation" } }],
        "samplers": [{ "input": 3, "output": 2 }]
    }]);
    json["accessors"].as_array_mut().expect("an array").push(json!({
        "bufferView": 0, "componentType": 5126, "count": 24, "type": "SCALAR"
    }));
    assert!(bad_accessor_reason(inspect_glb(&json), 2).contains("animation output"));
}

/// A PNG declaring 60000×60000 is refused from its header alone.
#[test]
fn huge_png_is_refused() {
    let mut bin = cube_bin();
    bin.truncate(GEOMETRY_BYTES);
    bin.extend_from_slice(&png_header(60_000, 60_000));
    let result = inspect_model(&glb(&cube_json(), &bin), &no_files, &ModelLimits::default());
    assert_eq!(result, Err(ModelError::TextureTooLarge { width: 60_000, height: 60_000, limit: 4096 }));

    let (json, mut files) = cube_gltf();
    files.insert("textures/my tex.png".to_owned(), png_header(1, 5000));
    assert!(matches!(inspect_gltf(&json, &files), Err(ModelError::TextureTooLarge { width: 1, height: 5000, .. })));
}

/// An image that is neither PNG nor JPEG, has no source, or an empty size, is a bad image.
#[test]
fn unknown_images_are_bad() {
    let (json, mut files) = cube_gltf();
    files.insert("textures/my tex.png".to_owned(), b"GIF89a\x10\x00\x10\x00".to_vec());
    assert!(matches!(inspect_gltf(&json, &files), Err(ModelError::BadImage(_))));

    files.insert("textures/my tex.png".to_owned(), png_header(0, 16));
    assert!(matches!(inspect_gltf(&json, &files), Err(ModelError::BadImage(_))));

    let mut json = cube_json();
    json["images"][0] = json!({ "bufferView": 3 });
    assert!(matches!(inspect_glb(&json), Err(ModelError::BadImage(message)) if message.contains("mimeType")));
    json["images"][0] = json!({});
    assert!(matches!(inspect_glb(&json), Err(ModelError::BadImage(message)) if message.contains("neither")));
}

/// URIs that leave the folder, name another scheme, or do not decode are unsafe.
#[test]
fn unsafe_uris_are_refused() {
    for uri in ["../secret.bin", "/etc/passwd", "http://x/y.bin", "%FF.png", "a%2F..%2F..%2Fb", "C:\\x.bin", ""] {
        let (mut json, files) = cube_gltf();
        json["buffers"][0]["uri"] = json!(uri);
        let main = serde_json::to_vec(&json).expect("serializes");
        let expected = ModelError::UnsafeUri(uri.to_owned());
        assert_eq!(referenced_files(&main, &ModelLimits::default()), Err(expected.clone()), "{uri}");
        assert_eq!(inspect_gltf(&json, &files), Err(expected), "{uri}");
    }
    let (mut json, files) = cube_gltf();
    json["images"][0]["uri"] = json!("%FF.png");
    assert_eq!(inspect_gltf(&json, &files), Err(ModelError::UnsafeUri("%FF.png".to_owned())));
}

/// A named file that was not provided is missing.
#[test]
fn missing_file_is_reported() {
    let (json, mut files) = cube_gltf();
    files.remove("textures/my tex.png");
    assert_eq!(inspect_gltf(&json, &files), Err(ModelError::MissingFile("textures/my tex.png".to_owned())));
}

/// More files than allowed are refused before any is fetched.
#[test]
fn too_many_files_are_refused() {
    let (mut json, _) = cube_gltf();
    let images: Vec<Value> = (0..70).map(|n| json!({ "uri": format!("t{n}.png") })).collect();
    json["images"] = json!(images);
    let main = serde_json::to_vec(&json).expect("serializes");
    let expected = ModelError::TooManyFiles { files: 71, limit: 64 };
    assert_eq!(referenced_files(&main, &ModelLimits::default()), Err(expected.clone()));
    assert_eq!(inspect_model(&main, &|_| panic!("nothing is fetched"), &ModelLimits::default()), Err(expected));
}

/// A 5,000-deep node chain is too deep, found without recursion.
#[test]
fn deep_node_chain_is_too_deep() {
    let mut json = cube_json();
    let nodes: Vec<Value> =
        (0..5000).map(|n| if n < 4999 { json!({ "children": [n + 1] }) } else { json!({}) }).collect();
    json["nodes"] = json!(nodes);
    let limits = ModelLimits { max_nodes: 10_000, ..ModelLimits::default() };
    let result = inspect_model(&glb(&json, &cube_bin()), &no_files, &limits);
    assert_eq!(result, Err(ModelError::TooDeep { depth: 5000, limit: 32 }));
    assert_eq!(inspect_glb(&json), Err(ModelError::TooManyNodes { nodes: 5000, limit: 4096 }));
}

/// A node with two parents, or a scene root that is also a child, is shared.
#[test]
fn shared_nodes_are_refused() {
    let mut json = cube_json();
    json["nodes"] = json!([{ "children": [1, 2] }, { "mesh": 0 }, { "children": [1] }]);
    assert_eq!(inspect_glb(&json), Err(ModelError::SharedNode(1)));

    json["nodes"] = json!([{ "children": [1] }, { "mesh": 0 }]);
    json["scenes"] = json!([{ "nodes": [0, 1] }]);
    assert_eq!(inspect_glb(&json), Err(ModelError::SharedNode(1)));
}

/// A node that is its own ancestor is a cycle.
#[test]
fn node_cycles_are_refused() {
    let mut json = cube_json();
    json["nodes"] = json!([{ "mesh": 0 }, { "children": [2] }, { "children": [1] }]);
    assert!(matches!(inspect_glb(&json), Err(ModelError::NodeCycle(1 | 2))));

    json["nodes"] = json!([{ "children": [0] }]);
    assert_eq!(inspect_glb(&json), Err(ModelError::NodeCycle(0)));
}

/// 20,000 triangles are over the 10,000 budget.
#[test]
fn too_many_triangles_are_refused() {
    let mut bin = Vec::new();
    for coordinate in [0.0f32, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0] {
        bin.extend_from_slice(&coordinate.to_le_bytes());
    }
    for _ in 0..20_000 {
        for index in [0u16, 1, 2] {
            bin.extend_from_slice(&index.to_le_bytes());
        }
    }
    let json = json!({
        "asset": { "version": "2.0" },
        "meshes": [{ "primitives": [{ "attributes": { "POSITION": 0 }, "indices": 1 }] }],
        "accessors": [
            { "bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3",
              "min": [0.0, 0.0, 0.0], "max": [1.0, 1.0, 0.0] },
            { "bufferView": 1, "componentType": 5123, "count": 60_000, "type": "SCALAR" }
        ],
        "bufferViews": [
            { "buffer": 0, "byteLength": 36 },
            { "buffer": 0, "byteOffset": 36, "byteLength": 120_000 }
        ],
        "buffers": [{ "byteLength": bin.len() }]
    });
    let result = inspect_model(&glb(&json, &bin), &no_files, &ModelLimits::default());
    assert_eq!(result, Err(ModelError::TooManyTriangles { triangles: 20_000, limit: 10_000 }));

    let few_vertices = ModelLimits { max_vertices: 2, ..ModelLimits::default() };
    let result = inspect_model(&glb(&cube_json(), &cube_bin()), &no_files, &few_vertices);
    assert_eq!(result, Err(ModelError::TooManyVertices { vertices: 8, limit: 2 }));
}

/// Many index accessors aliasing one buffer view, drawn as points (no triangles), cannot make the
/// check read more index values than the budget.
#[test]
fn aliased_index_accessors_share_one_read_budget() {
    let mut bin = Vec::new();
    for coordinate in [0.0f32, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0] {
        bin.extend_from_slice(&coordinate.to_le_bytes());
    }
    bin.extend_from_slice(&vec![0; 60_000]);
    let index_accessors: Vec<Value> =
        (0..25).map(|_| json!({ "bufferView": 1, "componentType": 5123, "count": 30_000, "type": "SCALAR" })).collect();
    let primitives: Vec<Value> =
        (1..=25).map(|n| json!({ "attributes": { "POSITION": 0 }, "indices": n, "mode": 0 })).collect();
    let mut accessors = vec![json!({ "bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3",
                                     "min": [0.0, 0.0, 0.0], "max": [1.0, 1.0, 0.0] })];
    accessors.extend(index_accessors);
    let json = json!({
        "asset": { "version": "2.0" },
        "meshes": [{ "primitives": primitives }],
        "accessors": accessors,
        "bufferViews": [
            { "buffer": 0, "byteLength": 36 },
            { "buffer": 0, "byteOffset": 36, "byteLength": 60_000 }
        ],
        "buffers": [{ "byteLength": bin.len() }]
    });
    let result = inspect_model(&glb(&json, &bin), &no_files, &ModelLimits::default());
    assert!(bad_accessor_reason(result, 21).contains("add up"));
}

/// A main file over the byte limit is refused before it is parsed; so are files that add up.
#[test]
fn too_many_bytes_are_refused() {
    let limits = ModelLimits { max_bytes: 100, ..ModelLimits::default() };
    let garbage = vec![0xAB; 101];
    assert_eq!(inspect_model(&garbage, &no_files, &limits), Err(ModelError::TooLarge { bytes: 101, limit: 100 }));
    assert_eq!(referenced_files(&garbage, &limits), Err(ModelError::TooLarge { bytes: 101, limit: 100 }));

    let (json, files) = cube_gltf();
    let main = serde_json::to_vec(&json).expect("serializes");
    let limits = ModelLimits { max_bytes: main.len() as u64 + 10, ..ModelLimits::default() };
    let result = inspect_model(&main, &|name| files.get(name).cloned(), &limits);
    assert!(matches!(result, Err(ModelError::TooLarge { .. })), "{result:?}");
}

/// Every error message is a readable sentence, not a debug dump.
#[test]
fn errors_read_as_sentences() {
    let message = ModelError::TextureTooLarge { width: 60_000, height: 60_000, limit: 4096 }.to_string();
    assert!(message.contains("60000×60000") && message.contains("4096"), "{message}");
    let message = ModelError::UnsafeUri("../secret.bin".to_owned()).to_string();
    assert!(message.contains("../secret.bin"), "{message}");
}

/// JSON fields that hostile files like to bend, for the mutation property below.
const BENDABLE_FIELDS: [&str; 16] = [
    "/accessors/0/count",
    "/accessors/1/count",
    "/accessors/2/count",
    "/accessors/0/byteOffset",
    "/accessors/2/byteOffset",
    "/accessors/2/componentType",
    "/accessors/1/bufferView",
    "/bufferViews/0/byteLength",
    "/bufferViews/1/byteOffset",
    "/bufferViews/2/byteStride",
    "/bufferViews/3/byteLength",
    "/buffers/0/byteLength",
    "/meshes/0/primitives/0/mode",
    "/meshes/0/primitives/0/indices",
    "/nodes/0/children",
    "/images/0/bufferView",
];

fn bent_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        8 => prop::sample::select(vec![0u64, 1, 2, 3, 4, 7, 12, 96, 252, 253, 65_535, 4_294_967_295, u64::MAX])
            .prop_map(|number| json!(number)),
        4 => (0..300u32).prop_map(|number| json!(number)),
        2 => any::<u32>().prop_map(|number| json!(number)),
        1 => Just(json!(-1)),
        1 => Just(json!([0])),
        1 => Just(json!("x")),
        1 => Just(Value::Null),
    ]
}

proptest! {
    /// Random bytes, with or without a GLB or JSON start, never panic.
    #[test]
    fn random_bytes_never_panic(prefix in 0..3usize, bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut main = [&b""[..], b"glTF\x02\x00\x00\x00", b"{\"asset\":{\"version\":\"2.0\"},"][prefix].to_vec();
        main.extend_from_slice(&bytes);
        let _ = inspect_model(&main, &no_files, &ModelLimits::default());
        let _ = referenced_files(&main, &ModelLimits::default());
    }

    /// The valid GLB with random bytes overwritten, or cut, never panics.
    #[test]
    fn mutated_glb_never_panics(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12),
        cut in any::<prop::sample::Index>(),
        do_cut in any::<bool>(),
    ) {
        let mut main = glb(&cube_json(), &cube_bin());
        for (at, byte) in edits {
            let at = at.index(main.len());
            main[at] = byte;
        }
        if do_cut {
            main.truncate(cut.index(main.len()));
        }
        let _ = inspect_model(&main, &no_files, &ModelLimits::default());
    }

    /// The valid model with its numbers bent to hostile values, as GLB and as .gltf, never panics.
    #[test]
    fn bent_json_never_panics(
        bends in prop::collection::vec((prop::sample::select(BENDABLE_FIELDS.to_vec()), bent_value()), 1..4),
    ) {
        let mut json = cube_json();
        for (field, value) in &bends {
            if let Some(slot) = json.pointer_mut(field) {
                *slot = value.clone();
            }
        }
        let _ = inspect_glb(&json);
        let (mut gltf_json, files) = cube_gltf();
        for (field, value) in &bends {
            if let Some(slot) = gltf_json.pointer_mut(field) {
                *slot = value.clone();
            }
        }
        let _ = inspect_gltf(&gltf_json, &files);
    }
}
