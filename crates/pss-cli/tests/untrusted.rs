//! The target is untrusted input, and `pss` often runs as root: what it names and maps must
//! neither block `pss`, nor make it open what it should not, nor balloon its memory, nor
//! reach the terminal raw — and one unreadable fd must not fail a capture.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A directory of this test's own that `nobody` may read, under the system's temporary
/// directory; removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("pss-untrusted-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        Scratch(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `cmd`, failing the test if it does not finish within 60 s (a hang), killing it then
/// (by pid).
fn within_a_minute(cmd: &mut Command, what: &str) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(60);
    let waiter = std::thread::spawn(move || child.wait_with_output().unwrap());
    while !waiter.is_finished() {
        if Instant::now() > deadline {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(pid).unwrap(),
                rustix::process::Signal::KILL,
            );
            panic!("{what}: still running after a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    waiter.join().unwrap()
}

/// `setpriv` arguments that make the rest run as `nobody`.
const AS_NOBODY: &[&str] = &["--reuid=65534", "--regid=65534", "--clear-groups"];

/// Builds `zoo/tiny.c` as a shared library at `path`.
fn tiny_library(path: &Path) {
    run_ok(
        Command::new("cc")
            .args(["-shared", "-fPIC", "-g", "-o"])
            .arg(path)
            .arg(zoo_src().join("tiny.c")),
        "building tiny.c",
    );
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A target owned by `nobody` maps two modules, which are then deleted and replaced: one by
/// a FIFO of the name `maps` shows (`… (deleted)`), one by a link to a device. `pss stack`
/// and `pss capture --all`, as root and as `nobody`, finish, succeed, and open neither.
/// (The names start `ld-` so that the engine's gadget scan, which looks at the loader
/// first, meets them too.)
#[test]
fn a_fifo_or_a_link_in_place_of_a_deleted_module_blocks_nothing() {
    let dir = Scratch::new("fifo");
    let (fifo_lib, link_lib) = (dir.0.join("ld-fifo.so"), dir.0.join("ld-link.so"));
    tiny_library(&fifo_lib);
    tiny_library(&link_lib);
    let exe = build_c("hostile", false);
    let mut args = AS_NOBODY.to_vec();
    let (exe_s, fifo_s, link_s) = (
        exe.to_str().unwrap(),
        fifo_lib.to_str().unwrap(),
        link_lib.to_str().unwrap(),
    );
    args.extend([exe_s, "map", fifo_s, link_s]);
    let mut t = Target::spawn(Path::new("setpriv"), &args);
    let pid = t.fact_u64("pid", 0).to_string();
    std::fs::remove_file(&fifo_lib).unwrap();
    std::fs::remove_file(&link_lib).unwrap();
    let fifo = format!("{fifo_s} (deleted)");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        fifo.as_str(),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o666),
        0,
    )
    .unwrap();
    std::os::unix::fs::symlink("/dev/zero", format!("{link_s} (deleted)")).unwrap();

    for (who, prefix) in [("root", &[][..]), ("nobody", AS_NOBODY)] {
        for cmd in [vec!["stack", &pid], vec!["capture", &pid, "--all"]] {
            let mut c = Command::new("setpriv");
            c.args(prefix)
                .arg(pss())
                .args(&cmd)
                .env_remove("XDG_RUNTIME_DIR");
            if who == "root" {
                c = Command::new(pss());
                c.args(&cmd);
            }
            let out = within_a_minute(&mut c, &format!("{who}: pss {cmd:?}"));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{who}: pss {cmd:?}: {err}");
            if who == "nobody" && cmd[0] == "stack" {
                // Without map_files, the paths are tried: refused, not opened.
                assert!(err.contains("FIFO"), "{err}");
                assert!(err.contains("symbolic link"), "{err}");
            }
        }
    }
    assert_eq!(t.ask("ping", ""), "pong");
}

