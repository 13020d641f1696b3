//! Test hooks: the engine kills itself (SIGKILL) at a named point of its work when
//! `PSS_ENGINE_FAILPOINT` names that point, so that tests can check what an engine death at
//! exactly that instant leaves behind (`docs/engine.md`, "No window"). Without the variable
//! nothing happens. Also here: the tests' other hooks, [`test_setting`] and [`test_skips`].

use std::sync::OnceLock;

/// Dies here if `PSS_ENGINE_FAILPOINT` is `name`.
pub fn hit(name: &str) {
    static POINT: OnceLock<Option<String>> = OnceLock::new();
    let point = POINT.get_or_init(|| std::env::var("PSS_ENGINE_FAILPOINT").ok());
    if point.as_deref() == Some(name) {
        let me = rustix::process::getpid();
        let _ = rustix::process::kill_process(me, rustix::process::Signal::KILL);
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
}

/// A test setting from the environment (a number), read once per name; never in a
/// privileged (`AT_SECURE`) process.
pub fn test_setting(name: &'static str) -> Option<u64> {
    if pss_sys::is_secure_exec() {
        return None;
    }
    std::env::var(name).ok()?.parse().ok()
}

/// Whether the tests asked the engine to skip safety check `check`
/// (`PSS_ENGINE_TEST_SKIP=CHECK[,CHECK…]`), to reach the path the check guards; never in a
/// privileged (`AT_SECURE`) process. Today: `uffd`, the refusal to clone a target with
/// userfaultfd-registered memory.
pub fn test_skips(check: &str) -> bool {
    static SKIP: OnceLock<Vec<String>> = OnceLock::new();
    let skip = SKIP.get_or_init(|| {
        if pss_sys::is_secure_exec() {
            return Vec::new();
        }
        std::env::var("PSS_ENGINE_TEST_SKIP")
            .map(|v| v.split(',').map(str::to_string).collect())
            .unwrap_or_default()
    });
    skip.iter().any(|s| s == check)
}
