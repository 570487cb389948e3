//! The one spelling of a kernel on the command line (`--kernel SPEC`, repeatable or
//! comma-separated), parsed once into a [`KernelArg`]: a [`KernelSpec`] or a range of Debian
//! versions.
//!
//! ```text
//! SPEC  = host | PATH | KIND[+FLAVOUR]...[@ARCH]:VALUE
//! KIND  = debian (VALUE: 7.3.4, 7.3, latest, or a range A..B; flavours +rt, +16k (arm64);
//!                 ARCH amd64 (x86_64) or arm64 (aarch64))
//!       | tree   (VALUE: a kernel source tree; flavours +kasan, +debug; the host's architecture)
//! ```
//!
//! Flavours and the architecture go between the kind and the colon, so a version or a path
//! never has to be split: `tree+kasan:../linux`, `tree+debug:../linux`, `debian+rt:7.3.4`,
//! `debian@arm64:7.3.4`, `debian+16k@arm64:7.3.4`. A Debian spec names one of Debian's kernel
//! flavours ([`Flavour`]); a combination Debian does not build (`debian+rt+16k@arm64`,
//! `debian+16k`) is refused by name. Every flavour is listed and fetched; those the host can
//! boot ([`Flavour::bootable`]: its own architecture, and arm64 from x86-64) are booted. On a tree, `+debug` is the debug kernel
//! (`build-tree.sh --debug`, vm/debug.config). A PATH is a bzImage/vmlinuz or a built tree
//! (booted as it is; a debug build's boot options follow from its .config, [`super::boot`]).

pub use super::flavour::{Arch, Flavour};
use super::Error;
use std::fmt;
use std::path::{Path, PathBuf};

use clap::Args;

/// The kernel a run boots when asked for "the default" (the CI's and the docs' kernel).
pub const DEFAULT_KERNEL: &str = "debian:7.3.4";

/// One kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelSpec {
    /// The running kernel, no VM.
    Host,
    /// A Debian kernel package version ("7.3.4", "7.3" (the newest 7.3.x), "latest") of one
    /// flavour.
    Debian { version: String, flavour: Flavour },
    /// A kernel image (bzImage/vmlinuz), or a kernel tree that is already built.
    Image(PathBuf),
    /// `tree:PATH`: a kernel source tree to configure (io_uring, zcrx, netdevsim, optional KASAN
    /// with `tree+kasan:PATH`, the debug kernel with `tree+debug:PATH`) and build with
    /// vm/build-tree.sh before booting it; `gcov` (campaigns only, never parsed) profiles
    /// io_uring/zcrx.c.
    Tree { path: PathBuf, kasan: bool, gcov: bool, debug: bool },
}

/// What one `--kernel` value names: one kernel, or every Debian version in a range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelArg {
    One(KernelSpec),
    /// `debian:A..B`: from the oldest version matching A to the newest matching B (`7.1`
    /// matches every 7.1.x).
    DebianRange {
        lo: String,
        hi: String,
        flavour: Flavour,
    },
}

impl KernelSpec {
    /// A Debian kernel of the default flavour (amd64).
    pub fn debian(version: impl Into<String>) -> KernelSpec {
        KernelSpec::Debian { version: version.into(), flavour: Flavour::Amd64 }
    }
}

impl fmt::Display for KernelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelSpec::Host => write!(f, "host"),
            KernelSpec::Debian { version, flavour } => write!(f, "{}:{version}", flavour.head()),
            KernelSpec::Image(p) => write!(f, "{}", p.display()),
            KernelSpec::Tree { path, kasan, gcov, debug } => {
                let flavours = format!(
                    "{}{}{}",
                    if *kasan { "+kasan" } else { "" },
                    if *debug { "+debug" } else { "" },
                    if *gcov { "+gcov" } else { "" }
                );
                write!(f, "tree{flavours}:{}", path.display())
            }
        }
    }
}

impl fmt::Display for KernelArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelArg::One(k) => k.fmt(f),
            KernelArg::DebianRange { lo, hi, flavour } => write!(f, "{}:{lo}..{hi}", flavour.head()),
        }
    }
}

