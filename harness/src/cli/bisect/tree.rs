//! `bisect CASE --kernel tree:PATH --good G --bad B`: `git bisect run` over the commits of a
//! kernel git tree. The user's checkout is never modified: the bisection runs in a git
//! worktree of it under `<cache>/bisect/` (made once and reused, so each step's vm/build-tree.sh
//! build is incremental), detached, with its own per-worktree bisect state. Each step is this
//! binary's hidden `bisect-step`: build and boot the checked-out commit, run the case, and exit
//! 0 when it behaves as the good end did, 1 when not, 125 when the commit cannot be tested.
//!
//! A new worktree starts from the commit the tree has checked out; when that tree is built in place
//! (a `.config` and a `vmlinux`), its build products (the files git ignores) are copied in before
//! the worktree moves to the good end, so the first build recompiles what differs between the two
//! commits instead of the whole kernel (a full build takes 22-44 min on 2 cores). Every file keeps
//! its time in the tree, so `make` sees what it would see there; the files the tree has modified but
//! not committed, and those the checkout of the good end changes, are newer, and rebuilt.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{observe, Seen};
use crate::cli::{BisectArgs, BisectStepArgs};
use crate::error::{Error, Verdict};
use crate::report::escape::printable;
use crate::vm::KernelSpec;

/// Where the step results are kept inside the worktree (ignored by the kernel's .gitignore,
/// which ignores dot files).
const STATE: &str = ".zcrx-bisect";

/// `git -C dir ARGS`: its standard output, or an error with what it printed on stderr.
fn git_out(dir: &Path, args: &[&str]) -> Result<Vec<u8>, Error> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::environment(format!("git: {e}")))?;
    if !out.status.success() {
        return Err(Error::environment(format!(
            "git -C {} {}: {}",
            dir.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}

fn git(dir: &Path, args: &[&str]) -> Result<String, Error> {
    git_out(dir, args).map(|o| String::from_utf8_lossy(&o).trim().to_string())
}

/// The NUL-separated paths `git -C dir ARGS` (with `-z`) prints.
fn git_paths(dir: &Path, args: &[&str]) -> Result<Vec<PathBuf>, Error> {
    use std::os::unix::ffi::OsStrExt;
    Ok(git_out(dir, args)?
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| PathBuf::from(std::ffi::OsStr::from_bytes(p)))
        .collect())
}

/// Whether `src` has been built in place (what vm/build-tree.sh leaves).
fn built_in_place(src: &Path) -> bool {
    src.join(".config").is_file() && src.join("vmlinux").is_file()
}

/// Gives `to` the modification time of `from` (regular files only).
fn same_time(from: &Path, to: &Path) -> Result<(), Error> {
    let t = std::fs::metadata(from)
        .and_then(|m| m.modified())
        .map_err(|e| Error::environment(format!("{}: {e}", from.display())))?;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(to)
        .map_err(|e| Error::environment(format!("{}: {e}", to.display())))?;
    f.set_modified(t).map_err(|e| Error::environment(format!("{}: {e}", to.display())))
}

/// Makes the fresh worktree `dir` (checked out at `src`'s HEAD) what `src` is to `make`: its build
/// products (the files git ignores, except the per-boot module links and our lock and state) are
/// copied in, and every file keeps the time it has in `src`, committed sources included; the
/// files `src` has modified since HEAD get the current time, so they are rebuilt from the
/// committed text. Returns the number of files copied.
fn seed(src: &Path, dir: &Path) -> Result<usize, Error> {
    let skip = [".virtme_mods", ".zcrx-conform.lock", STATE, ".git"];
    let plain = |rel: &Path| {
        !rel.is_absolute()
            && rel.components().all(|c| matches!(c, std::path::Component::Normal(_)))
            && !rel.components().next().is_some_and(|c| skip.iter().any(|s| c.as_os_str() == *s))
    };
    let dirty: std::collections::HashSet<PathBuf> =
        git_paths(src, &["diff", "-z", "--name-only", "HEAD"])?.into_iter().collect();
    for rel in git_paths(src, &["ls-files", "-z"])? {
        let from = src.join(&rel);
        if plain(&rel) && !dirty.contains(&rel) && std::fs::symlink_metadata(&from).is_ok_and(|m| m.is_file()) {
            same_time(&from, &dir.join(&rel))?;
        }
    }
    let mut n = 0;
    for rel in git_paths(src, &["ls-files", "-z", "--others", "--ignored", "--exclude-standard"])? {
        if !plain(&rel) {
            continue;
        }
        let (from, to) = (src.join(&rel), dir.join(&rel));
        let meta =
            std::fs::symlink_metadata(&from).map_err(|e| Error::environment(format!("{}: {e}", from.display())))?;
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::environment(format!("{}: {e}", parent.display())))?;
        }
        if meta.file_type().is_symlink() {
            let target =
                std::fs::read_link(&from).map_err(|e| Error::environment(format!("{}: {e}", from.display())))?;
            let _ = std::fs::remove_file(&to);
            std::os::unix::fs::symlink(&target, &to)
                .map_err(|e| Error::environment(format!("{}: {e}", to.display())))?;
        } else if meta.is_file() {
            std::fs::copy(&from, &to)
                .map_err(|e| Error::environment(format!("{} -> {}: {e}", from.display(), to.display())))?;
            same_time(&from, &to)?;
        } else {
            continue;
        }
        n += 1;
    }
    let now = std::time::SystemTime::now();
    for rel in &dirty {
        if let Ok(f) = std::fs::OpenOptions::new().write(true).open(dir.join(rel)) {
            f.set_modified(now).map_err(|e| Error::environment(format!("{}: {e}", rel.display())))?;
        }
    }
    Ok(n)
}

