//! The README's samples are real output: each sample is a code block after a marker
//! `<!-- sample NAME: written by ... -->`. Tests compare what a run printed with the sample,
//! after a normalisation that removes what changes from run to run (ports, generated names,
//! timings); `KDRAIN_UPDATE_README=1` rewrites the samples from the run instead.

use std::path::PathBuf;

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../README.md")
}

/// Whether this run rewrites the README's samples.
pub fn updating() -> bool {
    std::env::var_os("KDRAIN_UPDATE_README").is_some()
}

/// The README's text.
pub fn text() -> String {
    std::fs::read_to_string(path()).expect("README.md")
}

/// Rewrites the README's sample `name` with `lines`.
pub fn write(name: &str, lines: &[String]) {
    let updated = replace_sample(&text(), name, lines);
    std::fs::write(path(), updated).expect("write README.md");
}

/// Keeps the README's sample `name` equal to `lines` once both are passed through `normalise`;
/// `test` names the test that writes it, for the hint when they differ.
pub fn keep(name: &str, lines: &[String], normalise: impl Fn(&str) -> String, test: &str) {
    if updating() {
        write(name, lines);
        return;
    }
    let readme = sample(&text(), name);
    let norm = |ls: &[String]| ls.iter().map(|l| normalise(l)).collect::<Vec<_>>();
    assert_eq!(
        norm(&readme),
        norm(lines),
        "the README's sample {name} differs from what kdrain printed; rewrite it with \
         KDRAIN_UPDATE_README=1 cargo test -p kdrain-cli --test it {test}"
    );
}

/// The lines of the README's code block after `<!-- sample NAME: ... -->`.
pub fn sample(readme: &str, name: &str) -> Vec<String> {
    let marker = format!("<!-- sample {name}:");
    let start = readme
        .find(&marker)
        .unwrap_or_else(|| panic!("no {marker} in README.md"));
    readme[start..]
        .lines()
        .skip(2)
        .take_while(|l| *l != "```")
        .map(str::to_string)
        .collect()
}

/// `readme` with the code block after `<!-- sample NAME: ... -->` replaced by `lines`.
fn replace_sample(readme: &str, name: &str, lines: &[String]) -> String {
    let marker = format!("<!-- sample {name}:");
    let start = readme.find(&marker).expect("marker");
    let open = start + readme[start..].find("```text\n").expect("code block") + "```text\n".len();
    let close = open + readme[open..].find("```").expect("end of the code block");
    let mut body = lines.join("\n");
    body.push('\n');
    format!("{}{body}{}", &readme[..open], &readme[close..])
}