/// Why a `--kernel` value is refused (each with the value as given).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpecError {
    /// Not `host`, `KIND:VALUE`, or an existing path.
    Unknown(String),
    UnknownKind {
        spec: String,
        kind: String,
    },
    /// A Debian version with characters `kernel.sh` never lists.
    BadVersion(String),
    /// `+` or `@` after the colon: flavours and architectures go before it.
    SuffixAfterColon {
        spec: String,
        at: char,
    },
    /// A flavour the kind does not have (`tree+ubsan`, `debian+kasan`).
    FlavourNotSupported {
        spec: String,
        flavour: String,
    },
    /// Debian builds no kernel of these flavours on this architecture (`debian+16k`,
    /// `debian+rt+16k@arm64`).
    NoSuchDebianFlavour {
        spec: String,
    },
    /// An architecture that is not amd64 or arm64, or a tree for another architecture than
    /// the host's (cross builds are not supported).
    ArchNotSupported {
        spec: String,
        arch: String,
    },
    NotASourceTree {
        spec: String,
        path: String,
    },
    /// The path could not be made absolute.
    Path {
        spec: String,
        error: String,
    },
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecError::Unknown(s) => write!(
                f,
                "kernel `{s}`: not host, debian:VERSION, debian:A..B, tree:PATH, tree+kasan:PATH, \
                 tree+debug:PATH, or an existing bzImage/vmlinuz/build tree"
            ),
            SpecError::UnknownKind { spec, kind } => {
                write!(f, "kernel `{spec}`: unknown kind `{kind}` (known: host, debian, tree, or a path)")
            }
            SpecError::BadVersion(s) => write!(f, "`{s}`: a Debian kernel is debian:<version>, e.g. {DEFAULT_KERNEL}"),
            SpecError::SuffixAfterColon { spec, at } => write!(
                f,
                "`{spec}`: `{at}` belongs before the colon (debian+FLAVOUR@ARCH:VERSION, e.g. debian+rt:7.3.4, \
                 debian+16k@arm64:7.3.4)"
            ),
            SpecError::FlavourNotSupported { spec, flavour } => {
                write!(f, "`{spec}`: no flavour `{flavour}` (debian: +rt, +16k on arm64; tree: +kasan, +debug)")
            }
            SpecError::NoSuchDebianFlavour { spec } => {
                let known: Vec<&str> = Flavour::ALL.iter().map(|f| f.head()).collect();
                write!(f, "`{spec}`: Debian builds no such kernel flavour (there are: {})", known.join(", "))
            }
            SpecError::ArchNotSupported { spec, arch } => write!(
                f,
                "`{spec}`: architecture `{arch}` is not supported (debian: amd64, arm64; tree: the host's, {})",
                Arch::HOST.debian_name()
            ),
            SpecError::NotASourceTree { spec, path } => {
                write!(f, "`{spec}`: {path} is not a kernel source tree (no Makefile/Kconfig)")
            }
            SpecError::Path { spec, error } => write!(f, "{spec}: {error}"),
        }
    }
}

impl std::error::Error for SpecError {}

/// A kernel name that names nothing usable is the user's input (exit 2).
impl crate::error::Classify for SpecError {
    fn kind(&self) -> crate::error::Kind {
        crate::error::Kind::BadInput
    }
}

/// A Debian upstream version as `kernel.sh` lists them: letters, digits, `.`, `_`, `~`, `-`.
fn check_version(v: &str, whole: &str) -> Result<(), SpecError> {
    if let Some(at) = v.chars().find(|c| matches!(c, '+' | '@')) {
        return Err(SpecError::SuffixAfterColon { spec: whole.into(), at });
    }
    if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || "._~-".contains(c)) {
        return Err(SpecError::BadVersion(whole.into()));
    }
    Ok(())
}

