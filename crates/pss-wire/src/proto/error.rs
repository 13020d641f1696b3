//! An [`Error`] on the wire: each variant's tag and fields declared once ([`wire_errors!`]),
//! from which both [`encode_error`] and [`decode_error`] are made. A variant's field list
//! is a pattern and a struct expression both, so a field added to a variant and not to its
//! line here fails the build.

use std::io;
use std::path::PathBuf;

use crate::codec::{Decoded, Reader, Writer};
use pss_types::error::Error;

/// The ptrace request names the engine's errors use: a decoded [`Error::Ptrace`] names one
/// of these (its field is a `&'static str`).
const PTRACE_REQUESTS: &[&str] = &[
    "PTRACE_SEIZE",
    "PTRACE_INTERRUPT",
    "PTRACE_GETREGS",
    "PTRACE_SETREGS (restore)",
    "PTRACE_SETOPTIONS/SETSIGMASK (injection)",
    "injected syscall",
    "waitpid",
];

/// The tag of an error carried as its message only (a variant with no line below): it
/// arrives as [`Error::Internal`] with the same text.
const AS_MESSAGE: u8 = 255;

/// How one field of an error crosses.
trait WireField: Sized {
    fn put(&self, w: &mut Writer);
    fn take(r: &mut Reader<'_>) -> Decoded<Self>;
}

impl WireField for i32 {
    fn put(&self, w: &mut Writer) {
        w.i32(*self);
    }
    fn take(r: &mut Reader<'_>) -> Decoded<i32> {
        r.i32()
    }
}

impl WireField for u64 {
    fn put(&self, w: &mut Writer) {
        w.u64(*self);
    }
    fn take(r: &mut Reader<'_>) -> Decoded<u64> {
        r.u64()
    }
}

impl WireField for String {
    fn put(&self, w: &mut Writer) {
        w.str(self);
    }
    fn take(r: &mut Reader<'_>) -> Decoded<String> {
        r.str()
    }
}

/// A path, as text (lossily: the errors name paths for people).
impl WireField for PathBuf {
    fn put(&self, w: &mut Writer) {
        w.str(&self.to_string_lossy());
    }
    fn take(r: &mut Reader<'_>) -> Decoded<PathBuf> {
        r.str().map(PathBuf::from)
    }
}

/// An OS error, as its errno (`EIO` for one without).
impl WireField for io::Error {
    fn put(&self, w: &mut Writer) {
        w.i32(self.raw_os_error().unwrap_or(libc::EIO));
    }
    fn take(r: &mut Reader<'_>) -> Decoded<io::Error> {
        r.i32().map(io::Error::from_raw_os_error)
    }
}

/// A ptrace request's name (the only `&'static str` field carried): one of
/// [`PTRACE_REQUESTS`], or "ptrace request" for a name the caller does not know.
impl WireField for &'static str {
    fn put(&self, w: &mut Writer) {
        w.str(self);
    }
    fn take(r: &mut Reader<'_>) -> Decoded<&'static str> {
        let name = r.str()?;
        Ok(PTRACE_REQUESTS
            .iter()
            .find(|&&n| n == name)
            .copied()
            .unwrap_or("ptrace request"))
    }
}

/// Declares each carried variant once — `TAG => Variant { field, … }` or
/// `TAG => Variant(field)` — and makes [`encode_error`] and [`decode_error`] from the list.
/// Fields cross in the order listed.
macro_rules! wire_errors {
    ($($tag:literal => $variant:ident $({ $($field:ident),* })? $(($one:ident))?,)*) => {
        /// An error, field by field; a variant not carried, as its message.
        pub fn encode_error(e: &Error) -> Vec<u8> {
            let mut w = Writer::default();
            match e {
                $(Error::$variant $({ $($field),* })? $(($one))? => {
                    w.u8($tag);
                    $($($field.put(&mut w);)*)?
                    $($one.put(&mut w);)?
                })*
                e => {
                    w.u8(AS_MESSAGE);
                    w.str(&e.to_string());
                }
            }
            w.buf
        }

        /// The error [`encode_error`] wrote.
        pub fn decode_error(bytes: &[u8]) -> Decoded<Error> {
            let mut r = Reader::new(bytes);
            Ok(match r.u8()? {
                $($tag => Error::$variant $({ $($field: WireField::take(&mut r)?),* })?
                    $(({ let $one = WireField::take(&mut r)?; $one }))?,)*
                AS_MESSAGE => Error::Internal(r.str()?),
                t => return Err(r.error(format!("an error tag, found {t}"))),
            })
        }
    };
}

wire_errors! {
    0 => NoSuchProcess { pid },
    1 => PermissionDenied { pid, action, source },
    2 => AlreadyTraced { pid, tid, tracer },
    3 => ProcessExited { pid },
    4 => NotAProcess { tid, tgid },
    5 => Zombie { pid },
    6 => Timeout { pid, tid, timeout_ms },
    7 => NotSupported { what },
    8 => InvalidParameter(what),
    9 => Ptrace { request, pid, tid, source },
    10 => Io { pid, path, source },
    11 => Parse { pid, path, detail },
    12 => CloneFailed { pid, reason },
    13 => Remote { pid, action, source },
    14 => Corrupt { what },
    15 => Engine { what },
    16 => Internal(what),
    17 => Busy { pid, waited_ms },
    18 => Unreadable { pid, address, reason },
    19 => CloneVanished { pid, clone },
    20 => Output { what, source },
    21 => OutputExists { path },
    22 => Interrupted { what },
    23 => File { path, source },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_crosses_with_its_fields_and_message() {
        let errors = vec![
            Error::NoSuchProcess { pid: 7 },
            Error::PermissionDenied {
                pid: 7,
                action: "trace thread 8 of".into(),
                source: io::Error::from_raw_os_error(libc::EPERM),
            },
            Error::AlreadyTraced {
                pid: 7,
                tid: 8,
                tracer: 9,
            },
            Error::ProcessExited { pid: 7 },
            Error::NotAProcess { tid: 8, tgid: 7 },
            Error::Zombie { pid: 7 },
            Error::Timeout {
                pid: 7,
                tid: 8,
                timeout_ms: 2000,
            },
            Error::NotSupported { what: "x".into() },
            Error::InvalidParameter("y".into()),
            Error::Ptrace {
                request: "PTRACE_SEIZE",
                pid: 7,
                tid: 8,
                source: io::Error::from_raw_os_error(libc::ESRCH),
            },
            Error::Io {
                pid: 7,
                path: "/proc/7/maps".into(),
                source: io::Error::from_raw_os_error(libc::EIO),
            },
            Error::Parse {
                pid: 7,
                path: "/proc/7/stat".into(),
                detail: "z".into(),
            },
            Error::CloneFailed {
                pid: 7,
                reason: "r".into(),
            },
            Error::Remote {
                pid: 7,
                action: "close(3)".into(),
                source: io::Error::from_raw_os_error(libc::EBADF),
            },
            Error::Corrupt { what: "w".into() },
            Error::Engine { what: "e".into() },
            Error::Internal("i".into()),
            Error::Busy {
                pid: 7,
                waited_ms: 2000,
            },
            Error::Unreadable {
                pid: 7,
                address: 0x1000,
                reason: "r".into(),
            },
            Error::CloneVanished { pid: 7, clone: 9 },
            Error::Output {
                what: "core.7".into(),
                source: io::Error::from_raw_os_error(libc::ENOSPC),
            },
            Error::OutputExists {
                path: "core.7".into(),
            },
            Error::Interrupted {
                what: "writing core.7".into(),
            },
            Error::File {
                path: "s.pss".into(),
                source: io::Error::from_raw_os_error(libc::EACCES),
            },
        ];
        for e in errors {
            let back = decode_error(&encode_error(&e)).unwrap();
            assert_eq!(back.to_string(), e.to_string());
            assert_eq!(back.kind(), e.kind());
        }
    }

    #[test]
    fn a_variant_not_carried_arrives_as_its_message() {
        let e = Error::NotFound {
            what: "threads",
            flag: "PSS_CAPTURE_THREADS",
        };
        let back = decode_error(&encode_error(&e)).unwrap();
        assert!(back.to_string().ends_with(&e.to_string()), "{back}");
    }
}
