//! Pure rules over header records: tag expiry (spec §9.3), tag visibility for `tag_list`
//! (§9.4) and the initial commit position of a newly registered client (§4.2).

use std::collections::BTreeMap;

use super::records::{Client, ClientState, ObjectSetPosition, Tag};

/// The tid expiry works back from (§9.3 step 1): the smallest tag tid over every position of
/// every **connected** client other than `ignore`. `None` (nothing expires) if any such client
/// has an empty position list or there are no positions at all.
pub fn expiry_min_tid(clients: &[Client], ignore: Option<&str>) -> Option<u64> {
    let mut min_tid: Option<u64> = None;
    for client in clients {
        if client.state != ClientState::Connected || Some(client.id.as_str()) == ignore {
            continue;
        }
        if client.commit_position.is_empty() {
            return None;
        }
        for pos in &client.commit_position.object_positions {
            min_tid = Some(min_tid.map_or(pos.tag_tid, |m| m.min(pos.tag_tid)));
        }
    }
    min_tid
}

/// Per tag class, the newest tag tid at or before the cut-off (§9.3 step 2): walk `tags` in
/// tid order remembering each class's last tag, stopping after the first tag with
/// `tid >= min_tid` (which is included). `tags` must be sorted by tid.
pub fn class_thresholds(tags: &[Tag], min_tid: u64) -> BTreeMap<u64, u64> {
    let mut last = BTreeMap::new();
    for tag in tags {
        last.insert(tag.tag_class, tag.tid);
        if tag.tid >= min_tid {
            break;
        }
    }
    last
}

/// Tids of the tags that expire (§9.3 step 3): walking in tid order while `tid < min_tid`, each
/// tag older than its class's threshold. `tags` must be sorted by tid.
pub fn expired_tags(tags: &[Tag], min_tid: u64) -> Vec<u64> {
    let thresholds = class_thresholds(tags, min_tid);
    tags.iter()
        .take_while(|t| t.tid < min_tid)
        .filter(|t| {
            thresholds
                .get(&t.tag_class)
                .is_some_and(|&keep| t.tid < keep)
        })
        .map(|t| t.tid)
        .collect()
}

/// Tags visible to `client` (§9.4), in tid order: thresholds as in [`class_thresholds`] but from
/// only this client's positions (none: every tag visible); then `tid > start_after_tid` (unless
/// it is 0), `tid >=` the class's threshold, the class filter, at most `max`. `tags` must be
/// sorted by tid.
pub fn visible_tags(
    tags: &[Tag],
    client: &Client,
    start_after_tid: u64,
    tag_class: Option<u64>,
    max: usize,
) -> Vec<Tag> {
    let min_tid = client
        .commit_position
        .object_positions
        .iter()
        .map(|p| p.tag_tid)
        .min();
    let thresholds = min_tid
        .map(|m| class_thresholds(tags, m))
        .unwrap_or_default();
    tags.iter()
        .filter(|t| start_after_tid == 0 || t.tid > start_after_tid)
        .filter(|t| t.tid >= thresholds.get(&t.tag_class).copied().unwrap_or(0))
        .filter(|t| tag_class.is_none_or(|c| t.tag_class == c))
        .take(max)
        .cloned()
        .collect()
}

