//! The transmission phase of one connection, pipelined:
//!
//! * the calling thread is the **reader**: it decodes request headers (and write payloads), checks
//!   them, and queues them;
//! * a small pool of **workers** executes requests against the image, in any order;
//! * one **writer** thread sends the replies as they complete (out of order, matched by handle).
//!
//! A `Budget` bounds what one connection holds in flight (requests and payload bytes); the reader
//! takes budget *before* reading a write payload or queueing a read, so memory stays bounded
//! whatever the client sends. Budget returns when the reply has been written.
//!
//! Acknowledged writes are never lost on disconnect: a reply is sent only after the image
//! accepted the write (for a journaled image, once the event is durable in the journal), and when
//! the client goes away the in-flight requests still run to completion before the export is
//! flushed.

use std::io::{IoSlice, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::thread;

use bytes::{Bytes, BytesMut};
use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Condvar, Mutex};

use crate::error::{NbdError, Result};
use crate::export::Export;
use crate::handshake::read_full;
use crate::image::{ExportError, ExportImage};
use crate::options::ServerOptions;
use crate::protocol::{
    ProtocolError, Request, SimpleReply, CMD_DISC, CMD_FLAG_NO_HOLE, CMD_FLUSH, CMD_READ, CMD_TRIM,
    CMD_WRITE, CMD_WRITE_ZEROES, NBD_EINVAL, NBD_EIO, NBD_ENOMEM, NBD_ENOSPC, NBD_ENOTSUP,
    NBD_EPERM, NBD_ESHUTDOWN, REQUEST_LEN,
};
use crate::stream::NbdStream;

/// Counters of one finished connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Requests answered with success.
    pub ok: u64,
    /// Requests answered with an error.
    pub errors: u64,
    /// Whether the client ended with `NBD_CMD_DISC` (rather than dropping the socket).
    pub clean_disconnect: bool,
}

/// In-flight limits of one connection.
#[derive(Debug)]
struct Budget {
    state: Mutex<BudgetState>,
    cv: Condvar,
    max_requests: usize,
    max_bytes: u64,
}

#[derive(Debug, Default)]
struct BudgetState {
    requests: usize,
    bytes: u64,
    closed: bool,
}

impl Budget {
    fn new(max_requests: usize, max_bytes: u64) -> Self {
        Budget {
            state: Mutex::new(BudgetState::default()),
            cv: Condvar::new(),
            max_requests,
            max_bytes,
        }
    }

    /// Waits for room for one request of `bytes` payload; `false` once the connection is closing.
    /// A request larger than the byte limit runs alone.
    fn acquire(&self, bytes: u64) -> bool {
        let mut st = self.state.lock();
        loop {
            if st.closed {
                return false;
            }
            let fits = st.requests == 0 || st.bytes.saturating_add(bytes) <= self.max_bytes;
            if st.requests < self.max_requests && fits {
                st.requests += 1;
                st.bytes = st.bytes.saturating_add(bytes);
                return true;
            }
            self.cv.wait(&mut st);
        }
    }

    fn release(&self, bytes: u64) {
        let mut st = self.state.lock();
        st.requests = st.requests.saturating_sub(1);
        st.bytes = st.bytes.saturating_sub(bytes);
        drop(st);
        self.cv.notify_all();
    }

    fn close(&self) {
        self.state.lock().closed = true;
        self.cv.notify_all();
    }
}

/// What a worker does.
#[derive(Debug)]
enum Op {
    Read,
    Write(Bytes),
    Flush,
    Trim,
    WriteZeroes { no_hole: bool },
}

#[derive(Debug)]
struct Job {
    request: Request,
    op: Op,
    cost: u64,
}

#[derive(Debug)]
struct Reply {
    handle: u64,
    error: u32,
    data: Option<Bytes>,
    cost: u64,
}

/// Maps an image error to the NBD error code sent to the client.
pub fn nbd_error(e: &ExportError) -> u32 {
    match e.errno {
        -1 | -13 | -30 => NBD_EPERM,
        -12 => NBD_ENOMEM,
        -22 | -34 => NBD_EINVAL,
        -28 | -122 => NBD_ENOSPC,
        -95 => NBD_ENOTSUP,
        -108 => NBD_ESHUTDOWN,
        _ => NBD_EIO,
    }
}

