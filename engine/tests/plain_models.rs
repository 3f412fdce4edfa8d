//! Models as tools export them to save bytes are made plain at import: sparse accessors become
//! dense and `KHR_mesh_quantization`'s integers become floats, in one `.glb` that then passes
//! the ordinary checks; what cannot be read is refused, and a plain model is kept as it is.

use sanctuary_engine::{ModelError, ModelLimits, inspect_model, plain_model};
use serde_json::{Value, json};
use support::{cube_bin, cube_json, glb, no_files};

#[allow(dead_code, reason = "each test file uses some of the shared builders")]
mod support;

fn limits() -> ModelLimits {
    ModelLimits::default()
}

/// The cube with its positions given as a sparse accessor: no base (all zeros) and every one
/// of its eight corners replaced, the indices and values appended to the BIN chunk.
fn sparse_cube() -> (Value, Vec<u8>) {
    let mut bin = cube_bin();
    let mut json = cube_json();
    let corners = bin[..96].to_vec();
    let indices_at = bin.len().next_multiple_of(4);
    bin.resize(indices_at, 0);
    for index in 0..8u8 {
        bin.push(index);
    }
    let values_at = bin.len();
    bin.extend_from_slice(&corners);
    let views = json["bufferViews"].as_array_mut().expect("views");
    views.push(json!({ "buffer": 0, "byteOffset": indices_at, "byteLength": 8 }));
    views.push(json!({ "buffer": 0, "byteOffset": values_at, "byteLength": 96 }));
    let count = views.len();
    json["buffers"][0]["byteLength"] = json!(bin.len());
    json["accessors"][0] = json!({
        "componentType": 5126, "count": 8, "type": "VEC3", "min": [-1.0, -1.0, -1.0], "max": [1.0, 1.0, 1.0],
        "sparse": { "count": 8,
            "indices": { "bufferView": count - 2, "componentType": 5121 },
            "values": { "bufferView": count - 1 } }
    });
    (json, bin)
}

/// The cube with its positions quantized to normalised 16-bit integers (±1 as ±32767).
fn quantized_cube() -> (Value, Vec<u8>) {
    let mut bin = cube_bin();
    let mut json = cube_json();
    let at = bin.len().next_multiple_of(4);
    bin.resize(at, 0);
    for corner in 0..8u8 {
        for axis in 0..3 {
            let value: i16 = if corner >> axis & 1 == 1 { 32767 } else { -32767 };
            bin.extend_from_slice(&value.to_le_bytes());
        }
        bin.extend_from_slice(&[0, 0]); // Each element padded to 8 bytes, as glTF requires.
    }
    let views = json["bufferViews"].as_array_mut().expect("views");
    views.push(json!({ "buffer": 0, "byteOffset": at, "byteLength": 64, "byteStride": 8 }));
    let view = views.len() - 1;
    json["buffers"][0]["byteLength"] = json!(bin.len());
    json["accessors"][0] = json!({
        "bufferView": view, "componentType": 5122, "normalized": true, "count": 8, "type": "VEC3",
        "min": [-32767, -32767, -32767], "max": [32767, 32767, 32767]
    });
    json["extensionsUsed"] = json!(["KHR_mesh_quantization"]);
    json["extensionsRequired"] = json!(["KHR_mesh_quantization"]);
    (json, bin)
}

#[test]
fn a_sparse_cube_is_made_dense_and_passes() {
    let (json, bin) = sparse_cube();
    let model = glb(&json, &bin);
    assert!(
        matches!(inspect_model(&model, &no_files, &limits()), Err(ModelError::BadAccessor { index: 0, .. })),
        "sparse is not read as it is"
    );
    let plain = plain_model(&model, &no_files, &limits()).expect("reads").expect("changed");
    let summary = inspect_model(&plain, &no_files, &limits()).expect("plain passes");
    assert_eq!(summary.triangles, 12);
    assert_eq!(summary.bounds, Some(([-1.0; 3], [1.0; 3])));
    assert_eq!(summary.textures, vec![(16, 16)]);
}

#[test]
fn a_quantized_cube_is_made_float_and_passes() {
    let (json, bin) = quantized_cube();
    let model = glb(&json, &bin);
    match inspect_model(&model, &no_files, &limits()) {
        Err(ModelError::UnsupportedExtension { name, .. }) => assert_eq!(name, "KHR_mesh_quantization"),
        other => panic!("a quantized model is not read as it is: {other:?}"),
    }
    let plain = plain_model(&model, &no_files, &limits()).expect("reads").expect("changed");
    let summary = inspect_model(&plain, &no_files, &limits()).expect("plain passes");
    assert_eq!(summary.triangles, 12);
    assert_eq!(summary.bounds, Some(([-1.0; 3], [1.0; 3])), "bounds converted with the values");
}

#[test]
fn a_plain_model_is_kept_as_it_is() {
    let model = glb(&cube_json(), &cube_bin());
    assert_eq!(plain_model(&model, &no_files, &limits()), Ok(None));
}

#[test]
fn sparse_parts_out_of_bounds_are_refused() {
    let cases: [(&str, fn(&mut Value, &mut Vec<u8>)); 4] = [
        ("an index past the end", |json, bin| {
            let views = json["bufferViews"].as_array().expect("views");
            let at = views[views.len() - 2]["byteOffset"].as_u64().expect("an offset") as usize;
            bin[at + 3] = 200;
        }),
        ("more replaced than there are", |json, _| json["accessors"][0]["sparse"]["count"] = json!(9)),
        ("values past their view", |json, _| {
            let views = json["bufferViews"].as_array_mut().expect("views");
            let last = views.len() - 1;
            views[last]["byteLength"] = json!(40);
        }),
        ("indices of a bad type", |json, _| json["accessors"][0]["sparse"]["indices"]["componentType"] = json!(5126)),
    ];
    for (what, break_it) in cases {
        let (mut json, mut bin) = sparse_cube();
        break_it(&mut json, &mut bin);
        let result = plain_model(&glb(&json, &bin), &no_files, &limits());
        assert!(result.is_err(), "{what}: {result:?}");
    }
    // Garbage never panics.
    let (json, bin) = sparse_cube();
    let whole = glb(&json, &bin);
    for length in (0..whole.len()).step_by(7) {
        let _ = plain_model(&whole[..length], &no_files, &limits());
    }
}
