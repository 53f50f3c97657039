//! `Checked`: latches the first failed mutation and refuses every mutation after it.

use parking_lot::Mutex;

use crate::{Hook, Intercept, ObjectStore, Op, Result, StoreError};

/// A wrapper that poisons itself on the first mutation that fails with an error that leaves the
/// durable state unknown (I/O, no space, corruption, closed). Every later mutation returns
/// [`StoreError::Poisoned`] until a new `Checked` is built over a reopened store. Reads, watches
/// and notifications pass through.
///
/// Refusals that are part of the protocol (`Overflow`, `GuardFailed`, `NotFound`) do not poison.
///
/// Build one with `Checked::new(inner)`; [`Intercept::inner`] is the wrapped store.
pub type Checked<S> = Intercept<S, PoisonLatch>;

/// The hook of [`Checked`]: remembers the first fatal mutation failure and refuses mutations
/// from then on.
#[derive(Debug, Default)]
pub struct PoisonLatch {
    first: Mutex<Option<String>>,
}

impl PoisonLatch {
    /// The first failure, if latched.
    pub fn poisoned(&self) -> Option<String> {
        self.first.lock().clone()
    }
}

impl Hook for PoisonLatch {
    fn before(&self, op: Op<'_>) -> Result<()> {
        if !op.kind().is_mutation() {
            return Ok(());
        }
        match &*self.first.lock() {
            Some(first) => Err(StoreError::Poisoned {
                first: first.clone(),
            }),
            None => Ok(()),
        }
    }

    fn after(&self, op: Op<'_>, outcome: std::result::Result<(), &StoreError>) {
        let Err(err) = outcome else { return };
        let fatal = matches!(
            err,
            StoreError::Io { .. }
                | StoreError::NoSpace { .. }
                | StoreError::Corrupt { .. }
                | StoreError::Closed
        );
        if fatal && op.kind().is_mutation() {
            let mut first = self.first.lock();
            if first.is_none() {
                *first = Some(err.to_string());
            }
        }
    }
}

impl<S: ObjectStore> Intercept<S, PoisonLatch> {
    /// The first failure, if the wrapper is poisoned.
    pub fn poisoned(&self) -> Option<String> {
        self.hook().poisoned()
    }
}
