//! [`NbdServer`]: the listener (TCP or Unix socket), one thread per connection, and a clean
//! shutdown that lets in-flight requests finish and flushes every export.

use std::collections::HashMap;
use std::fmt;
use std::io::ErrorKind;
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use journal_client::image::BlockImage;

use crate::image::{export_block_image, ExportImage};
use parking_lot::Mutex;

use crate::connection::serve_connection;
use crate::error::{NbdError, Result};
use crate::export::Exports;
use crate::handshake::{negotiate, Negotiated};
use crate::options::ServerOptions;
use crate::stream::NbdStream;

/// Where a server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// A TCP address (port 0 picks a free port; see [`NbdServer::local_addr`]).
    Tcp(SocketAddr),
    /// A Unix-domain socket path (must not exist yet; removed when the server stops).
    Unix(PathBuf),
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "{a}"),
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

impl std::str::FromStr for ListenAddr {
    type Err = NbdError;

    /// `unix:PATH` is a Unix socket; anything else must be a TCP `IP:PORT`.
    fn from_str(s: &str) -> Result<Self> {
        match s.strip_prefix("unix:") {
            Some(path) if !path.is_empty() => Ok(ListenAddr::Unix(PathBuf::from(path))),
            Some(_) => Err(NbdError::Config("empty Unix socket path".into())),
            None => s
                .parse()
                .map(ListenAddr::Tcp)
                .map_err(|e| NbdError::Config(format!("bad listen address {s:?}: {e}"))),
        }
    }
}

impl From<SocketAddr> for ListenAddr {
    fn from(a: SocketAddr) -> Self {
        ListenAddr::Tcp(a)
    }
}

#[derive(Debug)]
enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Listener {
    fn accept(&self) -> std::io::Result<NbdStream> {
        match self {
            Listener::Tcp(l) => l.accept().map(|(s, _)| NbdStream::Tcp(s)),
            Listener::Unix(l, _) => l.accept().map(|(s, _)| NbdStream::Unix(s)),
        }
    }
}

/// Asks a running server to stop (cloneable, usable from any thread or a signal-watching loop).
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    flag: Arc<AtomicBool>,
}

impl ShutdownHandle {
    /// Requests the shutdown; `serve` returns once connections have drained and exports flushed.
    pub fn shutdown(&self) {
        self.flag.store(true, Ordering::Release);
    }

    /// Whether a shutdown was requested.
    pub fn is_shutdown(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }
}

/// What a server did, returned when it stops.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServeSummary {
    /// Connections accepted (including ones refused for `max_connections`).
    pub connections: u64,
    /// Requests answered with success, over all connections.
    pub requests_ok: u64,
    /// Requests answered with an NBD error, over all connections.
    pub requests_failed: u64,
    /// Connections that ended with a server-side error (protocol violation, flush failure).
    pub connection_errors: u64,
}

#[derive(Debug, Default)]
struct Shared {
    /// Open client sockets (clones), so shutdown can stop their readers.
    open: Mutex<HashMap<u64, NbdStream>>,
    ok: AtomicU64,
    failed: AtomicU64,
    errors: AtomicU64,
}

/// An NBD server exporting one or more [`BlockImage`]s.
#[derive(Debug)]
pub struct NbdServer {
    listener: Listener,
    exports: Arc<Exports>,
    options: Arc<ServerOptions>,
    shutdown: Arc<AtomicBool>,
}

impl NbdServer {
    /// Binds the listener and validates exports (non-empty, unique names of 1..=4096 bytes) and
    /// options. Nothing is served until [`NbdServer::serve`].
    pub fn bind(
        addr: ListenAddr,
        exports: Vec<(String, Arc<dyn BlockImage>)>,
        options: ServerOptions,
    ) -> Result<Self> {
        let exports = exports
            .into_iter()
            .map(|(n, i)| (n, export_block_image(i)))
            .collect();
        Self::bind_exports(addr, exports, options)
    }

