//! Avatar models: the humanoid skeleton read from VRM 1.0, VRM 0.x or common bone names; the
//! costs a rank is made of; and glTF extensions a model may or may not require.

use sanctuary_engine::avatar::{Rank, rank};
use sanctuary_engine::{HumanBone, ModelError, ModelLimits, ModelSummary, PASSED_THROUGH, RigSource, inspect_model};
use serde_json::{Map, Value, json};
use support::{cube_bin, cube_json, glb, no_files};

#[allow(dead_code, reason = "each test file uses some of the shared builders")]
mod support;

/// The cube with a skeleton of every humanoid bone as its child nodes (node 0 is the cube,
/// node 1 + i is `HumanBone::ALL[i]`), each named `name(bone)`, and a skin naming them all.
fn rigged(name: impl Fn(HumanBone) -> String) -> Value {
    let mut json = cube_json();
    let bones = HumanBone::ALL.len();
    let mut nodes = vec![json!({ "mesh": 0, "skin": 0, "children": [1] })];
    for (index, bone) in HumanBone::ALL.into_iter().enumerate() {
        // A chain is enough for these tests: each bone the child of the one before.
        let mut node = json!({ "name": name(bone), "translation": [0.0, 0.1, 0.0] });
        if index + 1 < bones {
            node["children"] = json!([index + 2]);
        }
        nodes.push(node);
    }
    json["nodes"] = Value::Array(nodes);
    json["skins"] = json!([{ "joints": (1..=bones).collect::<Vec<_>>() }]);
    json
}

fn vrm1_bones() -> Value {
    let mut bones = Map::new();
    for (index, bone) in HumanBone::ALL.into_iter().enumerate() {
        bones.insert(bone.vrm_name().to_owned(), json!({ "node": index + 1 }));
    }
    Value::Object(bones)
}

fn inspect(json: &Value) -> Result<ModelSummary, ModelError> {
    inspect_model(&glb(json, &cube_bin()), &no_files, &ModelLimits::default())
}

#[test]
fn a_vrm_1_avatar_has_its_bones_and_an_excellent_rank() {
    let mut json = rigged(|_| "bone".to_owned());
    json["extensionsUsed"] = json!(["VRMC_vrm"]);
    json["extensions"] = json!({ "VRMC_vrm": {
        "specVersion": "1.0",
        "humanoid": { "humanBones": vrm1_bones() },
        "firstPerson": { "meshAnnotations": [
            { "node": 0, "type": "thirdPersonOnly" }, { "node": 99, "type": "thirdPersonOnly" }
        ] }
    } });
    let summary = inspect(&json).expect("valid");
    let humanoid = summary.humanoid.clone().expect("a humanoid");
    assert_eq!(humanoid.source, RigSource::Vrm1);
    assert_eq!(humanoid.bones.len(), HumanBone::ALL.len());
    assert_eq!(humanoid.node(HumanBone::LeftHand), Some(10));
    // The node past the end is dropped, not trusted.
    assert_eq!(humanoid.hidden_in_first_person, vec![0]);
    assert_eq!(humanoid.hidden_names.len(), 1, "named as Bevy names its entity");
    assert_eq!(summary.bones, HumanBone::ALL.len());
    assert_eq!(summary.materials, 1);
    assert_eq!(rank(&summary).map(|ranking| ranking.rank), Ok(Rank::Excellent));
}

#[test]
fn a_vrm_0_avatar_is_read_from_its_list() {
    let mut json = rigged(|_| "bone".to_owned());
    let list: Vec<Value> = HumanBone::ALL
        .into_iter()
        .enumerate()
        .map(|(index, bone)| json!({ "bone": bone.vrm_name(), "node": index + 1 }))
        .collect();
    json["extensions"] = json!({ "VRM": {
        "humanoid": { "humanBones": list },
        "firstPerson": { "meshAnnotations": [{ "mesh": 0, "firstPersonFlag": "ThirdPersonOnly" }] }
    } });
    let humanoid = inspect(&json).expect("valid").humanoid.expect("a humanoid");
    assert_eq!(humanoid.source, RigSource::Vrm0);
    assert_eq!(humanoid.node(HumanBone::Hips), Some(1));
    assert_eq!(humanoid.hidden_in_first_person, vec![0], "the node drawing mesh 0");
}

