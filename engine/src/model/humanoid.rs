//! The humanoid skeleton of an avatar model: which node is the hips, the head, each arm and leg.
//!
//! VRM says it outright, in `extensions.VRMC_vrm.humanoid.humanBones` (VRM 1.0, an object keyed
//! by bone name) or `extensions.VRM.humanoid.humanBones` (VRM 0.x, a list of `{bone, node}`).
//! Other models are read by their node names, as Mixamo, Blender's Rigify-style `.L`/`.R` and
//! VRM-named rigs spell them. A model without the bones the body needs has no humanoid and is
//! drawn stiff, whole, at the person's head.
//!
//! Nothing here trusts the file: node indices are checked against the node count, a node may be
//! one bone only, and lists are bounded by the node count already checked.

use gltf::json;
use serde::Deserialize;
use serde_json::Value;

/// A bone of the humanoid skeleton, named as VRM names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HumanBone {
    /// The pelvis: the root of the skeleton.
    Hips,
    /// The lowest spine bone.
    Spine,
    /// The spine bone above it.
    Chest,
    /// The top of the spine, if the rig has one.
    UpperChest,
    /// The neck.
    Neck,
    /// The head.
    Head,
    /// The left collarbone.
    LeftShoulder,
    /// The left upper arm (shoulder to elbow).
    LeftUpperArm,
    /// The left forearm (elbow to wrist).
    LeftLowerArm,
    /// The left hand.
    LeftHand,
    /// The right collarbone.
    RightShoulder,
    /// The right upper arm.
    RightUpperArm,
    /// The right forearm.
    RightLowerArm,
    /// The right hand.
    RightHand,
    /// The left thigh.
    LeftUpperLeg,
    /// The left shin.
    LeftLowerLeg,
    /// The left foot.
    LeftFoot,
    /// The right thigh.
    RightUpperLeg,
    /// The right shin.
    RightLowerLeg,
    /// The right foot.
    RightFoot,
}

impl HumanBone {
    /// Every bone, hips first, each after its parent.
    pub const ALL: [HumanBone; 20] = [
        Self::Hips,
        Self::Spine,
        Self::Chest,
        Self::UpperChest,
        Self::Neck,
        Self::Head,
        Self::LeftShoulder,
        Self::LeftUpperArm,
        Self::LeftLowerArm,
        Self::LeftHand,
        Self::RightShoulder,
        Self::RightUpperArm,
        Self::RightLowerArm,
        Self::RightHand,
        Self::LeftUpperLeg,
        Self::LeftLowerLeg,
        Self::LeftFoot,
        Self::RightUpperLeg,
        Self::RightLowerLeg,
        Self::RightFoot,
    ];

    /// The bones a body cannot be driven without (VRM's required bones, less the optional ones).
    pub const REQUIRED: [HumanBone; 15] = [
        Self::Hips,
        Self::Spine,
        Self::Head,
        Self::LeftUpperArm,
        Self::LeftLowerArm,
        Self::LeftHand,
        Self::RightUpperArm,
        Self::RightLowerArm,
        Self::RightHand,
        Self::LeftUpperLeg,
        Self::LeftLowerLeg,
        Self::LeftFoot,
        Self::RightUpperLeg,
        Self::RightLowerLeg,
        Self::RightFoot,
    ];

