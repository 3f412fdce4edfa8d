//! A hostile peer for tests: plain iroh and iroh-gossip with its own key, speaking Sanctuary's
//! protocols without its rules, so that a test can send what no honest node would (forged,
//! garbage, flooding).

use std::time::Duration;

use futures_util::StreamExt;
use iroh::SecretKey;
use iroh_gossip::api::{GossipReceiver, GossipSender};
use sanctuary_net::{MAX_MESSAGE_BYTES, alpn};

use crate::peers::Peer;

/// The hostile node: plain iroh and iroh-gossip, no Sanctuary rules, pointed at `target`.
#[derive(Debug)]
pub struct Hostile {
    /// Its key.
    pub secret: SecretKey,
    /// Its endpoint.
    pub endpoint: iroh::Endpoint,
    /// Its gossip.
    pub gossip: iroh_gossip::Gossip,
    /// Its router (gossip only).
    pub router: iroh::protocol::Router,
    /// The peer it was pointed at.
    pub target: iroh::EndpointAddr,
}

impl Hostile {
    /// A hostile node with a fresh key, pointed at `target`.
    pub async fn new(target: &Peer) -> Self {
        let secret = SecretKey::generate();
        let endpoint = iroh::Endpoint::builder(iroh::endpoint::presets::Minimal)
            .relay_mode(iroh::RelayMode::Disabled)
            .secret_key(secret.clone())
            .bind()
            .await
            .expect("binds");
        let memory = iroh::address_lookup::MemoryLookup::new();
        endpoint.address_lookup().expect("open").add(memory.clone());
        let ticket: iroh_tickets::endpoint::EndpointTicket = target.ticket.to_string().parse().expect("ticket");
        memory.add_endpoint_info(ticket.endpoint_addr().clone());
        let gossip = iroh_gossip::Gossip::builder().max_message_size(4 * MAX_MESSAGE_BYTES).spawn(endpoint.clone());
        let router =
            iroh::protocol::Router::builder(endpoint.clone()).accept(iroh_gossip::ALPN, gossip.clone()).spawn();
        Self { secret, endpoint, gossip, router, target: ticket.endpoint_addr().clone() }
    }

    /// Joins `topic` through the target, keeping what arrives for the caller to read.
    pub async fn join_and_listen(&self, topic: iroh_gossip::TopicId) -> (GossipSender, GossipReceiver) {
        let joined =
            tokio::time::timeout(Duration::from_secs(10), self.gossip.subscribe_and_join(topic, vec![self.target.id]))
                .await
                .expect("joins in time")
                .expect("joins");
        joined.split()
    }

    /// Joins `topic` through the target; what arrives is read and thrown away (gossip stops
    /// for a subscriber that does not read).
    pub async fn join(&self, topic: iroh_gossip::TopicId) -> GossipSender {
        let (sender, mut receiver) = self.join_and_listen(topic).await;
        tokio::spawn(async move { while receiver.next().await.is_some() {} });
        sender
    }

    /// Hands raw bytes to the target as a private room's key (`alpn::ROOM`) and returns the
    /// answer.
    pub async fn room(&self, bytes: &[u8]) -> Vec<u8> {
        self.ask(alpn::ROOM, bytes).await
    }

    /// Sends raw bytes as one private message and returns the answer.
    pub async fn direct(&self, bytes: &[u8]) -> Vec<u8> {
        self.ask(alpn::DIRECT, bytes).await
    }

    /// Sends raw bytes on one stream of `alpn` and returns the answer (empty if none).
    async fn ask(&self, alpn: &[u8], bytes: &[u8]) -> Vec<u8> {
        let Ok(connection) = self.endpoint.connect(self.target.clone(), alpn).await else { return Vec::new() };
        let Ok((mut send, mut recv)) = connection.open_bi().await else { return Vec::new() };
        let _ = send.write_all(bytes).await;
        let _ = send.finish();
        let reply = recv.read_to_end(16).await.unwrap_or_default();
        connection.close(0u32.into(), b"bye");
        reply
    }
}