fn commit_of(dir: &Path, rev: &str) -> Result<String, Error> {
    if rev.starts_with('-') || rev.is_empty() {
        return Err(Error::bad_input(format!("`{rev}` is not a revision")));
    }
    git(dir, &["rev-parse", "--verify", "--end-of-options", &format!("{rev}^{{commit}}")])
        .map_err(|e| Error::bad_input(e.to_string()))
}

/// The worktree for bisecting `src`: `<cache>/bisect/<name>-<hash of its path>`.
fn worktree_for(src: &Path, at: &str) -> Result<PathBuf, Error> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in src.as_os_str().as_encoded_bytes() {
        h = (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    let name = src.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let name: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c)).collect();
    let dir = crate::paths::cache_dir().join("bisect").join(format!("{name}-{h:016x}"));
    if dir.join(".git").exists() {
        // Ours from an earlier bisection: same repository? Then end any bisection left over.
        let common = git(&dir, &["rev-parse", "--git-common-dir"])?;
        let want = git(src, &["rev-parse", "--git-common-dir"])?;
        let abs = |d: &Path, p: &str| d.join(p).canonicalize().unwrap_or_else(|_| PathBuf::from(p));
        if abs(&dir, &common) != abs(src, &want) {
            return Err(Error::environment(format!(
                "{} is a worktree of another repository; remove it",
                dir.display()
            )));
        }
        let _ = git(&dir, &["bisect", "reset", "--no-checkout"]);
        git(&dir, &["checkout", "--detach", "--quiet", at])?;
    } else {
        std::fs::create_dir_all(dir.parent().unwrap_or(Path::new("/")))
            .map_err(|e| Error::environment(e.to_string()))?;
        let head = commit_of(src, "HEAD")?;
        eprintln!("bisect: git worktree add --detach {} {head}", dir.display());
        git(src, &["worktree", "add", "--detach", &dir.display().to_string(), &head])?;
        if built_in_place(src) {
            let t = std::time::Instant::now();
            let n = seed(src, &dir)?;
            eprintln!("bisect: copied {n} build products of {} ({:.0} s)", src.display(), t.elapsed().as_secs_f64());
        }
        git(&dir, &["checkout", "--detach", "--quiet", at])?;
    }
    Ok(dir)
}

