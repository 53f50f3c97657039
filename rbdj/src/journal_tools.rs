//! `rbdj journal ...`: the same behaviour and output as `rbd journal` (spec §14).

use std::fmt::Write as _;
use std::io::Write;

use bytes::Bytes;
use journal_core::encoding::Decode;
use journal_core::event::EventEntry;
use journal_core::header::{Client, ClientState, HeaderError, JournalHeader, ObjectSetPosition};
use journal_core::layout::Layout;
use journal_core::player::{PlayMode, Player, PlayerEvent, PlayerOptions};
use serde::Serialize;

use crate::error::{CliError, CliResult};
use crate::export_file::{write_header, write_record, ExportRecord};
use crate::output::Format;

/// `rbd journal info` JSON, keys in Ceph's order.
#[derive(Debug, Serialize)]
struct InfoJson<'a> {
    journal_id: &'a str,
    header_oid: &'a str,
    object_oid_prefix: String,
    order: u8,
    splay_width: u8,
}

/// Prints `journal info`.
pub fn info(header: &JournalHeader, format: Format, out: &mut dyn Write) -> CliResult<()> {
    let meta = header.get_immutable_metadata()?;
    let prefix = journal_core::layout::data_oid_prefix(header.name_pool_id(), header.journal_id());
    match format {
        Format::Json => {
            let json = InfoJson {
                journal_id: header.journal_id(),
                header_oid: header.oid(),
                object_oid_prefix: prefix,
                order: meta.order,
                splay_width: meta.splay_width,
            };
            writeln!(out, "{}", serde_json::to_string(&json)?)?;
        }
        Format::Plain => {
            writeln!(out, "rbd journal '{}':", header.journal_id())?;
            writeln!(out, "\theader_oid: {}", header.oid())?;
            writeln!(out, "\tobject_oid_prefix: {prefix}")?;
            writeln!(
                out,
                "\torder: {} ({} objects)",
                meta.order,
                size_text(1u64 << meta.order.min(63))
            )?;
            writeln!(out, "\tsplay_width: {}", meta.splay_width)?;
        }
    }
    Ok(())
}

/// Ceph's binary size rendering (`16 MiB`, `4 KiB`).
pub fn size_text(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024 && value.is_multiple_of(1024) && unit + 1 < UNITS.len() {
        value /= 1024;
        unit += 1;
    }
    format!("{value} {}", UNITS.get(unit).copied().unwrap_or("B"))
}

/// `hexdump -C`-style rendering Ceph uses for client data in `journal status --format json`.
pub fn hexdump(data: &[u8]) -> String {
    let mut s = String::new();
    if data.is_empty() {
        return s;
    }
    for (i, chunk) in data.chunks(16).enumerate() {
        let _ = write!(s, "{:08x} ", i * 16);
        for col in 0..16 {
            if col == 8 {
                s.push(' ');
            }
            match chunk.get(col) {
                Some(b) => {
                    let _ = write!(s, " {b:02x}");
                }
                None => s.push_str("   "),
            }
        }
        s.push_str("  |");
        for b in chunk {
            s.push(if b.is_ascii_graphic() || *b == b' ' {
                char::from(*b)
            } else {
                '.'
            });
        }
        s.push_str("|\n");
    }
    let _ = writeln!(s, "{:08x}", data.len());
    s
}

#[derive(Debug, Serialize)]
struct PositionJson {
    object_number: u64,
    tag_tid: u64,
    entry_tid: u64,
}

#[derive(Debug, Serialize)]
struct CommitPositionJson {
    object_positions: Vec<PositionJson>,
}

#[derive(Debug, Serialize)]
struct ClientJson {
    id: String,
    data: String,
    commit_position: CommitPositionJson,
    state: &'static str,
}

#[derive(Debug, Serialize)]
struct StatusJson {
    minimum_set: u64,
    active_set: u64,
    registered_clients: Vec<ClientJson>,
}

