//! A microsecond timer on timerfd(2). tokio's `sleep` rounds up to whole
//! milliseconds; with 10 ms adverts that is up to 10% of jitter on every
//! advert and on Master_Down_Timer, so the engine sleeps on this instead.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

use super::NetError;

pub struct Timer {
    fd: AsyncFd<OwnedFd>,
}

impl Timer {
    pub fn new() -> Result<Timer, NetError> {
        // SAFETY: plain timerfd_create(2) call.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(NetError::io("timerfd_create", io::Error::last_os_error()));
        }
        // SAFETY: fresh descriptor owned from here on.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: the OwnedFd is moved in and stays open while the AsyncFd lives.
        let fd = unsafe { AsyncFd::register(fd) }
            .map_err(|e| NetError::io("timerfd register", e.into()))?;
        Ok(Timer { fd })
    }

    /// Sleeps until `deadline` (None: forever). Cancel-safe: dropping the
    /// future and calling again re-arms the timer.
    pub async fn sleep_until(&self, deadline: Option<Instant>) {
        let Some(deadline) = deadline else {
            return std::future::pending().await;
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        if self.arm(left).is_err() {
            // Should not happen; fall back to tokio's timer.
            return tokio::time::sleep_until(deadline).await;
        }
        loop {
            let Ok(mut guard) = self.fd.readable().await else {
                return tokio::time::sleep_until(deadline).await;
            };
            let fd = self.fd.get_ref().as_raw_fd();
            let res = guard.try_io(|_| {
                let mut buf = [0u8; 8];
                // SAFETY: reads 8 bytes (the expiration count) into buf.
                let n = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, 8) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(())
                }
            });
            match res {
                Ok(Ok(())) => return,
                // A stale readiness from an earlier arming: wait again, unless
                // the deadline has passed meanwhile.
                _ if Instant::now() >= deadline => return,
                _ => continue,
            }
        }
    }

    fn arm(&self, after: Duration) -> io::Result<()> {
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: after.as_secs() as libc::time_t,
                tv_nsec: after.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: valid fd and itimerspec; old value not requested.
        let rc = unsafe {
            libc::timerfd_settime(
                self.fd.get_ref().as_raw_fd(),
                0,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}