fn state_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(STATE).join(format!("{name}.json"))
}

fn save(dir: &Path, name: &str, s: &Seen) -> Result<(), Error> {
    std::fs::create_dir_all(dir.join(STATE)).map_err(|e| Error::environment(e.to_string()))?;
    let text = serde_json::to_string(s).map_err(|e| Error::environment(e.to_string()))?;
    crate::report::write_atomic(&state_file(dir, name), &text).map_err(|e| Error::environment(e.to_string()))
}

fn load(path: &Path) -> Result<Seen, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::environment(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| Error::environment(format!("{}: {e}", path.display())))
}

/// Builds and boots the commit checked out in `dir`, runs the case, records what it saw.
fn observe_here(dir: &Path, id: &str, topology: &[String], timeout: f64) -> Result<(String, Seen), Error> {
    let sha = git(dir, &["rev-parse", "HEAD"])?;
    let kernel = KernelSpec::Tree { path: dir.to_path_buf(), kasan: false, gcov: false, debug: false };
    let (seen, _) = observe(&kernel, id, topology, timeout)?;
    save(dir, &sha, &seen)?;
    Ok((sha, seen))
}

pub fn main(a: &BisectArgs, src: &Path) -> Result<Verdict, Error> {
    let (Some(good), Some(bad)) = (a.good.as_deref(), a.bad.as_deref()) else {
        return Err(Error::bad_input("--kernel tree:PATH needs --good REV and --bad REV"));
    };
    let top = git(src, &["rev-parse", "--show-toplevel"])
        .map_err(|e| Error::bad_input(format!("{} is not a git tree: {e}", src.display())))?;
    let src = PathBuf::from(top);
    let (good, bad) = (commit_of(&src, good)?, commit_of(&src, bad)?);
    let dir = worktree_for(&src, &good)?;
    let _ = std::fs::remove_dir_all(dir.join(STATE));
    eprintln!("bisect: observing {} at the good end {good}", a.id);
    let (_, old) = observe_here(&dir, &a.id, &a.topology.names(), a.timeout.timeout)?;
    git(&dir, &["checkout", "--detach", "--quiet", &bad])?;
    eprintln!("bisect: observing {} at the bad end {bad}", a.id);
    let (_, new) = observe_here(&dir, &a.id, &a.topology.names(), a.timeout.timeout)?;
    if old.same(&new) {
        println!("{}: no observable change between {good} and {bad} (2 builds and boots)", printable(&a.id));
        return Ok(Verdict::Passed);
    }
    save(&dir, "reference", &old)?;
    git(&dir, &["bisect", "start", &bad, &good])?;
    let exe = std::env::current_exe().map_err(|e| Error::environment(format!("cannot find this binary: {e}")))?;
    let mut run = Command::new("git");
    run.arg("-C").arg(&dir).args(["bisect", "run"]).arg(&exe).arg("bisect-step").arg(&a.id);
    run.arg(format!("--topology={}", a.topology.names().join(","))).arg(format!("--timeout={}", a.timeout.timeout));
    eprintln!("bisect: git bisect run in {}", dir.display());
    let out = run
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Error::environment(format!("git bisect run: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    eprint!("{text}");
    let first = text.lines().find_map(|l| l.strip_suffix(" is the first bad commit")).map(str::to_string);
    let _ = git(&dir, &["bisect", "reset", "--no-checkout"]);
    let Some(first) = first else {
        return Err(Error::environment(format!("git bisect run found no first changed commit (exit {})", out.status)));
    };
    let parent = git(&dir, &["rev-parse", &format!("{first}^")]).unwrap_or_default();
    let steps = std::fs::read_dir(dir.join(STATE)).map(|d| d.count()).unwrap_or(1) - 1;
    let new = load(&state_file(&dir, &first)).unwrap_or(new);
    let old = load(&state_file(&dir, &parent)).unwrap_or(old);
    println!(
        "{}: changed between {parent} (last old) and {first} (first new); {steps} commit(s) built and booted",
        printable(&a.id)
    );
    print!("last old:\n{}first new:\n{}", old.render(), new.render());
    Ok(Verdict::Passed)
}

/// One `git bisect run` step, in the worktree (the current directory).
pub fn step(a: &BisectStepArgs) -> Result<Verdict, Error> {
    let dir = std::env::current_dir().map_err(|e| Error::environment(e.to_string()))?;
    let reference = load(&state_file(&dir, "reference"))?;
    match observe_here(&dir, &a.id, &a.topology.names(), a.timeout.timeout) {
        Ok((sha, s)) => {
            let same = s.same(&reference);
            eprintln!("bisect-step: {sha}: {}", if same { "as the good end (old)" } else { "changed (new)" });
            Ok(if same { Verdict::Passed } else { Verdict::Failed })
        }
        Err(e) => {
            eprintln!("bisect-step: cannot test this commit: {e}");
            Ok(Verdict::Untestable)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn sh_git(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"])
            .args(args)
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "git {args:?}");
    }

    fn mtime(p: &Path) -> std::time::SystemTime {
        fs::metadata(p).and_then(|m| m.modified()).expect("mtime")
    }

    /// A built tree seeds a worktree so that make rebuilds exactly what differs: the file the
    /// checkout of another commit changes, and the file the tree has modified but not committed.
    #[test]
    fn seeding_makes_only_changed_sources_newer_than_their_objects() {
        let base = std::env::temp_dir().join(format!("zcrx-seed-{}", std::process::id()));
        let (src, dir) = (base.join("src"), base.join("wt"));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(&src).expect("mkdir");
        sh_git(&src, &["init", "-q"]);
        fs::write(src.join(".gitignore"), "*.o\n.config\nvmlinux\n.virtme_mods/\n").expect("write");
        for f in ["clean.c", "changed.c", "dirty.c"] {
            fs::write(src.join(f), "int x;\n").expect("write");
        }
        sh_git(&src, &["add", "-A"]);
        sh_git(&src, &["commit", "-qm", "good"]);
        fs::write(src.join("changed.c"), "int y;\n").expect("write");
        sh_git(&src, &["commit", "-qam", "head"]);
        for f in ["clean.o", "changed.o", "dirty.o", ".config", "vmlinux"] {
            fs::write(src.join(f), f).expect("write");
        }
        fs::create_dir_all(src.join(".virtme_mods")).expect("mkdir");
        fs::write(src.join(".virtme_mods/m"), "m").expect("write");
        fs::write(src.join("dirty.c"), "int z;\n").expect("write");
        assert!(built_in_place(&src));
        // File times come from a coarse clock: what follows must be in a later tick.
        std::thread::sleep(std::time::Duration::from_millis(50));

        git(&src, &["worktree", "add", "--detach", &dir.display().to_string(), "HEAD"]).expect("worktree");
        let n = seed(&src, &dir).expect("seed");
        git(&dir, &["checkout", "--detach", "--quiet", "HEAD~1"]).expect("checkout");
        assert_eq!(n, 5, "the objects, .config and vmlinux; not .virtme_mods");
        assert_eq!(fs::read_to_string(dir.join("clean.o")).expect("read"), "clean.o");
        assert!(!dir.join(".virtme_mods").exists());
        assert!(mtime(&dir.join("clean.c")) <= mtime(&dir.join("clean.o")), "an unchanged source is not rebuilt");
        assert_eq!(mtime(&dir.join("clean.o")), mtime(&src.join("clean.o")), "times are the tree's");
        assert_eq!(mtime(&dir.join("clean.c")), mtime(&src.join("clean.c")), "times are the tree's");
        assert!(mtime(&dir.join("changed.c")) > mtime(&dir.join("changed.o")), "the commit's change is rebuilt");
        assert!(mtime(&dir.join("dirty.c")) > mtime(&dir.join("dirty.o")), "the tree's own edit is rebuilt");
        assert_eq!(fs::read_to_string(dir.join("dirty.c")).expect("read"), "int x;\n", "committed content only");
        let _ = fs::remove_dir_all(&base);
    }
}
