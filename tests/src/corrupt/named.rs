//! Hand-written cases, one per kind of damage or tag situation.

use super::{
    base, case, delivered, found, frame, frame_raw, garbage, payload, Case, EntryFault, Obj,
    Placed, PlayerEnd, PlayerExpect, ScanExpect, HEADER, OVERHEAD, PREAMBLE,
};

/// The hand-written cases: garbage, huge lengths, padding, stale tags, duplicates, sequence
/// gaps, wrong version and preamble with a valid CRC.
pub fn named_cases() -> Vec<Case> {
    let mut out = Vec::new();
    out.extend(garbage_cases());
    out.extend(length_cases());
    out.extend(padding_cases());
    out.extend(tag_cases());
    out.extend(framing_cases());
    out
}

fn garbage_cases() -> Vec<Case> {
    let mut out = Vec::new();
    // Garbage between two entries: corrupt range exactly the garbage, resync at the next entry.
    let mut o = Obj::default();
    let e0 = o.entry(1, 0, 16);
    let g = o.raw(&garbage(1, 13));
    let e1 = o.entry(1, 1, 27);
    let e2 = o.entry(1, 2, 40);
    out.push(case(
        "garbage/between-entries",
        o.bytes.clone(),
        ScanExpect {
            entries: found(&[&e0, &e1, &e2]),
            corrupt: vec![g as u64..e1.start as u64],
            partial_tail: false,
            consumed: o.len(),
        },
        vec![(g, EntryFault::BadPreamble)],
        PlayerExpect {
            delivered: delivered(&[&e0]),
            end: PlayerEnd::Corrupt(g as u64),
        },
    ));
    // Garbage shorter than a fixed header (25 bytes) after the last entry: rule 1 comes first,
    // so it is an incomplete tail, not corruption.
    let mut o = base();
    let g = o.raw(&garbage(5, 20));
    let all: Vec<&Placed> = o.placed.iter().collect();
    out.push(case(
        "garbage/short-tail",
        o.bytes.clone(),
        ScanExpect {
            entries: found(&all),
            corrupt: vec![],
            partial_tail: true,
            consumed: g as u64,
        },
        vec![(g, EntryFault::Truncated { needed: 25 })],
        PlayerExpect {
            delivered: delivered(&all),
            end: PlayerEnd::End,
        },
    ));
    // 40 bytes of garbage after the last entry.
    let mut o = base();
    let g = o.raw(&garbage(2, 40));
    let all: Vec<&Placed> = o.placed.iter().collect();
    out.push(case(
        "garbage/tail",
        o.bytes.clone(),
        ScanExpect {
            entries: found(&all),
            corrupt: vec![g as u64..o.len()],
            partial_tail: false,
            consumed: o.len(),
        },
        vec![(g, EntryFault::BadPreamble)],
        PlayerExpect {
            delivered: delivered(&all),
            end: PlayerEnd::Corrupt(g as u64),
        },
    ));
    // Garbage followed by the first 5 bytes of a preamble at the end: the fragment may be an
    // entry still being written, so it is a partial tail after the corrupt range.
    let mut o = Obj::default();
    let e0 = o.entry(1, 0, 16);
    let g = o.raw(&garbage(3, 40));
    let frag = o.raw(PREAMBLE.get(..5).unwrap_or_default());
    out.push(case(
        "garbage/then-preamble-fragment",
        o.bytes.clone(),
        ScanExpect {
            entries: found(&[&e0]),
            corrupt: vec![g as u64..frag as u64],
            partial_tail: true,
            consumed: frag as u64,
        },
        vec![],
        PlayerExpect {
            delivered: delivered(&[&e0]),
            end: PlayerEnd::Corrupt(g as u64),
        },
    ));
    // Nothing but garbage.
    out.push(case(
        "garbage/whole-object",
        garbage(4, 100),
        ScanExpect {
            entries: vec![],
            corrupt: vec![0..100],
            partial_tail: false,
            consumed: 100,
        },
        vec![(0, EntryFault::BadPreamble)],
        PlayerExpect {
            delivered: vec![],
            end: PlayerEnd::Corrupt(0),
        },
    ));
    out
}

