//! Tag methods of the `journal` class: create (with class allocation and expiry), the
//! allocation protocol, lookup and listing (spec §4.2, §9).

use bytes::Bytes;
use object_store_trait::OmapBatch;

use crate::encoding::{Decode, Encode};

use super::expiry::{expired_tags, expiry_min_tid, visible_tags};
use super::journal_header::{missing_key, pin, Backoff, JournalHeader, Plan};
use super::records::{
    client_key, decode_u64, encode_u64, tag_key, Client, Tag, CLIENT_KEY_PREFIX,
    KEY_NEXT_TAG_CLASS, KEY_NEXT_TAG_TID, TAG_CLASS_NEW, TAG_KEY_PREFIX,
};
use super::{HeaderError, HeaderResult};

/// Page size the Ceph library uses for `tag_list`.
pub const TAG_LIST_PAGE: usize = 64;

impl JournalHeader {
    /// `journal.get_tag`: [`HeaderError::NotFound`] if the tag does not exist (or expired).
    pub fn get_tag(&self, tid: u64) -> HeaderResult<Tag> {
        let raw = self
            .read_key(&tag_key(tid))?
            .ok_or_else(|| HeaderError::NotFound {
                what: format!("tag {tid}"),
            })?;
        Ok(Tag::from_bytes(raw)?)
    }

    /// `journal.tag_create`: creates tag `tid` in `tag_class` ([`TAG_CLASS_NEW`] allocates the
    /// next class), expires old tags (§9.3), sets `next_tag_tid = tid + 1`, and returns the
    /// stored tag (with its class resolved).
    ///
    /// Errors: [`HeaderError::Exists`] if tag `tid` exists; [`HeaderError::Stale`] if `tid` is
    /// not `next_tag_tid`; [`HeaderError::Invalid`] if `tag_class` is neither new nor an
    /// allocated class; [`HeaderError::NotFound`] if the header does not exist.
    pub fn tag_create(&self, tid: u64, tag_class: u64, data: Bytes) -> HeaderResult<Tag> {
        let key = tag_key(tid);
        self.mutate("tag_create", || {
            let map = self.read_keys(&[&key, KEY_NEXT_TAG_TID, KEY_NEXT_TAG_CLASS])?;
            if map.contains_key(&key) {
                return Err(HeaderError::Exists {
                    what: format!("tag {tid}"),
                });
            }
            let next_tid_raw = map
                .get(KEY_NEXT_TAG_TID)
                .ok_or_else(|| missing_key(KEY_NEXT_TAG_TID))?;
            let next_tid = decode_u64(KEY_NEXT_TAG_TID, next_tid_raw)?;
            if tid != next_tid {
                return Err(HeaderError::Stale {
                    what: KEY_NEXT_TAG_TID,
                    requested: tid,
                    current: next_tid,
                });
            }
            let after = tid.checked_add(1).ok_or_else(|| HeaderError::Invalid {
                detail: "tag tid space exhausted".into(),
            })?;
            let next_class_raw = map
                .get(KEY_NEXT_TAG_CLASS)
                .ok_or_else(|| missing_key(KEY_NEXT_TAG_CLASS))?;
            let next_class = decode_u64(KEY_NEXT_TAG_CLASS, next_class_raw)?;
            let mut batch = OmapBatch::new();
            pin(&mut batch, &key, None);
            pin(&mut batch, KEY_NEXT_TAG_TID, Some(next_tid_raw));
            pin(&mut batch, KEY_NEXT_TAG_CLASS, Some(next_class_raw));
            let class = if tag_class == TAG_CLASS_NEW {
                let bumped = next_class
                    .checked_add(1)
                    .ok_or_else(|| HeaderError::Invalid {
                        detail: "tag class space exhausted".into(),
                    })?;
                batch.set(KEY_NEXT_TAG_CLASS, encode_u64(bumped));
                next_class
            } else if tag_class >= next_class {
                return Err(HeaderError::Invalid {
                    detail: format!("tag class {tag_class} not allocated (next {next_class})"),
                });
            } else {
                tag_class
            };
            let mut clients = Vec::new();
            for (k, v) in self.list_all(CLIENT_KEY_PREFIX)? {
                pin(&mut batch, &k, Some(&v));
                clients.push(Client::from_bytes(v)?);
            }
            if let Some(min_tid) = expiry_min_tid(&clients, None) {
                for expired in expired_tags(&self.all_tags()?, min_tid) {
                    batch.remove(tag_key(expired));
                }
            }
            let tag = Tag {
                tid,
                tag_class: class,
                data: data.clone(),
            };
            batch.set(KEY_NEXT_TAG_TID, encode_u64(after));
            batch.set(key.clone(), tag.to_bytes());
            Ok(Plan::Apply(batch, tag))
        })
    }

