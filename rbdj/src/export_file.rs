//! Ceph's `rbd journal export` file format (reader and writer).
//!
//! ```text
//! # journal_id: <id>\n
//! <L> {"tag_id":<u64>,"commit_tid":<u64>,"type":<int>,"entry":"<base64 of the EventEntry payload>"}\n
//! ```
//! `L` is the decimal byte length of the JSON text. The writer produces exactly Ceph's bytes; the
//! reader accepts what Ceph's importer accepts (blank and `#` lines between records, base64 with
//! `-`/`_` and embedded newlines).

use std::io::{self, BufRead, Read, Write};

use base64::Engine;
use bytes::Bytes;

/// One exported journal entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRecord {
    /// Tag tid the entry was written under.
    pub tag_id: u64,
    /// The exporter's commit tid (1, 2, 3, … in export order).
    pub commit_tid: u64,
    /// The EventEntry event type number.
    pub event_type: i64,
    /// The entry payload (an encoded EventEntry).
    pub entry: Bytes,
}

/// Errors reading an export file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// Reading or writing failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// A record was malformed.
    #[error("record {record}: {detail}")]
    Malformed {
        /// 1-based record number.
        record: u64,
        /// What was wrong.
        detail: String,
    },
}

/// Longest length prefix Ceph's importer accepts.
const MAX_LENGTH_CHARS: usize = 79;
/// Upper bound on one record's JSON text: a maximal 64 MiB payload in base64 plus keys.
const MAX_RECORD_BYTES: u64 = 96 << 20;

/// Writes the `# journal_id:` header line.
pub fn write_header(out: &mut dyn Write, journal_id: &str) -> io::Result<()> {
    writeln!(out, "# journal_id: {journal_id}")
}

/// Writes one record exactly as Ceph does.
pub fn write_record(out: &mut dyn Write, record: &ExportRecord) -> io::Result<()> {
    let json = format!(
        "{{\"tag_id\":{},\"commit_tid\":{},\"type\":{},\"entry\":\"{}\"}}",
        record.tag_id,
        record.commit_tid,
        record.event_type,
        base64::engine::general_purpose::STANDARD.encode(&record.entry)
    );
    writeln!(out, "{} {}", json.len(), json)
}

/// Reads records one at a time from an export file.
#[derive(Debug)]
pub struct ExportReader<R> {
    input: R,
    journal_id: Option<String>,
    records: u64,
}

impl<R: BufRead> ExportReader<R> {
    /// A reader over `input`.
    pub fn new(input: R) -> Self {
        ExportReader {
            input,
            journal_id: None,
            records: 0,
        }
    }

    /// The journal id from the `# journal_id:` line, once it has been read.
    pub fn journal_id(&self) -> Option<&str> {
        self.journal_id.as_deref()
    }

    fn malformed(&self, detail: impl Into<String>) -> ExportError {
        ExportError::Malformed {
            record: self.records + 1,
            detail: detail.into(),
        }
    }

    /// The next record, `None` at the end of the input.
    pub fn next_record(&mut self) -> Result<Option<ExportRecord>, ExportError> {
        loop {
            let buf = self.input.fill_buf()?;
            let Some(&first) = buf.first() else {
                return Ok(None);
            };
            match first {
                b'\n' | b'\r' => {
                    self.input.consume(1);
                }
                b'#' => {
                    let mut line = String::new();
                    self.input.by_ref().take(4096).read_line(&mut line)?;
                    if let Some(id) = line.trim_end().strip_prefix("# journal_id: ") {
                        self.journal_id = Some(id.to_owned());
                    }
                }
                b'0'..=b'9' => return self.read_record().map(Some),
                other => {
                    return Err(self.malformed(format!("unexpected byte {other:#04x}")));
                }
            }
        }
    }

    fn read_record(&mut self) -> Result<ExportRecord, ExportError> {
        let mut len_text = Vec::new();
        self.input
            .by_ref()
            .take(MAX_LENGTH_CHARS as u64 + 1)
            .read_until(b' ', &mut len_text)?;
        if len_text.pop() != Some(b' ') || len_text.len() > MAX_LENGTH_CHARS {
            return Err(self.malformed("length not followed by a space"));
        }
        let len: u64 = std::str::from_utf8(&len_text)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| self.malformed("bad length"))?;
        if len == 0 || len > MAX_RECORD_BYTES {
            return Err(self.malformed(format!("length {len} out of range")));
        }
        let mut json = Vec::new();
        self.input.by_ref().take(len).read_to_end(&mut json)?;
        if json.len() as u64 != len {
            return Err(self.malformed("record shorter than its length"));
        }
        let value: serde_json::Value = serde_json::from_slice(&json)
            .map_err(|e| self.malformed(format!("invalid JSON: {e}")))?;
        let field = |name: &str| {
            value
                .get(name)
                .ok_or_else(|| self.malformed(format!("missing {name}")))
        };
        let tag_id = field("tag_id")?
            .as_u64()
            .ok_or_else(|| self.malformed("tag_id is not an unsigned integer"))?;
        let commit_tid = field("commit_tid")?
            .as_u64()
            .ok_or_else(|| self.malformed("commit_tid is not an unsigned integer"))?;
        let event_type = field("type")?
            .as_i64()
            .ok_or_else(|| self.malformed("type is not an integer"))?;
        let text = field("entry")?
            .as_str()
            .ok_or_else(|| self.malformed("entry is not a string"))?;
        let cleaned: String = text
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .map(|c| match c {
                '-' => '+',
                '_' => '/',
                c => c,
            })
            .collect();
        let entry = base64::engine::general_purpose::STANDARD
            .decode(cleaned.as_bytes())
            .map_err(|e| self.malformed(format!("invalid base64: {e}")))?;
        self.records += 1;
        Ok(ExportRecord {
            tag_id,
            commit_tid,
            event_type,
            entry: Bytes::from(entry),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn ceph_export_round_trips_byte_for_byte() {
        let original = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../journal-core/tests/data/librbd-basic/journal.export"
        ))
        .unwrap();
        let mut reader = ExportReader::new(&original[..]);
        let mut out = Vec::new();
        let mut records = Vec::new();
        while let Some(r) = reader.next_record().unwrap() {
            records.push(r);
        }
        write_header(&mut out, reader.journal_id().unwrap()).unwrap();
        for r in &records {
            write_record(&mut out, r).unwrap();
        }
        assert_eq!(records.len(), 93);
        assert_eq!(out, original);
    }

    #[test]
    fn spec_example_record() {
        let line = b"79 {\"tag_id\":1,\"commit_tid\":1,\"type\":2,\"entry\":\"BQEEAAAAAgAAAAEBCAAAAAAAAAAAAAAA\"}\n";
        let rec = ExportReader::new(&line[..]).next_record().unwrap().unwrap();
        assert_eq!(rec.tag_id, 1);
        assert_eq!(rec.event_type, 2);
        assert_eq!(rec.entry.len(), 24);
        let mut out = Vec::new();
        write_record(&mut out, &rec).unwrap();
        assert_eq!(&out[..], &line[..]);
    }

    #[test]
    fn malformed_inputs_are_errors() {
        for bad in [
            &b"0 {}\n"[..],
            b"5x {}\n",
            b"99999999999999999999 {}",
            b"10 {\"tag_id\":1}",
            b"2 {}\n",
            b"@",
        ] {
            assert!(ExportReader::new(bad).next_record().is_err(), "{bad:?}");
        }
    }
}
