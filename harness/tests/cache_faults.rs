//! Issue 27, item 15: the kernel cache under faults and load, without a VM or a network.
//! `vm/kernel.sh fetch` runs against stand-ins for apt-get, apt-cache and depmod
//! (`tests/cache_faults/`: a mirror with one fake kernel in two flavours, 9.9.9+deb13-amd64 and
//! 9.9.9+deb13-rt-amd64) and a cache of its own. A fetch killed with SIGKILL at each named phase (the test hook
//! `ZCRX_CONFORM_TEST_KILL_AT=download|extract|install`) must leave a cache that the next fetch
//! repairs: the right kernel, its modules.dep, no temp directory left; two fetches at once on
//! one cache must both give the same, whole kernel.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const KVER: &str = "9.9.9+deb13-amd64";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn cache(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("zcrx-cache-faults-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// `kernel.sh fetch debian:9.9.9` on `cache`, in a process group of its own (the hook kills
/// the whole group, as a power cut would).
fn fetch(cache: &Path, kill_at: Option<&str>) -> Child {
    kernel_sh(cache, &["fetch", "debian:9.9.9"], kill_at)
}

/// `kernel.sh ARGS` on `cache` against the fake mirror.
fn kernel_sh(cache: &Path, args: &[&str], kill_at: Option<&str>) -> Child {
    let shims = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cache_faults");
    let path = format!("{}:{}", shims.display(), std::env::var("PATH").unwrap_or_default());
    let mut c = Command::new("bash");
    c.arg(repo().join("vm/kernel.sh"))
        .args(args)
        .env("PATH", path)
        .env("ZCRX_CACHE", cache)
        .env("ZCRX_DEBIAN_MIRROR", "http://fake.invalid/debian")
        .env_remove("ZCRX_CONFORM_TEST_KILL_AT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(p) = kill_at {
        c.env("ZCRX_CONFORM_TEST_KILL_AT", p);
    }
    c.spawn().expect("bash vm/kernel.sh")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A fetch that ended well gave the whole fake kernel, and the cache holds no temp directory.
fn check_fetched(cache: &Path, o: &Output) {
    assert!(o.status.success(), "{}", text(&o.stderr));
    let vmlinuz = text(&o.stdout).lines().last().map(PathBuf::from).expect("the vmlinuz path");
    assert_eq!(std::fs::read_to_string(&vmlinuz).expect("vmlinuz"), format!("fake kernel {KVER}\n"));
    let modules = cache.join(format!("kernels/{KVER}/root/usr/lib/modules/{KVER}"));
    assert!(modules.join("modules.dep").is_file() && modules.join("kernel/fake.ko").is_file(), "{}", modules.display());
    for dir in ["kernels", "debs"] {
        for e in std::fs::read_dir(cache.join(dir)).expect("cache dir") {
            let n = e.expect("entry").file_name().to_string_lossy().into_owned();
            assert!(!n.starts_with('.') || n == ".kernel.lock", "{dir}/{n} left behind");
        }
    }
}

#[test]
fn a_fetch_killed_at_each_phase_leaves_a_cache_the_next_fetch_repairs() {
    for phase in ["download", "extract", "install"] {
        let c = cache(phase);
        let o = fetch(&c, Some(phase)).wait_with_output().expect("wait");
        assert_eq!(o.status.signal(), Some(libc::SIGKILL), "{phase}: the hook did not fire: {}", text(&o.stderr));
        let o = fetch(&c, None).wait_with_output().expect("wait");
        check_fetched(&c, &o);
        let _ = std::fs::remove_dir_all(&c);
    }
}

#[test]
fn two_fetches_at_once_share_one_cache() {
    let c = cache("two");
    let (a, b) = (fetch(&c, None), fetch(&c, None));
    let (a, b) = (a.wait_with_output().expect("wait"), b.wait_with_output().expect("wait"));
    check_fetched(&c, &a);
    check_fetched(&c, &b);
    assert_eq!(text(&a.stdout).lines().last(), text(&b.stdout).lines().last());
    let _ = std::fs::remove_dir_all(&c);
}

/// Flavours never share a cache entry: with the rt kernel fetched first, `debian:9.9.9` is still
/// the amd64 one (both releases end in `-amd64`; the cache lookup once took the rt kernel), and
/// `debian+rt:9.9.9` and the release `debian:9.9.9+deb13-rt-amd64` are the rt one. `list`
/// names each flavour's spec.
#[test]
fn flavours_are_kept_apart_in_the_cache() {
    let c = cache("flavours");
    let run = |args: &[&str]| {
        let o = kernel_sh(&c, args, None).wait_with_output().expect("wait");
        assert!(o.status.success(), "{args:?}: {}", text(&o.stderr));
        text(&o.stdout)
    };
    let kernel_of = |out: &str| {
        let vmlinuz = out.lines().last().map(PathBuf::from).expect("the vmlinuz path");
        std::fs::read_to_string(&vmlinuz).expect("vmlinuz")
    };
    let rt = "fake kernel 9.9.9+deb13-rt-amd64\n";
    assert_eq!(kernel_of(&run(&["fetch", "debian+rt:9.9.9"])), rt);
    assert_eq!(kernel_of(&run(&["fetch", "debian:9.9.9"])), "fake kernel 9.9.9+deb13-amd64\n");
    assert_eq!(kernel_of(&run(&["fetch", "debian+rt:9.9.9"])), rt);
    assert_eq!(kernel_of(&run(&["fetch", "debian:9.9.9+deb13-rt-amd64"])), rt);
    for k in ["9.9.9+deb13-amd64", "9.9.9+deb13-rt-amd64"] {
        assert!(c.join("kernels").join(k).join("info").is_file(), "{k}");
    }
    let specs: Vec<String> =
        run(&["list", "debian+rt:"]).lines().filter_map(|l| l.split_whitespace().next().map(str::to_string)).collect();
    assert_eq!(specs, ["debian+rt:9.9.9"]);
    let o = kernel_sh(&c, &["fetch", "debian+16k:9.9.9"], None).wait_with_output().expect("wait");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let _ = std::fs::remove_dir_all(&c);
}
