//! [`KillableStore`]: a store handle that can be "killed" at any moment, like a process killed
//! with SIGKILL — every operation from then on fails with [`StoreError::Closed`], so whatever the
//! holder had in flight never reaches the store. The store underneath lives on for the next
//! incarnation (which opens its own handle).

use std::sync::atomic::{AtomicBool, Ordering};

use object_store_trait::{Hook, Intercept, Op, Result, StoreError};

/// A killable handle over `S` (see the module docs): `KillableStore::new(inner)` is live, and
/// `store.hook().kill()` kills it.
pub type KillableStore<S> = Intercept<S, KillFlag>;

/// The hook of [`KillableStore`]: refuses every operation once killed.
#[derive(Debug, Default)]
pub struct KillFlag {
    dead: AtomicBool,
}

impl KillFlag {
    /// Kills the handle: every later operation fails with [`StoreError::Closed`].
    pub fn kill(&self) {
        self.dead.store(true, Ordering::SeqCst);
    }

    /// Whether [`KillFlag::kill`] was called.
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }
}

impl Hook for KillFlag {
    fn before(&self, _op: Op<'_>) -> Result<()> {
        if self.is_dead() {
            return Err(StoreError::Closed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bytes::Bytes;
    use object_store_trait::{MemStore, ObjectStore};
    use std::sync::Arc;

    #[test]
    fn a_killed_handle_fails_everything_and_the_store_lives_on() {
        let mem = Arc::new(MemStore::new());
        let k = KillableStore::new(mem.clone());
        k.write_full("a", Bytes::from_static(b"x")).unwrap();
        k.hook().kill();
        assert!(k.hook().is_dead());
        assert!(matches!(k.read("a", 0, 1), Err(StoreError::Closed)));
        assert!(matches!(
            k.write_full("a", Bytes::from_static(b"y")),
            Err(StoreError::Closed)
        ));
        assert_eq!(&mem.read("a", 0, 1).unwrap()[..], b"x");
    }
}
