//! Avatars: the budget a model must fit to be worn, and its performance rank.
//!
//! Every avatar gets a rank from four measures of what it costs everyone who draws it:
//! triangles, materials (each a draw call or more), bones (skinning work) and texture memory.
//! Its rank is the worst of the four. A viewer chooses up to which rank avatars are drawn as
//! they are; beyond it a plain body in the person's colour stands in. A model past the last
//! rank's limits is not accepted as an avatar at all.
//!
//! | rank | triangles | materials | bones | texture memory |
//! |---|---|---|---|---|
//! | Excellent | 10,000 | 2 | 75 | 16 MiB |
//! | Good | 32,000 | 4 | 150 | 40 MiB |
//! | Medium | 50,000 | 8 | 200 | 64 MiB |
//! | Poor | 70,000 | 16 | 256 | 110 MiB |
//! | Very poor (the budget) | 100,000 | 32 | 400 | 256 MiB |
//!
//! The numbers follow VRChat's PC ranks in spirit, tighter at the top: a lobby of a thousand
//! people is only affordable when most of them are Excellent or Good.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{ModelLimits, ModelSummary};

/// The avatar someone wears, as their presence announces it: enough to decide whether to fetch
/// it before fetching. The rank is the wearer's claim; a viewer ranks the model again once it
/// is here and draws the fallback if the claim was false.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AvatarRef {
    /// BLAKE3 of the model's bundle (its manifest blob), as for a placed model.
    pub hash: [u8; 32],
    /// Bytes of all its files together (at most [`AVATAR_BYTES`]).
    pub bytes: u64,
    /// The rank its wearer's copy gave it.
    pub rank: Rank,
}

/// An avatar's performance rank, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Rank {
    /// Cheap enough for a crowd.
    Excellent,
    /// Fine in a busy room.
    Good,
    /// Fine among friends.
    Medium,
    /// Costly: shown as a plain body by default.
    Poor,
    /// Within the avatar budget, but only for those who ask to see it.
    VeryPoor,
}

impl Rank {
    /// Every rank, best first.
    pub const ALL: [Rank; 5] = [Self::Excellent, Self::Good, Self::Medium, Self::Poor, Self::VeryPoor];

    /// The rank's name as people read it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Excellent => "Excellent",
            Self::Good => "Good",
            Self::Medium => "Medium",
            Self::Poor => "Poor",
            Self::VeryPoor => "Very poor",
        }
    }

    /// The most each measure may be for this rank.
    pub fn limits(self) -> RankLimits {
        match self {
            Self::Excellent => RankLimits { triangles: 10_000, materials: 2, bones: 75, texture_bytes: 16 * MIB },
            Self::Good => RankLimits { triangles: 32_000, materials: 4, bones: 150, texture_bytes: 40 * MIB },
            Self::Medium => RankLimits { triangles: 50_000, materials: 8, bones: 200, texture_bytes: 64 * MIB },
            Self::Poor => RankLimits { triangles: 70_000, materials: 16, bones: 256, texture_bytes: 110 * MIB },
            Self::VeryPoor => AVATAR_BUDGET,
        }
    }

    /// The rank a viewer's setting names (`excellent`, `good`, `medium`, `poor`, `very-poor` or
    /// `all`), case-insensitive.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim().to_ascii_lowercase();
        Some(match text.as_str() {
            "excellent" => Self::Excellent,
            "good" => Self::Good,
            "medium" => Self::Medium,
            "poor" => Self::Poor,
            "very-poor" | "verypoor" | "very poor" | "all" => Self::VeryPoor,
            _ => return None,
        })
    }
}

impl fmt::Display for Rank {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

const MIB: u64 = 1024 * 1024;

/// The most of each measure a rank allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RankLimits {
    /// Triangles of all meshes.
    pub triangles: u64,
    /// Distinct materials.
    pub materials: usize,
    /// Distinct skin joints.
    pub bones: usize,
    /// Texture memory once decoded ([`ModelSummary::texture_bytes`]).
    pub texture_bytes: u64,
}

/// The most an avatar may cost at all: the limits of [`Rank::VeryPoor`].
pub const AVATAR_BUDGET: RankLimits =
    RankLimits { triangles: 100_000, materials: 32, bones: 400, texture_bytes: 256 * MIB };

/// The most bytes an avatar's files may take together.
pub const AVATAR_BYTES: u64 = 32 * MIB;

/// The limits an avatar model is checked against before it decodes.
pub fn avatar_limits() -> ModelLimits {
    ModelLimits {
        max_bytes: AVATAR_BYTES,
        max_triangles: AVATAR_BUDGET.triangles,
        max_vertices: 150_000,
        max_texture_side: 4096,
        max_nodes: 2048,
        max_depth: 64,
        max_files: 64,
    }
}

/// Which measure decided a rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Triangles.
    Triangles,
    /// Materials.
    Materials,
    /// Bones.
    Bones,
    /// Texture memory.
    TextureMemory,
}

