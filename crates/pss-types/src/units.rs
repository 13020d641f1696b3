//! Conversions from Linux-natural values to the units the Windows structures hold.
//!
//! Records keep `SystemTime` and `Duration`; the C ABI and the JSON output convert here, once.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// 100-ns intervals between 1601-01-01 and 1970-01-01 (the FILETIME and Unix epochs).
const FILETIME_UNIX_EPOCH: u64 = 116_444_736_000_000_000;

/// A `FILETIME` value as one 64-bit count of 100 ns since 1601-01-01 UTC.
///
/// The C layout splits it into `dwLowDateTime`/`dwHighDateTime`; see [`filetime_parts`].
pub fn filetime(t: SystemTime) -> u64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => FILETIME_UNIX_EPOCH + hundred_ns(d),
        Err(e) => FILETIME_UNIX_EPOCH.saturating_sub(hundred_ns(e.duration())),
    }
}

/// A `FILETIME` for an optional time: 0 when absent, as Windows reports "never".
pub fn filetime_opt(t: Option<SystemTime>) -> u64 {
    t.map_or(0, filetime)
}

/// The inverse of [`filetime`], for values read back from serialized snapshots.
pub fn from_filetime(ft: u64) -> SystemTime {
    if ft >= FILETIME_UNIX_EPOCH {
        UNIX_EPOCH + Duration::from_nanos((ft - FILETIME_UNIX_EPOCH).saturating_mul(100))
    } else {
        UNIX_EPOCH - Duration::from_nanos((FILETIME_UNIX_EPOCH - ft).saturating_mul(100))
    }
}

/// Splits a FILETIME into its (`dwLowDateTime`, `dwHighDateTime`) pair.
pub fn filetime_parts(ft: u64) -> (u32, u32) {
    (ft as u32, (ft >> 32) as u32)
}

/// A duration in 100 ns units (FILETIME durations such as `KernelTime`).
pub fn hundred_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos() / 100).unwrap_or(u64::MAX)
}

/// Seconds since the Unix epoch (0 before it): a `time_t`.
pub fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A duration in `PSS_PERF_RESOLUTION` units (microseconds).
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Clamps a 64-bit count into a Windows `DWORD` field.
pub fn dword(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// Clamps a length in bytes into a Windows `WORD` length field.
pub fn word(v: usize) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filetime_epochs() {
        assert_eq!(filetime(UNIX_EPOCH), FILETIME_UNIX_EPOCH);
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_nanos(1234500);
        assert_eq!(
            filetime(t),
            FILETIME_UNIX_EPOCH + 17_000_000_000_000_000 + 12345
        );
        assert_eq!(from_filetime(filetime(t)), t);
        assert_eq!(
            filetime_parts(0x1234_5678_9abc_def0),
            (0x9abc_def0, 0x1234_5678)
        );
    }

    #[test]
    fn durations() {
        assert_eq!(hundred_ns(Duration::from_millis(1)), 10_000);
        assert_eq!(micros(Duration::from_millis(1)), 1000);
        assert_eq!(dword(1 << 40), u32::MAX);
        assert_eq!(word(70_000), u16::MAX);
    }
}
