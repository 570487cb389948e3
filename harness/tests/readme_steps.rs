//! README's table of step kinds is generated from the one table of them in
//! `src/case/action.rs` (`zcrx_conform::case::step_reference`); this fails when it is stale.
//! `BLESS=1 cargo test --test readme_steps` writes the table into README.md.

use std::path::PathBuf;

const BEGIN: &str = "<!-- step kinds: generated from src/case/action.rs, do not edit -->\n";
const END: &str = "<!-- end of step kinds -->\n";

#[test]
fn readme_step_table_is_the_generated_one() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(&path).expect("README.md");
    let start = readme.find(BEGIN).expect("README has the step-kinds marker") + BEGIN.len();
    let end = start + readme[start..].find(END).expect("README has the end-of-step-kinds marker");
    let want = zcrx_conform::case::step_reference();
    if readme[start..end] != want && std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, format!("{}{want}{}", &readme[..start], &readme[end..])).expect("write README.md");
        return;
    }
    assert_eq!(readme[start..end], want, "README's step table is stale: rerun with BLESS=1");
}
