//! The node hierarchy: no node twice, no cycle, no deeper than the limit, all without recursion.

use std::collections::HashSet;

use gltf::json;

use super::{ModelError, ModelLimits};

/// At most `max_nodes` nodes, each with at most one parent, no cycle, at most `max_depth` levels.
/// Iterative, so a chain thousands deep cannot overflow the stack.
pub(super) fn check_nodes(root: &json::Root, limits: &ModelLimits) -> Result<(), ModelError> {
    let node_count = root.nodes.len();
    if node_count > limits.max_nodes {
        return Err(ModelError::TooManyNodes { nodes: node_count, limit: limits.max_nodes });
    }
    let children_of = |node: usize| root.nodes[node].children.iter().flatten().map(|child| child.value());

    let mut parent: Vec<Option<usize>> = vec![None; node_count];
    for node in 0..node_count {
        for child in children_of(node) {
            if child >= node_count {
                return Err(ModelError::NotGltf(format!("node {node} names child {child}, which does not exist")));
            }
            if child == node {
                return Err(ModelError::NodeCycle(node));
            }
            if parent[child].is_some() {
                return Err(ModelError::SharedNode(child));
            }
            parent[child] = Some(node);
        }
    }

    for scene in &root.scenes {
        let mut in_scene = HashSet::new();
        for node in scene.nodes.iter().map(|node| node.value()) {
            if node >= node_count {
                return Err(ModelError::NotGltf(format!("a scene names node {node}, which does not exist")));
            }
            if parent[node].is_some() || !in_scene.insert(node) {
                return Err(ModelError::SharedNode(node));
            }
        }
    }

    // With one parent each, a walk down from the parentless nodes reaches every node once,
    // except those on a cycle (which have parents but no root above them).
    let mut visited = vec![false; node_count];
    let mut pending: Vec<(usize, usize)> =
        (0..node_count).filter(|&node| parent[node].is_none()).map(|node| (node, 1)).collect();
    let mut deepest = 0;
    while let Some((node, depth)) = pending.pop() {
        visited[node] = true;
        deepest = deepest.max(depth);
        pending.extend(children_of(node).map(|child| (child, depth + 1)));
    }
    if let Some(node) = visited.iter().position(|&seen| !seen) {
        return Err(ModelError::NodeCycle(node));
    }
    if deepest > limits.max_depth {
        return Err(ModelError::TooDeep { depth: deepest, limit: limits.max_depth });
    }
    Ok(())
}