/// An avatar's rank and what set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ranking {
    /// The rank.
    pub rank: Rank,
    /// The measure that made it no better; `None` when the avatar is Excellent.
    pub decided_by: Option<Measure>,
}

/// Why a model cannot be worn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AvatarError {
    /// One measure is over the avatar budget.
    #[error("the avatar has {have} {what}, over the limit of {limit} for any avatar; {advice}")]
    OverBudget {
        /// What is over.
        what: &'static str,
        /// How much it has.
        have: u64,
        /// The most allowed.
        limit: u64,
        /// How to bring it down.
        advice: &'static str,
    },
}

/// The rank of a checked model, or why it cannot be an avatar at all.
///
/// # Errors
///
/// [`AvatarError::OverBudget`] naming the first measure over [`AVATAR_BUDGET`].
pub fn rank(summary: &ModelSummary) -> Result<Ranking, AvatarError> {
    let measures = [
        (Measure::Triangles, summary.triangles),
        (Measure::Materials, summary.materials as u64),
        (Measure::Bones, summary.bones as u64),
        (Measure::TextureMemory, summary.texture_bytes),
    ];
    for (measure, have) in measures {
        let limit = limit_of(AVATAR_BUDGET, measure);
        if have > limit {
            let (what, advice) = match measure {
                Measure::Triangles => ("triangles", "simplify its meshes (Blender's Decimate modifier)"),
                Measure::Materials => ("materials", "merge its materials into a texture atlas"),
                Measure::Bones => ("bones", "remove bones the body does not need (hair and cloth chains)"),
                Measure::TextureMemory => ("bytes of texture memory", "scale its textures down"),
            };
            return Err(AvatarError::OverBudget { what, have, limit, advice });
        }
    }
    let mut ranking = Ranking { rank: Rank::Excellent, decided_by: None };
    for (measure, have) in measures {
        let fits =
            Rank::ALL.into_iter().find(|rank| have <= limit_of(rank.limits(), measure)).unwrap_or(Rank::VeryPoor);
        if fits > ranking.rank {
            ranking = Ranking { rank: fits, decided_by: Some(measure) };
        }
    }
    Ok(ranking)
}

fn limit_of(limits: RankLimits, measure: Measure) -> u64 {
    match measure {
        Measure::Triangles => limits.triangles,
        Measure::Materials => limits.materials as u64,
        Measure::Bones => limits.bones as u64,
        Measure::TextureMemory => limits.texture_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(triangles: u64, materials: usize, bones: usize, texture_bytes: u64) -> ModelSummary {
        ModelSummary {
            triangles,
            vertices: triangles,
            bytes: 1000,
            textures: Vec::new(),
            meshes: 1,
            bounds: None,
            materials,
            bones,
            texture_bytes,
            humanoid: None,
        }
    }

    #[test]
    fn the_worst_measure_sets_the_rank() {
        assert_eq!(rank(&summary(5_000, 1, 60, MIB)), Ok(Ranking { rank: Rank::Excellent, decided_by: None }));
        assert_eq!(
            rank(&summary(5_000, 6, 60, MIB)),
            Ok(Ranking { rank: Rank::Medium, decided_by: Some(Measure::Materials) })
        );
        assert_eq!(
            rank(&summary(60_000, 6, 60, MIB)),
            Ok(Ranking { rank: Rank::Poor, decided_by: Some(Measure::Triangles) })
        );
        assert_eq!(
            rank(&summary(5_000, 1, 300, MIB)),
            Ok(Ranking { rank: Rank::VeryPoor, decided_by: Some(Measure::Bones) })
        );
        // Exactly at a limit is within it.
        assert_eq!(rank(&summary(10_000, 2, 75, 16 * MIB)).map(|ranking| ranking.rank), Ok(Rank::Excellent));
        assert_eq!(rank(&summary(10_001, 2, 75, 16 * MIB)).map(|ranking| ranking.rank), Ok(Rank::Good));
    }

    #[test]
    fn over_the_budget_is_refused_naming_the_measure() {
        let error = rank(&summary(5_000, 1, 60, 300 * MIB)).expect_err("over budget");
        assert!(error.to_string().contains("texture memory"), "{error}");
        let error = rank(&summary(5_000, 33, 60, MIB)).expect_err("over budget");
        assert!(error.to_string().contains("33 materials"), "{error}");
    }

    #[test]
    fn ranks_are_ordered_and_limits_grow() {
        for pair in Rank::ALL.windows(2) {
            let (better, worse) = (pair[0].limits(), pair[1].limits());
            assert!(pair[0] < pair[1]);
            assert!(better.triangles < worse.triangles && better.materials < worse.materials);
            assert!(better.bones < worse.bones && better.texture_bytes < worse.texture_bytes);
        }
        assert_eq!(Rank::parse(" Good "), Some(Rank::Good));
        assert_eq!(Rank::parse("all"), Some(Rank::VeryPoor));
        assert_eq!(Rank::parse("best"), None);
    }
}