/// A module whose section headers claim a 1 GiB `.eh_frame`, in a sparse file of that
/// size: `pss stack` refuses the claim and stays small.
#[test]
fn a_module_claiming_a_huge_section_costs_no_memory() {
    let dir = Scratch::new("sparse");
    let lib = dir.0.join("libhuge.so");
    tiny_library(&lib);
    claim_huge_eh_frame(&lib, 1 << 30);
    let exe = build_c("hostile", false);
    let mut t = Target::spawn(&exe, &["map", lib.to_str().unwrap()]);
    let pid = t.pid.to_string();
    // Python measures the peak memory of its child, pss.
    let script = "import resource, subprocess, sys\n\
                  r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n\
                  print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)\n\
                  print(r.stderr, file=sys.stderr)";
    let out = within_a_minute(
        Command::new("python3")
            .args(["-c", script])
            .arg(pss())
            .args(["stack", &pid]),
        "pss stack",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    let mut f = text.split_whitespace();
    let kib: u64 = f.next().unwrap().parse().unwrap();
    assert_eq!(f.next(), Some("0"), "pss stack failed: {err}");
    assert!(kib < 256 * 1024, "pss stack peaked at {kib} KiB: {err}");
    assert!(err.contains("cap"), "{err}");
    assert_eq!(t.ask("ping", ""), "pong");
}

/// Makes the `.eh_frame` section header of the ELF file at `path` claim `size` bytes at the
/// file's end, and extends the file (sparsely) to hold them.
fn claim_huge_eh_frame(path: &Path, size: u64) {
    let mut b = std::fs::read(path).unwrap();
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes(b[o..o + 2].try_into().unwrap()) as usize;
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as usize;
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap()) as usize;
    let (shoff, shentsize, shnum, shstrndx) = (
        u64_at(&b, 0x28),
        u16_at(&b, 0x3a),
        u16_at(&b, 0x3c),
        u16_at(&b, 0x3e),
    );
    let shdr = |i: usize| shoff + i * shentsize;
    let strtab = u64_at(&b, shdr(shstrndx) + 0x18);
    let name_of = |b: &[u8], i: usize| {
        let at = strtab + u32_at(b, shdr(i));
        let end = at + b[at..].iter().position(|&c| c == 0).unwrap();
        b[at..end].to_vec()
    };
    let i = (0..shnum)
        .find(|&i| name_of(&b, i) == b".eh_frame")
        .expect("an .eh_frame section");
    let end = b.len() as u64;
    let h = shdr(i);
    b[h + 0x18..h + 0x20].copy_from_slice(&end.to_le_bytes());
    b[h + 0x20..h + 0x28].copy_from_slice(&size.to_le_bytes());
    std::fs::write(path, &b).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(end + size).unwrap();
}

/// Thread names, a memfd name and a file path chosen to drive a terminal (escape
/// sequences) and forge table rows (newlines): the text escapes each, the JSON keeps them
/// exact, and the `\012` of `maps` comes back as the newline it stands for.
#[test]
fn names_and_paths_reach_the_terminal_escaped_and_json_exact() {
    let dir = Scratch::new("names");
    let exe = build_c("hostile", false);
    let mut t = Target::spawn(&exe, &["names", dir.0.to_str().unwrap()]);
    let p = t.pid.to_string();
    let flags = "threads,thread-context,handles,handle-name-information,va-space,va-space-section-information";
    let text = pss_ok(&["capture", &p, "--flags", flags]);
    let stacks = pss_ok(&["stack", &p]);
    for (what, out) in [("capture", &text), ("stack", &stacks)] {
        let raw: Vec<u8> = out
            .bytes()
            .filter(|&c| (c < 0x20 && c != b'\n') || c == 0x7f)
            .collect();
        assert!(
            raw.is_empty(),
            "{what} printed control bytes {raw:?}:\n{out}"
        );
        assert!(out.contains("\\e]0;owned\\x07"), "{what}:\n{out}");
        assert!(out.contains("a\\nTID 1 fake"), "{what}:\n{out}");
        assert!(
            !out.lines().any(|l| l.starts_with("TID 1 fake")),
            "{what}:\n{out}"
        );
    }
    assert!(text.contains("memfd:\\e[2J\\nforged row"), "{text}");
    assert!(text.contains("evil\\nname"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&pss_ok(&["capture", &p, "--flags", flags, "--json"])).unwrap();
    let doc = json.to_string();
    assert!(doc.contains(r#""\u001b]0;owned\u0007""#), "{doc}");
    let evil = format!("{}/evil\nname", dir.0.display());
    let names: Vec<&str> = json["va_space"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["mapped_file_name"].as_str())
        .collect();
    assert!(names.contains(&evil.as_str()), "{names:?}");
    assert_eq!(t.ask("ping", ""), "pong");
}

/// One fd on a path longer than a page: the kernel will not name it, and the capture
/// lists the fd with a warning instead of failing.
#[test]
fn an_fd_on_a_path_longer_than_a_page_is_a_warning_not_a_failure() {
    let dir = Scratch::new("long");
    let exe = build_c("hostile", false);
    let mut t = Target::spawn(&exe, &["longpath", dir.0.to_str().unwrap()]);
    let fd = t.fact_u64("longfd", 0);
    let p = t.pid.to_string();
    let json: serde_json::Value = serde_json::from_str(&pss_ok(&[
        "capture",
        &p,
        "--flags",
        "handles,handle-name-information",
        "--json",
    ]))
    .unwrap();
    let listed = json["handles"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h["handle"].as_u64() == Some(fd));
    assert!(listed, "fd {fd} is not listed: {json}");
    let warned = json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.to_string().contains("name could not be read"));
    assert!(warned, "{json}");
    assert_eq!(t.ask("ping", ""), "pong");
}
