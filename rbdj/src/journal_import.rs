//! `rbdj journal import` and `rbdj journal reset`.

use std::io::{BufRead, Write};
use std::sync::Arc;

use journal_client::{JournalSettings, Recorder, RecorderConfig};
use journal_core::commit::CommitTracker;
use journal_core::encoding::Decode;
use journal_core::event::EventEntry;
use journal_core::header::{HeaderError, JournalHeader, ObjectSetPosition};
use parking_lot::Mutex;

use crate::error::CliResult;
use crate::export_file::ExportReader;
use crate::journal_tools::Counts;

/// The temporary client Ceph's importer registers.
const IMPORT_CLIENT: &str = "IMPORT";

/// A recorder writing under one tag, as the importer does (no writer fence: like `rbd journal
/// import`, the tool appends under the records' own tags).
fn start_recorder(header: &JournalHeader, tag_tid: u64) -> CliResult<Recorder> {
    let layout = crate::journal_tools::journal_layout(header)?;
    let config = RecorderConfig {
        journal_id: header.journal_id().to_owned(),
        name_pool_id: header.name_pool_id(),
        layout,
        tag_tid,
        active_set: header.get_active_set()?,
        fenced: false,
        settings: JournalSettings::default(),
    };
    let tracker = Arc::new(Mutex::new(CommitTracker::new(
        layout.splay_width,
        ObjectSetPosition::default(),
    )));
    let advance_header = header.clone();
    let advance = Arc::new(move |set: u64| match advance_header.set_active_set(set) {
        Ok(()) | Err(HeaderError::Stale { .. }) => {
            let _ = advance_header.notify();
            Ok(())
        }
        Err(e) => Err(journal_client::RecorderError::Store {
            op: "set_active_set",
            detail: e.to_string(),
            errno: e.errno(),
        }),
    });
    Ok(Recorder::start(
        header.store().clone(),
        config,
        tracker,
        advance,
    )?)
}

fn finish(recorder: Recorder, pending: &mut Vec<journal_client::AppendFuture>) -> CliResult<()> {
    recorder.flush()?;
    for future in pending.drain(..) {
        future.wait()?;
    }
    recorder.shutdown();
    Ok(())
}

/// Appends every record of an export file under its tag; entry tids restart at 0 for each tag,
/// as Ceph's importer does. Prints `N entries processed, M errors`.
pub fn import(
    header: &JournalHeader,
    input: impl BufRead,
    no_error: bool,
    out: &mut dyn Write,
) -> CliResult<Counts> {
    let counts = crate::journal_tools::with_tool_client(header, IMPORT_CLIENT, |_| {
        import_records(header, input, no_error, out)
    })?;
    header.notify()?;
    writeln!(
        out,
        "{} entries processed, {} errors",
        counts.entries, counts.errors
    )?;
    Ok(counts)
}

fn import_records(
    header: &JournalHeader,
    input: impl BufRead,
    no_error: bool,
    out: &mut dyn Write,
) -> CliResult<Counts> {
    let mut reader = ExportReader::new(input);
    let mut counts = Counts::default();
    let mut current: Option<(u64, Recorder)> = None;
    let mut pending = Vec::new();
    loop {
        let record = match reader.next_record() {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(e) => {
                counts.errors += 1;
                writeln!(out, "failed to read record: {e}")?;
                if no_error {
                    continue;
                }
                break;
            }
        };
        counts.entries += 1;
        if let Err(e) = EventEntry::from_bytes(record.entry.clone()) {
            counts.errors += 1;
            writeln!(out, "record {}: not an event entry: {e}", counts.entries)?;
            if no_error {
                continue;
            }
            break;
        }
        let same_tag = matches!(&current, Some((tag, _)) if *tag == record.tag_id);
        if !same_tag {
            if let Some((_, recorder)) = current.take() {
                finish(recorder, &mut pending)?;
            }
            current = Some((record.tag_id, start_recorder(header, record.tag_id)?));
        }
        if let Some((_, recorder)) = &current {
            pending.push(recorder.append(record.entry)?);
        }
    }
    writeln!(out, "Waiting for journal append to complete...")?;
    if let Some((_, recorder)) = current.take() {
        finish(recorder, &mut pending)?;
    }
    Ok(counts)
}

/// Deletes the journal and creates a fresh one with the same layout (tag 0 in class 0 again, all
/// clients gone but the image's own), as `rbd journal reset` does.
pub fn reset(header: &JournalHeader) -> CliResult<()> {
    let meta = header.get_immutable_metadata()?;
    header.remove_journal(true, "")?;
    replay_engine::image_journal::create_journal(header, meta.order, meta.splay_width, "")?;
    header.notify()?;
    Ok(())
}
