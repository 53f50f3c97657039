//! The journal reader (the roles of Ceph's `JournalPlayer` and `ObjectPlayer`, spec §10).
//!
//! A [`Player`] hands out the entries of a journal in the order Ceph's reader does, starting
//! after a client's commit position, one at a time through [`Player::next`] (pull-based, like
//! Ceph's `try_pop_front`):
//!
//! * **Start** (§10.1): for each splay offset with a recorded position, entries up to and
//!   including the recorded (tag, entry) are skipped (continuing into the next object of that
//!   offset if the object does not hold it); offsets without one start at set 0. Playback begins
//!   at the offset of the newest position, or at the next offset when the entry now at the
//!   front there has the committed tag (or the object is read out). Like Ceph, this drops the
//!   rest of the committed tag when a newer tag's entry is at the front there instead (see the
//!   test `ceph_start_rule_drops_the_rest_of_a_tag`).
//! * **Round robin** (§10.2): the next entry is the front of the object open at offset `k`, then
//!   `k := (k+1) mod W`. An object that is read to its end while its set is below the active set
//!   is replaced by the next object of its offset (`+W`); missing objects read as empty.
//! * **Tags** (§10.3): stale tags are discarded, a newer tag starting at entry tid 0 becomes
//!   active (and `k` resets to 0), a newer tag at any other tid ends the old one abruptly, and an
//!   empty offset finishes the active tag in one-shot mode.
//! * **Sequence**: within a tag, each delivered entry tid must follow the previous one
//!   ([`PlayerError::MissingEntry`], Ceph's `-ENOMSG`).
//!
//! [`PlayerEvent::End`] means "nothing more now". In [`PlayMode::OneShot`] that is the end of
//! the replay. In [`PlayMode::Live`] the player waits instead of finishing a tag on an empty
//! offset, and the next call to [`Player::next`] after an `End` re-reads the tails of the open
//! objects, so a tailer calls `next` again after a notification or a poll interval and gets the
//! entries appended since. The live driver (watch, poll age, the "newer tag exists" check
//! reported through [`Player::mark_newer_tag_exists`]) lives in `replay-engine`.
//!
//! **Memory** is bounded: only the object at the head of each splay offset is read, only when
//! its queue is empty, and in chunks of `min(2 << order, prefetch_bytes_max / W)` bytes (at
//! least 4 KiB, and at least what one incomplete entry needs), so the bytes fetched but not yet
//! delivered ([`Player::buffered_bytes`]) stay within `prefetch_bytes_max` plus one entry per
//! offset whose entries exceed a chunk.
//!
//! Where this reader knowingly differs from Ceph's:
//!
//! * Corruption: Ceph fails the replay as soon as it fetches a corrupt object; this reader
//!   first delivers the valid entries before the corrupt range and fails with
//!   [`PlayerError::Corrupt`] when playback needs what lies beyond it.
//! * Offset 0 showing a newer tag past its entry 0 once the active tag is finished: Ceph's
//!   reader loops forever; this one fails with [`PlayerError::MissingEntry`] (expected 0).
//! * Objects are read in chunks as needed instead of whole at once, so a one-shot replay may
//!   also see entries appended while it runs, and an entry met in a later chunk whose tid is
//!   not above the entries of its tag already delivered from that object is dropped as a
//!   duplicate (Ceph reads the whole object first, so a later copy always replaces an earlier
//!   one that is still queued).
//! * A live poll re-reads the tails of all W open objects (Ceph: the current one and offset 0).
//!
//! Payloads are zero-copy slices of the chunk they were read in: a consumer that keeps a
//! delivered entry keeps that chunk (at most one read) alive.
//!
//! [`Player::open`] takes the layout, active set and a client's commit position from a
//! [`JournalHeader`]; [`Player::new`] takes them from the caller.
//!
//! The player does not allocate commit tids: a consumer that commits feeds each delivered
//! [`ReplayEntry`] (with its `object_number`) to a [`crate::commit::CommitTracker`].
//!
//! ```
//! use std::sync::Arc;
//! use journal_core::entry::Entry;
//! use journal_core::header::ObjectSetPosition;
//! use journal_core::layout::{data_oid, Layout};
//! use journal_core::player::{JournalInfo, Player, PlayerEvent, PlayerOptions};
//! use object_store_trait::{AppendGuard, MemStore, ObjectStore};
//!
//! let store = Arc::new(MemStore::new());
//! let layout = Layout::new(12, 2)?;
//! for tid in 0..3u64 {
//!     let oid = data_oid(1, "j", u64::from(layout.splay_offset(tid)));
//!     let bytes = Entry::new(7, tid, vec![tid as u8]).to_bytes();
//!     store.append(&oid, &[bytes], &AppendGuard::none())?;
//! }
//! let info = JournalInfo { journal_id: "j".into(), pool_id_for_names: 1, layout, active_set: 0 };
//! let mut player = Player::new(store, info, &ObjectSetPosition::default(), PlayerOptions::default());
//! let mut tids = Vec::new();
//! while let PlayerEvent::Entry(e) = player.next()? {
//!     tids.push((e.entry.entry_tid, e.object_number));
//! }
//! assert_eq!(tids, vec![(0, 0), (1, 1), (2, 0)]);
//! assert_eq!(player.last_delivered(), Some((7, 2)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod object_player;
mod playback;

