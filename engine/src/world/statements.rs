//! Trust statements as world changes ([`Op::Trust`](super::Op::Trust)): the newest per author,
//! context and subject counts (ties of sequence broken by change id, so every peer keeps the
//! same one); what it replaces is no longer held. Bounds: [`MAX_TRUST_RECORDS`] statements per
//! author and context, withdrawals included (a withdrawal stays, so that an older copy cannot
//! come back through sync), of which at most [`MAX_STATEMENTS_PER_AUTHOR`] stand.

use std::collections::HashMap;

use super::change::{ChangeId, Rejection};
use crate::identity::PublicKey;
use crate::trust::{MAX_STATEMENTS_PER_AUTHOR, Statement, TrustContext, TrustError, TrustGraph};

/// Statements held per author and context, withdrawals included.
pub const MAX_TRUST_RECORDS: usize = 2 * MAX_STATEMENTS_PER_AUTHOR;

/// The statements held, and the graph they make.
#[derive(Debug, Default)]
pub(crate) struct Statements {
    graph: TrustGraph,
    /// The change that holds each statement now, by context, author and subject.
    current: HashMap<(TrustContext, PublicKey, PublicKey), (u64, ChangeId)>,
    /// Statements held per context and author.
    records: HashMap<(TrustContext, PublicKey), usize>,
}

impl Statements {
    /// The graph of every statement held.
    pub(crate) fn graph(&self) -> &TrustGraph {
        &self.graph
    }

    /// Takes `statement`, made by change `id`; returns the change it replaces (no longer held).
    pub(crate) fn insert(&mut self, statement: Statement, id: ChangeId) -> Result<Option<ChangeId>, Rejection> {
        let key = (statement.context, statement.author, statement.subject);
        let previous = self.current.get(&key).copied();
        if previous.is_some_and(|held| held >= (statement.sequence, id)) {
            return Err(Rejection::Superseded);
        }
        let records = self.records.get(&(statement.context, statement.author)).copied().unwrap_or(0);
        if previous.is_none() && records >= MAX_TRUST_RECORDS {
            return Err(Rejection::OverBudget(MAX_TRUST_RECORDS));
        }
        self.check(&statement)?;
        self.graph.set(statement)?;
        self.current.insert(key, (statement.sequence, id));
        if previous.is_none() {
            *self.records.entry((statement.context, statement.author)).or_default() += 1;
        }
        Ok(previous.map(|(_, id)| id))
    }

    /// Whether `statement` could be taken now: not about its author, and not one standing
    /// statement too many.
    pub(crate) fn check(&self, statement: &Statement) -> Result<(), Rejection> {
        if statement.author == statement.subject {
            return Err(TrustError::OfSelf.into());
        }
        let standing = self.graph.standing(statement.context, &statement.author);
        let was_standing = self.graph.said(statement.context, &statement.author, &statement.subject).is_some();
        if statement.level.is_some() && !was_standing && standing >= MAX_STATEMENTS_PER_AUTHOR {
            return Err(TrustError::Full.into());
        }
        Ok(())
    }
}