/// The commit position a newly registered client starts from (§4.2), given the existing clients
/// in id order: empty if any client has an empty position; otherwise the whole position list of
/// the client whose most recent position is smallest by `(tag_tid, entry_tid)` (the first in id
/// order on a tie). With `skip_disconnected` false, disconnected clients count too, as in the
/// Ceph code the spec was read from; later Ceph code skips them (spec §17).
pub fn initial_commit_position(clients: &[Client], skip_disconnected: bool) -> ObjectSetPosition {
    let mut best: Option<&ObjectSetPosition> = None;
    for client in clients {
        if skip_disconnected && client.state == ClientState::Disconnected {
            continue;
        }
        let Some(first) = client.commit_position.first() else {
            return ObjectSetPosition::default();
        };
        let better = best
            .and_then(|b| b.first())
            .is_none_or(|b| first.cmp_by_tag_entry(b).is_lt());
        if better {
            best = Some(&client.commit_position);
        }
    }
    best.cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use bytes::Bytes;

    use super::*;
    use crate::header::records::ObjectPosition;

    fn tag(tid: u64, class: u64) -> Tag {
        Tag {
            tid,
            tag_class: class,
            data: Bytes::new(),
        }
    }

    fn client(id: &str, tag_tids: &[u64], state: ClientState) -> Client {
        Client {
            id: id.into(),
            data: Bytes::new(),
            commit_position: ObjectSetPosition::new(
                tag_tids
                    .iter()
                    .map(|&t| ObjectPosition {
                        object_number: 0,
                        tag_tid: t,
                        entry_tid: 0,
                    })
                    .collect(),
            ),
            state,
        }
    }

    // Worked by hand from §9.3: tags 0..=5 with classes [0,1,0,1,0,0]; the only connected
    // client's oldest position is in tag 4. Step 2 walks 0..=4: class 0 → 4, class 1 → 3.
    // Step 3 (tids < 4): tag 0 (class 0, < 4) and 2 (class 0, < 4) expire; tag 1 (class 1,
    // < 3) expires; tag 3 is class 1's newest at or before the cut-off and stays. 4 and 5 stay.
    #[test]
    fn expiry_hand_worked() {
        let tags: Vec<Tag> = [0, 1, 0, 1, 0, 0]
            .iter()
            .enumerate()
            .map(|(tid, &c)| tag(tid as u64, c))
            .collect();
        let clients = vec![client("a", &[5, 4], ClientState::Connected)];
        let min = expiry_min_tid(&clients, None).unwrap();
        assert_eq!(min, 4);
        assert_eq!(expired_tags(&tags, min), vec![0, 1, 2]);
    }

    #[test]
    fn expiry_blocked_by_an_empty_connected_client_but_not_a_disconnected_one() {
        let a = client("a", &[7], ClientState::Connected);
        let empty = client("b", &[], ClientState::Connected);
        assert_eq!(expiry_min_tid(&[a.clone(), empty.clone()], None), None);
        // Unregistering the empty client lifts the block.
        assert_eq!(expiry_min_tid(&[a.clone(), empty], Some("b")), Some(7));
        let gone = client("c", &[], ClientState::Disconnected);
        assert_eq!(expiry_min_tid(&[a, gone], None), Some(7));
        assert_eq!(expiry_min_tid(&[], None), None);
    }

    // Cut-off tag absent (expired or never created): the walk stops at the first tid >= min.
    #[test]
    fn expiry_when_min_tid_points_past_a_gap() {
        let tags = vec![tag(0, 0), tag(1, 0), tag(5, 0)];
        // min_tid 3: walk 0, 1, 5 (stop, included) → class 0 keeps 5; tids < 3 (0 and 1) expire.
        assert_eq!(expired_tags(&tags, 3), vec![0, 1]);
        // min_tid 1: walk 0, 1 → class 0 keeps 1; tid 0 expires.
        assert_eq!(expired_tags(&tags, 1), vec![0]);
        assert_eq!(expired_tags(&tags, 0), Vec::<u64>::new());
    }

    // §9.4 by hand: the client's oldest position is in tag 4; class thresholds {0: 4, 1: 3}.
    // Visible: 3 (class 1), 4, 5; with start_after 3: 4, 5; class filter 1: 3.
    #[test]
    fn visibility_hand_worked() {
        let tags: Vec<Tag> = [0, 1, 0, 1, 0, 0]
            .iter()
            .enumerate()
            .map(|(tid, &c)| tag(tid as u64, c))
            .collect();
        let c = client("a", &[4], ClientState::Connected);
        let tids = |v: Vec<Tag>| v.iter().map(|t| t.tid).collect::<Vec<_>>();
        assert_eq!(tids(visible_tags(&tags, &c, 0, None, 64)), vec![3, 4, 5]);
        assert_eq!(tids(visible_tags(&tags, &c, 3, None, 64)), vec![4, 5]);
        assert_eq!(tids(visible_tags(&tags, &c, 0, Some(1), 64)), vec![3]);
        assert_eq!(tids(visible_tags(&tags, &c, 0, None, 2)), vec![3, 4]);
        let fresh = client("b", &[], ClientState::Connected);
        assert_eq!(
            tids(visible_tags(&tags, &fresh, 0, None, 64)),
            vec![0, 1, 2, 3, 4, 5]
        );
    }

    #[test]
    fn initial_position_rule() {
        let pos = |tag_tid, entry_tid| ObjectPosition {
            object_number: entry_tid % 4,
            tag_tid,
            entry_tid,
        };
        let with = |id: &str, list: Vec<ObjectPosition>| Client {
            id: id.into(),
            data: Bytes::new(),
            commit_position: ObjectSetPosition::new(list),
            state: ClientState::Connected,
        };
        let a = with("a", vec![pos(2, 5), pos(2, 4)]);
        let b = with("b", vec![pos(1, 9), pos(1, 8)]);
        let c = with("c", vec![pos(2, 1)]);
        // b's most recent (1, 9) is the smallest by (tag, entry): its whole list is copied.
        assert_eq!(
            initial_commit_position(&[a.clone(), b.clone(), c.clone()], false),
            b.commit_position
        );
        assert_eq!(
            initial_commit_position(&[a.clone(), c], false),
            ObjectSetPosition::new(vec![pos(2, 1)])
        );
        let empty = with("e", vec![]);
        assert!(initial_commit_position(&[a.clone(), b.clone(), empty.clone()], false).is_empty());
        assert!(initial_commit_position(&[], false).is_empty());
        // A disconnected client that never committed blocks only under the snapshot rule.
        let gone = Client {
            state: ClientState::Disconnected,
            ..empty
        };
        assert!(initial_commit_position(&[a.clone(), gone.clone()], false).is_empty());
        assert_eq!(
            initial_commit_position(&[a.clone(), gone], true),
            a.commit_position
        );
    }
}