fn length_cases() -> Vec<Case> {
    let mut out = Vec::new();
    // 0xFFFFFFFF data length after a valid entry: rule 2 makes it a partial tail (the reader
    // waits for 4 GiB that will never come); nothing is allocated for it.
    for (name, lead) in [
        ("length/ffffffff-after-entry", true),
        ("length/ffffffff-first", false),
    ] {
        let mut o = Obj::default();
        let e0 = lead.then(|| o.entry(1, 0, 16));
        let mut bad = frame(1, 1, &payload(1, 1, 0, 27));
        if let Some(f) = bad.get_mut(HEADER..HEADER + 4) {
            f.copy_from_slice(&u32::MAX.to_le_bytes());
        }
        let at = o.raw(&bad);
        o.entry(1, 2, 40);
        let before: Vec<&Placed> = e0.iter().collect();
        out.push(case(
            name,
            o.bytes.clone(),
            ScanExpect {
                entries: found(&before),
                corrupt: vec![],
                partial_tail: true,
                consumed: at as u64,
            },
            vec![(
                at,
                EntryFault::Truncated {
                    needed: OVERHEAD as u64 + u64::from(u32::MAX),
                },
            )],
            PlayerExpect {
                delivered: delivered(&before),
                end: PlayerEnd::End,
            },
        ));
    }
    // A length one byte longer than what is left: also a partial tail.
    let mut o = Obj::default();
    let e0 = o.entry(1, 0, 16);
    let mut bad = frame(1, 1, &payload(1, 1, 0, 27));
    let over = (bad.len() - OVERHEAD + 1) as u32;
    if let Some(f) = bad.get_mut(HEADER..HEADER + 4) {
        f.copy_from_slice(&over.to_le_bytes());
    }
    let at = o.raw(&bad);
    out.push(case(
        "length/one-past-end",
        o.bytes.clone(),
        ScanExpect {
            entries: found(&[&e0]),
            corrupt: vec![],
            partial_tail: true,
            consumed: at as u64,
        },
        vec![(
            at,
            EntryFault::Truncated {
                needed: OVERHEAD as u64 + u64::from(over),
            },
        )],
        PlayerExpect {
            delivered: delivered(&[&e0]),
            end: PlayerEnd::End,
        },
    ));
    out
}

