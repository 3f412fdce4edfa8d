//! Sanctuary's network node on iroh: an endpoint and router on a tokio runtime of its own, a
//! gossip topic per region for presence and chat, a world topic on which peers say where they
//! are, and a direct protocol for private messages. The program drives it through a
//! [`NodeHandle`] (commands in, events out); nothing here ever blocks the caller.
//!
//! Every byte from the network goes through [`Inbox`]: size, shape and signature
//! ([`wire::decode`]), then rate and replay checks, each refusal counted in [`NetStats`].

pub mod agent;
pub mod assets;
pub mod cells;
pub mod crowd;
mod direct;
pub mod film_store;
pub mod films;
pub mod fuzz;
pub mod hex;
pub mod hosting;
mod identity;
pub mod inbox;
pub mod meeting;
pub mod near_pose;
mod node;
pub mod paid_hosting;
pub mod poll;
pub mod private_room;
pub mod receipts;
pub mod replica;
pub mod screen;
pub mod sealed;
pub mod stage;
pub mod status_page;
mod store;
pub mod uploads;
pub mod whiteboard;
pub mod wire;

pub use assets::{AssetError, AssetStore, Bundle, BundleFile, model_limits};
pub use crowd::{Joint, Pose, RemoteAvatar, RemoteCrowd};
pub use identity::{IDENTITY_FILE, IdentityError, load_or_create_identity};
pub use inbox::{Inbox, NetStats, StatsSnapshot};
pub use node::export;
pub use node::read_record;
pub use node::{
    AGENT_KEEPALIVE, ChatLine, Command, DEFAULT_UPLOAD_RATE, DOWNLINK_BUDGET_BITS_PER_SECOND, Delivery, DirectLine,
    Event, FASTEST_POSE_INTERVAL, HostingOffer, LOOK_KEEPALIVE, MAX_BLOCKS, MAX_INVOICE_CHARS, MAX_KEPT_VOLUMES,
    MAX_PERSON_VOLUME, MIC_KEEPALIVE, NetRuntime, NodeConfig, NodeHandle, POSE_KEEPALIVE, PRESENCE_TIMEOUT, PollView,
    Profile, RelayChoice, RelayState, RoomsView, SALE_ANSWER_TIMEOUT, SaleOffer, ScreenView, StageView, Status,
    TIPS_KEEPALIVE, Ticket, TicketError, TrustView, Whereabouts, pose_interval, spawn_node, world_topic,
};
pub use node::{
    DATAGRAMS_PER_SPEAKER, HEARING_DISTANCE, Hearing, MAX_LISTENERS, MAX_MEMBERS, MAX_ON_STAGE, MAX_SPEAKERS,
    MAX_STAGE_LISTENERS, MAX_VOICE_DATAGRAM, VOICE_QUEUE, VoiceDatagram, VoiceSender,
};
pub use node::{MAX_FAR_DOTS, SLOWEST_ABOUT_KEEPALIVE, SLOWEST_POSE_INTERVAL, about_keepalive, presence_timeout};
pub use node::{
    MAX_NEAR, MAX_NEAR_CONNECTIONS, NEAR_DISTANCE, NEAR_DOWNLINK_BITS_PER_SECOND, NEAR_KEEPALIVE, NEAR_POSE_INTERVAL,
    POSES_PER_NEIGHBOUR,
};
pub use replica::{Applied, AuthorError, OpenReport, Replica, SharedReplica, SyncReport, WorldLog};
pub use wire::{
    MAX_MESSAGE_BYTES, MAX_NAME_CHARS, MAX_TEXT_CHARS, MAX_TIP_OFFER_CHARS, MicState, PoseFrame, Presence,
    QuantisedTransform, check_tip_offer,
};

use iroh_gossip::TopicId;
use sanctuary_engine::RegionId;

/// The protocols Sanctuary speaks, each on its own ALPN so that a peer can tell them apart
/// before reading a byte.
pub mod alpn {
    /// Live presence (avatar poses) and chat, through iroh-gossip.
    pub const GOSSIP: &[u8] = iroh_gossip::ALPN;
    /// Content-addressed assets, through iroh-blobs.
    pub const BLOBS: &[u8] = iroh_blobs::ALPN;
    /// Private messages between two people over a direct connection.
    pub const DIRECT: &[u8] = b"sanctuary/direct/1";
    /// Comparing and exchanging world changes with a peer (see [`crate::replica`]).
    pub const WORLD: &[u8] = b"sanctuary/world/1";
    /// Voice: QUIC datagrams on a direct connection (see `node::voice`).
    pub const VOICE: &[u8] = b"sanctuary/voice/1";
    /// Films, through iroh-blobs, from the film store (see [`crate::films::FilmStore`]).
    pub const FILMS: &[u8] = b"sanctuary/films/1";
    /// A meeting room's whole whiteboard, handed to a newcomer (see `node::board`).
    pub const BOARD: &[u8] = b"sanctuary/board/1";
    /// A private room's key, handed by its owner to a member.
    pub const ROOM: &[u8] = b"sanctuary/room/1";
    /// Contribution receipts handed to the peer that served, and records asked for (see
    /// [`crate::receipts`]).
    pub const RECEIPT: &[u8] = b"sanctuary/receipt/1";
    /// Asking a seller's node for an invoice and voucher for a Lightning listing.
    pub const SALE: &[u8] = b"sanctuary/sale/2";
    /// Near poses: QUIC datagrams on a direct connection to the nearest people (see
    /// [`crate::near_pose`] and `node::near`).
    pub const POSE: &[u8] = b"sanctuary/pose/1";
}

/// The gossip topic that carries a region's live state. Every peer derives the same id from the
/// region, so people in the same region meet without anyone handing out topics.
pub fn region_topic(region: RegionId) -> TopicId {
    let mut hasher = blake3::Hasher::new_derive_key("sanctuary region topic v1");
    hasher.update(region.slug().as_bytes());
    TopicId::from_bytes(*hasher.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_region_has_its_own_stable_topic() {
        let topics: HashSet<TopicId> = RegionId::all().map(region_topic).collect();
        assert_eq!(topics.len(), RegionId::all().count());
        assert_eq!(region_topic(RegionId::Lobby), region_topic(RegionId::Lobby));
    }

    #[test]
    fn region_topics_do_not_change_between_versions() {
        // Peers of different versions must meet on the same topic.
        let lobby: String = region_topic(RegionId::Lobby).as_bytes().iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(lobby, PINNED_LOBBY_TOPIC);
    }

    const PINNED_LOBBY_TOPIC: &str = "fec7fa6efd7eae125a117040bbfcafaac33a0ed537ad6d89cd3d8835c02ee1bc";

    #[test]
    fn protocols_have_distinct_alpns() {
        let all = [
            alpn::GOSSIP,
            alpn::BLOBS,
            alpn::DIRECT,
            alpn::WORLD,
            alpn::VOICE,
            alpn::FILMS,
            alpn::BOARD,
            alpn::ROOM,
            alpn::RECEIPT,
            alpn::SALE,
            alpn::POSE,
        ];
        let alpns: HashSet<&[u8]> = all.into_iter().collect();
        assert_eq!(alpns.len(), all.len());
    }
}