use std::collections::BTreeMap;
use std::sync::Arc;

use object_store_trait::ObjectStore;

use crate::entry::Entry;
use crate::header::{JournalHeader, ObjectPosition, ObjectSetPosition};
use crate::layout::{data_oid, Layout};

use error::Latched;
pub use error::PlayerError;
use object_player::{ObjectPlayer, MIN_FETCH_BYTES};

/// Default [`PlayerOptions::prefetch_bytes_max`]: 16 MiB.
pub const DEFAULT_PREFETCH_BYTES_MAX: u64 = 16 << 20;

/// What the player needs to know about the journal (read from its header by the caller).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalInfo {
    /// The journal id (for RBD, the image id).
    pub journal_id: String,
    /// The pool id embedded in data object names: the **header** pool's id (§3).
    pub pool_id_for_names: i64,
    /// Order and splay width.
    pub layout: Layout,
    /// The header's `active_set` when playback starts; see [`Player::refresh`].
    pub active_set: u64,
}

/// Whether an empty splay offset finishes the active tag or means "not written yet".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PlayMode {
    /// Replay what is there and stop (`rbd journal export`, local replay at open).
    #[default]
    OneShot,
    /// Tail a journal that is still being written (rbd-mirror): an empty offset waits.
    Live,
}

/// Player settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlayerOptions {
    /// Bound on the bytes fetched but not yet delivered, across all open objects, in bytes.
    /// Default [`DEFAULT_PREFETCH_BYTES_MAX`] (16 MiB). Each object reads chunks of this divided
    /// by the splay width (at least 4 KiB, at most [`PlayerOptions::max_fetch_bytes`]).
    pub prefetch_bytes_max: u64,
    /// Largest single read, in bytes. Default `None` = `2 << order` (Ceph's fetch size).
    pub max_fetch_bytes: Option<u64>,
    /// One-shot or live. Default [`PlayMode::OneShot`].
    pub mode: PlayMode,
}

impl Default for PlayerOptions {
    fn default() -> Self {
        PlayerOptions {
            prefetch_bytes_max: DEFAULT_PREFETCH_BYTES_MAX,
            max_fetch_bytes: None,
            mode: PlayMode::OneShot,
        }
    }
}

/// A delivered entry and the object it was read from (what a commit position records).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayEntry {
    /// The entry.
    pub entry: Entry,
    /// Number of the data object it was read from.
    pub object_number: u64,
}

/// The result of [`Player::next`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlayerEvent {
    /// The next entry in replay order.
    Entry(ReplayEntry),
    /// Nothing more now (see the module docs for one-shot versus live mode).
    End,
}

