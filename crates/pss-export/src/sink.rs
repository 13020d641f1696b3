//! Where an export's bytes go: a file, where runs of zeros become holes (a sparse file), or
//! a pipe or terminal, where they are written as zeros.

use std::io;
use std::os::fd::BorrowedFd;

use rustix::fs::{fcntl_getfl, fstat, ftruncate, seek, FileType, SeekFrom};
use rustix::io::{write, Errno};

/// The shortest run of zeros left as a hole; shorter runs (alignment) are written.
const MIN_HOLE: u64 = 4096;

/// Zeros written in place of holes when the output cannot seek.
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// An output descriptor and how far the export has got in it.
pub(crate) struct Sink<'a> {
    fd: BorrowedFd<'a>,
    /// A regular file opened without `O_APPEND`: holes are seeks.
    seekable: bool,
    /// Bytes of the export emitted so far (written or skipped).
    pub emitted: u64,
    /// Of those, bytes left as holes.
    pub holes: u64,
    /// Zeros owed before the next write.
    pending: u64,
}

impl<'a> Sink<'a> {
    /// A sink writing at `fd`'s current position.
    pub fn new(fd: BorrowedFd<'a>) -> Sink<'a> {
        let regular = fstat(fd).is_ok_and(|st| FileType::from_raw_mode(st.st_mode).is_file());
        let append = fcntl_getfl(fd).is_ok_and(|f| f.contains(rustix::fs::OFlags::APPEND));
        Sink {
            fd,
            seekable: regular && !append,
            emitted: 0,
            holes: 0,
            pending: 0,
        }
    }

    /// Sets a file's length to the end of the export before writing it (`len` bytes from
    /// here), when nothing in the file lies beyond here: the writes then fill the file
    /// rather than extend it, a trailing hole needs no last step, and a file size limit
    /// shows at once. A failed export's file is removed whole either way.
    pub fn reserve(&mut self, len: u64) -> io::Result<()> {
        if !self.seekable {
            return Ok(());
        }
        let here = seek(self.fd, SeekFrom::Current(0))?;
        if fstat(self.fd)?.st_size as u64 > here {
            return Ok(());
        }
        match ftruncate(self.fd, here + len) {
            // Past the file size limit: better said now than after writing up to it.
            Err(Errno::FBIG) => Err(Errno::FBIG.into()),
            // A file that cannot be sized (not open for writing, a /proc file): the writes
            // will say what is wrong, or do without.
            _ => Ok(()),
        }
    }

    /// Writes all of `data`.
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.settle()?;
        write_all(self.fd, data)?;
        self.emitted += data.len() as u64;
        Ok(())
    }

    /// `len` bytes of zeros: a hole where the output can have one.
    pub fn zeros(&mut self, len: u64) {
        self.pending += len;
        self.emitted += len;
    }

    /// Writes `data`, leaving its zero pages (of `page` bytes) as holes.
    pub fn write_sparse(&mut self, data: &[u8], page: usize) -> io::Result<()> {
        let mut run_start = 0;
        let mut in_zero = false;
        for (i, chunk) in data.chunks(page).enumerate() {
            let zero = is_zero(chunk);
            if zero != in_zero && i > 0 {
                self.emit(&data[run_start..i * page], in_zero)?;
                run_start = i * page;
            }
            in_zero = zero;
        }
        self.emit(&data[run_start..], in_zero)
    }

    fn emit(&mut self, run: &[u8], zero: bool) -> io::Result<()> {
        if zero {
            self.zeros(run.len() as u64);
            Ok(())
        } else {
            self.write(run)
        }
    }

    /// Puts down the zeros owed: a seek on a file (for a page or more), written zeros
    /// elsewhere.
    fn settle(&mut self) -> io::Result<()> {
        if self.pending == 0 {
            return Ok(());
        }
        if self.seekable && self.pending >= MIN_HOLE {
            let delta = i64::try_from(self.pending).map_err(|_| Errno::FBIG)?;
            seek(self.fd, SeekFrom::Current(delta))?;
            self.holes += self.pending;
        } else {
            while self.pending > 0 {
                let n = self.pending.min(ZEROS.len() as u64) as usize;
                write_all(self.fd, &ZEROS[..n])?;
                self.pending -= n as u64;
            }
        }
        self.pending = 0;
        Ok(())
    }

    /// Ends the output: a file ending in a hole gets its full length.
    pub fn finish(&mut self) -> io::Result<()> {
        if self.pending == 0 {
            return Ok(());
        }
        if self.seekable && self.pending >= MIN_HOLE {
            let delta = i64::try_from(self.pending).map_err(|_| Errno::FBIG)?;
            let end = seek(self.fd, SeekFrom::Current(delta))?;
            ftruncate(self.fd, end)?;
            self.holes += self.pending;
            self.pending = 0;
            return Ok(());
        }
        self.settle()
    }
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match write(fd, data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Whether every byte is zero (in 64-byte blocks the compiler turns into vector ORs).
pub(crate) fn is_zero(data: &[u8]) -> bool {
    let mut blocks = data.chunks_exact(64);
    let blocks_zero = blocks
        .by_ref()
        .all(|b| b.iter().fold(0u8, |acc, &x| acc | x) == 0);
    blocks_zero && blocks.remainder().iter().all(|&x| x == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn zero_pages_become_holes_in_a_file() {
        let dir = std::env::temp_dir().join(format!("pss-sink-{}", std::process::id()));
        let file = std::fs::File::create(&dir).unwrap();
        let mut sink = Sink::new(file.as_fd());
        assert!(sink.seekable);
        let mut data = vec![0u8; 4 * 4096];
        data[4096] = 7;
        sink.write(b"head").unwrap();
        sink.zeros(12);
        sink.write_sparse(&data, 4096).unwrap();
        sink.zeros(8192);
        sink.finish().unwrap();
        assert_eq!(sink.emitted, 16 + 4 * 4096 + 8192);
        assert_eq!(
            sink.holes,
            12 + 3 * 4096 + 8192,
            "the 12 zeros join the next hole"
        );
        let back = std::fs::read(&dir).unwrap();
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(back.len() as u64, sink.emitted);
        assert_eq!(&back[..4], b"head");
        assert_eq!(back[16 + 4096], 7);
        assert_eq!(back.iter().filter(|&&b| b != 0).count(), 5);
    }

    #[test]
    fn a_pipe_gets_zeros() {
        let (r, w) = rustix::pipe::pipe().unwrap();
        let reader = std::thread::spawn(move || {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut std::fs::File::from(r), &mut v).unwrap();
            v
        });
        let mut sink = Sink::new(w.as_fd());
        assert!(!sink.seekable);
        sink.write(b"x").unwrap();
        sink.zeros(100_000);
        sink.write(b"y").unwrap();
        sink.zeros(5);
        sink.finish().unwrap();
        drop(w);
        let v = reader.join().unwrap();
        assert_eq!(v.len(), 100_007);
        assert_eq!((v[0], v[100_001]), (b'x', b'y'));
        assert!(is_zero(&v[1..100_001]) && is_zero(&v[100_002..]));
    }
}
