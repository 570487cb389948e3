//! The topologies one run provides: the built-in ones (`host`, `nodev`) and those brought up
//! from files, each file's [`Env`] guard held until the set is dropped or taken down.

use super::{load, Env, Kind, Tools, Topo, Unrestored};

/// A run's topologies, by kind.
pub struct Envs {
    /// (kind, what a case needs, the guard of a file topology)
    up: Vec<(Kind, Topo, Option<Env>)>,
    /// (name, its kind when its file could be read, why it could not be set up)
    broken: Vec<(String, Option<Kind>, String)>,
}

impl Envs {
    /// Brings up every named topology; one that fails is remembered with its reason (its
    /// cases then skip with it) and the others still come up. `quiet`: no set-up log lines.
    pub fn up(names: &[String], quiet: bool) -> Envs {
        let tools = Tools::from_env();
        let mut set = Envs { up: Vec::new(), broken: Vec::new() };
        for (slot, name) in names.iter().enumerate() {
            if let Some(t) = Kind::builtin_named(name).and_then(Topo::builtin) {
                set.up.push((t.kind, t, None));
                continue;
            }
            let file = match load(name) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("topology {name}: {e}");
                    set.broken.push((name.clone(), None, e.to_string()));
                    continue;
                }
            };
            match file.up(&tools, slot as u32) {
                Ok(env) => {
                    if !quiet {
                        env.log.iter().for_each(|l| eprintln!("{l}"));
                    }
                    set.up.push((file.kind, env.topo.clone(), Some(env)));
                }
                Err(e) => {
                    eprintln!("topology {name}: {e}");
                    set.broken.push((name.clone(), Some(file.kind), e.to_string()));
                }
            }
        }
        set
    }

    /// A set holding one topology that is already up (`qualify` brings it up itself to read
    /// the device before and after).
    pub fn with(env: Env) -> Envs {
        Envs { up: vec![(env.topo.kind, env.topo.clone(), Some(env))], broken: Vec::new() }
    }

    /// The kinds that are up, in the order named.
    pub fn kinds(&self) -> Vec<Kind> {
        self.up.iter().map(|(k, _, _)| *k).collect()
    }

    /// What a case on `kind` needs to know.
    pub fn topo(&self, kind: Kind) -> Option<&Topo> {
        self.up.iter().find(|(k, _, _)| *k == kind).map(|(_, t, _)| t)
    }

    /// The guard of the file topology of `kind`.
    pub fn env(&self, kind: Kind) -> Option<&Env> {
        self.up.iter().find(|(k, _, _)| *k == kind).and_then(|(_, _, e)| e.as_ref())
    }

    /// Why a topology of one of `kinds` could not be set up, for the first that failed.
    pub fn broken(&self, kinds: &[Kind]) -> Option<(&str, &str)> {
        self.broken
            .iter()
            .find(|(_, k, _)| k.is_some_and(|k| kinds.contains(&k)))
            .map(|(n, _, e)| (n.as_str(), e.as_str()))
    }

    /// Tears everything down now; what could not be undone, if anything.
    pub fn down(&mut self) -> Vec<Unrestored> {
        self.up.iter_mut().filter_map(|(_, _, e)| e.as_mut()).flat_map(|e| e.down()).collect()
    }
}
