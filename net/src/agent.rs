//! AI agents: peers run by a program for someone (their operator), always labelled as such.
//!
//! An agent is a peer like any other, with its own key, held to the same limits. What marks it
//! is its [`AgentCard`], said beside its pose (`RegionMessage::Agent`): the operator's key and
//! the operator's signature over the agent's key. The message carrying the card is signed by
//! the agent, so a card says both "I am an AI agent" (the agent) and "I run it" (the operator);
//! a card copied onto another key, or naming an operator who did not sign it, is refused as a
//! forgery. Receivers label the agent and put it behind the agents shield
//! (`sanctuary_engine::shields::Category::Agents`), standing with its own trust or its
//! operator's. Nothing can make an undeclared program declare itself; what the card guarantees
//! is that a declared agent is shown as one by everyone, and that distrusting its operator
//! hides all the agents they vouch for.

use iroh::{PublicKey, SecretKey, Signature};
use serde::{Deserialize, Serialize};

use crate::wire::WireError;

/// Domain separation for the operator's signature: it never verifies as anything else.
const CARD_CONTEXT: &[u8] = b"sanctuary agent card v1";

/// An agent's declaration: who runs it, signed by them over the agent's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentCard {
    /// The operator's key.
    pub operator: [u8; 32],
    /// The operator's signature over [`CARD_CONTEXT`] and the agent's key.
    proof: Signature,
}

impl AgentCard {
    /// The card `operator` signs for the agent whose key is `agent`.
    pub fn issue(operator: &SecretKey, agent: &PublicKey) -> Self {
        let proof = operator.sign(&signed_bytes(agent.as_bytes()));
        Self { operator: *operator.public().as_bytes(), proof }
    }

    /// Whether the card was signed by its operator for `agent` (the key that signed the message
    /// carrying it).
    pub fn check(&self, agent: &[u8; 32]) -> Result<(), WireError> {
        let operator =
            sanctuary_engine::PublicKey::from_bytes(self.operator).map_err(|_| WireError::BadAuthor)?.verifying_key();
        let proof = ed25519_dalek::Signature::from_bytes(&self.proof.to_bytes());
        operator.verify_strict(&signed_bytes(agent), &proof).map_err(|_| WireError::BadSignature)
    }
}

fn signed_bytes(agent: &[u8; 32]) -> Vec<u8> {
    [CARD_CONTEXT, agent.as_slice()].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_holds_only_for_the_agent_it_was_signed_for() {
        let operator = SecretKey::from_bytes(&[1; 32]);
        let agent = SecretKey::from_bytes(&[2; 32]).public();
        let other = SecretKey::from_bytes(&[3; 32]).public();
        let card = AgentCard::issue(&operator, &agent);
        assert_eq!(card.operator, *operator.public().as_bytes());
        assert_eq!(card.check(agent.as_bytes()), Ok(()));
        assert_eq!(card.check(other.as_bytes()), Err(WireError::BadSignature), "copied onto another key");
        let claimed = AgentCard { operator: *other.as_bytes(), ..card };
        assert_eq!(claimed.check(agent.as_bytes()), Err(WireError::BadSignature), "an operator who did not sign");
        let nonsense = AgentCard { operator: [0; 32], ..card };
        assert_eq!(nonsense.check(agent.as_bytes()), Err(WireError::BadAuthor), "not a key");
    }
}