    /// The name VRM gives it (`leftUpperArm`).
    pub fn vrm_name(self) -> &'static str {
        match self {
            Self::Hips => "hips",
            Self::Spine => "spine",
            Self::Chest => "chest",
            Self::UpperChest => "upperChest",
            Self::Neck => "neck",
            Self::Head => "head",
            Self::LeftShoulder => "leftShoulder",
            Self::LeftUpperArm => "leftUpperArm",
            Self::LeftLowerArm => "leftLowerArm",
            Self::LeftHand => "leftHand",
            Self::RightShoulder => "rightShoulder",
            Self::RightUpperArm => "rightUpperArm",
            Self::RightLowerArm => "rightLowerArm",
            Self::RightHand => "rightHand",
            Self::LeftUpperLeg => "leftUpperLeg",
            Self::LeftLowerLeg => "leftLowerLeg",
            Self::LeftFoot => "leftFoot",
            Self::RightUpperLeg => "rightUpperLeg",
            Self::RightLowerLeg => "rightLowerLeg",
            Self::RightFoot => "rightFoot",
        }
    }

    /// The bone VRM names `name`, if any.
    pub fn from_vrm_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|bone| bone.vrm_name() == name)
    }

    /// The bone a rig's node name stands for, as common tools spell them: VRM's own names,
    /// Mixamo's (`mixamorig:LeftForeArm`), and Blender's (`forearm.L`, `thigh_R`).
    pub fn from_node_name(name: &str) -> Option<Self> {
        // Drop a namespace (`mixamorig:`), then case and separators.
        let base = name.rsplit(':').next().unwrap_or(name);
        let key: String =
            base.chars().filter(|c| !matches!(c, '_' | '-' | '.' | ' ')).flat_map(char::to_lowercase).collect();
        let key = key.strip_prefix("mixamorig").unwrap_or(&key);
        let bone = match key {
            "hips" | "pelvis" => Self::Hips,
            "spine" => Self::Spine,
            "chest" | "spine1" => Self::Chest,
            "upperchest" | "spine2" => Self::UpperChest,
            "neck" => Self::Neck,
            "head" => Self::Head,
            "leftshoulder" | "shoulderl" | "lshoulder" | "claviclel" => Self::LeftShoulder,
            "leftupperarm" | "leftarm" | "upperarml" | "lupperarm" => Self::LeftUpperArm,
            "leftlowerarm" | "leftforearm" | "forearml" | "lowerarml" | "lforearm" => Self::LeftLowerArm,
            "lefthand" | "handl" | "lhand" => Self::LeftHand,
            "rightshoulder" | "shoulderr" | "rshoulder" | "clavicler" => Self::RightShoulder,
            "rightupperarm" | "rightarm" | "upperarmr" | "rupperarm" => Self::RightUpperArm,
            "rightlowerarm" | "rightforearm" | "forearmr" | "lowerarmr" | "rforearm" => Self::RightLowerArm,
            "righthand" | "handr" | "rhand" => Self::RightHand,
            "leftupperleg" | "leftupleg" | "thighl" | "upperlegl" | "lthigh" => Self::LeftUpperLeg,
            "leftlowerleg" | "leftleg" | "shinl" | "calfl" | "lowerlegl" | "lcalf" => Self::LeftLowerLeg,
            "leftfoot" | "footl" | "lfoot" => Self::LeftFoot,
            "rightupperleg" | "rightupleg" | "thighr" | "upperlegr" | "rthigh" => Self::RightUpperLeg,
            "rightlowerleg" | "rightleg" | "shinr" | "calfr" | "lowerlegr" | "rcalf" => Self::RightLowerLeg,
            "rightfoot" | "footr" | "rfoot" => Self::RightFoot,
            _ => return None,
        };
        Some(bone)
    }
}

/// Where the skeleton's description came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RigSource {
    /// A VRM 0.x model: its avatar faces −Z in the file.
    Vrm0,
    /// A VRM 1.0 model: its avatar faces +Z, as glTF says models should.
    Vrm1,
    /// A plain glTF whose bones were recognised by name; it faces +Z.
    NodeNames,
}

/// An avatar model's humanoid skeleton.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Humanoid {
    /// Where the mapping came from.
    pub source: RigSource,
    /// Each bone the model has and the node that is it, in [`HumanBone::ALL`]'s order.
    pub bones: Vec<(HumanBone, usize)>,
    /// The name of each bone's node, in the same order: its own name, or `GltfNode{index}` for
    /// a node without one (as Bevy's loader names the entities it spawns).
    pub names: Vec<String>,
    /// Nodes whose meshes the wearer's own eyes must not see (VRM's `thirdPersonOnly`, and the
    /// head's meshes for `auto`): hidden in first person, so a headset does not look out from
    /// inside the face.
    pub hidden_in_first_person: Vec<usize>,
    /// The names of those nodes, in the same order, spelled as [`Humanoid::names`] are.
    pub hidden_names: Vec<String>,
}

impl Humanoid {
    /// The node of `bone`, if the model has it.
    pub fn node(&self, bone: HumanBone) -> Option<usize> {
        self.bones.iter().find(|(have, _)| *have == bone).map(|(_, node)| *node)
    }
}

/// The extension objects this module reads; everything else in the file is skipped unparsed.
#[derive(Deserialize, Default)]
struct Extensions {
    #[serde(rename = "VRMC_vrm")]
    vrm1: Option<Value>,
    #[serde(rename = "VRM")]
    vrm0: Option<Value>,
}

#[derive(Deserialize)]
struct RootExtensions {
    #[serde(default)]
    extensions: Option<Extensions>,
}

