//! The table of step kinds in docs/case-format.md is generated from the one table of them in
//! `src/case/action.rs` (`zcrx_conform::case::step_reference`); this fails when it is stale.
//! `BLESS=1 cargo test --test doc_steps` writes the table into docs/case-format.md.

use std::path::PathBuf;

const BEGIN: &str = "<!-- step kinds: generated from src/case/action.rs, do not edit -->\n";
const END: &str = "<!-- end of step kinds -->\n";

#[test]
fn readme_step_table_is_the_generated_one() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/case-format.md");
    let readme = std::fs::read_to_string(&path).expect("docs/case-format.md");
    let start = readme.find(BEGIN).expect("docs/case-format.md has the step-kinds marker") + BEGIN.len();
    let end = start + readme[start..].find(END).expect("docs/case-format.md has the end-of-step-kinds marker");
    let want = zcrx_conform::case::step_reference();
    if readme[start..end] != want && std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, format!("{}{want}{}", &readme[..start], &readme[end..]))
            .expect("write docs/case-format.md");
        return;
    }
    assert_eq!(readme[start..end], want, "docs/case-format.md's step table is stale: rerun with BLESS=1");
}

const KEYS_BEGIN: &str = "<!-- case keys: generated from src/case/format.rs, do not edit -->\n";
const KEYS_END: &str = "<!-- end of case keys -->\n";

/// The table of a case file's top-level keys (the `fixes:` and `cve:` tags among them) is
/// generated from the format's doc comments; `BLESS=1` writes it.
#[test]
fn key_table_is_the_generated_one() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/case-format.md");
    let doc = std::fs::read_to_string(&path).expect("docs/case-format.md");
    let start = doc.find(KEYS_BEGIN).expect("docs/case-format.md has the case-keys marker") + KEYS_BEGIN.len();
    let end = start + doc[start..].find(KEYS_END).expect("docs/case-format.md has the end-of-case-keys marker");
    let want = zcrx_conform::case::field_reference();
    if doc[start..end] != want && std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, format!("{}{want}{}", &doc[..start], &doc[end..])).expect("write docs/case-format.md");
        return;
    }
    assert_eq!(doc[start..end], want, "docs/case-format.md's key table is stale: rerun with BLESS=1");
}