fn position_json(pos: &ObjectSetPosition) -> CommitPositionJson {
    CommitPositionJson {
        object_positions: pos
            .object_positions
            .iter()
            .map(|p| PositionJson {
                object_number: p.object_number,
                tag_tid: p.tag_tid,
                entry_tid: p.entry_tid,
            })
            .collect(),
    }
}

fn client_text(c: &Client) -> String {
    let positions: Vec<String> = c
        .commit_position
        .object_positions
        .iter()
        .map(|p| {
            format!(
                "[object_number={}, tag_tid={}, entry_tid={}]",
                p.object_number, p.tag_tid, p.entry_tid
            )
        })
        .collect();
    format!(
        "[id={}, commit_position=[positions=[{}]], state={}]",
        c.id,
        positions.join(", "),
        c.state.name()
    )
}

/// Prints `journal status`.
pub fn status(header: &JournalHeader, format: Format, out: &mut dyn Write) -> CliResult<()> {
    let meta = header.get_mutable_metadata()?;
    match format {
        Format::Json => {
            let json = StatusJson {
                minimum_set: meta.minimum_set,
                active_set: meta.active_set,
                registered_clients: meta
                    .clients
                    .iter()
                    .map(|c| ClientJson {
                        id: c.id.clone(),
                        data: hexdump(&c.data),
                        commit_position: position_json(&c.commit_position),
                        state: c.state.name(),
                    })
                    .collect(),
            };
            writeln!(out, "{}", serde_json::to_string(&json)?)?;
        }
        Format::Plain => {
            writeln!(out, "minimum_set: {}", meta.minimum_set)?;
            writeln!(out, "active_set: {}", meta.active_set)?;
            writeln!(out, "registered clients: ")?;
            for c in &meta.clients {
                writeln!(out, "\t{}", client_text(c))?;
            }
        }
    }
    Ok(())
}

