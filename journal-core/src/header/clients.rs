//! Client methods of the `journal` class: register, update data / state, unregister (with tag
//! expiry), commit and listing (spec §4.2, §7).

use bytes::Bytes;
use object_store_trait::OmapBatch;

use crate::encoding::{Decode, Encode};

use super::expiry::{expired_tags, expiry_min_tid, initial_commit_position};
use super::journal_header::{missing_key, pin, JournalHeader, Plan};
use super::records::{
    client_key, decode_u8, tag_key, Client, ClientState, ObjectSetPosition, CLIENT_KEY_PREFIX,
    KEY_NEXT_TAG_TID, KEY_ORDER, KEY_SPLAY_WIDTH,
};
use super::{HeaderError, HeaderResult};

fn client_not_found(id: &str) -> HeaderError {
    HeaderError::NotFound {
        what: format!("client {id:?}"),
    }
}

impl JournalHeader {
    /// `journal.get_client`: the client record, [`HeaderError::NotFound`] if not registered.
    pub fn get_client(&self, id: &str) -> HeaderResult<Client> {
        let raw = self
            .read_key(&client_key(id))?
            .ok_or_else(|| client_not_found(id))?;
        Ok(Client::from_bytes(raw)?)
    }

    /// `journal.client_register`: registers `id` with `data`, connected, starting from the
    /// initial commit position of §4.2 ([`super::initial_commit_position`]).
    ///
    /// Errors: [`HeaderError::NotFound`] if the header does not exist, [`HeaderError::Exists`]
    /// if `id` is registered.
    pub fn client_register(&self, id: &str, data: Bytes) -> HeaderResult<()> {
        let key = client_key(id);
        self.mutate("client_register", || {
            let map = self.read_keys(&[KEY_ORDER, &key])?;
            let order = map.get(KEY_ORDER).ok_or_else(|| HeaderError::NotFound {
                what: "journal header".into(),
            })?;
            if map.contains_key(&key) {
                return Err(HeaderError::Exists {
                    what: format!("client {id:?}"),
                });
            }
            let existing = self.list_all(CLIENT_KEY_PREFIX)?;
            let mut batch = OmapBatch::new();
            pin(&mut batch, KEY_ORDER, Some(order));
            pin(&mut batch, &key, None);
            let mut clients = Vec::with_capacity(existing.len());
            for (k, v) in existing {
                pin(&mut batch, &k, Some(&v));
                clients.push(Client::from_bytes(v)?);
            }
            let client = Client {
                id: id.to_owned(),
                data: data.clone(),
                commit_position: initial_commit_position(
                    &clients,
                    self.options.register_skips_disconnected,
                ),
                state: ClientState::Connected,
            };
            batch.set(key.clone(), client.to_bytes());
            Ok(Plan::Apply(batch, ()))
        })
    }

    /// Read-modify-write of one client record; `change` returns `None` for "no write".
    fn update_client(
        &self,
        op: &'static str,
        id: &str,
        mut change: impl FnMut(&Client) -> HeaderResult<Option<Client>>,
    ) -> HeaderResult<()> {
        let key = client_key(id);
        self.mutate(op, || {
            let raw = self.read_key(&key)?.ok_or_else(|| client_not_found(id))?;
            let client = Client::from_bytes(raw.clone())?;
            let Some(updated) = change(&client)? else {
                return Ok(Plan::Done(()));
            };
            let mut batch = OmapBatch::new();
            pin(&mut batch, &key, Some(&raw));
            batch.set(key.clone(), updated.to_bytes());
            Ok(Plan::Apply(batch, ()))
        })
    }

    /// `journal.client_update_data`: replaces the data blob ([`HeaderError::NotFound`] if `id`
    /// is not registered).
    pub fn client_update_data(&self, id: &str, data: Bytes) -> HeaderResult<()> {
        self.update_client("client_update_data", id, |c| {
            Ok(Some(Client {
                data: data.clone(),
                ..c.clone()
            }))
        })
    }

    /// `journal.client_update_state` ([`HeaderError::NotFound`] if `id` is not registered).
    pub fn client_update_state(&self, id: &str, state: ClientState) -> HeaderResult<()> {
        self.update_client("client_update_state", id, |c| {
            Ok(Some(Client { state, ..c.clone() }))
        })
    }

    /// `journal.client_commit`: stores `position` as the client's commit position; no write if
    /// it is unchanged.
    ///
    /// Errors: [`HeaderError::Invalid`] if it has more positions than the splay width,
    /// [`HeaderError::NotFound`] if `id` is not registered (or the header does not exist).
    pub fn client_commit(&self, id: &str, position: &ObjectSetPosition) -> HeaderResult<()> {
        let raw_width = self
            .read_key(KEY_SPLAY_WIDTH)?
            .ok_or_else(|| missing_key(KEY_SPLAY_WIDTH))?;
        let width = decode_u8(KEY_SPLAY_WIDTH, &raw_width)?;
        if position.object_positions.len() > usize::from(width) {
            return Err(HeaderError::Invalid {
                detail: format!(
                    "{} commit positions for splay width {width}",
                    position.object_positions.len()
                ),
            });
        }
        self.update_client("client_commit", id, |c| {
            if &c.commit_position == position {
                return Ok(None);
            }
            Ok(Some(Client {
                commit_position: position.clone(),
                ..c.clone()
            }))
        })
    }

    /// `journal.client_unregister`: removes the client, then expires tags (§9.3) as if it were
    /// gone. [`HeaderError::NotFound`] if `id` is not registered.
    pub fn client_unregister(&self, id: &str) -> HeaderResult<()> {
        let key = client_key(id);
        self.mutate("client_unregister", || {
            let map = self.read_keys(&[&key, KEY_NEXT_TAG_TID])?;
            let raw = map.get(&key).ok_or_else(|| client_not_found(id))?;
            let mut batch = OmapBatch::new();
            pin(&mut batch, &key, Some(raw));
            // Tags only appear through tag_create, which moves next_tag_tid.
            pin(&mut batch, KEY_NEXT_TAG_TID, map.get(KEY_NEXT_TAG_TID));
            let mut clients = Vec::new();
            for (k, v) in self.list_all(CLIENT_KEY_PREFIX)? {
                pin(&mut batch, &k, Some(&v));
                clients.push(Client::from_bytes(v)?);
            }
            batch.remove(key.clone());
            if let Some(min_tid) = expiry_min_tid(&clients, Some(id)) {
                let tags = self.all_tags()?;
                for tid in expired_tags(&tags, min_tid) {
                    batch.remove(tag_key(tid));
                }
            }
            Ok(Plan::Apply(batch, ()))
        })
    }

    /// `journal.client_list`: up to `max` clients with id `> start_after` (empty: from the
    /// first client, including the image client `""`), in id order.
    pub fn client_list(&self, start_after: &str, max: usize) -> HeaderResult<Vec<Client>> {
        let after = if start_after.is_empty() {
            String::new()
        } else {
            client_key(start_after)
        };
        self.store
            .omap_list(&self.oid, &after, CLIENT_KEY_PREFIX, max)?
            .into_iter()
            .map(|(_, v)| Ok(Client::from_bytes(v)?))
            .collect()
    }

    /// Every registered client, in id order (pages of 256).
    pub fn clients(&self) -> HeaderResult<Vec<Client>> {
        self.all_clients()
    }
}
