//! Collapsed stacks, the input of Brendan Gregg's `flamegraph.pl` and of
//! `inferno-flamegraph`: one line per distinct chain, `THREAD;OUTER;…;INNER COUNT`, the
//! thread as `NAME-TID`, outermost frame first. Frames inlined into the next one are marked
//! `_[i]` and frames named from a perf map (JIT code) `_[j]`, the annotations both tools
//! colour. Names come from the target (its thread names, its symbols): a `;` in one becomes
//! `:`, and control characters are written `\xNN`, so no name can add a frame or a line.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use super::{frame_name, Profile};

/// Writes `profile` as collapsed stacks, sorted, equal lines merged.
pub fn write(profile: &Profile, out: &mut impl Write) -> io::Result<()> {
    for (line, count) in lines(profile) {
        writeln!(out, "{line} {count}")?;
    }
    Ok(())
}

/// The collapsed lines of `profile` with their counts, sorted.
pub fn lines(profile: &Profile) -> BTreeMap<String, u64> {
    let mut lines = BTreeMap::new();
    for s in &profile.stacks {
        let mut line = clean(&format!(
            "{}-{}",
            s.thread_name.to_string_lossy(),
            s.thread_id
        ));
        for f in s.frames.iter().rev() {
            line.push(';');
            line.push_str(&clean(&frame_name(f)));
            if f.inlined {
                line.push_str("_[i]");
            } else if f.jit {
                line.push_str("_[j]");
            }
        }
        *lines.entry(line).or_insert(0) += s.count;
    }
    lines
}

/// `name` with `;` as `:` and control characters as `\xNN`.
fn clean(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            ';' => out.push(':'),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_add_frames_or_lines() {
        assert_eq!(clean("a;b\nc\u{1b}d"), "a:b\\x0ac\\x1bd");
        assert_eq!(clean("ns::f<int> (x)"), "ns::f<int> (x)");
    }
}