impl KernelArg {
    /// Parses one `--kernel` value (the only parser of kernel names).
    pub fn parse(s: &str) -> Result<KernelArg, SpecError> {
        if s == "host" {
            return Ok(KernelArg::One(KernelSpec::Host));
        }
        let kinded = s.split_once(':').filter(|(head, _)| {
            !head.is_empty() && head.chars().all(|c| c.is_ascii_alphanumeric() || "+@-_".contains(c))
        });
        let Some((head, value)) = kinded else {
            let p = Path::new(s);
            if !s.is_empty() && p.exists() {
                return p
                    .canonicalize()
                    .map(|p| KernelArg::One(KernelSpec::Image(p)))
                    .map_err(|e| SpecError::Path { spec: s.into(), error: e.to_string() });
            }
            return Err(SpecError::Unknown(s.into()));
        };
        let (kind_flavours, arch) = match head.split_once('@') {
            Some((k, a)) => (k, Some(a)),
            None => (head, None),
        };
        let mut parts = kind_flavours.split('+');
        let kind = parts.next().unwrap_or_default();
        let flavours: Vec<&str> = parts.collect();
        let arch = match arch {
            None => Arch::HOST,
            Some(a) => Arch::parse(a).ok_or_else(|| SpecError::ArchNotSupported { spec: s.into(), arch: a.into() })?,
        };
        match kind {
            "debian" => {
                if let Some(f) = flavours.iter().find(|f| !matches!(**f, "rt" | "16k")) {
                    return Err(SpecError::FlavourNotSupported { spec: s.into(), flavour: f.to_string() });
                }
                let flavour =
                    Flavour::of(&flavours, arch).ok_or_else(|| SpecError::NoSuchDebianFlavour { spec: s.into() })?;
                // The range's second end may repeat the head: debian+rt:7.2..debian+rt:7.3.
                let head = format!("{}:", kind_flavours);
                let strip = |v: &'_ str| -> String {
                    v.strip_prefix(head.as_str()).or_else(|| v.strip_prefix("debian:")).unwrap_or(v).to_string()
                };
                if let Some((lo, hi)) = value.split_once("..") {
                    let (lo, hi) = (strip(lo), strip(hi));
                    check_version(&lo, s)?;
                    check_version(&hi, s)?;
                    return Ok(KernelArg::DebianRange { lo, hi, flavour });
                }
                check_version(value, s)?;
                Ok(KernelArg::One(KernelSpec::Debian { version: value.to_string(), flavour }))
            }
            "tree" => {
                if arch != Arch::HOST {
                    return Err(SpecError::ArchNotSupported { spec: s.into(), arch: arch.debian_name().into() });
                }
                let (mut kasan, mut debug) = (false, false);
                for f in flavours {
                    match f {
                        "kasan" => kasan = true,
                        "debug" => debug = true,
                        _ => return Err(SpecError::FlavourNotSupported { spec: s.into(), flavour: f.into() }),
                    }
                }
                let p = Path::new(value);
                if !p.join("Makefile").is_file() || !p.join("Kconfig").is_file() {
                    return Err(SpecError::NotASourceTree { spec: s.into(), path: value.into() });
                }
                p.canonicalize()
                    .map(|path| KernelArg::One(KernelSpec::Tree { path, kasan, gcov: false, debug }))
                    .map_err(|e| SpecError::Path { spec: s.into(), error: e.to_string() })
            }
            _ => Err(SpecError::UnknownKind { spec: s.into(), kind: kind.into() }),
        }
    }

    /// The one kernel this names; a range is refused (`what` says where).
    pub fn one(&self, what: &str) -> Result<&KernelSpec, super::Error> {
        match self {
            KernelArg::One(k) => Ok(k),
            KernelArg::DebianRange { .. } => {
                Err(super::Error::BadSpec(format!("{what} takes one kernel, not the range {self}")))
            }
        }
    }
}

