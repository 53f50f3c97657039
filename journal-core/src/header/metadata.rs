//! Header creation and the scalar metadata methods: `create`, immutable metadata (`order`,
//! `splay_width`, `pool_id`), mutable metadata (`minimum_set`, `active_set`, clients) and the set
//! setters (spec §4.2).

use object_store_trait::OmapBatch;

use crate::encoding::Decode;
use crate::layout::{Layout, MAX_ORDER, MIN_ORDER};

use super::journal_header::{missing_key, pin, JournalHeader, Plan};
use super::records::{
    decode_i64, decode_u64, decode_u8, encode_i64, encode_u64, encode_u8, Client,
    CLIENT_KEY_PREFIX, KEY_ACTIVE_SET, KEY_MINIMUM_SET, KEY_NEXT_TAG_CLASS, KEY_NEXT_TAG_TID,
    KEY_ORDER, KEY_POOL_ID, KEY_SPLAY_WIDTH,
};
use super::{HeaderError, HeaderResult};

/// The values fixed at `create`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ImmutableMetadata {
    /// log2 of the data objects' soft size limit.
    pub order: u8,
    /// Splay width W.
    pub splay_width: u8,
    /// Data pool id, −1 for the header's pool.
    pub pool_id: i64,
}

impl ImmutableMetadata {
    /// The object layout these values describe (fails for values Ceph's library would refuse).
    pub fn layout(&self) -> Result<Layout, crate::layout::LayoutError> {
        Layout::new(self.order, self.splay_width)
    }
}

/// The values that change while the journal is used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MutableMetadata {
    /// Oldest object set not yet trimmed.
    pub minimum_set: u64,
    /// Object set being appended to.
    pub active_set: u64,
    /// Every registered client, in id order.
    pub clients: Vec<Client>,
}

impl MutableMetadata {
    /// The client with id `id`, if registered.
    pub fn client(&self, id: &str) -> Option<&Client> {
        self.clients.iter().find(|c| c.id == id)
    }
}

impl JournalHeader {
    /// Creates the header (`journal.create`): order, splay width, pool id, both sets 0, next tag
    /// tid and class 0.
    ///
    /// Errors: [`HeaderError::OutOfRange`] for an order outside 12..=26 and
    /// [`HeaderError::Invalid`] for width 0 (the client library's checks);
    /// [`HeaderError::Exists`] if the header already has an `order` key.
    pub fn create(&self, order: u8, splay_width: u8, pool_id: i64) -> HeaderResult<()> {
        if !(MIN_ORDER..=MAX_ORDER).contains(&order) {
            return Err(HeaderError::OutOfRange { order });
        }
        if splay_width == 0 {
            return Err(HeaderError::Invalid {
                detail: "splay width 0".into(),
            });
        }
        self.mutate("create", || {
            if self.read_key(KEY_ORDER)?.is_some() {
                return Err(HeaderError::Exists {
                    what: "journal header".into(),
                });
            }
            let mut batch = OmapBatch::new();
            batch
                .assert_absent(KEY_ORDER)
                .set(KEY_ORDER, encode_u8(order))
                .set(KEY_SPLAY_WIDTH, encode_u8(splay_width))
                .set(KEY_POOL_ID, encode_i64(pool_id))
                .set(KEY_MINIMUM_SET, encode_u64(0))
                .set(KEY_ACTIVE_SET, encode_u64(0))
                .set(KEY_NEXT_TAG_TID, encode_u64(0))
                .set(KEY_NEXT_TAG_CLASS, encode_u64(0));
            Ok(Plan::Apply(batch, ()))
        })
    }

    /// Reads `order`, `splay_width` and `pool_id` (`NotFound` if the header does not exist).
    pub fn get_immutable_metadata(&self) -> HeaderResult<ImmutableMetadata> {
        let map = self.read_keys(&[KEY_ORDER, KEY_SPLAY_WIDTH, KEY_POOL_ID])?;
        let get = |key: &'static str| map.get(key).ok_or_else(|| missing_key(key));
        Ok(ImmutableMetadata {
            order: decode_u8(KEY_ORDER, get(KEY_ORDER)?)?,
            splay_width: decode_u8(KEY_SPLAY_WIDTH, get(KEY_SPLAY_WIDTH)?)?,
            pool_id: decode_i64(KEY_POOL_ID, get(KEY_POOL_ID)?)?,
        })
    }

