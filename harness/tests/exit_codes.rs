//! Whose fault an error is decides the exit code: the user's input exits 2, the machine's
//! (here: a temp directory the scripts cannot safely be unpacked in) exits 4, and the error is
//! printed with its cause.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn run(args: &[&str], tmpdir: Option<&Path>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_zcrx-conform"));
    c.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("..")).stdin(Stdio::null()).args(args);
    if let Some(t) = tmpdir {
        c.env("TMPDIR", t);
    }
    c.output().expect("zcrx-conform")
}

#[test]
fn the_machine_exits_4_and_the_input_exits_2() {
    // A world-writable, non-sticky TMPDIR: unpacking the vm/ scripts there is refused before
    // any script runs (nothing is fetched).
    let unsafe_tmp = std::env::temp_dir().join(format!("zcrx-exit-{}", std::process::id()));
    std::fs::create_dir_all(&unsafe_tmp).expect("tmp");
    std::fs::set_permissions(&unsafe_tmp, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let o = run(&["kernel", "list"], Some(&unsafe_tmp));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    assert!(err.contains("not a safe place"), "{err}");
    let _ = std::fs::remove_dir_all(&unsafe_tmp);

    for spec in ["debian:", "/nonexistent/bzImage", "tree:/nonexistent"] {
        let o = run(&["kernel", "fetch", spec], None);
        assert_eq!(o.status.code(), Some(2), "{spec}: {o:?}");
    }
    let o = run(&["run", "--topology", "no-such-topology", "-q"], None);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
}
