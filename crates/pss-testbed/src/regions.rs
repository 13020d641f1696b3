//! Mappings of every kind at known addresses, announced as `region KIND ADDR LEN [PATH]`.

use crate::{check, say};

/// Where the test regions go: far from anything the loader or allocator picks.
const BASE: usize = 0x2000_0000_0000;
const PAGE: usize = 4096;

fn map(addr: usize, len: usize, prot: i32, flags: i32, fd: i32) -> usize {
    // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping; the result is checked.
    let p = unsafe {
        libc::mmap(
            addr as *mut _,
            len,
            prot,
            flags | libc::MAP_FIXED_NOREPLACE,
            fd,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        check(-1, "mmap");
    }
    p as usize
}

/// Maps a private read-write area, a `PROT_NONE` reservation, a file mapping, a shared
/// anonymous area, with free gaps between them.
pub fn map_all() {
    let anon = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    let private = map(BASE, 4 * PAGE, libc::PROT_READ | libc::PROT_WRITE, anon, -1);
    // SAFETY: the area was just mapped read-write.
    unsafe { std::ptr::write_bytes(private as *mut u8, 0xab, 4 * PAGE) };
    say(&format!("region private {private:#x} {}", 4 * PAGE));

    let gap1 = private + 4 * PAGE;
    let reserve = gap1 + 16 * PAGE;
    say(&format!("region gap {gap1:#x} {}", 16 * PAGE));
    map(
        reserve,
        16 * PAGE,
        libc::PROT_NONE,
        anon | libc::MAP_NORESERVE,
        -1,
    );
    say(&format!("region reserve {reserve:#x} {}", 16 * PAGE));

    let path = format!("/tmp/pss-testbed-map-{}.bin", std::process::id());
    std::fs::write(&path, vec![7u8; 2 * PAGE]).expect("write the mapped file");
    let file = std::fs::File::open(&path).expect("open the mapped file");
    use std::os::fd::AsRawFd;
    let fmap_addr = reserve + 16 * PAGE + 8 * PAGE;
    say(&format!(
        "region gap {:#x} {}",
        reserve + 16 * PAGE,
        8 * PAGE
    ));
    let fmap = map(
        fmap_addr,
        2 * PAGE,
        libc::PROT_READ,
        libc::MAP_PRIVATE,
        file.as_raw_fd(),
    );
    // The mapping keeps the file; unlinked now, it leaves nothing behind in /tmp.
    let _ = std::fs::remove_file(&path);
    say(&format!(
        "region file {fmap:#x} {} {path} (deleted)",
        2 * PAGE
    ));

    let shared_addr = fmap + 2 * PAGE + 8 * PAGE;
    say(&format!("region gap {:#x} {}", fmap + 2 * PAGE, 8 * PAGE));
    let shared = map(
        shared_addr,
        3 * PAGE,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_SHARED | libc::MAP_ANONYMOUS,
        -1,
    );
    say(&format!("region shared {shared:#x} {}", 3 * PAGE));
    let exe = std::fs::read_link("/proc/self/exe").expect("readlink /proc/self/exe");
    say(&format!("exe {}", exe.display()));
}

/// Maps `n` one-page regions separated by one-page gaps, so that none merge.
pub fn map_many(n: usize) {
    let start = BASE + (1 << 30);
    for i in 0..n {
        let prot = if i % 2 == 0 {
            libc::PROT_READ
        } else {
            libc::PROT_READ | libc::PROT_WRITE
        };
        map(
            start + i * 2 * PAGE,
            PAGE,
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
        );
    }
    say(&format!("maps {n}"));
}
