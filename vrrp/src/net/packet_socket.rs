//! AF_PACKET socket for sending whole Ethernet frames (gratuitous ARP,
//! unsolicited NA) built by [`crate::arp`]. Send only: protocol 0 means the
//! kernel delivers nothing to it.

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;

use super::NetError;

pub struct PacketSocket {
    fd: AsyncFd<OwnedFd>,
    ifindex: u32,
}

impl PacketSocket {
    pub fn open(ifindex: u32) -> Result<PacketSocket, NetError> {
        // SAFETY: plain socket(2) call.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if fd < 0 {
            return Err(NetError::io("packet socket", io::Error::last_os_error()));
        }
        // SAFETY: fresh descriptor owned from here on.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(PacketSocket {
            // SAFETY: the OwnedFd is moved in and stays open while the AsyncFd lives.
            fd: unsafe { AsyncFd::register(fd) }
                .map_err(|e| NetError::io("packet socket register", e.into()))?,
            ifindex,
        })
    }

    /// Sends one complete Ethernet frame (destination MAC in bytes 0..6,
    /// EtherType in 12..14) out of the interface.
    pub async fn send(&self, frame: &[u8]) -> Result<(), NetError> {
        if frame.len() < 14 {
            return Err(NetError::io(
                "packet send",
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "frame shorter than an Ethernet header",
                ),
            ));
        }
        // SAFETY: zeroed sockaddr_ll is valid.
        let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = u16::from_be_bytes([frame[12], frame[13]]).to_be();
        sll.sll_ifindex = self.ifindex as i32;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&frame[..6]);
        loop {
            let mut guard = self
                .fd
                .writable()
                .await
                .map_err(|e| NetError::io("packet send wait", e))?;
            let fd = self.fd.get_ref().as_raw_fd();
            let res = guard.try_io(|_| {
                // SAFETY: frame and sll are valid for the given lengths.
                let n = unsafe {
                    libc::sendto(
                        fd,
                        frame.as_ptr() as *const libc::c_void,
                        frame.len(),
                        0,
                        &sll as *const _ as *const libc::sockaddr,
                        size_of::<libc::sockaddr_ll>() as u32,
                    )
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(())
                }
            });
            match res {
                Err(_would_block) => continue,
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(r) => return r.map_err(|e| NetError::io("packet send", e)),
            }
        }
    }
}
