//! `zcrx-conform report-bug CASE`: a plain-text report for one failing or xfail case,
//! ready to paste into a mail to the io_uring/netdev lists.

use std::io::Read;

use super::escape::{printable, shell_quote};
use crate::model::Status;
use crate::model::{CaseReport, RunReport};

/// Config options that matter for zcrx.
const CONFIG_KEYS: &[&str] = &[
    "CONFIG_IO_URING",
    "CONFIG_IO_URING_ZCRX",
    "CONFIG_NET_DEVMEM",
    "CONFIG_PAGE_POOL",
    "CONFIG_NETDEVSIM",
    "CONFIG_KASAN",
    "CONFIG_PROVE_LOCKING",
    "CONFIG_DEBUG_NET",
];

/// The kernel config of `release`: /proc/config.gz when it is the running kernel,
/// /boot/config-<release>, or the config shipped with a fetched Debian kernel.
pub fn kernel_config(release: &str) -> Option<String> {
    if crate::kernel::sys::kernel_release() == release {
        if let Ok(f) = std::fs::File::open("/proc/config.gz") {
            let mut s = String::new();
            if flate2::read::GzDecoder::new(f).read_to_string(&mut s).is_ok() && !s.is_empty() {
                return Some(s);
            }
        }
    }
    let boot = format!("/boot/config-{release}");
    if let Ok(mut f) = std::fs::File::open(&boot) {
        let mut s = String::new();
        if f.read_to_string(&mut s).is_ok() {
            return Some(s);
        }
    }
    let cache = crate::paths::cache_dir();
    for p in [
        cache.join(format!("kernels/{release}/root/usr/lib/linux/{release}/config")),
        cache.join(format!("kernels/{release}/root/boot/config-{release}")),
        cache.join(format!("kernels/{release}/root/usr/lib/modules/{release}/config")),
    ] {
        if let Ok(s) = std::fs::read_to_string(&p) {
            return Some(s);
        }
    }
    None
}

fn config_bits(release: &str) -> String {
    match kernel_config(release) {
        None => "  (config not available for this kernel)\n".into(),
        Some(cfg) => {
            let mut s = String::new();
            for k in CONFIG_KEYS {
                let line = cfg
                    .lines()
                    .find(|l| l.starts_with(&format!("{k}=")) || l.starts_with(&format!("# {k} is not set")))
                    .unwrap_or("(absent)");
                s.push_str(&format!("  {k:<22} {line}\n"));
            }
            s
        }
    }
}

/// The report text for one case of a run. Everything taken from the case or the report is
/// printed without control characters ([`printable`]); the "Reproduce" command quotes each
/// word for the shell, so pasting it runs exactly that command.
pub fn render(run: &RunReport, c: &CaseReport) -> String {
    let mut s = String::new();
    let what = match c.status {
        Status::Xfail => "known deviation (xfail)",
        Status::Xpass => "known deviation no longer reproduces (xpass)",
        Status::Fail => "conformance failure",
        Status::Pass => "passes (no bug to report)",
        Status::Skip => "skipped (no result)",
    };
    let id = printable(&c.id);
    let release = printable(&run.probe.kernel_release);
    s.push_str(&format!("Subject: io_uring/zcrx: {id} ({what})\n\n"));
    s.push_str(&format!("zcrx-conform case {id} {what} on {release} ({}).\n\n", printable(&run.target)));
    if !c.about.is_empty() {
        s.push_str(&format!("What the case checks:\n  {}\n", printable(c.about.trim())));
    }
    if !c.spec.is_empty() {
        s.push_str(&format!("  spec rows: {}\n", printable(&c.spec.join(", "))));
    }
    if !c.file.is_empty() {
        s.push_str(&format!("  case file: {}\n", printable(&c.file)));
    }
    s.push_str(&format!("\nExpected vs observed:\n  {}\n", printable(&c.message)));
    if let Some(d) = super::outcome::detail(c) {
        s.push_str(&format!("  ({})\n", printable(&d)));
    }
    s.push_str("\nSyscalls made (arguments as passed, nonzero fields only) and answers:\n");
    for l in &c.log {
        s.push_str(&format!("  {}\n", printable(l)));
    }
    s.push_str("\nKernel log while the case ran:\n");
    if c.kernel_log.is_empty() {
        s.push_str("  (nothing)\n");
    }
    for l in &c.kernel_log {
        s.push_str(&format!("  {}\n", printable(l)));
    }
    s.push_str(&format!("\nKernel: {release}\nConfig:\n{}", config_bits(&run.probe.kernel_release)));
    s.push_str("\nProbe (IORING_REGISTER_QUERY):\n");
    for l in run.probe.render().lines() {
        s.push_str(&format!("  {}\n", printable(l)));
    }
    s.push_str(&format!("\nReproduce: {}\n", reproduce(run, c)));
    s
}

/// The command that runs the case again, each word quoted for a POSIX shell.
pub fn reproduce(run: &RunReport, c: &CaseReport) -> String {
    let file = if c.file.is_empty() { "cases" } else { c.file.as_str() };
    let mut cmd = format!("zcrx-conform run {} --exact --filter={}", shell_quote(file), shell_quote(&c.id));
    if run.target != "host" {
        cmd.push_str(&format!(" --kernel={}", shell_quote(&run.target)));
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_running_kernels_config_is_read_in_process() {
        if !std::path::Path::new("/proc/config.gz").exists() {
            return;
        }
        let c = kernel_config(&crate::kernel::sys::kernel_release()).expect("config of the running kernel");
        assert!(c.lines().any(|l| l.starts_with("CONFIG_")), "decompressed: {}", &c[..c.len().min(200)]);
    }

    #[test]
    fn hostile_ids_are_quoted_and_escaped() {
        let id = "x'; touch /tmp/pwned; echo '\n\x1b]0;title\x07";
        let c = CaseReport {
            status: Status::Fail,
            message: "bad\x1b[31m\nok 1 fake".into(),
            file: "cases/a b.yaml".into(),
            ..CaseReport::new(id)
        };
        let run = RunReport::new("host", Default::default(), &[]);
        let text = render(&run, &c);
        assert!(!text.chars().any(|ch| ch.is_control() && ch != '\n'), "{text:?}");
        let cmd = reproduce(&run, &c);
        assert_eq!(cmd, "zcrx-conform run 'cases/a b.yaml' --exact --filter=$'x\\'; touch /tmp/pwned; echo \\'\\x0a\\x1b]0;title\\x07'");
        // A shell given the command's words gets the id back, byte for byte.
        let out = std::process::Command::new("bash")
            .args(["-c", &format!("f() {{ printf '%s' \"${{4#--filter=}}\"; }}; f {}", &cmd["zcrx-conform ".len()..])])
            .output()
            .expect("bash");
        assert_eq!(String::from_utf8_lossy(&out.stdout), id);
    }
}