/// The player's state machine (Ceph: prefetch, playback, error).
#[derive(Debug)]
enum State {
    /// Nothing read yet; the first call to `next` seeks the commit position.
    Prefetch,
    /// Handing out entries.
    Playback,
    /// A final error; returned again by every call.
    Failed(Latched),
}

/// The journal reader. See the module docs.
#[derive(Debug)]
pub struct Player {
    store: Arc<dyn ObjectStore>,
    info: JournalInfo,
    mode: PlayMode,
    /// Bytes per read for one object.
    chunk: u64,
    /// Upper bound on one read.
    max_fetch: u64,
    state: State,
    /// The object open at each splay offset (index = offset).
    heads: Vec<ObjectPlayer>,
    /// Per splay offset, the recorded commit position still to seek (prefetch only).
    seek: Vec<Option<ObjectPosition>>,
    /// The newest recorded commit position.
    commit_position: Option<ObjectPosition>,
    /// Current splay offset `k`.
    offset: u8,
    active_tag: Option<u64>,
    /// Highest tag whose leftovers were discarded.
    prune_tag: Option<u64>,
    /// Per tag, one more than the highest entry tid seen (delivered or skipped). A journal
    /// has few tags: a B-tree of one node, no hashing per entry, and no hash flooding from
    /// tag tids read off the store.
    next_entry_tid: BTreeMap<u64, u64>,
    last_delivered: Option<(u64, u64)>,
    /// Live mode: the driver saw a newer tag; finish the active tag if its offset stays empty.
    newer_tag_exists: bool,
    /// The last call returned `End`: re-read object tails before the next attempt.
    reread_pending: bool,
    peak_buffered: u64,
}

impl Player {
    /// A player over `store` for the journal described by `info`, starting after `start` (a
    /// client's commit position; empty = from the beginning). Reads nothing until the first
    /// [`Player::next`].
    pub fn new(
        store: Arc<dyn ObjectStore>,
        info: JournalInfo,
        start: &ObjectSetPosition,
        options: PlayerOptions,
    ) -> Player {
        let width = info.layout.splay_width.max(1);
        let max_fetch = options
            .max_fetch_bytes
            .unwrap_or_else(|| info.layout.soft_limit().saturating_mul(2))
            .max(MIN_FETCH_BYTES);
        let chunk =
            (options.prefetch_bytes_max / u64::from(width)).clamp(MIN_FETCH_BYTES, max_fetch);
        let mut seek = vec![None; usize::from(width)];
        for p in &start.object_positions {
            let o = info.layout.splay_offset_of_object(p.object_number);
            if let Some(slot) = seek.get_mut(usize::from(o)) {
                // Ceph keeps one position per offset; the first (newest) wins.
                slot.get_or_insert(*p);
            }
        }
        let commit_position = start.object_positions.first().copied();
        Player {
            store,
            mode: options.mode,
            chunk,
            max_fetch,
            state: State::Prefetch,
            heads: Vec::new(),
            seek,
            commit_position,
            offset: 0,
            active_tag: commit_position.map(|p| p.tag_tid),
            prune_tag: None,
            next_entry_tid: BTreeMap::new(),
            last_delivered: None,
            newer_tag_exists: false,
            reread_pending: false,
            peak_buffered: 0,
            info,
        }
    }

    /// A player for client `client_id` of the journal behind `header`: reads the layout, the
    /// active set and the client's commit position from the header, and reads data objects
    /// from the header's store (a separate data pool is not modelled: data objects live in the
    /// same store, named with the header's pool id).
    pub fn open(
        header: &JournalHeader,
        client_id: &str,
        options: PlayerOptions,
    ) -> Result<Player, PlayerError> {
        let layout = header.get_immutable_metadata()?.layout()?;
        let active_set = header.get_active_set()?;
        let client = header.get_client(client_id)?;
        let info = JournalInfo {
            journal_id: header.journal_id().to_owned(),
            pool_id_for_names: header.name_pool_id(),
            layout,
            active_set,
        };
        Ok(Player::new(
            Arc::clone(header.store()),
            info,
            &client.commit_position,
            options,
        ))
    }

