//! A report's backtraces symbolized from the vmlinux of the kernel it ran on
//! ([`debug_vmlinux`], [`crate::kernel::symbols`]).

use std::path::Path;

use super::{debug_vmlinux, fetch, KernelSpec};
use crate::model::RunReport;

/// The report's backtraces symbolized (function, file:line) from the kernel's vmlinux with
/// DWARF ([`debug_vmlinux`]: fetched for a Debian kernel only when there is a frame to
/// symbolize). Said once on stderr either way; a report is never lost for want of symbols.
pub fn symbolize(k: &KernelSpec, kernel: Option<&Path>, rep: &mut RunReport) {
    if crate::kernel::symbols::has_frames(rep) {
        symbolize_from(k, kernel, rep);
    }
}

/// [`symbolize`] once the report is known to have a frame to symbolize.
fn symbolize_from(k: &KernelSpec, kernel: Option<&Path>, rep: &mut RunReport) {
    use crate::kernel::symbols;
    let vmlinux = match debug_vmlinux(k, kernel) {
        Ok(Some(p)) => p,
        Ok(None) => {
            eprintln!("{k}: backtraces left as printed: no vmlinux with debug info for this kernel");
            return;
        }
        Err(e) => {
            eprintln!("{k}: backtraces left as printed: {}", crate::model::text::printable(&e.to_string()));
            return;
        }
    };
    match symbols::Symbols::open(&vmlinux) {
        Ok(s) => {
            let n = s.symbolize_report(rep);
            eprintln!("{k}: {n} backtrace line(s) symbolized from {}", vmlinux.display());
        }
        Err(e) => eprintln!("{k}: backtraces left as printed: {}", crate::model::text::printable(&e.to_string())),
    }
}

/// A saved report's backtraces symbolized (`report-bug --from`), from the kernel its probe
/// names: this host's own release is the host; a Debian release (`7.1.3+deb13-amd64`) names its
/// package. A tree's kernel is not named by its release: run `report-bug --kernel tree:PATH`.
pub fn symbolize_saved(rep: &mut RunReport) {
    if !crate::kernel::symbols::has_frames(rep) {
        return;
    }
    let rel = rep.probe.kernel_release.clone();
    if rel == crate::kernel::sys::kernel_release() {
        return symbolize_from(&KernelSpec::Host, None, rep);
    }
    let shown = crate::model::text::printable(&rel);
    if !rel.contains("+deb") {
        eprintln!("{shown}: backtraces left as printed: neither this host's kernel nor a Debian release");
        return;
    }
    let spec = KernelSpec::debian(rel.as_str());
    match fetch(&spec) {
        Ok(kernel) => symbolize_from(&spec, Some(&kernel), rep),
        Err(e) => {
            eprintln!("{shown}: backtraces left as printed: {}", crate::model::text::printable(&e.to_string()))
        }
    }
}
