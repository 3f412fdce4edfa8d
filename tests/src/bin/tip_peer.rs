//! A peer called Bo who stands in the lobby a few steps in front of where people arrive and
//! takes tips through the offer given: for pictures of tipping, and for trying `/tip` by hand
//! with the test chain (`cargo run -p sanctuary-wallet --example test_chain`, then `lightning`
//! and `offer SATS` there).
//!
//! Usage: `tip_peer DATA_DIR OFFER [SECONDS]`: prints its ticket, for `sanctuary --join TICKET`,
//! and stays SECONDS (default 300).

use std::path::PathBuf;
use std::time::Duration;

use glam::{Quat, Vec3};
use sanctuary_engine::{RegionId, RegionLayout, WORLD_SEED};
use sanctuary_net::{Command, Event, PoseFrame, QuantisedTransform, RelayChoice, spawn_node};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(offer)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: tip_peer DATA_DIR OFFER [SECONDS]");
        std::process::exit(2);
    };
    let seconds: u64 = args.get(3).and_then(|text| text.parse().ok()).unwrap_or(300);
    let mut config = sanctuary_net::NodeConfig::new(PathBuf::from(dir));
    config.relays = RelayChoice::Disabled;
    config.lan_discovery = false;
    config.name = Some("Bo".into());
    config.colour = Some([240, 170, 40]);
    let mut node = spawn_node(&tokio::runtime::Handle::current(), config);
    // A few steps in front of the lobby's arrival point (whoever arrives looks towards the
    // lobby's centre, -z), a little to the right, facing them.
    let layout = RegionLayout::generate(RegionId::Lobby, WORLD_SEED, 0);
    let head = layout.spawn + Vec3::new(0.9, 0.0, -3.5);
    let facing = Quat::from_rotation_y(std::f32::consts::PI);
    let at = |side: f32| QuantisedTransform::new(head + facing * Vec3::new(side, -0.45, -0.2), facing);
    let pose = PoseFrame { head: QuantisedTransform::new(head, facing), left_hand: at(-0.3), right_hand: at(0.3) };
    node.send(Command::TipOffer(Some(offer.clone())));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    while tokio::time::Instant::now() < deadline {
        node.send(Command::Pose(pose));
        while let Some(event) = node.try_event() {
            match event {
                Event::Started { ticket, .. } => println!("ticket {ticket}"),
                Event::Notice(notice) => println!("notice: {notice}"),
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    node.shutdown().await;
}