fn errno_of(r: std::result::Result<(), ExportError>) -> u32 {
    match r {
        Ok(()) => 0,
        Err(e) => {
            tracing::warn!(error = %e, "image operation failed");
            nbd_error(&e)
        }
    }
}

/// A zero pattern for write-same; `expand_pattern` in the images materialises `len` bytes, so
/// write-zeroes with NO_HOLE is split into pieces of at most `max_piece` bytes.
fn write_zeroes(image: &dyn ExportImage, offset: u64, len: u64, max_piece: u64) -> u32 {
    let zero = Bytes::from_static(&[0u8]);
    let mut done = 0u64;
    while done < len {
        let piece = (len - done).min(max_piece);
        if let Err(e) = image.write_same(offset + done, piece, zero.clone()) {
            tracing::warn!(error = %e, "write-zeroes failed");
            return nbd_error(&e);
        }
        done += piece;
    }
    0
}

fn execute(image: &dyn ExportImage, job: Job, max_piece: u64) -> Reply {
    let Job { request, op, cost } = job;
    let (offset, len) = (request.offset, u64::from(request.length));
    let mut data = None;
    let mut error = match op {
        Op::Read => match image.read(offset, len) {
            Ok(bytes) if bytes.len() as u64 == len => {
                data = Some(bytes);
                0
            }
            Ok(bytes) => {
                tracing::error!(got = bytes.len(), want = len, "image returned a short read");
                NBD_EIO
            }
            Err(e) => errno_of(Err(e)),
        },
        Op::Write(payload) => errno_of(image.write(offset, payload)),
        Op::Flush => errno_of(image.flush()),
        Op::Trim => errno_of(image.discard(offset, len)),
        Op::WriteZeroes { no_hole: true } => write_zeroes(image, offset, len, max_piece),
        Op::WriteZeroes { no_hole: false } => errno_of(image.discard(offset, len)),
    };
    let mutates = matches!(request.command, CMD_WRITE | CMD_TRIM | CMD_WRITE_ZEROES);
    if error == 0 && mutates && request.fua() {
        error = errno_of(image.flush());
    }
    Reply {
        handle: request.handle,
        error,
        data,
        cost,
    }
}

fn write_reply(out: &mut NbdStream, reply: &Reply) -> std::io::Result<()> {
    let header = SimpleReply {
        error: reply.error,
        handle: reply.handle,
    }
    .encode();
    match &reply.data {
        Some(data) if reply.error == 0 => {
            let mut bufs = [IoSlice::new(&header), IoSlice::new(data)];
            let mut slices: &mut [IoSlice<'_>] = &mut bufs;
            while !slices.is_empty() {
                let n = out.write_vectored(slices)?;
                if n == 0 {
                    return Err(std::io::ErrorKind::WriteZero.into());
                }
                IoSlice::advance_slices(&mut slices, n);
            }
            Ok(())
        }
        _ => out.write_all(&header),
    }
}

/// The writer thread: sends replies until every sender is gone. After a socket error it keeps
/// draining (releasing budget) so workers and the reader never block on a dead client.
fn writer_loop(mut out: NbdStream, replies: Receiver<Reply>, budget: Arc<Budget>) -> (u64, u64) {
    let (mut ok, mut errors) = (0u64, 0u64);
    let mut dead = false;
    for reply in replies {
        if !dead {
            if let Err(e) = write_reply(&mut out, &reply) {
                tracing::info!(error = %e, "client gone while replying");
                dead = true;
                budget.close();
                out.shutdown(Shutdown::Both);
            } else if reply.error == 0 {
                ok += 1;
            } else {
                errors += 1;
            }
        }
        budget.release(reply.cost);
    }
    (ok, errors)
}

fn worker_loop(
    image: Arc<dyn ExportImage>,
    jobs: Receiver<Job>,
    replies: Sender<Reply>,
    max_piece: u64,
) {
    for job in jobs {
        let (handle, cost) = (job.request.handle, job.cost);
        // A panicking image must not leave a request unanswered (its budget would never return):
        // answer EIO and carry on.
        let run = std::panic::AssertUnwindSafe(|| execute(image.as_ref(), job, max_piece));
        let reply = std::panic::catch_unwind(run).unwrap_or_else(|_| {
            tracing::error!(handle, "image operation panicked");
            Reply {
                handle,
                error: NBD_EIO,
                data: None,
                cost,
            }
        });
        if replies.send(reply).is_err() {
            return;
        }
    }
}

/// What the reader decided about one request.
enum Decision {
    /// Queue this job.
    Run(Job),
    /// Answer with this error right away (budget already taken); `close` (the reason) ends the
    /// connection after the reply.
    Fail {
        error: u32,
        close: Option<ProtocolError>,
        cost: u64,
    },
    /// The client asked to disconnect.
    Disconnect,
    /// The connection is over (end of stream, or closing).
    Stop,
}

struct Reader<'a> {
    stream: &'a mut NbdStream,
    export: &'a Export,
    options: &'a ServerOptions,
    budget: &'a Budget,
}

