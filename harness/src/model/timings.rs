//! A run's extra timings and facts (VM set-up and boots, suite time, KVM or not, teardown
//! errors) as named fields. In the JSON report they stay the list of `[name, number]` pairs
//! they always were (`"timings": [["vm_boot_s", 17.5], ["kvm", 1.0]]`), so older reports load
//! and other tools keep reading them; a pair this build does not know is kept as it was.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How a timing's number reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Seconds,
    Count,
    /// 1 yes, 0 no.
    Flag,
    /// A name that carries the fact (a teardown error) with no number.
    Note,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timings {
    /// `run --vm`: provisioning the guest tools and fetching or building the kernel.
    pub provision_and_fetch_s: Option<f64>,
    pub vm_boots: Option<u64>,
    pub vm_boot_s: Option<f64>,
    pub vm_boot_failures: Option<u64>,
    /// The cases' own durations summed.
    pub suite_s: Option<f64>,
    pub total_s: Option<f64>,
    /// The VM had KVM (else TCG).
    pub kvm: Option<bool>,
    /// Topologies that could not be torn down after the run.
    pub teardown_errors: Vec<String>,
    /// Pairs of a report this build does not know, as they were.
    pub other: Vec<(String, f64)>,
}

const TEARDOWN: &str = "teardown error: ";

impl Timings {
    pub fn is_empty(&self) -> bool {
        self.entries().is_empty()
    }

    /// Every timing as a name, its number and how the number reads, in report order.
    pub fn entries(&self) -> Vec<(String, f64, Unit)> {
        let mut v = Vec::new();
        let secs = |n: &str, x: Option<f64>| x.map(|x| (n.to_string(), x, Unit::Seconds));
        v.extend(secs("provision_and_fetch_s", self.provision_and_fetch_s));
        v.extend(self.vm_boots.map(|x| ("vm_boots".to_string(), x as f64, Unit::Count)));
        v.extend(secs("vm_boot_s", self.vm_boot_s));
        v.extend(self.vm_boot_failures.map(|x| ("vm_boot_failures".to_string(), x as f64, Unit::Count)));
        v.extend(secs("suite_s", self.suite_s));
        v.extend(secs("total_s", self.total_s));
        v.extend(self.kvm.map(|k| ("kvm".to_string(), if k { 1.0 } else { 0.0 }, Unit::Flag)));
        v.extend(self.teardown_errors.iter().map(|e| (format!("{TEARDOWN}{e}"), 0.0, Unit::Note)));
        v.extend(self.other.iter().map(|(n, x)| {
            let unit = if n.ends_with("_s") { Unit::Seconds } else { Unit::Count };
            (n.clone(), *x, unit)
        }));
        v
    }

    /// Reads one `[name, number]` pair of a report.
    fn set(&mut self, name: String, x: f64) {
        let count = || (x.is_finite() && x >= 0.0).then_some(x as u64);
        match name.as_str() {
            "provision_and_fetch_s" => self.provision_and_fetch_s = Some(x),
            "vm_boots" => self.vm_boots = count(),
            "vm_boot_s" => self.vm_boot_s = Some(x),
            "vm_boot_failures" => self.vm_boot_failures = count(),
            "suite_s" => self.suite_s = Some(x),
            "total_s" => self.total_s = Some(x),
            "kvm" => self.kvm = Some(x > 0.0),
            n => match n.strip_prefix(TEARDOWN) {
                Some(e) => self.teardown_errors.push(e.to_string()),
                None => self.other.push((name, x)),
            },
        }
    }
}

impl Serialize for Timings {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let pairs: Vec<(String, f64)> = self.entries().into_iter().map(|(n, x, _)| (n, x)).collect();
        pairs.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Timings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let pairs = Vec::<(String, f64)>::deserialize(d)?;
        let mut t = Timings::default();
        for (n, x) in pairs {
            t.set(n, x);
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip() {
        let text = r#"[["provision_and_fetch_s",3.5],["vm_boots",2.0],["kvm",1.0],["teardown error: nic: busy",0.0],["later_s",1.5]]"#;
        let t: Timings = serde_json::from_str(text).expect("pairs");
        assert_eq!((t.vm_boots, t.kvm, t.teardown_errors.len()), (Some(2), Some(true), 1));
        assert_eq!(t.other, vec![("later_s".to_string(), 1.5)]);
        assert_eq!(serde_json::to_string(&t).expect("ser"), text);
        assert!(Timings::default().is_empty());
    }
}