    /// Like [`NbdServer::bind`], for any [`ExportImage`] (e.g. a journaled image adapter).
    pub fn bind_exports(
        addr: ListenAddr,
        exports: Vec<(String, Arc<dyn ExportImage>)>,
        options: ServerOptions,
    ) -> Result<Self> {
        options.validate()?;
        let exports = Exports::new(exports)?;
        let listener = match addr {
            ListenAddr::Tcp(a) => {
                let l = TcpListener::bind(a).map_err(|e| NbdError::io("bind TCP listener", e))?;
                l.set_nonblocking(true)
                    .map_err(|e| NbdError::io("set listener non-blocking", e))?;
                Listener::Tcp(l)
            }
            ListenAddr::Unix(p) => {
                let l =
                    UnixListener::bind(&p).map_err(|e| NbdError::io("bind Unix listener", e))?;
                l.set_nonblocking(true)
                    .map_err(|e| NbdError::io("set listener non-blocking", e))?;
                Listener::Unix(l, p)
            }
        };
        Ok(NbdServer {
            listener,
            exports: Arc::new(exports),
            options: Arc::new(options),
            shutdown: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The address actually bound (the real port when bound to port 0).
    pub fn local_addr(&self) -> Result<ListenAddr> {
        match &self.listener {
            Listener::Tcp(l) => l
                .local_addr()
                .map(ListenAddr::Tcp)
                .map_err(|e| NbdError::io("listener address", e)),
            Listener::Unix(_, p) => Ok(ListenAddr::Unix(p.clone())),
        }
    }

    /// A handle that stops [`NbdServer::serve`].
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            flag: Arc::clone(&self.shutdown),
        }
    }

    /// Serves until [`ShutdownHandle::shutdown`] is called, then drains connections and flushes
    /// every export.
    pub fn serve(self) -> Result<ServeSummary> {
        let flag = Arc::clone(&self.shutdown);
        self.serve_until(flag)
    }

    /// Serves until `stop` (or this server's own shutdown handle) becomes true. On stop: no new
    /// connections are accepted, every open connection stops reading, answers what it has
    /// already read and ends, and then every export is flushed. Returns the first flush error,
    /// if any.
    pub fn serve_until(self, stop: Arc<AtomicBool>) -> Result<ServeSummary> {
        let shared = Arc::new(Shared::default());
        let mut threads: Vec<(u64, JoinHandle<()>)> = Vec::new();
        let mut next_id = 0u64;
        let mut summary = ServeSummary::default();
        let stopping = || stop.load(Ordering::Acquire) || self.shutdown.load(Ordering::Acquire);
        while !stopping() {
            match self.listener.accept() {
                Ok(stream) => {
                    summary.connections += 1;
                    threads.retain(|(_, t)| !t.is_finished());
                    if threads.len() >= self.options.max_connections {
                        tracing::warn!("connection limit reached, refusing a client");
                        stream.shutdown(Shutdown::Both);
                        continue;
                    }
                    next_id += 1;
                    if let Some(t) = self.spawn_connection(next_id, stream, &shared) {
                        threads.push((next_id, t));
                    }
                }
                Err(e)
                    if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted =>
                {
                    thread::sleep(self.options.accept_poll_interval);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    thread::sleep(self.options.accept_poll_interval);
                }
            }
        }
        self.shutdown.store(true, Ordering::Release);
        // Stop every reader: each connection answers what it read, then ends.
        for stream in shared.open.lock().values() {
            stream.shutdown(Shutdown::Read);
        }
        for (_, t) in threads {
            if t.join().is_err() {
                summary.connection_errors += 1;
            }
        }
        if let Listener::Unix(_, path) = &self.listener {
            let _ = std::fs::remove_file(path);
        }
        summary.requests_ok = shared.ok.load(Ordering::Acquire);
        summary.requests_failed = shared.failed.load(Ordering::Acquire);
        summary.connection_errors += shared.errors.load(Ordering::Acquire);
        let mut first_error = None;
        for export in self.exports.iter() {
            if let Err(source) = export.image.flush() {
                tracing::error!(export = %export.name, error = %source, "flush at shutdown failed");
                first_error.get_or_insert(NbdError::Flush {
                    export: export.name.clone(),
                    source,
                });
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(summary),
        }
    }

    fn spawn_connection(
        &self,
        id: u64,
        stream: NbdStream,
        shared: &Arc<Shared>,
    ) -> Option<JoinHandle<()>> {
        if let Err(e) = stream.prepare() {
            tracing::warn!(error = %e, "could not configure a client socket");
            return None;
        }
        match stream.try_clone() {
            Ok(clone) => {
                shared.open.lock().insert(id, clone);
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not clone a client socket");
                return None;
            }
        }
        let (exports, options) = (Arc::clone(&self.exports), Arc::clone(&self.options));
        let (shutdown, shared2) = (Arc::clone(&self.shutdown), Arc::clone(shared));
        let spawned = thread::Builder::new()
            .name(format!("nbd-conn-{id}"))
            .spawn(move || {
                // A shutdown that raced with accept: the reader must still be stopped.
                if shutdown.load(Ordering::Acquire) {
                    stream.shutdown(Shutdown::Read);
                }
                run_connection(stream, &exports, &options, &shutdown, &shared2);
                shared2.open.lock().remove(&id);
            });
        match spawned {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(error = %e, "could not spawn a connection thread");
                shared.open.lock().remove(&id);
                None
            }
        }
    }

    /// Runs [`NbdServer::serve`] on a background thread.
    pub fn spawn(self) -> Result<RunningServer> {
        let addr = self.local_addr()?;
        let handle = self.shutdown_handle();
        let join = thread::Builder::new()
            .name("nbd-server".into())
            .spawn(move || self.serve())
            .map_err(|e| NbdError::io("spawn server thread", e))?;
        Ok(RunningServer { addr, handle, join })
    }
}

fn run_connection(
    mut stream: NbdStream,
    exports: &Exports,
    options: &ServerOptions,
    shutdown: &AtomicBool,
    shared: &Shared,
) {
    if let Err(e) = stream.set_read_timeout(options.handshake_timeout) {
        tracing::warn!(error = %e, "could not set the handshake timeout");
    }
    let negotiated = negotiate(&mut stream, exports, options, shutdown);
    if let Err(e) = stream.set_read_timeout(None) {
        tracing::warn!(error = %e, "could not clear the handshake timeout");
        return;
    }
    let export = match negotiated {
        Ok(Negotiated::Transmission(export)) => export,
        Ok(Negotiated::Closed) => return,
        Err(e) => {
            tracing::info!(error = %e, "negotiation failed");
            if !matches!(e, NbdError::Io { .. }) {
                shared.errors.fetch_add(1, Ordering::AcqRel);
            }
            stream.shutdown(Shutdown::Both);
            return;
        }
    };
    tracing::debug!(export = %export.name, "client entered transmission");
    match serve_connection(stream, export, options) {
        Ok(stats) => {
            shared.ok.fetch_add(stats.ok, Ordering::AcqRel);
            shared.failed.fetch_add(stats.errors, Ordering::AcqRel);
        }
        Err(e) => {
            tracing::warn!(error = %e, "connection ended with an error");
            shared.errors.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// A server running on a background thread (from [`NbdServer::spawn`]).
#[derive(Debug)]
pub struct RunningServer {
    addr: ListenAddr,
    handle: ShutdownHandle,
    join: JoinHandle<Result<ServeSummary>>,
}

impl RunningServer {
    /// The bound address.
    pub fn addr(&self) -> &ListenAddr {
        &self.addr
    }

    /// A handle that stops the server.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.handle.clone()
    }

    /// Stops the server and waits for it: connections drain, exports are flushed.
    pub fn shutdown(self) -> Result<ServeSummary> {
        self.handle.shutdown();
        self.join
            .join()
            .map_err(|_| NbdError::ThreadPanicked("nbd server"))?
    }
}
