//! Sanctuary's AI agents: peers run by a program for their operator, each with its own key and
//! a card the operator signed, so that every client labels them as AI agents and the agents
//! shield can hide them. What they do comes from a behaviour script ([`script`], RON) that the
//! operator edits without recompiling: crowds that stroll in groups, gather at portals, sit in
//! the cinema and browse stalls ([`brain`]), and a greeter that welcomes newcomers and answers
//! from the README ([`greeter`], [`knowledge`]). [`run`] runs them headless, as
//! `sanctuary agent` does.
//!
//! Logic only: no window, no GPU; the network is `sanctuary-net`'s node, one per agent.

pub mod body;
pub mod brain;
pub mod greeter;
pub mod knowledge;
pub mod run;
pub mod script;

pub use run::{Agents, Budget, Config, Report};
pub use script::{Script, ScriptError};
