//! [`NbdStream`]: one connected socket, TCP or Unix-domain, behind one type.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// A connected client socket.
#[derive(Debug)]
pub enum NbdStream {
    /// A TCP connection.
    Tcp(TcpStream),
    /// A Unix-domain stream connection.
    Unix(UnixStream),
}

impl NbdStream {
    /// A second handle on the same socket (used by the reply writer and by shutdown).
    pub fn try_clone(&self) -> io::Result<NbdStream> {
        Ok(match self {
            NbdStream::Tcp(s) => NbdStream::Tcp(s.try_clone()?),
            NbdStream::Unix(s) => NbdStream::Unix(s.try_clone()?),
        })
    }

    /// Shuts down one or both directions; errors (already closed) are ignored.
    pub fn shutdown(&self, how: Shutdown) {
        let _ = match self {
            NbdStream::Tcp(s) => s.shutdown(how),
            NbdStream::Unix(s) => s.shutdown(how),
        };
    }

    /// Sets (or clears) the read timeout.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            NbdStream::Tcp(s) => s.set_read_timeout(timeout),
            NbdStream::Unix(s) => s.set_read_timeout(timeout),
        }
    }

    /// Puts the socket in blocking mode and, for TCP, disables Nagle's algorithm (replies are
    /// small and latency-bound).
    pub fn prepare(&self) -> io::Result<()> {
        match self {
            NbdStream::Tcp(s) => {
                s.set_nonblocking(false)?;
                s.set_nodelay(true)
            }
            NbdStream::Unix(s) => s.set_nonblocking(false),
        }
    }
}

impl Read for NbdStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            NbdStream::Tcp(s) => s.read(buf),
            NbdStream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for NbdStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            NbdStream::Tcp(s) => s.write(buf),
            NbdStream::Unix(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            NbdStream::Tcp(s) => s.write_vectored(bufs),
            NbdStream::Unix(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            NbdStream::Tcp(s) => s.flush(),
            NbdStream::Unix(s) => s.flush(),
        }
    }
}
