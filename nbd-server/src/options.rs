//! [`ServerOptions`]: limits and behaviour of an NBD server, with documented defaults.

use std::time::Duration;

use crate::error::{NbdError, Result};

/// Options of an [`crate::NbdServer`]. `Default` gives the values documented on each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOptions {
    /// Largest READ or WRITE payload accepted, in bytes; also advertised as the maximum block
    /// size. Larger reads get `EINVAL`; a larger write gets `EINVAL` and the connection is closed
    /// (its payload cannot be skipped safely). Default: 32 MiB. Range: 4096 ..= 256 MiB.
    pub max_request_bytes: u32,
    /// Requests of one connection that may be in flight (read but not yet answered) at once; the
    /// reader stops reading from the socket while the limit is reached. Default: 64.
    pub max_in_flight_requests: usize,
    /// Payload bytes (write data received plus read data to send) one connection may hold in
    /// flight; a single request larger than this still runs, alone. Default: 128 MiB.
    pub max_in_flight_bytes: u64,
    /// Worker threads executing the requests of one connection. Default: 4.
    pub workers_per_connection: usize,
    /// Connections served at once; further clients are accepted and closed immediately.
    /// Default: 64.
    pub max_connections: usize,
    /// Exports are read-only: writes, trims and write-zeroes fail with `EPERM`. Default: false.
    pub read_only: bool,
    /// Flush the export when a connection ends (however it ends). Default: true.
    pub flush_on_disconnect: bool,
    /// A client that sends nothing for this long during negotiation is disconnected (`None`: wait
    /// forever). The transmission phase has no idle limit. Default: 30 s.
    pub handshake_timeout: Option<Duration>,
    /// How often the accept loop checks its shutdown flag. Default: 20 ms.
    pub accept_poll_interval: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_request_bytes: 32 << 20,
            max_in_flight_requests: 64,
            max_in_flight_bytes: 128 << 20,
            workers_per_connection: 4,
            max_connections: 64,
            read_only: false,
            flush_on_disconnect: true,
            handshake_timeout: Some(Duration::from_secs(30)),
            accept_poll_interval: Duration::from_millis(20),
        }
    }
}

impl ServerOptions {
    /// Checks the ranges documented on the fields.
    pub fn validate(&self) -> Result<()> {
        if !(4096..=256 << 20).contains(&self.max_request_bytes) {
            return Err(NbdError::Config(format!(
                "max_request_bytes {} outside 4096..=268435456",
                self.max_request_bytes
            )));
        }
        if self.max_in_flight_requests == 0 {
            return Err(NbdError::Config(
                "max_in_flight_requests must be at least 1".into(),
            ));
        }
        if self.max_in_flight_bytes == 0 {
            return Err(NbdError::Config(
                "max_in_flight_bytes must be at least 1".into(),
            ));
        }
        if self.workers_per_connection == 0 || self.workers_per_connection > 256 {
            return Err(NbdError::Config(
                "workers_per_connection must be in 1..=256".into(),
            ));
        }
        if self.max_connections == 0 {
            return Err(NbdError::Config(
                "max_connections must be at least 1".into(),
            ));
        }
        if self.handshake_timeout.is_some_and(|t| t.is_zero()) {
            return Err(NbdError::Config(
                "handshake_timeout must be positive".into(),
            ));
        }
        if self.accept_poll_interval.is_zero() {
            return Err(NbdError::Config(
                "accept_poll_interval must be positive".into(),
            ));
        }
        Ok(())
    }
}
