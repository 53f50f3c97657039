//! Parsing of the reply buffer of a RADOS notify (`rados_notify2`).
//!
//! Layout (little-endian, librados documentation of `rados_notify2`): `u32` number of acks, then
//! per ack `u64` notifier global id, `u64` watch cookie, `u32` payload length and the payload;
//! then `u32` number of timed-out watchers, then per timeout `u64` global id and `u64` cookie.

/// What a notify reply says about the watchers it reached.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NotifyReply {
    /// `(global id, cookie, ack payload)` of every watcher that acknowledged.
    pub acks: Vec<(u64, u64, Vec<u8>)>,
    /// `(global id, cookie)` of every watcher that did not answer in time.
    pub timeouts: Vec<(u64, u64)>,
}

struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.rest.len() < n {
            return None;
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Some(head)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

/// Parses a notify reply; `None` if it is truncated or malformed. An empty buffer (no reply at
/// all, e.g. librados gave none) is an empty reply.
pub fn parse(buf: &[u8]) -> Option<NotifyReply> {
    if buf.is_empty() {
        return Some(NotifyReply::default());
    }
    let mut cur = Cursor { rest: buf };
    let n_acks = cur.u32()?;
    let mut reply = NotifyReply::default();
    for _ in 0..n_acks {
        let gid = cur.u64()?;
        let cookie = cur.u64()?;
        let len = usize::try_from(cur.u32()?).ok()?;
        let payload = cur.take(len)?.to_vec();
        reply.acks.push((gid, cookie, payload));
    }
    let n_timeouts = cur.u32()?;
    for _ in 0..n_timeouts {
        let gid = cur.u64()?;
        let cookie = cur.u64()?;
        reply.timeouts.push((gid, cookie));
    }
    Some(reply)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn put32(v: &mut Vec<u8>, x: u32) {
        v.extend_from_slice(&x.to_le_bytes());
    }
    fn put64(v: &mut Vec<u8>, x: u64) {
        v.extend_from_slice(&x.to_le_bytes());
    }

    #[test]
    fn parses_acks_and_timeouts() {
        let mut buf = Vec::new();
        put32(&mut buf, 2);
        put64(&mut buf, 4100);
        put64(&mut buf, 94_000_001);
        put32(&mut buf, 0);
        put64(&mut buf, 4101);
        put64(&mut buf, 7);
        put32(&mut buf, 3);
        buf.extend_from_slice(b"ack");
        put32(&mut buf, 1);
        put64(&mut buf, 4102);
        put64(&mut buf, 9);
        let reply = parse(&buf).unwrap();
        assert_eq!(
            reply.acks,
            vec![(4100, 94_000_001, vec![]), (4101, 7, b"ack".to_vec())]
        );
        assert_eq!(reply.timeouts, vec![(4102, 9)]);
    }

    #[test]
    fn truncated_replies_are_rejected_without_panic() {
        let mut buf = Vec::new();
        put32(&mut buf, 1);
        put64(&mut buf, 1);
        put64(&mut buf, 2);
        put32(&mut buf, u32::MAX);
        for cut in 0..buf.len() {
            let _ = parse(&buf[..cut]);
        }
        assert_eq!(parse(&buf), None);
        assert_eq!(parse(&[]), Some(NotifyReply::default()));
    }
}
