//! Playback: the tag rules at the front of the current splay offset (spec §10.3, Ceph's
//! `verify_playback_ready`, `prune_tag`, `prune_active_tag` and `try_pop_front`).

use super::{Head, PlayMode, Player, PlayerError, PlayerEvent, ReplayEntry};

/// Outcome of checking the front of the current offset.
enum Ready {
    /// The front of the current offset is the next entry to deliver.
    Deliver,
    /// Nothing deliverable now.
    Wait,
}

impl Player {
    /// Takes the next entry if one is ready (Ceph's `try_pop_front`).
    pub(super) fn pop_next(&mut self) -> Result<PlayerEvent, PlayerError> {
        match self.verify_ready()? {
            Ready::Wait => return Ok(PlayerEvent::End),
            Ready::Deliver => {}
        }
        let o = self.offset;
        let object_number = self.head(o).map(|h| h.object_number()).unwrap_or(0);
        let Some(entry) = self.pop_head(o) else {
            // verify_ready only answers Deliver with an entry at the front.
            return Ok(PlayerEvent::End);
        };
        let (tag, tid) = (entry.tag_tid, entry.entry_tid);
        if let Some(&expected) = self.next_entry_tid.get(&tag) {
            if tid != expected {
                return Err(PlayerError::MissingEntry {
                    tag_tid: tag,
                    expected,
                    got: tid,
                });
            }
        }
        self.advance();
        self.reserve(tag, tid);
        self.last_delivered = Some((tag, tid));
        Ok(PlayerEvent::Entry(ReplayEntry {
            entry,
            object_number,
        }))
    }

    /// Applies the tag rules until the front of the current offset is deliverable or nothing
    /// is (Ceph's `verify_playback_ready`).
    fn verify_ready(&mut self) -> Result<Ready, PlayerError> {
        let live = self.mode == PlayMode::Live;
        loop {
            let k = self.offset;
            match self.settle(k, !live)? {
                Head::Front { tag, tid } => {
                    self.newer_tag_exists = false;
                    let Some(active) = self.active_tag else {
                        // Without a commit position the first entry seen fixes the tag.
                        self.active_tag = Some(tag);
                        return Ok(Ready::Deliver);
                    };
                    if tag < active || self.prune_tag.is_some_and(|p| tag <= p) {
                        // Stale: written before the active tag.
                        self.prune(tag)?;
                    } else if tag > active {
                        if tid == 0 {
                            // A new epoch: the old tag is over. Re-check from offset 0, where
                            // entry 0 of the new tag lives.
                            self.prune_active(Some(tag))?;
                        } else if k == 0 && self.prune_tag.is_some_and(|p| p >= active) {
                            // The old tag is already finished and offset 0 starts the newer
                            // tag past its entry 0: entry 0 is missing. (Ceph's reader spins
                            // here forever.)
                            return Err(PlayerError::MissingEntry {
                                tag_tid: tag,
                                expected: 0,
                                got: tid,
                            });
                        } else {
                            // The old tag ended abruptly: drop its leftovers and look for
                            // entry 0 of a newer tag from offset 0.
                            self.prune_active(None)?;
                        }
                    } else {
                        return Ok(Ready::Deliver);
                    }
                }
                Head::Empty { refetch_required } => {
                    let Some(active) = self.active_tag else {
                        // Waiting for the first entry.
                        return Ok(Ready::Wait);
                    };
                    if self.prune_tag.is_some_and(|p| p >= active) {
                        // The active tag is finished and nothing newer starts at offset 0.
                        return Ok(Ready::Wait);
                    }
                    if live && self.newer_tag_exists {
                        // A newer tag exists and the offset stayed empty after a re-read.
                        self.prune_active(None)?;
                    } else if refetch_required || live {
                        return Ok(Ready::Wait);
                    } else {
                        // One-shot: the empty offset ends the active tag.
                        self.prune_active(None)?;
                    }
                }
            }
        }
    }

    /// Ends the active tag: discards its leftovers at the front of every offset, makes `new`
    /// (if any) the active tag, and restarts the round robin at offset 0.
    fn prune_active(&mut self, new: Option<u64>) -> Result<(), PlayerError> {
        let Some(old) = self.active_tag else {
            return Ok(());
        };
        if let Some(tag) = new {
            self.active_tag = Some(tag);
        }
        self.offset = 0;
        self.prune(old)
    }

    /// Discards, at the front of every offset, the entries of `tag`, and remembers it as pruned
    /// (so any later entry of it or an older tag is stale).
    fn prune(&mut self, tag: u64) -> Result<(), PlayerError> {
        if self.prune_tag.is_none_or(|p| p < tag) {
            self.prune_tag = Some(tag);
        }
        let immediate = self.mode == PlayMode::OneShot;
        for o in 0..self.width() {
            while let Head::Front { tag: t, .. } = self.settle(o, immediate)? {
                if t != tag {
                    break;
                }
                self.pop_head(o);
            }
        }
        Ok(())
    }
}
