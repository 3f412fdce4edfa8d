//! `cargo xtask bench frame`: the CPU time of a frame with a crowd of N avatars, headless (no
//! window, no GPU), on one thread: the client's logic, the crowd graded by distance, the nearest
//! 32 posed every frame from their avatar models' skeletons, the next 224 as jointed bodies posed
//! every 2 to 8 frames, the rest moved as single figures, and transform propagation; the median
//! of many frames.
//!
//! Without a renderer nothing loads models, so this fills in each near avatar's scene as Bevy's
//! glTF loader would (every node of the shipped avatar it wears, named and placed, one entity per
//! mesh primitive); the skinning matrices that the renderer works out from them are not counted.
//!
//! Options: `--frames N` frames per run (default 200), `--smoke` for a quick check that it runs.

use std::time::{Duration, Instant};

use bevy::app::{TaskPoolOptions, TaskPoolPlugin};
use bevy::ecs::schedule::SingleThreadedExecutor;
use bevy::prelude::*;
use sanctuary::{
    AvatarsDrawn, CrowdDetail, DEFAULT_AVATARS, DrifterView, EnterRegion, LookId, ModelScene, WorldSettings,
};
use sanctuary_engine::RegionId;
use sanctuary_engine::crowd::DetailLimits;

/// P1 of TARGETS.md: 1,000 remote avatars within 2 ms of CPU per frame on one core.
const P1_BUDGET_MS: f64 = 2.0;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let smoke = args.iter().any(|arg| arg == "--smoke");
    let frames = match args.iter().position(|arg| arg == "--frames") {
        None if smoke => 5,
        None => 200,
        Some(index) => match args.get(index + 1).and_then(|text| text.parse::<usize>().ok()) {
            Some(frames) if (1..=1_000_000).contains(&frames) => frames,
            _ => {
                eprintln!("error: --frames takes a whole number from 1 to 1000000");
                std::process::exit(2);
            }
        },
    };
    let crowds: &[usize] = if smoke { &[100] } else { &[100, 1_000, 10_000] };
    println!("frame benchmark: headless client logic + crowd grading and posing + transform propagation, one thread");
    println!("{frames} frames per run after 60 warm-up frames; median and 95th percentile of the frame time");
    println!("{:>8}  {:>12}  {:>12}  {:>24}", "avatars", "median (ms)", "p95 (ms)", "near (models) / mid / far");
    let trees: Vec<Vec<NodeSpec>> = DEFAULT_AVATARS.iter().map(|(_, bytes)| node_tree(bytes)).collect();
    for &n_avatars in crowds {
        let single = measure(n_avatars, frames, &trees);
        let [near, mid, far] = single.counts;
        println!(
            "{n_avatars:>8}  {:>12.3}  {:>12.3}  {:>24}",
            millis(single.median),
            millis(single.p95),
            format!("{near} ({}) / {mid} / {far}", single.modelled)
        );
        if n_avatars == 1_000 {
            println!(
                "          P1 budget {P1_BUDGET_MS} ms on one core: {:.2} of the budget used by animation alone \
                 (receiving and verifying poses arrive with the network)",
                millis(single.median) / P1_BUDGET_MS
            );
        }
    }
}

struct Timing {
    median: Duration,
    p95: Duration,
    /// Figures near, mid and far at the end.
    counts: [usize; 3],
    /// Near figures drawn from their models' skeletons.
    modelled: usize,
}

/// A node of an avatar's scene as Bevy's glTF loader spawns it.
#[derive(Clone)]
struct NodeSpec {
    name: String,
    transform: Transform,
    parent: Option<usize>,
    primitives: usize,
}