/// Registers a temporary tool client (`INSPECT`, `EXPORT`, `IMPORT`) with an empty data blob,
/// runs `f` with its id, and unregisters it even when `f` fails.
pub fn with_tool_client<T>(
    header: &JournalHeader,
    id: &str,
    f: impl FnOnce(&str) -> CliResult<T>,
) -> CliResult<T> {
    match header.client_register(id, Bytes::new()) {
        Ok(()) => {}
        // A tool that crashed earlier may have left its client behind: reuse it.
        Err(HeaderError::Exists { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let result = f(id);
    let unregister = header.client_unregister(id);
    let value = result?;
    unregister?;
    Ok(value)
}

/// One entry handed out by [`play_all`]: its tag, the tool's commit tid and the payload, or the
/// error that stopped the replay.
#[derive(Debug)]
pub enum Played {
    /// An entry.
    Entry {
        /// Tag tid.
        tag_tid: u64,
        /// 1-based commit tid in replay order.
        commit_tid: u64,
        /// The payload.
        payload: Bytes,
    },
    /// The player failed (corruption, a missing entry).
    Error(String),
}

/// The journal's layout, from its immutable metadata.
pub fn journal_layout(header: &JournalHeader) -> CliResult<Layout> {
    header
        .get_immutable_metadata()?
        .layout()
        .map_err(|e| CliError::Invalid(format!("journal layout: {e}")))
}

/// One-shot replay of the whole journal from client `client_id`'s commit position, in Ceph's
/// reader order.
pub fn play_all(
    header: &JournalHeader,
    client_id: &str,
    mut each: impl FnMut(Played) -> CliResult<bool>,
) -> CliResult<()> {
    let options = PlayerOptions {
        mode: PlayMode::OneShot,
        ..PlayerOptions::default()
    };
    let mut player = Player::open(header, client_id, options)
        .map_err(|e| CliError::Invalid(format!("cannot start replay: {e}")))?;
    let mut commit_tid = 0u64;
    loop {
        match player.next() {
            Ok(PlayerEvent::Entry(e)) => {
                commit_tid += 1;
                let go_on = each(Played::Entry {
                    tag_tid: e.entry.tag_tid,
                    commit_tid,
                    payload: e.entry.data,
                })?;
                if !go_on {
                    return Ok(());
                }
            }
            Ok(PlayerEvent::End) => return Ok(()),
            Err(e) => {
                each(Played::Error(e.to_string()))?;
                return Ok(());
            }
        }
    }
}

/// Counts from an inspect or export run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Entries seen.
    pub entries: u64,
    /// Errors (undecodable payloads, player failures).
    pub errors: u64,
}

/// `journal inspect [--verbose]`.
pub fn inspect(header: &JournalHeader, verbose: bool, out: &mut dyn Write) -> CliResult<Counts> {
    let mut counts = Counts::default();
    with_tool_client(header, "INSPECT", |client| {
        play_all(header, client, |played| {
            match played {
                Played::Entry {
                    tag_tid,
                    commit_tid,
                    payload,
                } => {
                    counts.entries += 1;
                    match EventEntry::from_bytes(payload) {
                        Ok(event) => {
                            if verbose {
                                writeln!(out, "Entry: tag_id={tag_tid}, commit_tid={commit_tid}")?;
                                writeln!(out, "{}", event.to_json())?;
                            }
                        }
                        Err(e) => {
                            counts.errors += 1;
                            writeln!(
                                out,
                                "entry: tag_id={tag_tid}, commit_tid={commit_tid}: failed to decode event: {e}"
                            )?;
                        }
                    }
                }
                Played::Error(e) => {
                    counts.errors += 1;
                    writeln!(out, "failed to replay journal: {e}")?;
                }
            }
            Ok(true)
        })
    })?;
    writeln!(out, "Summary:")?;
    writeln!(
        out,
        "  {} entries inspected, {} errors",
        counts.entries, counts.errors
    )?;
    Ok(counts)
}

/// `journal export FILE [--no-error]`: writes Ceph's export format to `file`.
pub fn export(
    header: &JournalHeader,
    file: &mut dyn Write,
    no_error: bool,
    out: &mut dyn Write,
) -> CliResult<Counts> {
    let mut counts = Counts::default();
    write_header(file, header.journal_id())?;
    let mut exported = 0u64;
    with_tool_client(header, "EXPORT", |client| {
        play_all(header, client, |played| match played {
            Played::Entry {
                tag_tid, payload, ..
            } => {
                counts.entries += 1;
                match EventEntry::from_bytes(payload.clone()) {
                    Ok(event) => {
                        exported += 1;
                        write_record(
                            file,
                            &ExportRecord {
                                tag_id: tag_tid,
                                commit_tid: exported,
                                event_type: i64::from(event.event.event_type()),
                                entry: payload,
                            },
                        )?;
                        Ok(true)
                    }
                    Err(e) => {
                        counts.errors += 1;
                        writeln!(out, "failed to decode entry {}: {e}", counts.entries)?;
                        Ok(no_error)
                    }
                }
            }
            Played::Error(e) => {
                counts.errors += 1;
                writeln!(out, "failed to replay journal: {e}")?;
                Ok(false)
            }
        })
    })?;
    file.flush()?;
    writeln!(
        out,
        "{} entries processed, {} errors",
        counts.entries, counts.errors
    )?;
    Ok(counts)
}

/// `journal client disconnect [--client-id X]`: flags one client, or every client but the image
/// client `""`, as disconnected.
pub fn client_disconnect(
    header: &JournalHeader,
    client_id: Option<&str>,
    out: &mut dyn Write,
) -> CliResult<()> {
    let targets: Vec<String> = match client_id {
        Some(id) => vec![id.to_owned()],
        None => header
            .clients()?
            .into_iter()
            .map(|c| c.id)
            .filter(|id| !id.is_empty())
            .collect(),
    };
    for id in targets {
        header.client_update_state(&id, ClientState::Disconnected)?;
        writeln!(out, "client {id} disconnected")?;
    }
    header.notify()?;
    Ok(())
}
