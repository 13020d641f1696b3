//! Test hooks: the engine kills itself (SIGKILL) at a named point of its work when
//! `PSS_ENGINE_FAILPOINT` names that point, so that tests can check what an engine death at
//! exactly that instant leaves behind (`docs/engine.md`, "No window"). Without the variable
//! nothing happens.

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
