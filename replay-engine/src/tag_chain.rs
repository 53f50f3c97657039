//! Tag ownership across sites: mapping a remote tag to the local journal (§13.2) and deciding,
//! from the two tag chains, whether the local image may follow the remote one (§13.4).
//!
//! The link rule used here is rbdj's own, written from the facts of the Ceph behaviour and
//! checked by tests on the tag chains that promote / demote / force-promote produce:
//!
//! | local current tag | remote chain | verdict |
//! |---|---|---|
//! | owned by the remote (`mirror_uuid` = remote uuid) | remote current tag `""` or `<orphan>` | [`Link::Follow`] |
//! | owned by the remote | remote current tag owned by a third site | [`Link::Stopped`] (remote not primary) |
//! | `""` (local primary) | remote current `""` | [`Link::SplitBrain`] (both primary) |
//! | `""` | otherwise | [`Link::Stopped`] (local is primary) |
//! | `<orphan>`, predecessor owned by the remote (we copied the remote's demotion) | has the matching remote orphan tag | [`Link::Follow`], or [`Link::Stopped`] while that orphan is still the remote's current tag |
//! | `<orphan>`, predecessor `""` (we were demoted ourselves) | a remote orphan tag copied from ours (same predecessor tids, predecessor owner = local uuid), followed by a remote promotion tag (`""` with predecessor `<orphan>` = that tag) | [`Link::Failback`] |
//! | `<orphan>`, predecessor `""` | remote current `""` without that chain (forced promotion) | [`Link::SplitBrain`] |
//! | anything else | | [`Link::Stopped`] or [`Link::SplitBrain`] as described |

use journal_core::tag_data::{TagData, TagPredecessor, ORPHAN_MIRROR_UUID};

/// Maps a remote tag's owner uuid to the local convention (§13.2): remote `""` → the remote's
/// mirror uuid; the local site's own uuid → `""`; anything else (including `<orphan>`) kept.
pub fn map_uuid(remote_value: &str, local_uuid: &str, remote_uuid: &str) -> String {
    if remote_value.is_empty() {
        remote_uuid.to_owned()
    } else if remote_value == local_uuid {
        String::new()
    } else {
        remote_value.to_owned()
    }
}

/// The local copy of a remote tag: both owner uuids mapped with [`map_uuid`], predecessor
/// tids kept as the remote wrote them.
pub fn map_remote_tag(remote: &TagData, local_uuid: &str, remote_uuid: &str) -> TagData {
    TagData {
        mirror_uuid: map_uuid(&remote.mirror_uuid, local_uuid, remote_uuid),
        predecessor: TagPredecessor {
            mirror_uuid: map_uuid(&remote.predecessor.mirror_uuid, local_uuid, remote_uuid),
            ..remote.predecessor.clone()
        },
    }
}

/// Whether and how the local image may replay the remote one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// The local image follows the remote: replay from the mirror client's position.
    Follow,
    /// The local image was demoted and the remote promoted from exactly that point: the
    /// direction reverses and the local image follows the remote from the promotion on.
    Failback,
    /// Nothing to do now (the reason is given): local is primary, remote not primary, waiting
    /// for a promotion.
    Stopped(String),
    /// Both sides own epochs that do not link: never merge, report and stop.
    SplitBrain(String),
}