    /// The next entry in replay order, or [`PlayerEvent::End`] when nothing more is available
    /// now. After `End`, calling again re-reads the tails of the open objects (live tailing).
    // Named after the pull of Ceph's `try_pop_front`; it is not an iterator (`End` is not the
    // end of the stream in live mode, and errors are values).
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<PlayerEvent, PlayerError> {
        match &self.state {
            State::Failed(e) => return Err(e.to_error()),
            State::Prefetch => {
                if let Err(e) = self.prefetch() {
                    if let Some(latched) = Latched::of(&e) {
                        self.state = State::Failed(latched);
                    }
                    return Err(e);
                }
                self.state = State::Playback;
            }
            State::Playback => {
                if std::mem::take(&mut self.reread_pending) {
                    self.heads.iter_mut().for_each(ObjectPlayer::mark_reread);
                }
            }
        }
        let result = self.pop_next();
        match &result {
            Ok(PlayerEvent::End) => self.reread_pending = true,
            Ok(PlayerEvent::Entry(_)) => {}
            Err(e) => {
                if let Some(latched) = Latched::of(e) {
                    self.state = State::Failed(latched);
                }
            }
        }
        result
    }

    /// Tells the player the header's current `active_set` (after a header notification). A
    /// newer value makes every open object be re-read first (Ceph re-fetches all players when
    /// the active set moves); an older one is ignored.
    pub fn refresh(&mut self, active_set: u64) {
        if active_set > self.info.active_set {
            self.info.active_set = active_set;
            self.heads.iter_mut().for_each(ObjectPlayer::mark_reread);
        }
    }

    /// Live mode: the driver found a tag newer than [`Player::active_tag`] in the header. If the
    /// current offset is still empty after the next re-read, the active tag is finished and
    /// playback moves on to the newer tag (§10.4 step 3). Cleared when an entry shows up at the
    /// current offset.
    pub fn mark_newer_tag_exists(&mut self) {
        self.newer_tag_exists = true;
        self.reread_pending = true;
    }

    /// The tag being played (from the commit position, or the first entry seen).
    pub fn active_tag(&self) -> Option<u64> {
        self.active_tag
    }

    /// (tag tid, entry tid) of the last entry delivered.
    pub fn last_delivered(&self) -> Option<(u64, u64)> {
        self.last_delivered
    }

    /// The active set the player goes by.
    pub fn active_set(&self) -> u64 {
        self.info.active_set
    }

    /// The splay offset the next entry is taken from.
    pub fn splay_offset(&self) -> u8 {
        self.offset
    }

    /// Bytes fetched but not yet delivered, across all open objects.
    pub fn buffered_bytes(&self) -> u64 {
        self.heads.iter().map(ObjectPlayer::buffered_bytes).sum()
    }

    /// The largest [`Player::buffered_bytes`] seen after any read so far.
    pub fn peak_buffered_bytes(&self) -> u64 {
        self.peak_buffered
    }

    /// Bytes per read of one object, as derived from the options.
    pub fn chunk_bytes(&self) -> u64 {
        self.chunk
    }

    fn width(&self) -> u8 {
        self.info.layout.splay_width.max(1)
    }

    fn oid(&self, object_number: u64) -> String {
        data_oid(
            self.info.pool_id_for_names,
            &self.info.journal_id,
            object_number,
        )
    }

    /// Records that `(tag, entry)` was seen (Ceph's `reserve_entry_tid`).
    fn reserve(&mut self, tag_tid: u64, entry_tid: u64) {
        let next = self.next_entry_tid.entry(tag_tid).or_insert(0);
        if *next <= entry_tid {
            *next = entry_tid.saturating_add(1);
        }
    }