impl Reader<'_> {
    fn in_range(&self, r: &Request) -> bool {
        r.offset
            .checked_add(u64::from(r.length))
            .is_some_and(|end| end <= self.export.image.size())
    }

    fn fail(&self, cost: u64, error: u32, close: Option<ProtocolError>) -> Decision {
        if self.budget.acquire(cost) {
            Decision::Fail { error, close, cost }
        } else {
            Decision::Stop
        }
    }

    fn job(&self, request: Request, op: Op, cost: u64) -> Decision {
        if self.budget.acquire(cost) {
            Decision::Run(Job { request, op, cost })
        } else {
            Decision::Stop
        }
    }

    fn decide(&mut self, r: Request) -> Result<Decision> {
        let max = self.options.max_request_bytes;
        let ro = self.options.read_only;
        let len = u64::from(r.length);
        Ok(match r.command {
            CMD_DISC => Decision::Disconnect,
            CMD_READ if r.length > max => self.fail(0, NBD_EINVAL, None),
            CMD_READ if !self.in_range(&r) => self.fail(0, NBD_EINVAL, None),
            CMD_READ => self.job(r, Op::Read, len),
            // The payload of an oversized write cannot be skipped safely: answer and close.
            CMD_WRITE if r.length > max => {
                let why = ProtocolError::TooLarge {
                    what: "write payload",
                    len,
                    max: u64::from(max),
                };
                self.fail(0, NBD_EINVAL, Some(why))
            }
            CMD_WRITE => {
                if !self.budget.acquire(len) {
                    return Ok(Decision::Stop);
                }
                // Bounded by max_request_bytes above.
                let mut payload = BytesMut::zeroed(usize::try_from(r.length).unwrap_or(0));
                let complete = match read_full(self.stream, &mut payload, "read write payload") {
                    Ok(complete) => complete || payload.is_empty(),
                    Err(NbdError::Protocol(ProtocolError::Truncated { .. })) => false,
                    Err(e) => {
                        self.budget.release(len);
                        return Err(e);
                    }
                };
                if !complete {
                    // The client left mid-request: nothing was acknowledged, nothing is written.
                    self.budget.release(len);
                    return Ok(Decision::Stop);
                }
                if ro {
                    Decision::Fail {
                        error: NBD_EPERM,
                        close: None,
                        cost: len,
                    }
                } else if !self.in_range(&r) {
                    Decision::Fail {
                        error: NBD_ENOSPC,
                        close: None,
                        cost: len,
                    }
                } else {
                    Decision::Run(Job {
                        request: r,
                        op: Op::Write(payload.freeze()),
                        cost: len,
                    })
                }
            }
            CMD_FLUSH => self.job(r, Op::Flush, 0),
            CMD_TRIM | CMD_WRITE_ZEROES if ro => self.fail(0, NBD_EPERM, None),
            CMD_TRIM | CMD_WRITE_ZEROES if !self.in_range(&r) => self.fail(0, NBD_ENOSPC, None),
            CMD_TRIM => self.job(r, Op::Trim, 0),
            CMD_WRITE_ZEROES => {
                let no_hole = r.flags & CMD_FLAG_NO_HOLE != 0;
                self.job(r, Op::WriteZeroes { no_hole }, 0)
            }
            // Unknown commands (possibly with a payload we cannot size): answer and close.
            other => self.fail(0, NBD_EINVAL, Some(ProtocolError::UnknownCommand(other))),
        })
    }
}