/// Reads the humanoid skeleton from the model's JSON (the `.gltf` file or the GLB's JSON chunk)
/// and its already validated `root`. `None` when the model lacks a required bone, names a node
/// that does not exist, or gives one node two bones.
pub(super) fn read_humanoid(json_text: &[u8], root: &json::Root) -> Option<Humanoid> {
    let extensions = serde_json::from_slice::<RootExtensions>(json_text).ok()?.extensions.unwrap_or_default();
    let nodes = root.nodes.len();
    let (source, named, hidden) = if let Some(vrm) = extensions.vrm1 {
        let bones = vrm.pointer("/humanoid/humanBones")?.as_object()?;
        let named: Vec<(HumanBone, u64)> = bones
            .iter()
            .filter_map(|(name, bone)| Some((HumanBone::from_vrm_name(name)?, bone.get("node")?.as_u64()?)))
            .collect();
        let hidden = vrm1_hidden(&vrm);
        (RigSource::Vrm1, named, hidden)
    } else if let Some(vrm) = extensions.vrm0 {
        let bones = vrm.pointer("/humanoid/humanBones")?.as_array()?;
        let named: Vec<(HumanBone, u64)> = bones
            .iter()
            .take(nodes.saturating_add(HumanBone::ALL.len()))
            .filter_map(|bone| {
                Some((HumanBone::from_vrm_name(bone.get("bone")?.as_str()?)?, bone.get("node")?.as_u64()?))
            })
            .collect();
        let hidden = vrm0_hidden(&vrm, root);
        (RigSource::Vrm0, named, hidden)
    } else {
        let named = root
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(index, node)| Some((HumanBone::from_node_name(node.name.as_deref()?)?, index as u64)))
            .collect();
        (RigSource::NodeNames, named, Vec::new())
    };

    let mut bones: Vec<(HumanBone, usize)> = Vec::new();
    for (bone, node) in named {
        let node = usize::try_from(node).ok().filter(|node| *node < nodes)?;
        match bones.iter().find(|(have, _)| *have == bone) {
            // A name seen twice (two rigs in one file) keeps the first.
            Some(_) if source == RigSource::NodeNames => continue,
            Some(_) => return None,
            None => {}
        }
        if bones.iter().any(|(_, have)| *have == node) {
            return None;
        }
        bones.push((bone, node));
    }
    if !HumanBone::REQUIRED.iter().all(|bone| bones.iter().any(|(have, _)| have == bone)) {
        return None;
    }
    bones.sort_by_key(|(bone, _)| *bone);

    let mut hidden_in_first_person: Vec<usize> = hidden.into_iter().filter(|node| *node < nodes).collect();
    hidden_in_first_person.sort_unstable();
    hidden_in_first_person.dedup();
    let name = |node: usize| {
        root.nodes.get(node).and_then(|found| found.name.clone()).unwrap_or_else(|| format!("GltfNode{node}"))
    };
    let names = bones.iter().map(|(_, node)| name(*node)).collect();
    let hidden_names = hidden_in_first_person.iter().map(|node| name(*node)).collect();
    Some(Humanoid { source, bones, names, hidden_in_first_person, hidden_names })
}

/// VRM 1.0's `firstPerson.meshAnnotations`: nodes marked `thirdPersonOnly`.
fn vrm1_hidden(vrm: &Value) -> Vec<usize> {
    let Some(annotations) = vrm.pointer("/firstPerson/meshAnnotations").and_then(Value::as_array) else {
        return Vec::new();
    };
    annotations
        .iter()
        .filter(|annotation| annotation.get("type").and_then(Value::as_str) == Some("thirdPersonOnly"))
        .filter_map(|annotation| usize::try_from(annotation.get("node")?.as_u64()?).ok())
        .collect()
}

/// VRM 0.x's `firstPerson.meshAnnotations` name meshes, not nodes: every node drawing a mesh
/// marked `ThirdPersonOnly`.
fn vrm0_hidden(vrm: &Value, root: &json::Root) -> Vec<usize> {
    let Some(annotations) = vrm.pointer("/firstPerson/meshAnnotations").and_then(Value::as_array) else {
        return Vec::new();
    };
    let meshes: Vec<u64> = annotations
        .iter()
        .filter(|annotation| annotation.get("firstPersonFlag").and_then(Value::as_str) == Some("ThirdPersonOnly"))
        .filter_map(|annotation| annotation.get("mesh")?.as_u64())
        .collect();
    root.nodes
        .iter()
        .enumerate()
        .filter(|(_, node)| node.mesh.is_some_and(|mesh| meshes.contains(&(mesh.value() as u64))))
        .map(|(index, _)| index)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_rig_names_are_recognised() {
        for (name, bone) in [
            ("mixamorig:Hips", HumanBone::Hips),
            ("mixamorig:LeftForeArm", HumanBone::LeftLowerArm),
            ("mixamorig:RightUpLeg", HumanBone::RightUpperLeg),
            ("mixamorig:LeftLeg", HumanBone::LeftLowerLeg),
            ("forearm.L", HumanBone::LeftLowerArm),
            ("thigh_R", HumanBone::RightUpperLeg),
            ("leftUpperArm", HumanBone::LeftUpperArm),
            ("Spine2", HumanBone::UpperChest),
            ("Head", HumanBone::Head),
        ] {
            assert_eq!(HumanBone::from_node_name(name), Some(bone), "{name}");
        }
        for name in ["HeadTop_End", "LeftHandIndex1", "Armature", "", "::"] {
            assert_eq!(HumanBone::from_node_name(name), None, "{name}");
        }
    }

    #[test]
    fn vrm_names_round_trip() {
        for bone in HumanBone::ALL {
            assert_eq!(HumanBone::from_vrm_name(bone.vrm_name()), Some(bone));
        }
    }
}