#[test]
fn a_mixamo_rig_is_read_from_its_names() {
    let mixamo = |bone: HumanBone| {
        let name = match bone {
            HumanBone::LeftUpperArm => "LeftArm".to_owned(),
            HumanBone::LeftLowerArm => "LeftForeArm".to_owned(),
            HumanBone::RightUpperArm => "RightArm".to_owned(),
            HumanBone::RightLowerArm => "RightForeArm".to_owned(),
            HumanBone::LeftUpperLeg => "LeftUpLeg".to_owned(),
            HumanBone::LeftLowerLeg => "LeftLeg".to_owned(),
            HumanBone::RightUpperLeg => "RightUpLeg".to_owned(),
            HumanBone::RightLowerLeg => "RightLeg".to_owned(),
            HumanBone::Chest => "Spine1".to_owned(),
            HumanBone::UpperChest => "Spine2".to_owned(),
            other => {
                let name = other.vrm_name();
                name[..1].to_uppercase() + &name[1..]
            }
        };
        format!("mixamorig:{name}")
    };
    let humanoid = inspect(&rigged(mixamo)).expect("valid").humanoid.expect("a humanoid");
    assert_eq!(humanoid.source, RigSource::NodeNames);
    assert_eq!(humanoid.bones.len(), HumanBone::ALL.len());
    assert_eq!(humanoid.node(HumanBone::RightLowerLeg), Some(19));
}

#[test]
fn a_rig_missing_a_bone_or_naming_a_node_twice_is_no_humanoid() {
    let without_foot =
        rigged(|bone| if bone == HumanBone::LeftFoot { "Toe".to_owned() } else { bone.vrm_name().to_owned() });
    assert_eq!(inspect(&without_foot).expect("valid").humanoid, None, "no left foot");
    assert!(inspect(&rigged(|bone| bone.vrm_name().to_owned())).expect("valid").humanoid.is_some());

    let mut twice = rigged(|_| "bone".to_owned());
    let mut bones = vrm1_bones();
    bones["leftFoot"] = json!({ "node": 1 });
    twice["extensions"] = json!({ "VRMC_vrm": { "humanoid": { "humanBones": bones } } });
    assert_eq!(inspect(&twice).expect("valid").humanoid, None, "one node, two bones");

    let mut past_the_end = rigged(|_| "bone".to_owned());
    let mut bones = vrm1_bones();
    bones["head"] = json!({ "node": 4000 });
    past_the_end["extensions"] = json!({ "VRMC_vrm": { "humanoid": { "humanBones": bones } } });
    assert_eq!(inspect(&past_the_end).expect("valid").humanoid, None, "a node that is not there");

    let mut garbage = rigged(|_| "bone".to_owned());
    garbage["extensions"] = json!({ "VRMC_vrm": { "humanoid": { "humanBones": [1, "x", null] } } });
    assert_eq!(inspect(&garbage).expect("valid").humanoid, None, "bones of the wrong shape");
}

#[test]
fn materials_count_each_distinct_one_and_the_default_once() {
    let mut json = cube_json();
    let primitive = json["meshes"][0]["primitives"][0].clone();
    let mut second = primitive.clone();
    second["material"] = json!(1);
    let mut third = primitive.clone();
    third.as_object_mut().expect("an object").remove("material");
    json["meshes"][0]["primitives"] = json!([primitive, second, third.clone(), third]);
    json["materials"].as_array_mut().expect("an array").push(json!({}));
    let summary = inspect(&json).expect("valid");
    assert_eq!(summary.materials, 3);
    assert_eq!(summary.texture_bytes, 16 * 16 * 4 * 4 / 3);
}

#[test]
fn a_required_extension_sanctuary_cannot_read_is_refused_by_name() {
    for name in [
        "KHR_draco_mesh_compression",
        "EXT_meshopt_compression",
        "KHR_mesh_quantization",
        "EXT_texture_webp",
        "KHR_texture_basisu",
        "ACME_teleporter",
    ] {
        let mut json = cube_json();
        json["extensionsUsed"] = json!([name]);
        json["extensionsRequired"] = json!([name]);
        match inspect(&json) {
            Err(error @ ModelError::UnsupportedExtension { .. }) => {
                let text = error.to_string();
                assert!(text.contains(name) && text.contains("export it again") || text.contains("PNG"), "{text}");
            }
            other => panic!("{name}: expected UnsupportedExtension, got {other:?}"),
        }
    }
}

#[test]
fn extensions_drawn_or_only_used_pass() {
    for name in PASSED_THROUGH {
        let mut json = cube_json();
        json["extensionsUsed"] = json!([name]);
        json["extensionsRequired"] = json!([name]);
        assert!(inspect(&json).is_ok(), "{name} required");
    }
    // Used but not required: the file has a fallback, and the extension is ignored.
    let mut json = cube_json();
    json["extensionsUsed"] = json!(["ACME_sparkles"]);
    assert!(inspect(&json).is_ok());
}
