//! Issue 27, item 15: the kernel and netdevsim caches under faults and load, without a VM or a
//! network.
//! `vm/kernel.sh fetch` runs against stand-ins for apt-get, apt-cache and depmod
//! (`tests/cache_faults/`: a mirror with one fake kernel in two flavours, 9.9.9+deb13-amd64 and
//! 9.9.9+deb13-rt-amd64) and a cache of its own. A fetch killed with SIGKILL at each named phase (the test hook
//! `ZCRX_CONFORM_TEST_KILL_AT=download|extract|install`) must leave a cache that the next fetch
//! repairs: the right kernel, its modules.dep, no temp directory left; two fetches at once on
//! one cache must both give the same, whole kernel. `vm/netdevsim.sh build` likewise, killed
//! at download, extract, prepare (host tools built), build (module compiled) and install (the
//! module stripped, not yet in place); two builds at once build once; two patch series on one
//! cache each keep their own module. `vm/liburing.sh build` (the source package, zcrx.t) killed
//! at download, build and install, and two builds at once, the same way.

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
    script(&repo().join("vm/kernel.sh"), args, cache, kill_at).spawn().expect("bash vm/kernel.sh")
}

/// `bash SCRIPT ARGS` against the stand-ins (first on PATH) and the fake mirror, on `cache`, in a
/// process group of its own, killed at phase `kill_at` by the test hook if one is given.
fn script(path: &Path, args: &[&str], cache: &Path, kill_at: Option<&str>) -> Command {
    let shims = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cache_faults");
    let path_var = format!("{}:{}", shims.display(), std::env::var("PATH").unwrap_or_default());
    let mut c = Command::new("bash");
    c.arg(path)
        .args(args)
        .env("PATH", path_var)
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
    c
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

// --- netdevsim.sh build ------------------------------------------------------------------------
// The same stand-ins, plus make, patch, strip and dpkg-query (tests/cache_faults/): the mirror
// has the headers, kbuild and source packages of the fake kernel, `make modules` writes a
// netdevsim.ko that says what it was built from (the source and each patch applied, in order).

/// `netdevsim.sh build 9.9.9+deb13-amd64 --variant V` from the scripts in `vm` (the repository's
/// vm/, or a copy with another patch series), on `cache`, in a process group of its own; each
/// `make modules` is logged to `make_log`.
fn nsim(vm: &Path, cache: &Path, variant: &str, kill_at: Option<&str>, make_log: &Path) -> Child {
    script(&vm.join("netdevsim.sh"), &["build", KVER, "--variant", variant], cache, kill_at)
        .env("ZCRX_TEST_MAKE_LOG", make_log)
        .spawn()
        .expect("bash vm/netdevsim.sh")
}

/// What the make stand-in writes for the zcrx variant of the series in `vm`.
fn zcrx_module(vm: &Path) -> String {
    let series = std::fs::read_to_string(vm.join("netdevsim-zcrx/series")).expect("series");
    let mut s = String::from("fake netdevsim.ko built from:\nnetdevsim source\n");
    for p in series.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        s.push_str(&format!("patched: {p}\n"));
    }
    s
}

/// How many modules were built (`make modules` runs logged).
fn builds(make_log: &Path) -> usize {
    std::fs::read_to_string(make_log).map(|s| s.lines().count()).unwrap_or(0)
}

/// A build that ended well printed the path of the whole module of the series in `vm`, its
/// prepared tree is whole (the headers' Makefile points into the cache, the rebuilt host tools
/// are in place), and the cache holds no temp directory. Returns the module's path.
fn check_built(vm: &Path, cache: &Path, o: &Output) -> PathBuf {
    assert!(o.status.success(), "{}", text(&o.stderr));
    let ko = text(&o.stdout).lines().last().map(PathBuf::from).expect("the module's path");
    assert_eq!(std::fs::read_to_string(&ko).expect("netdevsim.ko"), zcrx_module(vm), "{}", ko.display());
    let top = cache.join(format!("netdevsim/{KVER}"));
    let mk =
        std::fs::read_to_string(top.join(format!("kbuild/usr/src/linux-headers-{KVER}/Makefile"))).expect("Makefile");
    assert!(mk.contains(&format!("KBUILD_OUTPUT={}/kbuild/usr/src/linux-headers-{KVER}", top.display())), "{mk}");
    let modpost = top.join("kbuild/usr/lib/linux-kbuild-9.9.9+deb13/scripts/mod/modpost.real-lsb-64");
    assert!(std::fs::read_to_string(&modpost).expect("modpost").contains("rebuilt"), "{}", modpost.display());
    for dir in [cache.join("netdevsim"), top, cache.join("debs")] {
        for e in std::fs::read_dir(&dir).expect("cache dir") {
            let n = e.expect("entry").file_name().to_string_lossy().into_owned();
            assert!(!n.starts_with('.') || n == ".ready", "{}/{n} left behind", dir.display());
        }
    }
    ko
}