/// `--kernel`: the one spelling of kernels, on every command that boots one.
#[derive(Args, Clone, Debug, Default)]
pub struct KernelArgs {
    /// The kernel(s), repeatable or comma-separated: host (the running kernel, no VM),
    /// debian:VERSION (7.3.4, 7.3 = the newest 7.3.x, latest), debian:A..B (every Debian version
    /// from A to B), tree:PATH, tree+kasan:PATH or tree+debug:PATH (a kernel source tree, built
    /// first; +debug: KASAN, kmemleak, lockdep, fault injection), or a bzImage/vmlinuz/build tree
    /// path. Debian flavours and architectures go before the colon: debian+rt:V (PREEMPT_RT),
    /// debian@arm64:V, debian+16k@arm64:V, debian+rt@arm64:V (arm64: listed and fetched;
    /// booting needs an arm64 host yet). How many a command takes is in its help.
    #[arg(long = "kernel", value_name = "SPEC", value_delimiter = ',', value_parser = KernelArg::parse)]
    pub kernels: Vec<KernelArg>,
}

impl KernelArgs {
    /// The kernel of a command that runs on one (none given: the host).
    pub fn single(&self, cmd: &str) -> Result<KernelSpec, super::Error> {
        match self.kernels.as_slice() {
            [] => Ok(KernelSpec::Host),
            [k] => k.one(cmd).cloned(),
            _ => Err(super::Error::BadSpec(format!("{cmd} takes one --kernel (`matrix` runs several)"))),
        }
    }
}

/// Compares dotted Debian upstream versions ("7.2.13", "7.3~rc7"): numbers numerically, and
/// `~` sorts before anything (7.3~rc7 < 7.3 < 7.3.0 < 7.3.4).
pub fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn parts(s: &str) -> (Vec<u64>, Option<String>) {
        let (main, pre) = match s.split_once('~') {
            Some((m, p)) => (m, Some(p.to_string())),
            None => (s, None),
        };
        (main.split('.').map(|p| p.parse().unwrap_or(0)).collect(), pre)
    }
    let (ma, pa) = parts(a);
    let (mb, pb) = parts(b);
    let len = ma.len().max(mb.len());
    for i in 0..len {
        let (x, y) = (ma.get(i).copied().unwrap_or(0), mb.get(i).copied().unwrap_or(0));
        if x != y {
            return x.cmp(&y);
        }
    }
    match (pa, pb) {
        (None, None) => std::cmp::Ordering::Equal,
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (Some(x), Some(y)) => x.cmp(&y),
    }
}

/// The versions of `all` from the oldest matching `lo` to the newest matching `hi`, oldest
/// first. `lo`/`hi` are exact versions or prefixes (`7.1` is every 7.1.x).
pub fn versions_between(all: &[String], lo: &str, hi: &str) -> Result<Vec<String>, Error> {
    let matches = |v: &str, p: &str| v == p || v.starts_with(&format!("{p}.")) || v.starts_with(&format!("{p}~"));
    let mut v: Vec<String> = all.to_vec();
    v.sort_by(|a, b| version_cmp(a, b));
    v.dedup();
    let first = v
        .iter()
        .position(|x| matches(x, lo))
        .ok_or_else(|| Error::BadSpec(format!("no Debian kernel matches {lo}")))?;
    let last = v
        .iter()
        .rposition(|x| matches(x, hi))
        .ok_or_else(|| Error::BadSpec(format!("no Debian kernel matches {hi}")))?;
    if first >= last {
        return Err(Error::BadSpec(format!("debian:{lo}..{hi} holds fewer than two versions")));
    }
    Ok(v[first..=last].to_vec())
}

