//! The nodes' answers to one call on one key, counted.
//!
//! A decision never needs to know which node said what, only how many
//! granted, refused or reported a completion record, and why the others
//! gave no answer (for the error message). Counting first keeps the
//! decisions small functions of four numbers.

/// What one node's acquire script answered for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AcquireReply {
    /// The key was free (or already ours): it now holds our token.
    Acquired,
    /// The key holds someone else's live lock.
    Busy,
    /// The key holds a completion record.
    Done,
}

/// One node's answer to one call on one key: its reply, or why there was
/// none (the text should name the node, it ends up in error messages).
///
/// A node that gave no answer MAY still have applied the call (the reply
/// was lost), which is why a failed acquire is undone on every node.
pub type NodeAnswer<R> = Result<R, String>;

/// The answers of all nodes to one call on one key.
///
/// Acquire answers are [`AcquireReply`]; extend, complete and release
/// answers are `bool` (the script did it, or refused because the key is
/// not in the state it requires).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    granted: usize,
    refused: usize,
    done: usize,
    errors: Vec<String>,
}

impl Tally {
    /// The count of acquire answers, one per node.
    pub fn of_acquires<I>(answers: I) -> Tally
    where
        I: IntoIterator<Item = NodeAnswer<AcquireReply>>,
    {
        let mut tally = Tally::default();
        for answer in answers {
            tally.add_acquire(answer);
        }
        tally
    }

    /// The count of extend, complete or release answers, one per node.
    pub fn of_writes<I>(answers: I) -> Tally
    where
        I: IntoIterator<Item = NodeAnswer<bool>>,
    {
        let mut tally = Tally::default();
        for answer in answers {
            tally.add_write(answer);
        }
        tally
    }

    /// Counts one node's acquire answer.
    pub fn add_acquire(&mut self, answer: NodeAnswer<AcquireReply>) {
        match answer {
            Ok(AcquireReply::Acquired) => self.granted += 1,
            Ok(AcquireReply::Busy) => self.refused += 1,
            Ok(AcquireReply::Done) => self.done += 1,
            Err(e) => self.errors.push(e),
        }
    }

    /// Counts one node's extend, complete or release answer.
    pub fn add_write(&mut self, answer: NodeAnswer<bool>) {
        match answer {
            Ok(true) => self.granted += 1,
            Ok(false) => self.refused += 1,
            Err(e) => self.errors.push(e),
        }
    }

    /// Nodes that did what was asked (acquired, extended, recorded,
    /// released).
    pub fn granted(&self) -> usize {
        self.granted
    }

    /// Nodes that answered but refused (busy; not our lock).
    pub fn refused(&self) -> usize {
        self.refused
    }

    /// Nodes that answered that a completion record exists (acquire only).
    pub fn done(&self) -> usize {
        self.done
    }

    /// Nodes that gave no answer.
    pub fn failed(&self) -> usize {
        self.errors.len()
    }

    /// Nodes that gave an answer, whatever it was.
    pub fn answered(&self) -> usize {
        self.granted + self.refused + self.done
    }

    /// Why each node that gave no answer did not.
    pub fn errors(&self) -> &[String] {
        &self.errors
    }
}

#[cfg(test)]
#[path = "tally_tests.rs"]
mod tests;