/// A copy of the repository's netdevsim scripts and series next to `cache` (`drop_last`: without
/// the series' last patch), whose series is written against the fake kernel's source
/// (`base`: linux-source-9.9 9.9.9-1), so the patches apply as they are and nothing is rebased.
fn vm_copy(cache: &Path, name: &str, drop_last: bool) -> PathBuf {
    let d = cache.with_extension(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("netdevsim-zcrx")).expect("mkdir");
    for f in ["lib.sh", "netdevsim.sh", "merge3.py"] {
        std::fs::copy(repo().join("vm").join(f), d.join(f)).expect("copy");
    }
    for e in std::fs::read_dir(repo().join("vm/netdevsim-zcrx")).expect("series dir") {
        let e = e.expect("entry");
        if e.file_type().expect("type").is_file() {
            std::fs::copy(e.path(), d.join("netdevsim-zcrx").join(e.file_name())).expect("copy");
        }
    }
    std::fs::write(d.join("netdevsim-zcrx/base"), "linux-source-9.9 9.9.9-1\n").expect("base");
    if drop_last {
        let s = std::fs::read_to_string(d.join("netdevsim-zcrx/series")).expect("series");
        let mut lines: Vec<&str> = s.lines().collect();
        lines.pop();
        std::fs::write(d.join("netdevsim-zcrx/series"), lines.join("\n") + "\n").expect("series");
    }
    d
}

#[test]
fn a_netdevsim_build_killed_at_each_phase_leaves_a_cache_the_next_build_repairs() {
    for phase in ["download", "extract", "prepare", "build", "install"] {
        let c = cache(&format!("nsim-{phase}"));
        let vm = vm_copy(&c, "vm", false);
        let log = c.with_extension("make.log");
        let o = nsim(&vm, &c, "zcrx", Some(phase), &log).wait_with_output().expect("wait");
        assert_eq!(o.status.signal(), Some(libc::SIGKILL), "{phase}: the hook did not fire: {}", text(&o.stderr));
        let o = nsim(&vm, &c, "zcrx", None, &log).wait_with_output().expect("wait");
        check_built(&vm, &c, &o);
        let _ = std::fs::remove_dir_all(&c);
        let _ = std::fs::remove_dir_all(&vm);
        let _ = std::fs::remove_file(&log);
    }
}

/// Two runs that need the module at once: one build, and both get the same, whole module (the
/// second waited for the first and must not rebuild it under the first one's VM).
#[test]
fn two_netdevsim_builds_at_once_build_once() {
    let c = cache("nsim-two");
    let vm = vm_copy(&c, "vm", false);
    let log = c.with_extension("make.log");
    let (a, b) = (nsim(&vm, &c, "zcrx", None, &log), nsim(&vm, &c, "zcrx", None, &log));
    let (a, b) = (a.wait_with_output().expect("wait"), b.wait_with_output().expect("wait"));
    let (ka, kb) = (check_built(&vm, &c, &a), check_built(&vm, &c, &b));
    assert_eq!(ka, kb);
    assert_eq!(builds(&log), 1, "the module was built more than once");
    let _ = std::fs::remove_dir_all(&c);
    let _ = std::fs::remove_dir_all(&vm);
    let _ = std::fs::remove_file(&log);
}