fn padding_cases() -> Vec<Case> {
    let mut out = Vec::new();
    // Zeros to the next 8-byte boundary plus a whole zero word, then entries: all padding.
    let mut o = Obj::default();
    let e0 = o.entry(1, 0, 16);
    let fill = (8 - o.bytes.len() % 8) % 8;
    o.zeros(fill + 8);
    let e1 = o.entry(1, 1, 27);
    let fill = (8 - o.bytes.len() % 8) % 8;
    o.zeros(fill + 24);
    let e2 = o.entry(1, 2, 40);
    let all = [&e0, &e1, &e2];
    out.push(case(
        "padding/aligned",
        o.bytes.clone(),
        ScanExpect {
            entries: found(&all),
            corrupt: vec![],
            partial_tail: false,
            consumed: o.len(),
        },
        vec![],
        PlayerExpect {
            delivered: delivered(&all),
            end: PlayerEnd::End,
        },
    ));
    // Three zeros at offset 49 and the next entry at 52: the zeros do not reach the 8-byte
    // boundary (56) before a non-zero byte, so they are corruption, not padding.
    let mut o = Obj::default();
    let e0 = o.entry(1, 0, 16);
    let z = o.zeros(3);
    let e1 = o.entry(1, 1, 27);
    let e2 = o.entry(1, 2, 40);
    out.push(case(
        "padding/unaligned-short-run",
        o.bytes.clone(),
        ScanExpect {
            entries: found(&[&e0, &e1, &e2]),
            corrupt: vec![z as u64..e1.start as u64],
            partial_tail: false,
            consumed: o.len(),
        },
        vec![(z, EntryFault::BadPreamble)],
        PlayerExpect {
            delivered: delivered(&[&e0]),
            end: PlayerEnd::Corrupt(z as u64),
        },
    ));
    // Zeros at the end of the object (after the last entry at 182): while 25 bytes or more
    // are left, whole pad words are skipped; once fewer are left, rule 1 makes the rest an
    // incomplete tail. So a zero tail always ends the scan with `partial_tail`, at the first
    // boundary with fewer than 25 bytes left: 18 zeros → 182 (nothing skipped); 42 zeros →
    // 184, 192, 200 (24 left).
    for (zeros, consumed) in [(18usize, 182u64), (42, 200)] {
        let mut o = base();
        o.zeros(zeros);
        let all: Vec<&Placed> = o.placed.iter().collect();
        out.push(case(
            format!("padding/tail-{zeros}-zeros"),
            o.bytes.clone(),
            ScanExpect {
                entries: found(&all),
                corrupt: vec![],
                partial_tail: true,
                consumed,
            },
            vec![],
            PlayerExpect {
                delivered: delivered(&all),
                end: PlayerEnd::End,
            },
        ));
    }
    // Leading zero words, then an entry at 16.
    let mut o = Obj::default();
    o.zeros(16);
    let e0 = o.entry(1, 0, 40);
    out.push(case(
        "padding/leading-zero-words",
        o.bytes.clone(),
        ScanExpect {
            entries: found(&[&e0]),
            corrupt: vec![],
            partial_tail: false,
            consumed: o.len(),
        },
        vec![(0, EntryFault::BadPreamble)],
        PlayerExpect {
            delivered: delivered(&[&e0]),
            end: PlayerEnd::End,
        },
    ));
    // A zero word with a non-zero byte inside it (at an aligned offset): corruption.
    let mut o = Obj::default();
    let e0 = o.entry(1, 0, 16);
    let fill = (8 - o.bytes.len() % 8) % 8;
    o.zeros(fill);
    let w = o.raw(&[0, 0, 0, 0xff, 0, 0, 0, 0]);
    let e1 = o.entry(1, 1, 27);
    out.push(case(
        "padding/word-with-nonzero-byte",
        o.bytes.clone(),
        ScanExpect {
            entries: found(&[&e0, &e1]),
            corrupt: vec![w as u64..e1.start as u64],
            partial_tail: false,
            consumed: o.len(),
        },
        vec![(w, EntryFault::BadPreamble)],
        PlayerExpect {
            delivered: delivered(&[&e0]),
            end: PlayerEnd::Corrupt(w as u64),
        },
    ));
    // An object of zeros only: words are skipped while 25 bytes or more are left (0, 8, .., 32),
    // so both 64 and 61 zero bytes end in an incomplete tail at 40.
    for (len, consumed, partial) in [(64usize, 40u64, true), (61, 40, true)] {
        out.push(case(
            format!("padding/zeros-only-{len}"),
            vec![0; len],
            ScanExpect {
                entries: vec![],
                corrupt: vec![],
                partial_tail: partial,
                consumed,
            },
            vec![(0, EntryFault::BadPreamble)],
            PlayerExpect {
                delivered: vec![],
                end: PlayerEnd::End,
            },
        ));
    }
    out
}