/// Every node of `glb`'s first scene, parents first.
fn node_tree(glb: &[u8]) -> Vec<NodeSpec> {
    let gltf = bevy::gltf::gltf::Gltf::from_slice(glb).expect("a shipped avatar parses");
    let Some(scene) = gltf.document.scenes().next() else { return Vec::new() };
    let mut nodes = Vec::new();
    let mut queue: Vec<(_, Option<usize>)> = scene.nodes().map(|node| (node, None)).collect();
    while let Some((node, parent)) = queue.pop() {
        let (translation, rotation, scale) = node.transform().decomposed();
        nodes.push(NodeSpec {
            name: node.name().map_or_else(|| format!("GltfNode{}", node.index()), str::to_owned),
            transform: Transform {
                translation: Vec3::from_array(translation),
                rotation: Quat::from_array(rotation),
                scale: Vec3::from_array(scale),
            },
            parent,
            primitives: node.mesh().map_or(0, |mesh| mesh.primitives().len()),
        });
        let at = nodes.len() - 1;
        queue.extend(node.children().map(|child| (child, Some(at))));
    }
    nodes
}

/// The shipped avatars' node trees.
#[derive(Resource)]
struct Trees(Vec<Vec<NodeSpec>>);

/// Fills in each new avatar scene with the nodes of the model it stands for.
fn stand_in_scenes(mut commands: Commands, trees: Res<Trees>, scenes: Query<(Entity, &ModelScene), Added<ModelScene>>) {
    for (root, ModelScene(look)) in &scenes {
        let LookId::Shipped(index) = look else { continue };
        let Some(tree) = trees.0.get(*index) else { continue };
        let mut entities: Vec<Entity> = Vec::with_capacity(tree.len());
        for node in tree {
            let parent = node.parent.map_or(root, |parent| entities[parent]);
            let entity = commands.spawn((Name::new(node.name.clone()), node.transform, Visibility::default())).id();
            commands.entity(parent).add_child(entity);
            for _ in 0..node.primitives {
                commands.entity(entity).with_child((Transform::default(), Visibility::default()));
            }
            entities.push(entity);
        }
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Bevy's task pools are global and made once per process, so every run uses the same single
/// thread, matching P1's "on one core".
fn measure(n_avatars: usize, frames: usize, trees: &[Vec<NodeSpec>]) -> Timing {
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins.set(TaskPoolPlugin { task_pool_options: TaskPoolOptions::with_num_threads(1) }),
        TransformPlugin,
    ))
    .insert_resource(WorldSettings { n_drifters: n_avatars, ..WorldSettings::default() })
    // Near reaches across the lobby, so that the nearest 32 are always posed in full: the
    // heaviest case, whatever the crowd's spread.
    .insert_resource(CrowdDetail::with_limits(DetailLimits { near_within: 1_000.0, ..DetailLimits::default() }))
    .insert_resource(Trees(trees.to_vec()))
    .add_plugins(sanctuary::logic_plugin)
    .add_systems(Update, stand_in_scenes.in_set(sanctuary::Frame::Present));
    // Every system on this thread, one after another: the work of a frame on one core, without
    // the hand-offs between threads that a one-thread pool would add to each system.
    for (_, schedule) in app.world_mut().resource_mut::<Schedules>().iter_mut() {
        schedule.set_executor(SingleThreadedExecutor::new());
    }
    app.world_mut().write_message(EnterRegion(RegionId::Lobby));
    for _ in 0..60 {
        app.update();
    }
    let spawned = app.world_mut().query::<&DrifterView>().iter(app.world()).count();
    assert_eq!(spawned, n_avatars, "the lobby should hold every avatar asked for");
    let mut times: Vec<Duration> = (0..frames)
        .map(|_| {
            let start = Instant::now();
            app.update();
            start.elapsed()
        })
        .collect();
    times.sort();
    let counts = app.world().resource::<CrowdDetail>().counts;
    let modelled = app.world().resource::<AvatarsDrawn>().figures;
    assert_eq!(counts[0], n_avatars.min(32), "the nearest 32 should be near");
    assert_eq!(modelled, counts[0], "every near avatar should be posed from its model's skeleton");
    Timing {
        median: times[times.len() / 2],
        p95: times[(times.len() * 95 / 100).min(times.len() - 1)],
        counts,
        modelled,
    }
}
