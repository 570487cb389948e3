//! Debian's kernel flavours and the architectures of their guests, as the kernel spec names them
//! (`debian+rt:`, `debian@arm64:`, `debian+16k@arm64:`; parsed in [`super::spec`]).

use std::fmt;

/// A CPU architecture of Debian kernels (and of the guests that boot them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    Amd64,
    Arm64,
}

impl Arch {
    /// The architecture this binary runs on, which is the one its guests boot.
    pub const HOST: Arch = if cfg!(target_arch = "aarch64") { Arch::Arm64 } else { Arch::Amd64 };

    /// Debian's name (`amd64`, `arm64`).
    pub fn debian_name(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }

    /// Debian's or the kernel's name of an architecture.
    pub(crate) fn parse(s: &str) -> Option<Arch> {
        match s {
            "amd64" | "x86_64" => Some(Arch::Amd64),
            "arm64" | "aarch64" => Some(Arch::Arm64),
            _ => None,
        }
    }
}

/// One of Debian's prebuilt kernel flavours (the suffix of `linux-binary-7.3.4+deb13-<flavour>`):
/// an architecture, its page size, and the preemption model. Only flavours Debian builds exist.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Flavour {
    /// `debian:V`: x86-64, 4 KiB pages, voluntary preemption.
    #[default]
    Amd64,
    /// `debian+rt:V`: x86-64 with PREEMPT_RT (spinlocks become sleeping locks).
    RtAmd64,
    /// `debian@arm64:V`: arm64, 4 KiB pages.
    Arm64,
    /// `debian+16k@arm64:V`: arm64, 16 KiB pages.
    Arm64_16k,
    /// `debian+rt@arm64:V`: arm64, 4 KiB pages, PREEMPT_RT.
    RtArm64,
}

impl Flavour {
    /// Every flavour, in `kernel list` order.
    pub const ALL: [Flavour; 5] =
        [Flavour::Amd64, Flavour::RtAmd64, Flavour::Arm64, Flavour::Arm64_16k, Flavour::RtArm64];

    /// Debian's name, the suffix of the kernel release (`rt-amd64`).
    pub fn debian_name(self) -> &'static str {
        match self {
            Flavour::Amd64 => "amd64",
            Flavour::RtAmd64 => "rt-amd64",
            Flavour::Arm64 => "arm64",
            Flavour::Arm64_16k => "arm64-16k",
            Flavour::RtArm64 => "rt-arm64",
        }
    }

    /// What goes before the colon of a spec: `debian`, `debian+rt`, `debian+16k@arm64`.
    pub fn head(self) -> &'static str {
        match self {
            Flavour::Amd64 => "debian",
            Flavour::RtAmd64 => "debian+rt",
            Flavour::Arm64 => "debian@arm64",
            Flavour::Arm64_16k => "debian+16k@arm64",
            Flavour::RtArm64 => "debian+rt@arm64",
        }
    }

    pub fn arch(self) -> Arch {
        match self {
            Flavour::Amd64 | Flavour::RtAmd64 => Arch::Amd64,
            Flavour::Arm64 | Flavour::Arm64_16k | Flavour::RtArm64 => Arch::Arm64,
        }
    }

    /// The guest page size in bytes.
    pub fn page_size(self) -> u32 {
        match self {
            Flavour::Arm64_16k => 16384,
            _ => 4096,
        }
    }

    /// Whether a VM of this flavour can boot here: the host's architecture with virtme-ng (the
    /// host's root and this binary), arm64 on an x86-64 host with qemu-system-aarch64 and an
    /// initramfs around the harness built for it (`vm/qemu.rs`, docs/flavours.md).
    pub fn bootable(self) -> bool {
        self.arch() == Arch::HOST || (Arch::HOST == Arch::Amd64 && self.arch() == Arch::Arm64)
    }

    /// The flavour of Debian's modifiers (`rt`, `16k`) on `arch`; None when Debian builds none.
    pub(crate) fn of(modifiers: &[&str], arch: Arch) -> Option<Flavour> {
        match (modifiers, arch) {
            ([], Arch::Amd64) => Some(Flavour::Amd64),
            (["rt"], Arch::Amd64) => Some(Flavour::RtAmd64),
            ([], Arch::Arm64) => Some(Flavour::Arm64),
            (["16k"], Arch::Arm64) => Some(Flavour::Arm64_16k),
            (["rt"], Arch::Arm64) => Some(Flavour::RtArm64),
            _ => None,
        }
    }
}

impl fmt::Display for Flavour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.debian_name())
    }
}
