//! What reaches a terminal from a target: names, paths, symbols and messages quoting them
//! are the target's to choose, and a thread called `\e]0;…\a` would retitle the terminal,
//! a path holding `\n` forge a table row. Every such string goes through [`shown`] on its
//! way into text output (JSON keeps the exact bytes, escaped its own way): control
//! characters and the Unicode controls that reorder or hide text become escapes, as
//! `ls -b` and `lsfd` print them, and so does the backslash, so that nothing is ambiguous.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::fmt::Write;
use std::os::unix::ffi::OsStrExt;

/// `s` safe for a terminal (see the module's doc).
pub fn shown(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push(&mut out, c);
    }
    Cow::Owned(out)
}

/// [`shown`] for bytes that may not be UTF-8 (a Linux name): invalid bytes become `\xNN`.
pub fn shown_os(s: &OsStr) -> String {
    let mut out = String::with_capacity(s.len());
    for chunk in s.as_bytes().utf8_chunks() {
        for c in chunk.valid().chars() {
            push(&mut out, c);
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

fn needs_escape(c: char) -> bool {
    c == '\\' || c.is_control() || reorders(c)
}

/// The Unicode format characters that change how a terminal shows the text around them:
/// bidirectional overrides, embeddings and isolates, marks, and zero-width characters.
fn reorders(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

fn push(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        '\u{1b}' => out.push_str("\\e"),
        c if (c as u32) < 0x100 && needs_escape(c) => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if needs_escape(c) => {
            let _ = write!(out, "\\u{{{:04x}}}", c as u32);
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_become_escapes_and_the_rest_stays() {
        assert_eq!(shown("worker-1"), "worker-1");
        assert_eq!(shown("é ü 名前"), "é ü 名前");
        assert_eq!(shown("\u{1b}]0;owned\u{7}x"), "\\e]0;owned\\x07x");
        assert_eq!(shown("a\nb\tc\rd\\e"), "a\\nb\\tc\\rd\\\\e");
        assert_eq!(shown("\u{7f}\u{9b}31m"), "\\x7f\\x9b31m");
        assert_eq!(shown("abc\u{202e}fdp.exe"), "abc\\u{202e}fdp.exe");
        assert_eq!(shown_os(OsStr::from_bytes(b"/tmp/\xff\n")), "/tmp/\\xff\\n");
    }
}
