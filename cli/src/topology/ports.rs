//! Free loopback ports, chosen at run time.
//!
//! Every port of a topology is known before any process starts, because
//! the processes name each other (the simulator posts to the adapters'
//! webhooks, the gateway calls the adapters, everyone dials the broker),
//! and a restarted process must come back on the same ports.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};

/// Holds each port's listener until [`release`](Self::release), so one
/// batch never hands out the same port twice.
#[derive(Default)]
pub(crate) struct PortPicker {
    held: Vec<TcpListener>,
}

impl PortPicker {
    /// A port on 127.0.0.1 that nothing listens on now.
    pub(crate) fn next(&mut self) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let addr = listener.local_addr()?;
        self.held.push(listener);
        Ok(addr)
    }

    /// Frees the ports for the processes about to bind them.
    pub(crate) fn release(self) {
        drop(self.held);
    }
}