    /// Reads `minimum_set`, `active_set` and every client (paged by 256).
    pub fn get_mutable_metadata(&self) -> HeaderResult<MutableMetadata> {
        let map = self.read_keys(&[KEY_MINIMUM_SET, KEY_ACTIVE_SET])?;
        let get = |key: &'static str| map.get(key).ok_or_else(|| missing_key(key));
        let minimum_set = decode_u64(KEY_MINIMUM_SET, get(KEY_MINIMUM_SET)?)?;
        let active_set = decode_u64(KEY_ACTIVE_SET, get(KEY_ACTIVE_SET)?)?;
        Ok(MutableMetadata {
            minimum_set,
            active_set,
            clients: self.all_clients()?,
        })
    }

    /// Reads `minimum_set`.
    pub fn get_minimum_set(&self) -> HeaderResult<u64> {
        self.read_u64(KEY_MINIMUM_SET)
    }

    /// Reads `active_set`.
    pub fn get_active_set(&self) -> HeaderResult<u64> {
        self.read_u64(KEY_ACTIVE_SET)
    }

    /// Reads `next_tag_tid`.
    pub fn get_next_tag_tid(&self) -> HeaderResult<u64> {
        self.read_u64(KEY_NEXT_TAG_TID)
    }

    /// Reads `next_tag_class`.
    pub fn get_next_tag_class(&self) -> HeaderResult<u64> {
        self.read_u64(KEY_NEXT_TAG_CLASS)
    }

    /// `journal.set_minimum_set`: [`HeaderError::Invalid`] if `set > active_set`; no write if
    /// `set` equals the current minimum; [`HeaderError::Stale`] if it is smaller.
    pub fn set_minimum_set(&self, set: u64) -> HeaderResult<()> {
        self.advance_set("set_minimum_set", KEY_MINIMUM_SET, set, |_, active| {
            (set > active).then(|| format!("minimum set {set} > active set {active}"))
        })
    }

    /// `journal.set_active_set`: [`HeaderError::Invalid`] if `set < minimum_set`; no write if
    /// `set` equals the current active set; [`HeaderError::Stale`] if it is smaller.
    pub fn set_active_set(&self, set: u64) -> HeaderResult<()> {
        self.advance_set("set_active_set", KEY_ACTIVE_SET, set, |minimum, _| {
            (set < minimum).then(|| format!("active set {set} < minimum set {minimum}"))
        })
    }

    /// Moves `key` (`minimum_set` or `active_set`) forward to `set`, guarded on both set keys:
    /// `invalid(minimum, active)` names a violated relation between the two; moving backwards is
    /// [`HeaderError::Stale`]; staying put writes nothing.
    fn advance_set(
        &self,
        op: &'static str,
        key: &'static str,
        set: u64,
        invalid: impl Fn(u64, u64) -> Option<String>,
    ) -> HeaderResult<()> {
        self.mutate(op, || {
            let map = self.read_keys(&[KEY_MINIMUM_SET, KEY_ACTIVE_SET])?;
            let min_raw = map
                .get(KEY_MINIMUM_SET)
                .ok_or_else(|| missing_key(KEY_MINIMUM_SET))?;
            let active_raw = map
                .get(KEY_ACTIVE_SET)
                .ok_or_else(|| missing_key(KEY_ACTIVE_SET))?;
            let minimum = decode_u64(KEY_MINIMUM_SET, min_raw)?;
            let active = decode_u64(KEY_ACTIVE_SET, active_raw)?;
            if let Some(detail) = invalid(minimum, active) {
                return Err(HeaderError::Invalid { detail });
            }
            let current = if key == KEY_MINIMUM_SET {
                minimum
            } else {
                active
            };
            if set == current {
                return Ok(Plan::Done(()));
            }
            if set < current {
                return Err(HeaderError::Stale {
                    what: key,
                    requested: set,
                    current,
                });
            }
            let mut batch = OmapBatch::new();
            pin(&mut batch, KEY_MINIMUM_SET, Some(min_raw));
            pin(&mut batch, KEY_ACTIVE_SET, Some(active_raw));
            batch.set(key, encode_u64(set));
            Ok(Plan::Apply(batch, ()))
        })
    }

    /// Every registered client, in id order.
    pub(crate) fn all_clients(&self) -> HeaderResult<Vec<Client>> {
        self.list_all(CLIENT_KEY_PREFIX)?
            .into_iter()
            .map(|(_, value)| Ok(Client::from_bytes(value)?))
            .collect()
    }
}
