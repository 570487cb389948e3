//! What a mutant's guest that hung whole or died still tells: the cases it finished (its
//! `end STATUS ID` lines), the case it was in (its last `start ID`), and the message for the
//! record.

use std::collections::BTreeMap;

use super::mutants;

/// The case a guest that hung whole or died was running: its last `start ID` line (with
/// `-j 2`, the later of the two it was running).
pub(super) fn last_started(tail: &[String]) -> Option<String> {
    tail.iter().rev().find_map(|l| l.strip_prefix("start ")).map(str::to_string)
}

/// The statuses of the cases a guest finished before it hung or died, from its `end STATUS ID`
/// lines.
pub(super) fn ended_statuses(lines: &[String]) -> BTreeMap<String, crate::model::Status> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("end ")?.split_once(' '))
        .filter_map(|(w, id)| Some((id.to_string(), crate::model::Status::from_word(w)?)))
        .collect()
}

/// Who killed a mutant whose guest hung or died: the cases it finished that changed from the
/// baseline (the ones it never reached are not compared), then the case it was in.
pub(super) fn crash_killers(
    baseline: &BTreeMap<String, crate::model::Status>,
    ended: &BTreeMap<String, crate::model::Status>,
    tail: &[String],
) -> Vec<String> {
    let mut k = mutants::changed_in_selection(baseline, ended).0;
    k.extend(last_started(tail).filter(|c| !k.contains(c)));
    k
}

/// A crash's message for the record: its first line (what ended the guest) and its last
/// eight (where it was).
pub(super) fn crash_message(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    match lines.split_first() {
        Some((head, rest)) if rest.len() > 8 => {
            std::iter::once(*head).chain(rest[rest.len() - 8..].iter().copied()).collect::<Vec<_>>().join("\n")
        }
        _ => lines.join("\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A baseline where the two cases the tests end passed.
    fn both_passed() -> BTreeMap<String, crate::model::Status> {
        ["area.checks[EINVAL,flags,2]", "drain.sizes[4096]"]
            .into_iter()
            .map(|k| (k.to_string(), crate::model::Status::Pass))
            .collect()
    }

    #[test]
    fn a_hung_guest_keeps_what_it_finished() {
        use crate::model::Status;
        let lines: Vec<String> = [
            "end ok area.checks[EINVAL,flags,2]",
            "end FAIL drain.sizes[4096]",
            "end skip nic.hds_settings[hds_thresh: 256]",
            "end bogus x",
            "endless",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let ended = ended_statuses(&lines);
        assert_eq!(ended.len(), 3, "{ended:?}");
        assert_eq!(ended.get("drain.sizes[4096]"), Some(&Status::Fail));
        assert_eq!(ended.get("nic.hds_settings[hds_thresh: 256]"), Some(&Status::Skip));
        let mut base = both_passed();
        base.insert("rq.never_reached".into(), Status::Pass);
        let tail = vec!["start drain.sizes[4096]".to_string(), "start nic.steer_rss_context".to_string()];
        assert_eq!(
            crash_killers(&base, &ended, &tail),
            vec!["drain.sizes[4096]".to_string(), "nic.steer_rss_context".to_string()]
        );
        let tail = vec!["start drain.sizes[4096]".to_string()];
        assert_eq!(crash_killers(&base, &ended, &tail), vec!["drain.sizes[4096]".to_string()]);
    }

    #[test]
    fn a_splat_beside_another_case_is_named_before_its_run_alone() {
        use crate::model::Status;
        // Every ring's exit oopses (sample 2's zcrx-L1152): each case that ran beside another is
        // a suspect, run alone at the end, so no result comes before the guest hangs; the guest
        // says `end FAIL` for each when it ends, and a later result for the same case wins.
        let lines: Vec<String> =
            ["end FAIL area.checks[EINVAL,flags,2]", "end FAIL drain.sizes[4096]", "end ok drain.sizes[4096]"]
                .map(String::from)
                .to_vec();
        let ended = ended_statuses(&lines);
        assert_eq!(ended.get("area.checks[EINVAL,flags,2]"), Some(&Status::Fail));
        assert_eq!(ended.get("drain.sizes[4096]"), Some(&Status::Pass));
        let base = both_passed();
        let tail = vec!["start rq.overfill".to_string()];
        assert_eq!(
            crash_killers(&base, &ended, &tail),
            vec!["area.checks[EINVAL,flags,2]".to_string(), "rq.overfill".to_string()]
        );
        let line = crate::model::event::Event::Suspect { id: "drain.sizes[4096]".into() }.encode();
        assert!(
            matches!(crate::model::event::Event::decode(&line), Some(crate::model::event::Event::Suspect { id }) if id == "drain.sizes[4096]")
        );
    }

    #[test]
    fn a_hung_guest_names_the_case_it_last_started() {
        let tail: Vec<String> =
            ["start rq.flush_returns", "ok", "start drain.sizes[4096]", "[  50.1] watchdog: BUG: soft lockup"]
                .map(String::from)
                .to_vec();
        assert_eq!(last_started(&tail).as_deref(), Some("drain.sizes[4096]"));
        assert_eq!(last_started(&tail[..1]).as_deref(), Some("rq.flush_returns"));
        assert_eq!(last_started(&[]), None);
    }

    #[test]
    fn a_crash_message_keeps_its_head_and_its_last_lines() {
        let text: String = (0..20).map(|i| format!("l{i}\n")).collect();
        let m = crash_message(&text);
        assert_eq!(m.lines().collect::<Vec<_>>(), ["l0", "l12", "l13", "l14", "l15", "l16", "l17", "l18", "l19"]);
        assert_eq!(crash_message("a\nb"), "a\nb");
    }
}
