//! What the benchmarks share: their command line and their statistics.

/// The median of `v` (sorted in place).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// The sizes in MiB given on the command line of bench `name` (else `default`), after
/// printing the command that reproduces the run. `None` when not run by `cargo bench`
/// (`cargo test --benches` passes no `--bench`): nothing to do then.
pub fn sizes_mib(name: &str, default: &[usize]) -> Option<Vec<usize>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        return None;
    }
    let mut sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    if sizes.is_empty() {
        sizes = default.to_vec();
    }
    let list: Vec<String> = sizes.iter().map(usize::to_string).collect();
    println!(
        "Command: cargo bench -p pss-testbed --bench {name} -- {}",
        list.join(" ")
    );
    Some(sizes)
}
