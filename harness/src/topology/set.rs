//! The topologies one run provides: the built-in ones (`host`, `nodev`) and those brought up
//! from files, each file's [`Env`] guard held until the set is dropped or taken down.

use super::{load, Env, Tools, Topo};

/// A run's topologies, by kind (`host`, `nodev`, `veth`, `netdevsim-zcrx`, ...).
pub struct Envs {
    /// (kind, what a case needs, the guard of a file topology)
    up: Vec<(String, Topo, Option<Env>)>,
    /// (name, why it could not be set up)
    broken: Vec<(String, String)>,
}

impl Envs {
    /// Brings up every named topology; one that fails is remembered with its reason (its
    /// cases then skip with it) and the others still come up. `quiet`: no set-up log lines.
    pub fn up(names: &[String], quiet: bool) -> Envs {
        let tools = Tools::from_env();
        let mut set = Envs { up: Vec::new(), broken: Vec::new() };
        for (slot, name) in names.iter().enumerate() {
            if let Some(t) = Topo::builtin(name) {
                set.up.push((name.clone(), t, None));
                continue;
            }
            match load(name).and_then(|f| {
                let kind =
                    serde_json::to_value(f.kind).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
                f.up(&tools, slot as u32).map(|a| (kind, a))
            }) {
                Ok((kind, mut env)) => {
                    if let Err(e) = env.snapshot_dut() {
                        env.log.push(format!("cannot record DUT settings: {e}"));
                    }
                    if !quiet {
                        env.log.iter().for_each(|l| eprintln!("{l}"));
                    }
                    set.up.push((kind, env.topo.clone(), Some(env)));
                }
                Err(e) => {
                    eprintln!("topology {name}: {e}");
                    set.broken.push((name.clone(), e.to_string()));
                }
            }
        }
        set
    }

    /// A set holding one topology that is already up (`qualify` brings it up itself to read
    /// the device before and after).
    pub fn with(kind: &str, env: Env) -> Envs {
        Envs { up: vec![(kind.to_string(), env.topo.clone(), Some(env))], broken: Vec::new() }
    }

    /// The kinds that are up, in the order named.
    pub fn kinds(&self) -> Vec<String> {
        self.up.iter().map(|(k, _, _)| k.clone()).collect()
    }

    /// What a case on `kind` needs to know.
    pub fn topo(&self, kind: &str) -> Option<&Topo> {
        self.up.iter().find(|(k, _, _)| k == kind).map(|(_, t, _)| t)
    }

    /// The guard of the file topology of `kind`.
    pub fn env(&self, kind: &str) -> Option<&Env> {
        self.up.iter().find(|(k, _, _)| k == kind).and_then(|(_, _, e)| e.as_ref())
    }

    /// Why a named topology could not be set up, for the first of `names` that failed.
    pub fn broken(&self, names: &[String]) -> Option<(&str, &str)> {
        self.broken.iter().find(|(n, _)| names.contains(n)).map(|(n, e)| (n.as_str(), e.as_str()))
    }

    /// Tears everything down now; the errors, if any.
    pub fn down(&mut self) -> Vec<String> {
        self.up.iter_mut().filter_map(|(_, _, e)| e.as_mut()).flat_map(|e| e.down()).collect()
    }
}
