//! The simulated NIC's fault knobs (netdevsim-zcrx debugfs `hds/`) put back to their defaults
//! after a case that set them: the topology is shared by every case of a run.

use super::env::{Restore, Unrestored};
use super::Env;

/// Each knob with its default (vm/netdevsim-zcrx/ patches 0004-0006, 0011-0013). A knob whose file is
/// missing (an older series) is left alone.
const DEFAULTS: &[(&str, &str)] = &[
    ("netmem_budget", "-1"),
    ("on_empty", "drop"),
    ("pp_fail_next", "0"),
    ("pp_fail_interval", "0"),
    ("copybreak", "0"),
    ("segment", "N"),
    ("head_bytes", "0"),
];

impl Env {
    /// Writes every knob's default back; what could not be, if anything.
    pub fn restore_nsim_knobs(&self) -> Vec<Unrestored> {
        let Some(dir) = self.topo.debugfs.as_ref().map(|d| d.join("hds")) else { return Vec::new() };
        let mut errs = Vec::new();
        for (f, v) in DEFAULTS {
            let p = dir.join(f);
            // debugfs files are regular files we did not create; never follow a link there.
            let error = match std::fs::symlink_metadata(&p) {
                Ok(m) if m.file_type().is_file() => std::fs::write(&p, v).err().map(|e| e.to_string()),
                Ok(_) => Some("not a regular file, left alone".to_string()),
                Err(_) => None,
            };
            errs.extend(error.map(|error| Unrestored { what: Restore::NetdevsimKnob(p), error }));
        }
        errs
    }
}