/// Every kernel the values name, in order, a range expanded through `kernel.sh list`.
pub fn expand(args: &[KernelArg]) -> Result<Vec<KernelSpec>, Error> {
    let mut all: Vec<(Flavour, Vec<String>)> = Vec::new();
    let mut out = Vec::new();
    for a in args {
        match a {
            KernelArg::One(k) => out.push(k.clone()),
            KernelArg::DebianRange { lo, hi, flavour } => {
                let all = match all.iter().find(|(f, _)| f == flavour) {
                    Some((_, v)) => v,
                    None => {
                        all.push((*flavour, super::debian_versions(*flavour)?));
                        &all[all.len() - 1].1
                    }
                };
                let versions = versions_between(all, lo, hi)?;
                out.extend(versions.into_iter().map(|version| KernelSpec::Debian { version, flavour: *flavour }));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> KernelSpec {
        match KernelArg::parse(s) {
            Ok(KernelArg::One(k)) => k,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn kernels_parse_once() {
        assert_eq!(one("host"), KernelSpec::Host);
        assert_eq!(one("debian:7.3.4"), KernelSpec::debian("7.3.4"));
        assert_eq!(one("debian:latest"), KernelSpec::debian("latest"));
        assert_eq!(one("debian@amd64:7.3"), KernelSpec::debian("7.3"));
        assert_eq!(one("debian@x86_64:7.3"), KernelSpec::debian("7.3"));
        assert_eq!(one("debian:7.3.4").to_string(), "debian:7.3.4");
        assert_eq!(
            KernelArg::parse("debian:7.1.13..7.3.4"),
            Ok(KernelArg::DebianRange { lo: "7.1.13".into(), hi: "7.3.4".into(), flavour: Flavour::Amd64 })
        );
        assert_eq!(
            KernelArg::parse("debian:7.2..debian:7.3"),
            Ok(KernelArg::DebianRange { lo: "7.2".into(), hi: "7.3".into(), flavour: Flavour::Amd64 })
        );
        let bad = |s: &str| KernelArg::parse(s).expect_err(s);
        assert_eq!(bad(""), SpecError::Unknown("".into()));
        assert_eq!(bad("/nonexistent/bzImage"), SpecError::Unknown("/nonexistent/bzImage".into()));
        for v in ["debian:", "debian:7.3;rm -rf /", "debian:..7.3", "debian:7.2..$(x)"] {
            assert_eq!(bad(v), SpecError::BadVersion(v.into()));
        }
        assert!(matches!(bad("tree:/nonexistent"), SpecError::NotASourceTree { .. }));
        assert_eq!(bad("fedora:41"), SpecError::UnknownKind { spec: "fedora:41".into(), kind: "fedora".into() });
    }

    /// Each of Debian's flavours has one spelling, which is also how it prints.
    #[test]
    fn debian_flavours_and_architectures() {
        let deb = |v: &str, flavour| KernelSpec::Debian { version: v.into(), flavour };
        for (s, f) in [
            ("debian:7.3.4", Flavour::Amd64),
            ("debian+rt:7.3.4", Flavour::RtAmd64),
            ("debian@arm64:7.3.4", Flavour::Arm64),
            ("debian+16k@arm64:7.3.4", Flavour::Arm64_16k),
            ("debian+rt@arm64:7.3.4", Flavour::RtArm64),
        ] {
            assert_eq!(one(s), deb("7.3.4", f), "{s}");
            assert_eq!(one(s).to_string(), s);
        }
        assert_eq!(one("debian+rt@amd64:7.2.13"), deb("7.2.13", Flavour::RtAmd64));
        assert_eq!(one("debian+rt@aarch64:latest"), deb("latest", Flavour::RtArm64));
        assert_eq!(
            KernelArg::parse("debian+rt:7.2..debian+rt:7.3"),
            Ok(KernelArg::DebianRange { lo: "7.2".into(), hi: "7.3".into(), flavour: Flavour::RtAmd64 })
        );
        assert_eq!(
            KernelArg::parse("debian+16k@arm64:7.2..7.3").expect("range").to_string(),
            "debian+16k@arm64:7.2..7.3"
        );
        let names: Vec<&str> = Flavour::ALL.iter().map(|f| f.debian_name()).collect();
        assert_eq!(names, ["amd64", "rt-amd64", "arm64", "arm64-16k", "rt-arm64"]);
        assert_eq!(Flavour::Arm64_16k.page_size(), 16384);
        assert_eq!(Flavour::RtArm64.page_size(), 4096);
        assert!(Flavour::RtAmd64.bootable() == cfg!(target_arch = "x86_64"));
        // arm64 boots on both (qemu-system-aarch64 from x86-64); amd64 not from aarch64.
        assert!(Flavour::Arm64_16k.bootable());
    }

    #[test]
    fn flavours_and_architectures_debian_lacks_are_refused_by_name() {
        let bad = |s: &str| KernelArg::parse(s).expect_err(s);
        let flavour = |s: &str, f: &str| SpecError::FlavourNotSupported { spec: s.into(), flavour: f.into() };
        let none = |s: &str| SpecError::NoSuchDebianFlavour { spec: s.into() };
        let arch = |s: &str, a: &str| SpecError::ArchNotSupported { spec: s.into(), arch: a.into() };
        let after = |s: &str, at: char| SpecError::SuffixAfterColon { spec: s.into(), at };
        assert_eq!(bad("debian+kasan:7.3.4"), flavour("debian+kasan:7.3.4", "kasan"));
        assert_eq!(bad("debian+16k:7.3.4"), none("debian+16k:7.3.4"));
        assert_eq!(bad("debian+rt+16k@arm64:7.3.4"), none("debian+rt+16k@arm64:7.3.4"));
        assert_eq!(bad("debian+rt+rt:7.3.4"), none("debian+rt+rt:7.3.4"));
        assert_eq!(bad("debian@riscv64:7.3.4"), arch("debian@riscv64:7.3.4", "riscv64"));
        assert_eq!(bad("debian+rt@arm64-16k:7.3.4"), arch("debian+rt@arm64-16k:7.3.4", "arm64-16k"));
        assert_eq!(bad("debian:7.3.4+rt"), after("debian:7.3.4+rt", '+'));
        assert_eq!(bad("debian:7.3.4@arm64-16k"), after("debian:7.3.4@arm64-16k", '@'));
        assert_eq!(bad("tree+ubsan:/"), flavour("tree+ubsan:/", "ubsan"));
        let other = if Arch::HOST == Arch::Amd64 { "arm64" } else { "amd64" };
        assert_eq!(bad(&format!("tree@{other}:/")), arch(&format!("tree@{other}:/"), other));
        assert!(bad("debian+16k:7.3.4").to_string().contains("debian+16k@arm64"));
    }

    #[test]
    fn a_tree_with_kasan() {
        let dir = std::env::temp_dir().join(format!("zcrx-spec-tree-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        for f in ["Makefile", "Kconfig"] {
            std::fs::write(dir.join(f), "").expect("write");
        }
        let path = dir.canonicalize().expect("canonical");
        let d = dir.display();
        assert_eq!(
            one(&format!("tree+kasan:{d}")),
            KernelSpec::Tree { path: path.clone(), kasan: true, gcov: false, debug: false }
        );
        assert_eq!(
            one(&format!("tree+debug:{d}")),
            KernelSpec::Tree { path: path.clone(), kasan: false, gcov: false, debug: true }
        );
        assert_eq!(one(&format!("tree+debug:{d}")).to_string(), format!("tree+debug:{}", path.display()));
        assert_eq!(one(&format!("tree:{d}")).to_string(), format!("tree:{}", path.display()));
        assert_eq!(one(&format!("{d}")), KernelSpec::Image(path));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn versions_and_ranges() {
        let all: Vec<String> = ["7.3.4", "7.3~rc7", "7.2.13", "7.2.12", "7.2.6", "7.1.13", "7.1.3", "6.19.14", "7.2.9"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(versions_between(&all, "7.2.13", "7.3.4").expect("r"), ["7.2.13", "7.3~rc7", "7.3.4"]);
        assert_eq!(
            versions_between(&all, "7.1", "7.2").expect("r"),
            ["7.1.3", "7.1.13", "7.2.6", "7.2.9", "7.2.12", "7.2.13"]
        );
        assert!(versions_between(&all, "7.3.4", "7.2.6").is_err());
        assert!(versions_between(&all, "5.10", "7.3").is_err());
        assert_eq!(version_cmp("6.19.14", "7.0.4"), std::cmp::Ordering::Less);
        assert_eq!(version_cmp("7.2.9", "7.2.13"), std::cmp::Ordering::Less);
    }
}
