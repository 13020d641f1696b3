//! The README's examples are the programs the tests run: each code block after an
//! `<!-- example: PATH -->` line is the file at PATH, byte for byte, and each face the
//! README installs for (shell, C, Rust, Python) has one.

use std::path::Path;

/// (path, block) for every example block of the README.
fn examples(readme: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        let Some(path) = line
            .strip_prefix("<!-- example: ")
            .and_then(|rest| rest.strip_suffix(" -->"))
        else {
            continue;
        };
        let fence = lines.next().unwrap_or_default();
        assert!(fence.starts_with("```"), "no code block after {line}");
        let mut block = String::new();
        for l in lines.by_ref().take_while(|l| *l != "```") {
            block.push_str(l);
            block.push('\n');
        }
        found.push((path.to_string(), block));
    }
    found
}

#[test]
fn every_example_in_the_readme_is_the_file_the_tests_run() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    let found = examples(&readme);
    let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "examples/pss_threads.sh",
            "examples/pss_threads.c",
            "crates/pss/examples/threads.rs",
            "examples/pss_threads.py"
        ]
    );
    for (path, block) in found {
        let file = std::fs::read_to_string(repo.join(&path)).unwrap();
        assert!(
            file == block,
            "the README's copy of {path} differs from the file; paste the file in again"
        );
    }
}