/// Two checkouts with different patch series share one cache (two worktrees, or a series
/// changed while a run is under way): the second's build must not replace the module the
/// first's run was given, and going back to the first series finds its module still built.
#[test]
fn another_patch_series_does_not_replace_a_module_in_use() {
    let c = cache("nsim-series");
    let log = c.with_extension("make.log");
    let (vm_a, vm_b) = (vm_copy(&c, "vm-a", false), vm_copy(&c, "vm-b", true));
    let ka = check_built(&vm_a, &c, &nsim(&vm_a, &c, "zcrx", None, &log).wait_with_output().expect("wait"));
    let kb = check_built(&vm_b, &c, &nsim(&vm_b, &c, "zcrx", None, &log).wait_with_output().expect("wait"));
    assert_ne!(ka, kb, "two patch series, one module path");
    assert_eq!(std::fs::read_to_string(&ka).expect("the first module"), zcrx_module(&vm_a), "replaced under its run");
    let again = check_built(&vm_a, &c, &nsim(&vm_a, &c, "zcrx", None, &log).wait_with_output().expect("wait"));
    assert_eq!(again, ka);
    assert_eq!(builds(&log), 2, "the first series' module was built again");
    for d in [c, vm_a, vm_b] {
        let _ = std::fs::remove_dir_all(d);
    }
    let _ = std::fs::remove_file(&log);
}

// --- liburing.sh build -------------------------------------------------------------------------
// Its source package (liburing 9.9-1) from the apt-get stand-in, dpkg-source and make stand-ins
// that build an executable zcrx.t.

/// `liburing.sh build` on `cache`, in a process group of its own; each zcrx.t build is logged
/// to `make_log`.
fn liburing(cache: &Path, kill_at: Option<&str>, make_log: &Path) -> Child {
    script(&repo().join("vm/liburing.sh"), &["build"], cache, kill_at)
        .env("ZCRX_TEST_MAKE_LOG", make_log)
        .env_remove("ZCRX_LIBURING_VERSION")
        .spawn()
        .expect("bash vm/liburing.sh")
}

/// A build that ended well printed the path of a whole zcrx.t, and the cache holds no temp
/// directory.
fn check_liburing(cache: &Path, o: &Output) -> PathBuf {
    assert!(o.status.success(), "{}", text(&o.stderr));
    let t = text(&o.stdout).lines().last().map(PathBuf::from).expect("the zcrx.t path");
    assert_eq!(t, cache.join("liburing/9.9-1/liburing/test/zcrx.t"));
    assert_eq!(std::fs::read_to_string(&t).expect("zcrx.t"), "#!/bin/sh\necho fake zcrx.t\n");
    assert!(cache.join("liburing/9.9-1/source/liburing_9.9-1.dsc").is_file());
    for e in std::fs::read_dir(cache.join("liburing")).expect("cache dir") {
        let n = e.expect("entry").file_name().to_string_lossy().into_owned();
        assert!(!n.starts_with('.'), "liburing/{n} left behind");
    }
    t
}

#[test]
fn a_liburing_build_killed_at_each_phase_leaves_a_cache_the_next_build_repairs() {
    for phase in ["download", "build", "install"] {
        let c = cache(&format!("liburing-{phase}"));
        let log = c.with_extension("make.log");
        let o = liburing(&c, Some(phase), &log).wait_with_output().expect("wait");
        assert_eq!(o.status.signal(), Some(libc::SIGKILL), "{phase}: the hook did not fire: {}", text(&o.stderr));
        check_liburing(&c, &liburing(&c, None, &log).wait_with_output().expect("wait"));
        let _ = std::fs::remove_dir_all(&c);
        let _ = std::fs::remove_file(&log);
    }
}

/// Two runs that need zcrx.t at once: one build, both get the same, whole test (the second
/// waited for the first and must not rebuild, removing the first one's zcrx.t under it).
#[test]
fn two_liburing_builds_at_once_build_once() {
    let c = cache("liburing-two");
    let log = c.with_extension("make.log");
    let (a, b) = (liburing(&c, None, &log), liburing(&c, None, &log));
    let (a, b) = (a.wait_with_output().expect("wait"), b.wait_with_output().expect("wait"));
    assert_eq!(check_liburing(&c, &a), check_liburing(&c, &b));
    assert_eq!(builds(&log), 1, "zcrx.t was built more than once");
    let _ = std::fs::remove_dir_all(&c);
    let _ = std::fs::remove_file(&log);
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
