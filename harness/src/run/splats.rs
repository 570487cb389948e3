//! Splats the kernel printed while several cases ran together. The kernel cannot say which
//! case made one, so each case that overlapped it runs again alone ([`super::schedule`]); a
//! splat printed again alone is that case's, and the others' solo results stand. But a
//! `WARN_ON_ONCE` prints once per boot: when no suspect prints a splat alone, the first print
//! is all there is, and it fails every suspect rather than none of them.

/// The splats seen while cases overlapped and the suspects of each, whose results wait for
/// each other; `T` is a suspect's finished run.
pub(super) struct Suspects<T> {
    groups: Vec<Group<T>>,
}

struct Group<T> {
    lines: Vec<String>,
    pending: usize,
    reproduced: bool,
    done: Vec<T>,
}

impl<T> Default for Suspects<T> {
    fn default() -> Self {
        Suspects { groups: Vec::new() }
    }
}

impl<T> Suspects<T> {
    /// A case that overlapped others saw splat `lines`: the group it is a suspect of (one
    /// sharing a line with them, or a new one).
    pub(super) fn suspect(&mut self, lines: &[&String]) -> usize {
        let g = match self.groups.iter().position(|g| g.lines.iter().any(|l| lines.contains(&l))) {
            Some(g) => g,
            None => {
                let lines = lines.iter().map(|l| l.to_string()).collect();
                self.groups.push(Group { lines, pending: 0, reproduced: false, done: Vec::new() });
                self.groups.len() - 1
            }
        };
        self.groups[g].pending += 1;
        g
    }

    /// Suspect of group `g` ran alone (`reproduced`: it printed a splat then). Once every
    /// suspect of the group has, their runs, each with the lines it must take on (the group's
    /// splat when none printed one alone).
    pub(super) fn ran_alone(&mut self, g: usize, run: T, reproduced: bool) -> Vec<(T, Option<Vec<String>>)> {
        let Some(group) = self.groups.get_mut(g) else { return vec![(run, None)] };
        group.reproduced |= reproduced;
        group.done.push(run);
        group.pending = group.pending.saturating_sub(1);
        if group.pending > 0 {
            return Vec::new();
        }
        let carried = (!group.reproduced).then(|| group.lines.clone());
        std::mem::take(&mut group.done).into_iter().map(|r| (r, carried.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(s: &str) -> String {
        s.to_string()
    }

    #[test]
    fn a_splat_printed_once_fails_every_suspect() {
        let warn = l("WARNING: CPU: 0 PID: 7 at io_uring/zcrx.c:662 io_zcrx_ifq_free");
        let mut s = Suspects::default();
        let (a, b) = (s.suspect(&[&warn]), s.suspect(&[&warn]));
        assert_eq!(a, b);
        assert!(s.ran_alone(a, "a", false).is_empty(), "waits for the other suspect");
        let out = s.ran_alone(b, "b", false);
        assert_eq!(out, vec![("a", Some(vec![warn.clone()])), ("b", Some(vec![warn]))]);
    }

    #[test]
    fn a_splat_printed_again_alone_belongs_to_that_case() {
        let warn = l("WARNING: at net/core/netdev_rx_queue.c:294");
        let other = l("BUG: KASAN: slab-use-after-free in io_zcrx_scrub");
        let mut s = Suspects::default();
        let (a, b, c) = (s.suspect(&[&warn]), s.suspect(&[&warn]), s.suspect(&[&other]));
        assert_ne!(a, c);
        assert!(s.ran_alone(a, 1, true).is_empty());
        assert_eq!(s.ran_alone(b, 2, false), vec![(1, None), (2, None)]);
        assert_eq!(s.ran_alone(c, 3, false), vec![(3, Some(vec![other]))]);
    }
}
