//! The real `rbdj` binary's mirroring commands across processes: an agent replicates while
//! another process writes and stops cleanly on SIGINT; status JSON parses and changes neither
//! site; a second agent for the same sites waits as a standby until the first stops.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use common::{mirrored_pair, ok, rbdj, KillOnDrop};
use std::process::Command;

#[test]
fn mirror_status_json_parses() {
    let (_dir, a, b) = mirrored_pair();
    let v: serde_json::Value = serde_json::from_str(&ok(&[
        "mirror", "status", "--local", &b, "--remote", &a, "--format", "json",
    ]))
    .unwrap();
    assert!(v["pool_health"].is_string());
    let img = &v["images"][0];
    assert_eq!(img["name"], "vol");
    for field in [
        "state",
        "entries_behind",
        "seconds_behind",
        "bytes_per_second",
        "entries_per_second",
    ] {
        assert!(!img[field].is_null(), "missing {field}: {v}");
    }
}

/// The site-wide mirroring records (`rbd_mirroring`'s omap) of a directory site, read
/// in-process with the store itself.
fn mirroring_records(site: &str) -> Vec<(String, Vec<u8>)> {
    use object_store_trait::{DirStore, DirStoreOptions, ObjectStore};
    let path = site.strip_prefix("dir:").unwrap();
    let store = DirStore::open(path, DirStoreOptions::default()).unwrap();
    store
        .omap_list("rbd_mirroring", "", "", usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.to_vec()))
        .collect()
}

#[test]
fn mirror_status_changes_neither_site() {
    let (_dir, a, b) = mirrored_pair();
    let (before_a, before_b) = (mirroring_records(&a), mirroring_records(&b));
    assert!(
        !before_b.iter().any(|(k, _)| k == "mirror_uuid"),
        "the replica site has no mirror uuid before an agent ran"
    );
    for _ in 0..2 {
        let v: serde_json::Value = serde_json::from_str(&ok(&[
            "mirror", "status", "--local", &b, "--remote", &a, "--format", "json",
        ]))
        .unwrap();
        assert_eq!(v["images"][0]["state"], "stopped", "{v}");
        assert!(v["leader"].is_null(), "{v}");
    }
    assert_eq!(
        mirroring_records(&a),
        before_a,
        "status changed the primary site"
    );
    assert_eq!(
        mirroring_records(&b),
        before_b,
        "status changed the replica site"
    );
}

#[test]
fn mirror_run_replicates_across_processes_and_stops_cleanly() {
    let (dir, a, b) = mirrored_pair();
    let payload: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let input = dir.path().join("in.bin");
    std::fs::write(&input, &payload).unwrap();
    ok(&[
        "image",
        "write",
        "--site",
        &a,
        "--offset",
        "8192",
        "vol",
        input.to_str().unwrap(),
    ]);

    let (mut agent, lines) = spawn_agent(&a, &b, None);
    // A second write while the agent (another process) is tailing the journal.
    ok(&[
        "image",
        "write",
        "--site",
        &a,
        "--offset",
        "2000000",
        "vol",
        input.to_str().unwrap(),
    ]);

    let primary_raw = dir.path().join("a.raw");
    let replica_raw = dir.path().join("b.raw");
    ok(&[
        "image",
        "export",
        "--site",
        &a,
        "vol",
        primary_raw.to_str().unwrap(),
    ]);
    let expected = std::fs::read(&primary_raw).unwrap();
    // Independent oracle: the bytes we wrote, at the offsets we wrote them.
    let mut model = vec![0u8; 8 << 20];
    model[8192..8192 + payload.len()].copy_from_slice(&payload);
    model[2_000_000..2_000_000 + payload.len()].copy_from_slice(&payload);
    assert!(expected == model, "primary differs from the model");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut converged = false;
    while std::time::Instant::now() < deadline {
        let out = rbdj(&[
            "image",
            "export",
            "--site",
            &b,
            "vol",
            replica_raw.to_str().unwrap(),
        ]);
        if out.status.success() && std::fs::read(&replica_raw).unwrap() == expected {
            converged = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(converged, "replica did not converge");
    // The agent publishes its status every 200 ms.
    let mut running = serde_json::Value::Null;
    for _ in 0..100 {
        running = serde_json::from_str(&ok(&[
            "mirror", "status", "--local", &b, "--remote", &a, "--format", "json",
        ]))
        .unwrap();
        if running["images"][0]["agent_running"] == true {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(running["images"][0]["agent_running"], true, "{running}");

    interrupt(&mut agent);
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert_eq!(
        rest.last().map(String::as_str),
        Some("mirror agent stopped"),
        "{rest:?}"
    );
    let status: serde_json::Value = serde_json::from_str(&ok(&[
        "mirror", "status", "--local", &b, "--remote", &a, "--format", "json",
    ]))
    .unwrap();
    assert_eq!(status["images"][0]["agent_running"], false, "{status}");
    assert_eq!(status["images"][0]["entries_behind"], 0, "{status}");
}

/// Starts `rbdj mirror run` for b <- a (with agent id `id`); returns it once it printed its
/// first line.
fn spawn_agent(
    a: &str,
    b: &str,
    id: Option<&str>,
) -> (
    KillOnDrop,
    std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
) {
    use std::io::BufRead;
    let mut args = vec!["mirror", "run", "--local", b, "--remote", a];
    if let Some(id) = id {
        args.extend(["--agent-id", id]);
    }
    let mut agent = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_rbdj"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = std::io::BufReader::new(agent.0.stdout.take().unwrap()).lines();
    assert!(lines
        .next()
        .unwrap()
        .unwrap()
        .starts_with("mirror agent running"));
    (agent, lines)
}

/// Waits until `mirror status` says agent `id` holds the leader lease and an agent is running
/// (only the leader publishes).
fn wait_leader_running(a: &str, b: &str, id: &str) -> bool {
    for _ in 0..100 {
        let status: serde_json::Value = serde_json::from_str(&ok(&[
            "mirror", "status", "--local", b, "--remote", a, "--format", "json",
        ]))
        .unwrap();
        if status["leader"] == id && status["images"][0]["agent_running"] == true {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

/// Stops an agent with SIGINT and checks that it exits cleanly.
fn interrupt(agent: &mut KillOnDrop) {
    Command::new("kill")
        .args(["-INT", &agent.0.id().to_string()])
        .status()
        .unwrap();
    assert!(
        agent.0.wait().unwrap().success(),
        "agent did not stop cleanly on SIGINT"
    );
}

#[test]
fn a_second_mirror_run_for_the_same_sites_is_a_standby_until_the_first_stops() {
    let (_dir, a, b) = mirrored_pair();
    let (mut first, _first_lines) = spawn_agent(&a, &b, Some("first"));
    assert!(
        wait_leader_running(&a, &b, "first"),
        "the first agent never led"
    );
    // The first agent holds the leader lease (it published): the second one waits.
    let (mut second, mut second_lines) = spawn_agent(&a, &b, Some("second"));
    let line = second_lines.next().unwrap().unwrap();
    assert!(line.starts_with("standby"), "{line}");
    // The first one stops (and publishes "not running"); the second takes over and publishes.
    interrupt(&mut first);
    assert!(
        wait_leader_running(&a, &b, "second"),
        "the standby did not take over after the leader stopped"
    );
    interrupt(&mut second);
    let rest: Vec<String> = second_lines.map(|l| l.unwrap()).collect();
    assert_eq!(
        rest.last().map(String::as_str),
        Some("mirror agent stopped"),
        "{rest:?}"
    );
}