    /// Allocates a tag by the protocol of §9.1: read `next_tag_tid`, `tag_create` it, and start
    /// again when another client got there first ([`HeaderError::Stale`], or
    /// [`HeaderError::Exists`] when the other client's tag is already stored under the tid we
    /// read — Ceph's `tag_create` checks existence first). Returns the stored tag
    /// (for [`TAG_CLASS_NEW`], with the class that was assigned). Watchers are notified.
    pub fn allocate_tag(&self, tag_class: u64, data: Bytes) -> HeaderResult<Tag> {
        let mut backoff = Backoff::new(&self.options);
        for _ in 0..self.options.max_attempts {
            let tid = self.get_next_tag_tid()?;
            match self.tag_create(tid, tag_class, data.clone()) {
                // Another allocator took `tid` between our read and our create: `tag_create`
                // reports that as -EEXIST (the tag now exists) or -ESTALE (next_tag_tid moved).
                Err(HeaderError::Stale { .. } | HeaderError::Exists { .. }) => backoff.pause(),
                other => return other,
            }
        }
        Err(HeaderError::Contention {
            op: "allocate_tag",
            attempts: self.options.max_attempts,
        })
    }

    /// `journal.tag_list`: tags visible to client `client_id` (§9.4) with tid `> start_after_tid`
    /// (0: no lower bound), optionally only class `tag_class`, in tid order, at most `max`.
    /// [`HeaderError::NotFound`] if the client is not registered.
    pub fn tag_list(
        &self,
        start_after_tid: u64,
        max: usize,
        client_id: &str,
        tag_class: Option<u64>,
    ) -> HeaderResult<Vec<Tag>> {
        let raw = self
            .read_key(&client_key(client_id))?
            .ok_or_else(|| HeaderError::NotFound {
                what: format!("client {client_id:?}"),
            })?;
        let client = Client::from_bytes(raw)?;
        let tags = self.all_tags()?;
        Ok(visible_tags(
            &tags,
            &client,
            start_after_tid,
            tag_class,
            max,
        ))
    }

    /// Every tag visible to `client_id`, optionally of one class, paging like the Ceph library
    /// ([`TAG_LIST_PAGE`] per call).
    pub fn tag_list_all(&self, client_id: &str, tag_class: Option<u64>) -> HeaderResult<Vec<Tag>> {
        let mut out: Vec<Tag> = Vec::new();
        let mut after = 0;
        loop {
            let page = self.tag_list(after, TAG_LIST_PAGE, client_id, tag_class)?;
            let full = page.len() == TAG_LIST_PAGE;
            match page.last() {
                Some(last) => after = last.tid,
                None => return Ok(out),
            }
            out.extend(page);
            if !full {
                return Ok(out);
            }
        }
    }

    /// The live reader's check of §9.4: whether a tag newer than `my_tag` is visible to
    /// `client_id` (`tag_list(start_after = my_tag, max 2)` holds a tid above `my_tag`).
    pub fn newer_tag_exists(&self, client_id: &str, my_tag: u64) -> HeaderResult<bool> {
        let tags = self.tag_list(my_tag, 2, client_id, None)?;
        Ok(tags.iter().any(|t| t.tid > my_tag))
    }

    /// Every stored tag, in tid order.
    pub(crate) fn all_tags(&self) -> HeaderResult<Vec<Tag>> {
        self.list_all(TAG_KEY_PREFIX)?
            .into_iter()
            .map(|(_, v)| Ok(Tag::from_bytes(v)?))
            .collect()
    }
}