    /// Opens the first object of every offset and skips the committed entries (§10.1). Starts
    /// from scratch each time, so a store error part way can simply be retried.
    fn prefetch(&mut self) -> Result<(), PlayerError> {
        let width = self.width();
        self.heads = (0..width)
            .map(|o| {
                let n = self
                    .seek
                    .get(usize::from(o))
                    .copied()
                    .flatten()
                    .map_or(u64::from(o), |p| p.object_number);
                ObjectPlayer::new(n, self.oid(n))
            })
            .collect();
        for o in 0..width {
            let Some(target) = self.seek.get(usize::from(o)).copied().flatten() else {
                continue;
            };
            while let Some((tag, tid)) = self.settle(o, true)?.front() {
                self.pop_head(o);
                self.reserve(tag, tid);
                if (tag, tid) == (target.tag_tid, target.entry_tid) {
                    break;
                }
            }
        }
        // Playback starts at the newest position's offset, or the next one if the committed
        // entry was the last of its tag consumed there.
        if let Some(first) = self.commit_position {
            let k = self.info.layout.splay_offset_of_object(first.object_number);
            self.offset = k;
            match self.settle(k, true)? {
                Head::Empty {
                    refetch_required: false,
                } => self.advance(),
                Head::Front { tag, .. } if tag == first.tag_tid => self.advance(),
                _ => {}
            }
        }
        Ok(())
    }

    fn advance(&mut self) {
        self.offset = (self.offset + 1) % self.width();
    }

    fn head(&self, o: u8) -> Option<&ObjectPlayer> {
        self.heads.get(usize::from(o))
    }

    fn head_mut(&mut self, o: u8) -> Option<&mut ObjectPlayer> {
        self.heads.get_mut(usize::from(o))
    }

    fn pop_head(&mut self, o: u8) -> Option<Entry> {
        self.head_mut(o).and_then(ObjectPlayer::pop_front)
    }

    /// Reads object `o` as needed until it has a front entry or nothing more can be read now,
    /// replacing exhausted objects below the active set by the next object of the offset.
    /// `immediate`: re-read once at once when the object ended in an incomplete tail (one-shot
    /// and prefetch behaviour); otherwise such an object waits for the next poll round.
    fn settle(&mut self, o: u8, immediate: bool) -> Result<Head, PlayerError> {
        let width = u64::from(self.width());
        let mut reread_allowed = immediate;
        loop {
            let Some(head) = self.heads.get_mut(usize::from(o)) else {
                return Ok(Head::Empty {
                    refetch_required: false,
                });
            };
            if head.is_empty() && (!head.caught_up() || (reread_allowed && head.refetch_required()))
            {
                if head.caught_up() {
                    reread_allowed = false;
                    head.mark_reread();
                }
                head.fetch(self.store.as_ref(), self.chunk, self.max_fetch)
                    .map_err(|source| PlayerError::Store {
                        oid: head.oid().to_owned(),
                        source,
                    })?;
                let buffered = self.buffered_bytes();
                self.peak_buffered = self.peak_buffered.max(buffered);
                continue;
            }
            if let Some(e) = head.front() {
                return Ok(Head::Front {
                    tag: e.tag_tid,
                    tid: e.entry_tid,
                });
            }
            if let Some(offset) = head.corrupt_at() {
                return Err(PlayerError::Corrupt {
                    oid: head.oid().to_owned(),
                    offset,
                });
            }
            let refetch_required = head.refetch_required();
            if head.object_number() / width < self.info.active_set && !refetch_required {
                let next = head.object_number().saturating_add(width);
                let oid = data_oid(self.info.pool_id_for_names, &self.info.journal_id, next);
                *head = ObjectPlayer::new(next, oid);
                self.newer_tag_exists = false;
                reread_allowed = immediate;
                continue;
            }
            return Ok(Head::Empty { refetch_required });
        }
    }
}

/// What the front of a splay offset looks like after [`Player::settle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Head {
    /// The front entry's (tag tid, entry tid).
    Front { tag: u64, tid: u64 },
    /// Nothing queued and nothing more readable now.
    Empty { refetch_required: bool },
}

impl Head {
    fn front(self) -> Option<(u64, u64)> {
        match self {
            Head::Front { tag, tid } => Some((tag, tid)),
            Head::Empty { .. } => None,
        }
    }
}
