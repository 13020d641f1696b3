//! `pss-engine`: the capture engine process, started by the `pss` library (and libpss) in
//! a calling process, never by hand (`docs/engine.md`).

fn main() {
    pss_engine::main_if_requested();
    eprintln!(
        "pss-engine: the capture engine of the pss library; it is started by the library, not by hand (see docs/engine.md)"
    );
    std::process::exit(2);
}
