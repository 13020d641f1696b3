//! A framed message channel over a Unix stream socket, carrying file descriptors
//! (`SCM_RIGHTS`): how a caller and its engine process talk.
//!
//! A frame is `[length: u32 LE][kind: u8][payload]`, where `length` counts the kind byte and
//! the payload. Descriptors travel with the `sendmsg` that carries the frame's header, and
//! arrive with the `recvmsg` that reads it (the kernel never merges a message holding
//! descriptors with the next one). Sends never raise `SIGPIPE` (`MSG_NOSIGNAL`).

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use rustix::net::{
    recvmsg, sendmsg, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};

/// The most descriptors one frame may carry.
pub const MAX_FDS: usize = 4;
/// The largest frame accepted (a snapshot of a process with a million fds is far below).
pub const MAX_FRAME: usize = 1 << 30;

/// One received frame.
#[derive(Debug)]
pub struct Frame {
    /// What the frame is (the protocol's message kind).
    pub kind: u8,
    /// Its bytes.
    pub payload: Vec<u8>,
    /// The descriptors that came with it.
    pub fds: Vec<OwnedFd>,
}

/// One end of a channel.
#[derive(Debug)]
pub struct Channel {
    sock: OwnedFd,
}

impl Channel {
    /// A connected pair of channel ends, both close-on-exec.
    pub fn pair() -> io::Result<(Channel, Channel)> {
        let (a, b) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )?;
        Ok((Channel { sock: a }, Channel { sock: b }))
    }

    /// A channel over an already connected socket (the engine's end, inherited at start).
    pub fn from_fd(sock: OwnedFd) -> Channel {
        Channel { sock }
    }

    /// The socket.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }

    /// The pid of the process that made the socket pair (for a pair, both ends name their
    /// creator: the engine learns its caller this way), in our pid namespace.
    pub fn creator_pid(&self) -> io::Result<i32> {
        let cred = rustix::net::sockopt::socket_peercred(&self.sock)?;
        Ok(cred.pid.as_raw_nonzero().get())
    }

    /// Sends one frame with `fds`.
    pub fn send(&self, kind: u8, payload: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
        assert!(fds.len() <= MAX_FDS, "too many fds for one frame");
        let len = u32::try_from(payload.len() + 1)
            .ok()
            .filter(|&l| l as usize <= MAX_FRAME)
            .ok_or_else(|| io::Error::other("frame too large"))?;
        let mut header = [0u8; 5];
        header[..4].copy_from_slice(&len.to_le_bytes());
        header[4] = kind;
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() {
            control.push(SendAncillaryMessage::ScmRights(fds));
        }
        let total = header.len() + payload.len();
        let mut sent = retry(|| {
            sendmsg(
                &self.sock,
                &[IoSlice::new(&header), IoSlice::new(payload)],
                &mut control,
                SendFlags::NOSIGNAL,
            )
        })?;
        while sent < total {
            let rest: &[u8] = if sent < header.len() {
                &header[sent..]
            } else {
                &payload[sent - header.len()..]
            };
            sent += retry(|| rustix::net::send(&self.sock, rest, SendFlags::NOSIGNAL))?;
        }
        Ok(())
    }

    /// Receives one frame, waiting until `deadline` (forever with `None`). End-of-file is
    /// [`io::ErrorKind::UnexpectedEof`], a deadline passed [`io::ErrorKind::TimedOut`].
    pub fn recv(&self, deadline: Option<Instant>) -> io::Result<Frame> {
        let mut header = [0u8; 5];
        let mut fds = Vec::new();
        let mut got = 0;
        while got < header.len() {
            wait_readable(self.sock.as_fd(), deadline)?;
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
            let mut control = RecvAncillaryBuffer::new(&mut space);
            let n = retry(|| {
                recvmsg(
                    &self.sock,
                    &mut [IoSliceMut::new(&mut header[got..])],
                    &mut control,
                    RecvFlags::CMSG_CLOEXEC,
                )
            })?
            .bytes;
            for msg in control.drain() {
                if let RecvAncillaryMessage::ScmRights(received) = msg {
                    fds.extend(received);
                }
            }
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            got += n;
        }
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        if len == 0 || len > MAX_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a frame of {len} bytes"),
            ));
        }
        let mut payload = vec![0u8; len - 1];
        let mut got = 0;
        while got < payload.len() {
            wait_readable(self.sock.as_fd(), deadline)?;
            match retry(|| rustix::io::read(&self.sock, &mut payload[got..]))? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => got += n,
            }
        }
        Ok(Frame {
            kind: header[4],
            payload,
            fds,
        })
    }
}

/// Runs `f` again while it fails with `EINTR`.
fn retry<T>(mut f: impl FnMut() -> rustix::io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(rustix::io::Errno::INTR) => continue,
            r => return r.map_err(Into::into),
        }
    }
}

/// Waits until `fd` is readable (or at end-of-file, or in error), up to `deadline`.
pub fn wait_readable(fd: BorrowedFd<'_>, deadline: Option<Instant>) -> io::Result<()> {
    use rustix::event::{poll, PollFd, PollFlags};
    loop {
        let timeout = match deadline {
            None => None,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                Some(rustix::time::Timespec {
                    tv_sec: left.as_secs() as i64,
                    tv_nsec: i64::from(left.subsec_nanos()),
                })
            }
        };
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match poll(&mut fds, timeout.as_ref()) {
            Ok(0) => continue,
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn frames_and_fds_cross_in_order() {
        let (a, b) = Channel::pair().unwrap();
        let (r, w) = rustix::pipe::pipe().unwrap();
        let big = vec![7u8; 3 << 20];
        let sender = std::thread::spawn(move || {
            a.send(1, b"hello", &[r.as_fd(), w.as_fd()]).unwrap();
            a.send(2, &big, &[]).unwrap();
            a
        });
        let deadline = Some(Instant::now() + Duration::from_secs(10));
        let f = b.recv(deadline).unwrap();
        assert_eq!((f.kind, &f.payload[..], f.fds.len()), (1, &b"hello"[..], 2));
        rustix::io::write(&f.fds[1], b"x").unwrap();
        let mut one = [0u8];
        assert_eq!(rustix::io::read(&f.fds[0], &mut one).unwrap(), 1);
        let f = b.recv(deadline).unwrap();
        assert_eq!((f.kind, f.payload.len(), f.fds.len()), (2, 3 << 20, 0));
        assert!(f.payload.iter().all(|&x| x == 7));
        drop(sender.join().unwrap());
        let eof = b.recv(deadline).unwrap_err();
        assert_eq!(eof.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn a_deadline_passes() {
        let (_a, b) = Channel::pair().unwrap();
        let e = b
            .recv(Some(Instant::now() + Duration::from_millis(20)))
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }
}
