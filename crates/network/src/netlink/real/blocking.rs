//! Link deletion on a blocking thread with a plain netlink socket.
//!
//! The kernel handles a netlink request inside the sender's `sendmsg(2)`,
//! and deleting a network device waits there for RCU grace periods (tens of
//! milliseconds). Sent through the async connection, that wait would stall
//! the runtime thread driving it, and every request queued behind it; here it
//! only occupies a thread of tokio's blocking pool, and concurrent deletions
//! wait in parallel.

use std::io;

use netlink_packet_core::{NLM_F_ACK, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::LinkUnspec;
use rtnetlink::sys::protocols::NETLINK_ROUTE;
use rtnetlink::sys::{Socket, SocketAddr};

use super::errno;
use crate::netlink::NetlinkError;

/// Sequence number of the single request each socket sends.
const SEQUENCE: u32 = 1;

/// Deletes the host link called `name`; `Ok(false)` if there was none.
pub(super) async fn delete_link(op: &'static str, name: &str) -> Result<bool, NetlinkError> {
    let message = RouteNetlinkMessage::DelLink(LinkUnspec::new_with_name(name).build());
    let link_err = |source| NetlinkError::Link { op, ifname: name.to_string(), source };
    let outcome = tokio::task::spawn_blocking(move || request_ack(message))
        .await
        .map_err(|_| link_err(rtnetlink::Error::RequestFailed))?;
    match outcome {
        Ok(()) => Ok(true),
        Err(Failure::Socket(source)) => Err(NetlinkError::Socket { netns: None, source }),
        Err(Failure::Request(e)) if errno(&e) == Some(libc::ENODEV) => Ok(false),
        Err(Failure::Request(e)) => Err(link_err(e)),
    }
}

enum Failure {
    /// No socket could be opened.
    Socket(io::Error),
    /// The request failed or was refused.
    Request(rtnetlink::Error),
}

/// Sends `message` from a new socket and waits for the kernel's answer.
fn request_ack(message: RouteNetlinkMessage) -> Result<(), Failure> {
    let socket = Socket::new(NETLINK_ROUTE).map_err(Failure::Socket)?;
    let mut request = NetlinkMessage::from(message);
    request.header.flags = NLM_F_REQUEST | NLM_F_ACK;
    request.header.sequence_number = SEQUENCE;
    request.finalize();
    let mut buf = vec![0; request.buffer_len()];
    request.serialize(&mut buf);
    socket.send_to(&buf, &SocketAddr::new(0, 0), 0).map_err(io_failure)?;

    loop {
        let (data, _) = socket.recv_from_full().map_err(io_failure)?;
        let mut rest = data.as_slice();
        while !rest.is_empty() {
            let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(rest)
                .map_err(|_| Failure::Request(rtnetlink::Error::RequestFailed))?;
            // Messages are 4-byte aligned within a datagram.
            let len = usize::try_from(reply.header.length).unwrap_or(usize::MAX);
            match reply.payload {
                NetlinkPayload::Error(err) if reply.header.sequence_number == SEQUENCE => {
                    return match err.code {
                        None => Ok(()),
                        Some(_) => Err(Failure::Request(rtnetlink::Error::NetlinkError(err))),
                    };
                }
                _ => {}
            }
            let next = len.checked_add(3).map(|l| l & !3).filter(|&l| l > 0);
            rest = next.and_then(|n| rest.get(n..)).unwrap_or_default();
        }
    }
}

/// A send or receive error, as the kernel's errno when it has one.
fn io_failure(e: io::Error) -> Failure {
    let nack = e.raw_os_error().and_then(|code| std::num::NonZeroI32::new(-code)).map(|code| {
        let mut msg = netlink_packet_core::ErrorMessage::default();
        msg.code = Some(code);
        rtnetlink::Error::NetlinkError(msg)
    });
    Failure::Request(nack.unwrap_or(rtnetlink::Error::RequestFailed))
}
