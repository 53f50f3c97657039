//! CrashStore and FaultyStore: boundary counting, crash modes, determinism by seed, injected
//! faults. Oracle: a plain MemStore that executed the same prefix of the workload.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;

use bytes::Bytes;
use object_store_trait::testing::{CrashMode, CrashStore, FaultyOptions, FaultyStore};
use object_store_trait::{
    AppendGuard, MemSnapshot, MemStore, ObjectStore, OmapBatch, Result, StoreError,
};

mod crash_store_conformance {
    use super::*;
    object_store_trait::conformance_tests!(|| Arc::new(CrashStore::new(7)) as Arc<dyn ObjectStore>);
}

mod faulty_store_without_faults_conformance {
    use super::*;
    object_store_trait::conformance_tests!(|| {
        Arc::new(FaultyStore::new(MemStore::new(), FaultyOptions::default()))
            as Arc<dyn ObjectStore>
    });
}

/// One step of the workload; `true` = it is expected to succeed (a durability boundary).
type Step = (&'static str, fn(&dyn ObjectStore) -> Result<()>, bool);

fn b(s: &'static [u8]) -> Bytes {
    Bytes::from_static(s)
}

fn workload() -> Vec<Step> {
    vec![
        (
            "append a",
            |s| {
                s.append("a", &[b(b"hello "), b(b"world")], &AppendGuard::none())
                    .map(|_| ())
            },
            true,
        ),
        (
            "overflow",
            |s| {
                s.append("a", &[b(b"!")], &AppendGuard::soft_max(4))
                    .map(|_| ())
            },
            false,
        ),
        (
            "omap create",
            |s| {
                let mut batch = OmapBatch::new();
                batch.assert_absent("order").set("order", b(&[24]));
                s.omap_apply("hdr", &batch)
            },
            true,
        ),
        (
            "omap guard fails",
            |s| {
                let mut batch = OmapBatch::new();
                batch.assert_absent("order").set("order", b(&[25]));
                s.omap_apply("hdr", &batch)
            },
            false,
        ),
        ("remove missing", |s| s.remove("ghost"), false),
        (
            "append b",
            |s| {
                s.append("b", &[b(b"0123456789abcdef")], &AppendGuard::soft_max(100))
                    .map(|_| ())
            },
            true,
        ),
        ("write_full a", |s| s.write_full("a", b(b"replaced")), true),
        (
            "append b again",
            |s| {
                s.append("b", &[b(b"tail-"), b(b"bytes")], &AppendGuard::none())
                    .map(|_| ())
            },
            true,
        ),
        ("remove a", |s| s.remove("a"), true),
        (
            "omap update",
            |s| {
                let mut batch = OmapBatch::new();
                batch.assert_present("order").set("client_x", b(b"pos"));
                s.omap_apply("hdr", &batch)
            },
            true,
        ),
    ]
}

/// Runs steps against `store`, checking each succeeds or is refused as the workload says.
fn run_reference(steps: &[Step]) -> MemStore {
    let store = MemStore::new();
    for (name, step, ok) in steps {
        assert_eq!(step(&store).is_ok(), *ok, "reference step {name}");
    }
    store
}

fn boundary_steps() -> Vec<usize> {
    workload()
        .iter()
        .enumerate()
        .filter(|(_, s)| s.2)
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn boundaries_count_successful_mutations_only() {
    let store = CrashStore::new(1);
    let mut seen = 0;
    for (name, step, ok) in workload() {
        assert_eq!(step(&store).is_ok(), ok, "{name}");
        seen += u64::from(ok);
        assert_eq!(store.boundaries(), seen, "after {name}");
    }
    assert_eq!(seen, 7);
    // Reads are not boundaries.
    store.read("b", 0, 3).unwrap();
    assert_eq!(store.boundaries(), 7);
}

fn crash_run(k: u64, mode: CrashMode, seed: u64) -> (CrashStore, usize) {
    let store = CrashStore::new(seed);
    store.crash_at(k, mode);
    let steps = workload();
    let mut crashed_at = None;
    for (i, (name, step, ok)) in steps.iter().enumerate() {
        let result = step(&store);
        match crashed_at {
            Some(_) => assert!(
                matches!(result, Err(StoreError::Closed)),
                "{name} after crash"
            ),
            None if matches!(result, Err(StoreError::Closed)) => crashed_at = Some(i),
            None => assert_eq!(result.is_ok(), *ok, "{name}"),
        }
    }
    let crashed_at = crashed_at.expect("armed crash never happened");
    assert!(store.is_crashed());
    assert!(matches!(store.read("b", 0, 1), Err(StoreError::Closed)));
    assert!(matches!(store.list(""), Err(StoreError::Closed)));
    (store, crashed_at)
}

#[test]
fn lost_crash_keeps_exactly_the_acknowledged_prefix() {
    let steps = workload();
    for (k, &step) in boundary_steps().iter().enumerate() {
        let (store, at) = crash_run(k as u64 + 1, CrashMode::Lost, 3);
        assert_eq!(at, step, "crash hit the wrong step for k={}", k + 1);
        let want = run_reference(&steps[..step]).snapshot();
        assert_eq!(store.reopen().snapshot(), want, "k={}", k + 1);
    }
}

#[test]
fn applied_crash_keeps_the_interrupted_mutation_too() {
    let steps = workload();
    for (k, &step) in boundary_steps().iter().enumerate() {
        let (store, _) = crash_run(k as u64 + 1, CrashMode::Applied, 3);
        let want = run_reference(&steps[..=step]).snapshot();
        assert_eq!(store.reopen().snapshot(), want, "k={}", k + 1);
    }
}

#[test]
fn torn_append_keeps_a_strict_prefix_and_is_deterministic_per_seed() {
    let steps = workload();
    // Boundary 5 is "append b again" (10 bytes onto an existing object).
    let step = boundary_steps()[4];
    assert_eq!(steps[step].0, "append b again");
    let before = run_reference(&steps[..step]).snapshot();
    let after = run_reference(&steps[..=step]).snapshot();
    let (old_b, new_b) = (&before["b"].0, &after["b"].0);
    let mut lengths = std::collections::BTreeSet::new();
    for seed in 0..16 {
        let (store, _) = crash_run(5, CrashMode::Torn, seed);
        let snap: MemSnapshot = store.reopen().snapshot();
        let data = &snap["b"].0;
        assert!(
            data.len() >= old_b.len() && data.len() < new_b.len(),
            "seed {seed}: {}",
            data.len()
        );
        assert_eq!(
            &data[..],
            &new_b[..data.len()],
            "seed {seed}: torn bytes are not a prefix"
        );
        let (again, _) = crash_run(5, CrashMode::Torn, seed);
        assert_eq!(
            again.reopen().snapshot(),
            snap,
            "seed {seed} not deterministic"
        );
        lengths.insert(data.len());
    }
    assert!(lengths.len() > 1, "torn length never varies across seeds");
}

#[test]
fn random_mode_is_one_of_the_three_outcomes() {
    let steps = workload();
    for seed in 0..8 {
        for (k, &step) in boundary_steps().iter().enumerate() {
            let (store, _) = crash_run(k as u64 + 1, CrashMode::Random, seed);
            let got = store.reopen().snapshot();
            let lost = run_reference(&steps[..step]).snapshot();
            let applied = run_reference(&steps[..=step]).snapshot();
            let torn_ok = got
                .iter()
                .all(|(oid, (data, omap))| match applied.get(oid) {
                    Some((full, full_omap)) => full.starts_with(data) && omap == full_omap,
                    None => false,
                });
            assert!(
                got == lost || got == applied || torn_ok,
                "seed {seed} k {}",
                k + 1
            );
        }
    }
}

#[test]
fn crash_now_keeps_everything_acknowledged() {
    let store = CrashStore::new(0);
    let steps = workload();
    for (_, step, _) in &steps {
        let _ = step(&store);
    }
    store.crash_now();
    assert!(matches!(store.stat("b"), Err(StoreError::Closed)));
    assert_eq!(store.reopen().snapshot(), run_reference(&steps).snapshot());
    // The reopened state can seed a new CrashStore for the next round.
    let next = CrashStore::from_snapshot(store.durable_snapshot(), 9);
    assert_eq!(next.reopen().snapshot(), run_reference(&steps).snapshot());
}

#[test]
fn faulty_store_rate_one_fails_every_mutation_without_applying_it() {
    let store = FaultyStore::new(
        MemStore::new(),
        FaultyOptions {
            mutation_error_rate: 1.0,
            ..FaultyOptions::default()
        },
    );
    for (name, step, _) in workload() {
        let err = step(&store).unwrap_err();
        assert!(
            matches!(err, StoreError::Io { .. } | StoreError::NoSpace { .. }),
            "{name}: {err:?}"
        );
    }
    assert!(store.inner().snapshot().is_empty());
    assert_eq!(store.injected(), workload().len() as u64);
}

#[test]
fn faulty_store_applied_share_applies_then_reports_an_error() {
    let store = FaultyStore::new(
        MemStore::new(),
        FaultyOptions {
            mutation_error_rate: 1.0,
            applied_share: 1.0,
            enospc_share: 1.0,
            ..FaultyOptions::default()
        },
    );
    let err = store
        .append("x", &[b(b"data")], &AppendGuard::none())
        .unwrap_err();
    assert!(matches!(err, StoreError::NoSpace { .. }), "{err:?}");
    assert_eq!(&store.inner().read("x", 0, 10).unwrap()[..], b"data");
}

#[test]
fn faulty_store_partial_rate_is_seeded_and_applies_only_successes() {
    let opts = FaultyOptions {
        seed: 42,
        mutation_error_rate: 0.4,
        read_error_rate: 0.2,
        ..FaultyOptions::default()
    };
    let outcomes = |store: &FaultyStore<MemStore>| -> Vec<bool> {
        (0..200u32)
            .map(|i| {
                let oid = format!("o{}", i % 5);
                if i % 3 == 0 {
                    store.read(&oid, 0, 1).is_ok() || store.inner().stat(&oid).is_err()
                } else {
                    store
                        .append(
                            &oid,
                            &[Bytes::from(i.to_le_bytes().to_vec())],
                            &AppendGuard::none(),
                        )
                        .is_ok()
                }
            })
            .collect()
    };
    let store = FaultyStore::new(MemStore::new(), opts.clone());
    let first = outcomes(&store);
    let again = outcomes(&FaultyStore::new(MemStore::new(), opts));
    assert_eq!(first, again, "same seed, different faults");
    let failures = first.iter().filter(|ok| !**ok).count();
    assert!(failures > 0 && failures < first.len());
    // Model: only appends reported Ok are in the store, in order.
    let model = MemStore::new();
    for (i, ok) in first.iter().enumerate() {
        if i % 3 != 0 && *ok {
            let oid = format!("o{}", i % 5);
            model
                .append(
                    &oid,
                    &[Bytes::from((i as u32).to_le_bytes().to_vec())],
                    &AppendGuard::none(),
                )
                .unwrap();
        }
    }
    assert_eq!(store.inner().snapshot(), model.snapshot());
    store.set_enabled(false);
    assert!(outcomes(&store).iter().all(|ok| *ok));
}

#[test]
fn faulty_store_drops_and_duplicates_notifications() {
    let drop_all = FaultyStore::new(
        MemStore::new(),
        FaultyOptions {
            notify_drop_rate: 1.0,
            ..FaultyOptions::default()
        },
    );
    let watch = drop_all.watch("h").unwrap();
    assert_eq!(drop_all.notify("h", Bytes::new()).unwrap(), 0);
    assert_eq!(watch.drain(), 0);
    let dup_all = FaultyStore::new(
        MemStore::new(),
        FaultyOptions {
            notify_dup_rate: 1.0,
            ..FaultyOptions::default()
        },
    );
    let watch = dup_all.watch("h").unwrap();
    assert_eq!(dup_all.notify("h", b(b"p")).unwrap(), 1);
    assert_eq!(watch.drain(), 2);
}

/// A delayed completion reorders what concurrent callers observe: the append applied first (the
/// lower offset) returns after a later append through the undelayed store.
#[test]
fn faulty_delays_reorder_completions() {
    let inner = Arc::new(MemStore::new());
    let slow = Arc::new(FaultyStore::new(
        Arc::clone(&inner),
        FaultyOptions {
            seed: 7,
            delay_rate: 1.0,
            max_delay: std::time::Duration::from_millis(300),
            ..FaultyOptions::default()
        },
    ));
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = {
        let slow = Arc::clone(&slow);
        let tx = tx.clone();
        std::thread::spawn(move || {
            let off = slow
                .append("o", &[Bytes::from_static(b"first")], &AppendGuard::none())
                .unwrap();
            tx.send(("slow", off)).unwrap();
        })
    };
    // Wait until the slow append is applied (visible in the inner store), then append directly.
    while inner.stat("o").is_err() {
        std::thread::yield_now();
    }
    let fast = inner
        .append("o", &[Bytes::from_static(b"second")], &AppendGuard::none())
        .unwrap();
    tx.send(("fast", fast)).unwrap();
    handle.join().unwrap();
    let order: Vec<(&str, u64)> = rx.try_iter().collect();
    // Applied order: slow first (offset 0), fast second (offset 5); completion order reversed
    // (seed 7's first delay is far longer than one in-memory append).
    assert_eq!(order, vec![("fast", 5), ("slow", 0)]);
    assert_eq!(&inner.read("o", 0, 64).unwrap()[..], b"firstsecond");
}

/// Records the kind of every operation that reaches the store below a `FaultyStore`.
#[derive(Debug, Default)]
struct Kinds(parking_lot::Mutex<Vec<object_store_trait::OpKind>>);

impl object_store_trait::Hook for Kinds {
    fn before(&self, op: object_store_trait::Op<'_>) -> Result<()> {
        self.0.lock().push(op.kind());
        Ok(())
    }
}

/// `write_at` reaches the inner store as itself (not as the trait's read-and-replace default),
/// and an injected fault on it is a mutation fault that leaves the object unchanged.
#[test]
fn faulty_store_forwards_write_at() {
    use object_store_trait::{Intercept, OpKind};
    let store = FaultyStore::new(
        Intercept::<_, Kinds>::new(MemStore::new()),
        FaultyOptions {
            mutation_error_rate: 1.0,
            ..FaultyOptions::default()
        },
    );
    store.set_enabled(false);
    store.write_full("o", b(b"abc")).unwrap();
    store.write_at("o", 1, b(b"X")).unwrap();
    assert_eq!(
        *store.inner().hook().0.lock(),
        [OpKind::WriteFull, OpKind::WriteAt]
    );
    store.set_enabled(true);
    assert!(store.write_at("o", 0, b(b"Y")).is_err());
    assert_eq!(store.injected(), 1);
    store.set_enabled(false);
    assert_eq!(&store.read("o", 0, 8).unwrap()[..], b"aXc");
}
