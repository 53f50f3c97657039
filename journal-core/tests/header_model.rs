//! Random sequences of `journal` class methods run against [`JournalHeader`] on a [`MemStore`]
//! and against a reference model written straight from spec §4.2 / §9 (a plain struct of maps,
//! with tag expiry phrased differently from the library: per class, the newest tag not after
//! the first tag at or above the cut-off survives). Every call must give the same outcome (Ok or
//! the same errno) and the header must end up in the same state.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use journal_core::header::{
    ClientState, HeaderError, JournalHeader, ObjectPosition, ObjectSetPosition, TAG_CLASS_NEW,
};
use object_store_trait::MemStore;
use proptest::prelude::*;

const IDS: [&str; 3] = ["", "a", "b"];

#[derive(Debug, Clone)]
enum Op {
    Create(u8, u8),
    SetMin(u64),
    SetActive(u64),
    Register(usize),
    Unregister(usize),
    Disconnect(usize),
    Commit(usize, Vec<(u64, u64)>),
    TagCreate(u64, u64),
    Allocate(u64),
    TagList(usize, Option<u64>),
}

fn op() -> impl Strategy<Value = Op> {
    let class = prop_oneof![Just(TAG_CLASS_NEW), 0u64..3];
    prop_oneof![
        1 => (prop_oneof![Just(11u8), Just(24u8)], 0u8..3).prop_map(|(o, w)| Op::Create(o, w)),
        1 => (0u64..5).prop_map(Op::SetMin),
        2 => (0u64..5).prop_map(Op::SetActive),
        3 => (0usize..3).prop_map(Op::Register),
        1 => (0usize..3).prop_map(Op::Unregister),
        1 => (0usize..3).prop_map(Op::Disconnect),
        4 => (0usize..3, prop::collection::vec((0u64..8, 0u64..8), 0..4))
            .prop_map(|(i, p)| Op::Commit(i, p)),
        2 => (0u64..8, class.clone()).prop_map(|(t, c)| Op::TagCreate(t, c)),
        3 => class.prop_map(Op::Allocate),
        1 => (0usize..3, prop::option::of(0u64..3)).prop_map(|(i, c)| Op::TagList(i, c)),
    ]
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct MClient {
    positions: Vec<ObjectPosition>,
    connected: bool,
}

#[derive(Debug, Default)]
struct Model {
    width: Option<u8>,
    min: u64,
    active: u64,
    next_tid: u64,
    next_class: u64,
    clients: BTreeMap<String, MClient>,
    tags: BTreeMap<u64, u64>, // tid -> class
}

const ENOENT: i32 = -2;
const EEXIST: i32 = -17;
const EINVAL: i32 = -22;
const EDOM: i32 = -33;
const ESTALE: i32 = -116;

impl Model {
    fn expire(&mut self, skip: Option<&str>) {
        let mut min_tid = u64::MAX;
        let mut any = false;
        for (id, c) in &self.clients {
            if !c.connected || Some(id.as_str()) == skip {
                continue;
            }
            if c.positions.is_empty() {
                return;
            }
            for p in &c.positions {
                any = true;
                min_tid = min_tid.min(p.tag_tid);
            }
        }
        if !any {
            return;
        }
        let cutoff = self.tags.range(min_tid..).next().map(|(&t, _)| t);
        let mut keep: BTreeMap<u64, u64> = BTreeMap::new();
        for (&tid, &class) in &self.tags {
            if cutoff.is_none_or(|c| tid <= c) {
                let k = keep.entry(class).or_insert(tid);
                *k = (*k).max(tid);
            }
        }
        self.tags
            .retain(|&tid, class| !(tid < min_tid && tid < keep[class]));
    }

    fn apply(&mut self, op: &Op) -> Result<(), i32> {
        let header = self.width.is_some();
        match op {
            Op::Create(order, width) => {
                if !(12..=26).contains(order) {
                    return Err(EDOM);
                }
                if *width == 0 {
                    return Err(EINVAL);
                }
                if header {
                    return Err(EEXIST);
                }
                self.width = Some(*width);
            }
            Op::SetMin(s) => {
                if !header {
                    return Err(ENOENT);
                }
                if *s > self.active {
                    return Err(EINVAL);
                }
                if *s < self.min {
                    return Err(ESTALE);
                }
                self.min = *s;
            }
            Op::SetActive(s) => {
                if !header {
                    return Err(ENOENT);
                }
                if *s < self.min {
                    return Err(EINVAL);
                }
                if *s < self.active {
                    return Err(ESTALE);
                }
                self.active = *s;
            }
            Op::Register(i) => {
                if !header {
                    return Err(ENOENT);
                }
                if self.clients.contains_key(IDS[*i]) {
                    return Err(EEXIST);
                }
                let mut start: Option<Vec<ObjectPosition>> = None;
                for c in self.clients.values() {
                    match c.positions.first() {
                        None => {
                            start = Some(Vec::new());
                            break;
                        }
                        Some(f) => {
                            let older = match &start {
                                None => true,
                                Some(s) => {
                                    (f.tag_tid, f.entry_tid) < (s[0].tag_tid, s[0].entry_tid)
                                }
                            };
                            if older {
                                start = Some(c.positions.clone());
                            }
                        }
                    }
                }
                self.clients.insert(
                    IDS[*i].into(),
                    MClient {
                        positions: start.unwrap_or_default(),
                        connected: true,
                    },
                );
            }
            Op::Unregister(i) => {
                if !self.clients.contains_key(IDS[*i]) {
                    return Err(ENOENT);
                }
                self.expire(Some(IDS[*i]));
                self.clients.remove(IDS[*i]);
            }
            Op::Disconnect(i) => {
                let c = self.clients.get_mut(IDS[*i]).ok_or(ENOENT)?;
                c.connected = false;
            }
            Op::Commit(i, p) => {
                let width = self.width.ok_or(ENOENT)?;
                if p.len() > usize::from(width) {
                    return Err(EINVAL);
                }
                let c = self.clients.get_mut(IDS[*i]).ok_or(ENOENT)?;
                c.positions = positions(p).object_positions;
            }
            Op::TagCreate(tid, class) => self.tag_create(*tid, *class)?,
            Op::Allocate(class) => {
                if !header {
                    return Err(ENOENT);
                }
                self.tag_create(self.next_tid, *class)?;
            }
            Op::TagList(i, _) => {
                if !self.clients.contains_key(IDS[*i]) {
                    return Err(ENOENT);
                }
            }
        }
        Ok(())
    }

    fn tag_create(&mut self, tid: u64, class: u64) -> Result<(), i32> {
        if self.tags.contains_key(&tid) {
            return Err(EEXIST);
        }
        if self.width.is_none() {
            return Err(ENOENT);
        }
        if tid != self.next_tid {
            return Err(ESTALE);
        }
        let class = if class == TAG_CLASS_NEW {
            self.next_class += 1;
            self.next_class - 1
        } else if class >= self.next_class {
            return Err(EINVAL);
        } else {
            class
        };
        self.expire(None);
        self.next_tid = tid + 1;
        self.tags.insert(tid, class);
        Ok(())
    }

    /// Tags visible to client `id` (§9.4), from the model's tags.
    fn visible(&self, id: &str, class: Option<u64>) -> Vec<u64> {
        let c = &self.clients[id];
        let Some(min_tid) = c.positions.iter().map(|p| p.tag_tid).min() else {
            return self
                .tags
                .iter()
                .filter(|(_, &k)| class.is_none_or(|f| f == k))
                .map(|(&t, _)| t)
                .collect();
        };
        let cutoff = self.tags.range(min_tid..).next().map(|(&t, _)| t);
        let mut keep: BTreeMap<u64, u64> = BTreeMap::new();
        for (&tid, &k) in &self.tags {
            if cutoff.is_none_or(|c| tid <= c) {
                keep.insert(k, tid);
            }
        }
        self.tags
            .iter()
            .filter(|(&t, &k)| t >= keep.get(&k).copied().unwrap_or(0))
            .filter(|(_, &k)| class.is_none_or(|f| f == k))
            .map(|(&t, _)| t)
            .collect()
    }
}

fn positions(p: &[(u64, u64)]) -> ObjectSetPosition {
    ObjectSetPosition::new(
        p.iter()
            .map(|&(object_number, tag_tid)| ObjectPosition {
                object_number,
                tag_tid,
                entry_tid: object_number * 3,
            })
            .collect(),
    )
}

fn run(header: &JournalHeader, op: &Op) -> Result<Option<Vec<u64>>, HeaderError> {
    let none = |r: Result<(), HeaderError>| r.map(|()| None);
    match op {
        Op::Create(o, w) => none(header.create(*o, *w, -1)),
        Op::SetMin(s) => none(header.set_minimum_set(*s)),
        Op::SetActive(s) => none(header.set_active_set(*s)),
        Op::Register(i) => none(header.client_register(IDS[*i], Bytes::new())),
        Op::Unregister(i) => none(header.client_unregister(IDS[*i])),
        Op::Disconnect(i) => none(header.client_update_state(IDS[*i], ClientState::Disconnected)),
        Op::Commit(i, p) => none(header.client_commit(IDS[*i], &positions(p))),
        Op::TagCreate(t, c) => header.tag_create(*t, *c, Bytes::new()).map(|_| None),
        Op::Allocate(c) => header.allocate_tag(*c, Bytes::new()).map(|_| None),
        Op::TagList(i, c) => header
            .tag_list(0, 64, IDS[*i], *c)
            .map(|v| Some(v.iter().map(|t| t.tid).collect())),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn header_matches_reference_model(ops in prop::collection::vec(op(), 1..40)) {
        let header = JournalHeader::new(Arc::new(MemStore::new()), 1, "m");
        let mut model = Model::default();
        // Most sequences should start with a header.
        let mut all = vec![Op::Create(24, 4)];
        all.extend(ops);
        for op in &all {
            let want = model.apply(op);
            let got = run(&header, op);
            prop_assert_eq!(got.as_ref().map(|_| ()).map_err(HeaderError::errno), want, "{:?}", op);
            if let (Op::TagList(i, c), Ok(Some(tids))) = (op, &got) {
                prop_assert_eq!(tids, &model.visible(IDS[*i], *c), "{:?}", op);
            }
        }
        if model.width.is_none() {
            return Ok(());
        }
        let meta = header.get_mutable_metadata().unwrap();
        prop_assert_eq!((meta.minimum_set, meta.active_set), (model.min, model.active));
        let got_clients: BTreeMap<String, MClient> = meta
            .clients
            .into_iter()
            .map(|c| (c.id, MClient {
                positions: c.commit_position.object_positions,
                connected: c.state == ClientState::Connected,
            }))
            .collect();
        prop_assert_eq!(&got_clients, &model.clients);
        prop_assert_eq!(header.get_next_tag_tid().unwrap(), model.next_tid);
        prop_assert_eq!(header.get_next_tag_class().unwrap(), model.next_class);
        let got_tags: BTreeMap<u64, u64> = (0..model.next_tid)
            .filter_map(|t| header.get_tag(t).ok().map(|tag| (t, tag.tag_class)))
            .collect();
        prop_assert_eq!(&got_tags, &model.tags);
    }
}