/// Serves the transmission phase of `stream` for `export` until the client disconnects, the
/// socket fails or the server shuts the socket's read side down. Every request read is answered
/// (if the client is still there) before this returns; the export is then flushed if
/// [`ServerOptions::flush_on_disconnect`] is set.
pub fn serve_connection(
    mut stream: NbdStream,
    export: Arc<Export>,
    options: &ServerOptions,
) -> Result<ConnectionStats> {
    let out = stream
        .try_clone()
        .map_err(|e| NbdError::io("clone socket", e))?;
    let budget = Arc::new(Budget::new(
        options.max_in_flight_requests,
        options.max_in_flight_bytes,
    ));
    let (job_tx, job_rx) = crossbeam_channel::bounded::<Job>(options.max_in_flight_requests);
    let (reply_tx, reply_rx) = crossbeam_channel::unbounded::<Reply>();
    let max_piece = u64::from(options.max_request_bytes);

    let writer = {
        let budget = Arc::clone(&budget);
        thread::Builder::new()
            .name("nbd-writer".into())
            .spawn(move || writer_loop(out, reply_rx, budget))
            .map_err(|e| NbdError::io("spawn writer", e))?
    };
    let mut workers = Vec::with_capacity(options.workers_per_connection);
    for _ in 0..options.workers_per_connection {
        let (image, jobs, replies) = (Arc::clone(&export.image), job_rx.clone(), reply_tx.clone());
        let spawned = thread::Builder::new()
            .name("nbd-worker".into())
            .spawn(move || worker_loop(image, jobs, replies, max_piece));
        match spawned {
            Ok(handle) => workers.push(handle),
            Err(e) => {
                tracing::warn!(error = %e, "could not spawn an NBD worker");
                break;
            }
        }
    }
    drop(job_rx);

    let mut clean_disconnect = false;
    let mut read_error = None;
    if workers.is_empty() {
        read_error = Some(NbdError::Config("no worker thread could be started".into()));
    }
    while read_error.is_none() {
        let mut header = [0u8; REQUEST_LEN];
        match read_full(&mut stream, &mut header, "read request header") {
            Ok(true) => {}
            // End of stream, possibly inside a header: the client went away.
            Ok(false) | Err(NbdError::Protocol(ProtocolError::Truncated { .. })) => break,
            Err(e) => {
                read_error = Some(e);
                break;
            }
        }
        let request = match Request::decode(&header) {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(error = %e, "malformed request, closing");
                read_error = Some(e.into());
                break;
            }
        };
        let decision = Reader {
            stream: &mut stream,
            export: &export,
            options,
            budget: &budget,
        }
        .decide(request);
        match decision {
            Ok(Decision::Run(job)) => {
                if job_tx.send(job).is_err() {
                    break;
                }
            }
            Ok(Decision::Fail { error, close, cost }) => {
                let reply = Reply {
                    handle: request.handle,
                    error,
                    data: None,
                    cost,
                };
                let _ = reply_tx.send(reply);
                if let Some(why) = close {
                    read_error = Some(why.into());
                    break;
                }
            }
            Ok(Decision::Disconnect) => {
                clean_disconnect = true;
                break;
            }
            Ok(Decision::Stop) => break,
            Err(e) => {
                read_error = Some(e);
                break;
            }
        }
    }

    // Drain: let queued requests finish and their replies go out, then stop the writer.
    drop(job_tx);
    let mut panicked = false;
    for w in workers {
        panicked |= w.join().is_err();
    }
    drop(reply_tx);
    let (ok, errors) = writer.join().unwrap_or_else(|_| {
        panicked = true;
        (0, 0)
    });
    stream.shutdown(Shutdown::Both);

    let flushed = if options.flush_on_disconnect {
        export.image.flush().map_err(|source| NbdError::Flush {
            export: export.name.clone(),
            source,
        })
    } else {
        Ok(())
    };
    if panicked {
        return Err(NbdError::ThreadPanicked("nbd connection worker"));
    }
    flushed?;
    match read_error {
        // A client that simply vanished is not a server error.
        Some(NbdError::Io { .. }) | None => Ok(ConnectionStats {
            ok,
            errors,
            clean_disconnect,
        }),
        Some(e) => Err(e),
    }
}