/// Decides the link between the local current tag and the remote tag chain (`remote_tags` in
/// tid order; the last is the remote's current tag). See the module table.
pub fn check_link(
    local: &TagData,
    remote_tags: &[(u64, TagData)],
    local_uuid: &str,
    remote_uuid: &str,
) -> Link {
    let Some((_, remote_current)) = remote_tags.last() else {
        return Link::Stopped("remote image has no tags".into());
    };
    let remote_primary = remote_current.is_local_primary();
    if local.is_local_primary() {
        return if remote_primary {
            Link::SplitBrain("both images are primary".into())
        } else {
            Link::Stopped("local image is primary".into())
        };
    }
    if local.mirror_uuid == remote_uuid {
        return if remote_primary || remote_current.is_orphan() {
            Link::Follow
        } else {
            Link::Stopped("remote image is not primary".into())
        };
    }
    if !local.is_orphan() {
        return Link::Stopped(format!(
            "local image follows another site ({})",
            local.mirror_uuid
        ));
    }
    let pred = &local.predecessor;
    if pred.mirror_uuid == remote_uuid {
        // We copied the remote's own demotion: find that orphan tag on the remote.
        let found = remote_tags.iter().position(|(_, t)| {
            t.is_orphan()
                && t.predecessor.mirror_uuid.is_empty()
                && t.predecessor.commit_valid == pred.commit_valid
                && t.predecessor.tag_tid == pred.tag_tid
                && t.predecessor.entry_tid == pred.entry_tid
        });
        return match found {
            None => Link::SplitBrain("local demotion does not match the remote chain".into()),
            Some(i) if i + 1 == remote_tags.len() => {
                Link::Stopped("remote image is demoted".into())
            }
            Some(_) => Link::Follow,
        };
    }
    if pred.mirror_uuid.is_empty() {
        // We were demoted ourselves: the remote must have copied that demotion, then promoted.
        let orphan = remote_tags.iter().position(|(_, t)| {
            t.is_orphan()
                && t.predecessor.mirror_uuid == local_uuid
                && t.predecessor.tag_tid == pred.tag_tid
                && t.predecessor.entry_tid == pred.entry_tid
        });
        if let Some(i) = orphan {
            let orphan_tid = remote_tags.get(i).map(|(tid, _)| *tid).unwrap_or(0);
            let promoted = remote_tags.iter().skip(i + 1).any(|(_, t)| {
                t.is_local_primary()
                    && t.predecessor.mirror_uuid == ORPHAN_MIRROR_UUID
                    && t.predecessor.tag_tid == orphan_tid
            });
            return if promoted {
                Link::Failback
            } else {
                Link::Stopped("waiting for the remote image to be promoted".into())
            };
        }
        return if remote_primary {
            Link::SplitBrain(
                "remote image was promoted without our demotion (forced promotion)".into(),
            )
        } else {
            Link::Stopped("both images are demoted".into())
        };
    }
    Link::Stopped(format!(
        "local image was demoted while following another site ({})",
        pred.mirror_uuid
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]

    use super::*;

    fn tag(owner: &str, pred_owner: &str, valid: bool, ptag: u64, pentry: u64) -> TagData {
        TagData {
            mirror_uuid: owner.into(),
            predecessor: TagPredecessor {
                mirror_uuid: pred_owner.into(),
                commit_valid: valid,
                tag_tid: ptag,
                entry_tid: pentry,
            },
        }
    }

    const A: &str = "uuid-a";
    const B: &str = "uuid-b";

    #[test]
    fn mapping_follows_section_13_2() {
        assert_eq!(map_uuid("", A, B), B);
        assert_eq!(map_uuid(A, A, B), "");
        assert_eq!(map_uuid(ORPHAN_MIRROR_UUID, A, B), ORPHAN_MIRROR_UUID);
        assert_eq!(map_uuid("uuid-c", A, B), "uuid-c");
        let remote = tag(ORPHAN_MIRROR_UUID, "", true, 7, 42);
        let local = map_remote_tag(&remote, A, B);
        assert_eq!(local, tag(ORPHAN_MIRROR_UUID, B, true, 7, 42));
    }

    /// Site A primary (tags 0, 1), B replicates it; A demotes (orphan), B copies the orphan,
    /// promotes orderly; A must fail back.
    #[test]
    fn orderly_failover_chains_link() {
        // A's journal.
        let a0 = tag("", "", false, 0, 0);
        let a1 = tag("", "", true, 0, 5);
        let a_orphan = tag(ORPHAN_MIRROR_UUID, "", true, 1, 9);
        // B's journal: creation tag owned by A, copies of A's tags, then the orphan copy and
        // B's own orderly promotion (§12.5: predecessor <orphan>, entry 1).
        let b_tags = vec![
            (0, tag(A, "", false, 0, 0)),
            (1, map_remote_tag(&a1, B, A)),
            (2, map_remote_tag(&a_orphan, B, A)),
            (3, tag("", ORPHAN_MIRROR_UUID, true, 2, 1)),
        ];
        let a_tags = vec![(0, a0), (1, a1), (2, a_orphan.clone())];
        // Before promotion, B's agent follows A (A's current is the orphan: copy it).
        assert_eq!(
            check_link(&b_tags[1].1, &a_tags, B, A),
            Link::Follow,
            "replica follows primary"
        );
        // After copying the orphan, B waits.
        assert!(matches!(
            check_link(&b_tags[2].1, &a_tags, B, A),
            Link::Stopped(_)
        ));
        // After B's promotion, A's agent fails back; B's agent sees local primary.
        assert_eq!(check_link(&a_orphan, &b_tags, A, B), Link::Failback);
        assert!(matches!(
            check_link(&b_tags[3].1, &a_tags, B, A),
            Link::Stopped(_)
        ));
        // Without B's promotion yet, A waits.
        assert!(matches!(
            check_link(&a_orphan, &b_tags[..3], A, B),
            Link::Stopped(_)
        ));
    }

    /// B force-promotes while A is still primary: both primary is split-brain; after A is
    /// demoted its chain still does not link.
    #[test]
    fn forced_promotion_is_split_brain() {
        let a_tags = vec![(0, tag("", "", false, 0, 0)), (1, tag("", "", true, 0, 3))];
        let b_tags = vec![
            (0, tag(A, "", false, 0, 0)),
            (1, tag(A, A, true, 0, 3)),
            (2, tag("", "", true, 1, 0)),
        ];
        assert!(matches!(
            check_link(&b_tags[2].1, &a_tags, B, A),
            Link::SplitBrain(_)
        ));
        assert!(matches!(
            check_link(&a_tags[1].1, &b_tags, A, B),
            Link::SplitBrain(_)
        ));
        let a_demoted = tag(ORPHAN_MIRROR_UUID, "", true, 1, 8);
        assert!(matches!(
            check_link(&a_demoted, &b_tags, A, B),
            Link::SplitBrain(_)
        ));
    }
}
