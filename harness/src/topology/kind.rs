//! The kinds of topology ([`Kind`]): `host` and `nodev` built in, the others described by a
//! topology file; one enum from the check of a case's `requires.topology` to the scheduler's resources.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What kind of topology: where a case runs. `host` and `nodev` are built in; a topology file
/// names one of the others.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    #[default]
    Host,
    Nodev,
    Veth,
    Netdevsim,
    NetdevsimZcrx,
    Nic,
}

impl Kind {
    pub const ALL: [Kind; 6] = [Kind::Host, Kind::Nodev, Kind::Veth, Kind::Netdevsim, Kind::NetdevsimZcrx, Kind::Nic];
    /// The kinds no file describes.
    pub const BUILTIN: [Kind; 2] = [Kind::Host, Kind::Nodev];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Host => "host",
            Kind::Nodev => "nodev",
            Kind::Veth => "veth",
            Kind::Netdevsim => "netdevsim",
            Kind::NetdevsimZcrx => "netdevsim-zcrx",
            Kind::Nic => "nic",
        }
    }

    /// The kind called `name`, if any.
    pub fn named(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The built-in kind called `name` (`host`, `nodev`): a topology name that is no file.
    pub fn builtin_named(name: &str) -> Option<Kind> {
        Kind::named(name).filter(|k| Kind::BUILTIN.contains(k))
    }

    /// Every kind's name, for messages.
    pub fn names() -> String {
        Kind::ALL.map(Kind::name).join(", ")
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The kind of the topology named (as `--topology` takes it): built in, or its file's.
pub fn kind_of(name: &str) -> Result<Kind, super::Error> {
    match Kind::builtin_named(name) {
        Some(k) => Ok(k),
        None => super::load(name).map(|f| f.kind),
    }
}