fn tag_cases() -> Vec<Case> {
    let mut out = Vec::new();
    // Tag 1 entries 0, 1; tag 2 starts (entry 0, 1); a late entry of the old tag 1 (written by
    // the former owner) follows; then tag 2 entry 2. The scan keeps all of them (tags are not
    // its business); the player (§10.3) makes tag 2 active at its entry 0 and discards the
    // stale tag-1 entry.
    let mut o = Obj::default();
    let a0 = o.entry(1, 0, 16);
    let a1 = o.entry(1, 1, 20);
    let b0 = o.entry(2, 0, 24);
    let b1 = o.entry(2, 1, 28);
    let stale = o.entry(1, 2, 32);
    let b2 = o.entry(2, 2, 36);
    out.push(case(
        "tags/stale-entry-after-new-tag",
        o.bytes.clone(),
        ScanExpect {
            entries: found(&[&a0, &a1, &b0, &b1, &stale, &b2]),
            corrupt: vec![],
            partial_tail: false,
            consumed: o.len(),
        },
        vec![],
        PlayerExpect {
            delivered: delivered(&[&a0, &a1, &b0, &b1, &b2]),
            end: PlayerEnd::End,
        },
    ));
    // The first entry fixes the active tag (2); older-tag entries after it are stale.
    let mut o = Obj::default();
    let b0 = o.entry(2, 0, 16);
    let s1 = o.entry(1, 5, 16);
    let b1 = o.entry(2, 1, 16);
    let s2 = o.entry(1, 6, 16);
    out.push(case(
        "tags/stale-tag-interleaved",
        o.bytes.clone(),
        ScanExpect {
            entries: found(&[&b0, &s1, &b1, &s2]),
            corrupt: vec![],
            partial_tail: false,
            consumed: o.len(),
        },
        vec![],
        PlayerExpect {
            delivered: delivered(&[&b0, &b1]),
            end: PlayerEnd::End,
        },
    ));
    // A newer tag that does not start at entry 0: the old tag ended abruptly and entry 0 of the
    // newer tag is nowhere (the stock reader would wait forever; ours reports it).
    let mut o = Obj::default();
    let a0 = o.entry(1, 0, 16);
    let a1 = o.entry(1, 1, 16);
    let c4 = o.entry(3, 4, 16);
    out.push(case(
        "tags/newer-tag-without-entry-0",
        o.bytes.clone(),
        ScanExpect {
            entries: found(&[&a0, &a1, &c4]),
            corrupt: vec![],
            partial_tail: false,
            consumed: o.len(),
        },
        vec![],
        PlayerExpect {
            delivered: delivered(&[&a0, &a1]),
            end: PlayerEnd::MissingEntry {
                tag: 3,
                expected: 0,
                got: 4,
            },
        },
    ));
    // Duplicate (tag, entry): the later copy replaces the earlier one in its place (rule 4).
    let mut o = Obj::default();
    let e0 = o.entry(1, 0, 16);
    o.entry(1, 1, 27);
    let e2 = o.entry(1, 2, 40);
    let again = o.entry_salted(1, 1, 9, 30);
    out.push(case(
        "duplicate/later-copy-wins",
        o.bytes.clone(),
        ScanExpect {
            entries: vec![e0.found(), again.found(), e2.found()],
            corrupt: vec![],
            partial_tail: false,
            consumed: o.len(),
        },
        vec![],
        PlayerExpect {
            delivered: delivered(&[&e0, &again, &e2]),
            end: PlayerEnd::End,
        },
    ));
    // A gap in the sequence of a tag: entry 1 missing.
    let mut o = Obj::default();
    let e0 = o.entry(1, 0, 16);
    let e2 = o.entry(1, 2, 16);
    out.push(case(
        "sequence/gap",
        o.bytes.clone(),
        ScanExpect {
            entries: found(&[&e0, &e2]),
            corrupt: vec![],
            partial_tail: false,
            consumed: o.len(),
        },
        vec![],
        PlayerExpect {
            delivered: delivered(&[&e0]),
            end: PlayerEnd::MissingEntry {
                tag: 1,
                expected: 1,
                got: 2,
            },
        },
    ));
    out
}

fn framing_cases() -> Vec<Case> {
    let mut out = Vec::new();
    // Entries that are well framed with a correct CRC except for the version byte (2) or the
    // preamble (last byte changed): rule 3, a corrupt range up to the next entry.
    let bad_preamble = {
        let mut p = PREAMBLE;
        if let Some(b) = p.last_mut() {
            *b = 0x32;
        }
        p
    };
    for (name, pre, version, fault) in [
        (
            "framing/version-2",
            PREAMBLE,
            2u8,
            EntryFault::BadVersion(2),
        ),
        ("framing/version-0", PREAMBLE, 0, EntryFault::BadVersion(0)),
        (
            "framing/wrong-preamble",
            bad_preamble,
            1,
            EntryFault::BadPreamble,
        ),
    ] {
        let mut o = Obj::default();
        let e0 = o.entry(1, 0, 16);
        let at = o.raw(&frame_raw(&pre, version, 1, 1, &payload(1, 1, 0, 27)));
        let e2 = o.entry(1, 2, 40);
        out.push(case(
            name,
            o.bytes.clone(),
            ScanExpect {
                entries: found(&[&e0, &e2]),
                corrupt: vec![at as u64..e2.start as u64],
                partial_tail: false,
                consumed: o.len(),
            },
            vec![(at, fault)],
            PlayerExpect {
                delivered: delivered(&[&e0]),
                end: PlayerEnd::Corrupt(at as u64),
            },
        ));
    }
    out
}
