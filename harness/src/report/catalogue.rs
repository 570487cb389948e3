//! The catalogue (docs/catalogue.md, `zcrx-conform catalogue`): cases per area, what they need
//! and what each run executed, then the cases that carry regression tags.

use super::{escape, fix_line};
use crate::model::{RunReport, Status};

/// Markdown: per area, the number of cases, what they need, and per kernel how many ran.
pub fn catalogue_table(cases: &[crate::case::Case], runs: &[&RunReport]) -> String {
    use std::collections::BTreeMap;
    let mut by_area: BTreeMap<&str, Vec<&crate::case::Case>> = BTreeMap::new();
    for c in cases {
        by_area.entry(c.def.area.name()).or_default().push(c);
    }
    let mut s = String::from("| area | cases | needs |");
    for r in runs {
        let (target, kernel) = (escape::markdown_cell(&r.target), escape::markdown_cell(&r.probe.kernel_release));
        s.push_str(&format!(" {target} ({kernel}) executed / passed |"));
    }
    s.push_str("\n|---|---|---|");
    for _ in runs {
        s.push_str("---|");
    }
    s.push('\n');
    let mut total = vec![(0usize, 0usize); runs.len()];
    for (area, list) in &by_area {
        let mut needs: BTreeMap<&str, usize> = BTreeMap::new();
        for c in list {
            *needs.entry(kernel_class(c)).or_default() += 1;
        }
        let needs: Vec<String> = needs.into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
        s.push_str(&format!("| {area} | {} | {} |", list.len(), needs.join("; ")));
        for (i, r) in runs.iter().enumerate() {
            let ids: Vec<&str> = list.iter().map(|c| c.id.as_str()).collect();
            let ran: Vec<_> =
                r.cases.iter().filter(|c| ids.contains(&c.id.as_str()) && c.status != Status::Skip).collect();
            let ok = ran.iter().filter(|c| matches!(c.status, Status::Pass | Status::Xfail)).count();
            total[i].0 += ran.len();
            total[i].1 += ok;
            s.push_str(&format!(" {} / {} |", ran.len(), ok));
        }
        s.push('\n');
    }
    s.push_str(&format!("| **all** | **{}** | |", cases.len()));
    for (ran, ok) in total {
        s.push_str(&format!(" **{ran} / {ok}** |"));
    }
    s.push('\n');
    s
}

/// Markdown: the cases that carry `fixes:`/`cve:` tags, one row per case file (its matrix
/// expansions share the tags), for docs/catalogue.md after [`catalogue_table`].
pub fn catalogue_tags(cases: &[crate::case::Case]) -> String {
    let mut s = String::from("## Regression tags\n\n");
    let mut rows: Vec<(&str, String, String)> = Vec::new();
    for c in cases.iter().filter(|c| !c.def.fixes.is_empty() || !c.def.cve.is_empty()) {
        if rows.last().is_some_and(|r| r.0 == c.def.id) {
            continue;
        }
        let fixes: Vec<String> = c.def.fixes.iter().map(|f| escape::markdown_cell(&fix_line(f))).collect();
        let cve: Vec<String> = c.def.cve.iter().map(|v| escape::markdown_cell(v)).collect();
        rows.push((&c.def.id, fixes.join("<br>"), cve.join(" ")));
    }
    if rows.is_empty() {
        s.push_str(
            "No case carries a `fixes:` tag yet: a tag is added once the case has failed on that fix's \
             history mutant (vm/mutants/history/, proof in reports/history-mutation.jsonl).\n",
        );
        return s;
    }
    s.push_str("| case | fixes | cve |\n|---|---|---|\n");
    for (id, fixes, cve) in rows {
        s.push_str(&format!("| {} | {fixes} | {cve} |\n", escape::markdown_cell(id)));
    }
    s
}

/// Which kernels a case can run on, in words: what docs/catalogue.md's table shows.
fn kernel_class(c: &crate::case::Case) -> &'static str {
    use crate::model::Feature::*;
    let r = &c.def.requires;
    let ver = |v: &Option<String>| v.as_deref().and_then(crate::kernel::sys::parse_version);
    let kmin = r.kernel.as_ref().and_then(|k| ver(&k.min));
    let kmax = r.kernel.as_ref().and_then(|k| ver(&k.max));
    // The lines follow what the kernels measured here answer (docs/kernel-versions.md): 6.19
    // has QUERY ZCRX, IMPORT and CTRL (FLUSH_RQ, EXPORT); 7.1 adds NODEV and rx_buf_len; 7.2
    // events; 7.3 ADD_AREA.
    let has = |set: &[crate::model::Feature]| r.features.iter().any(|f| set.contains(f));
    if r.features.contains(&FaultInjection) {
        "debug kernels (fault injection)"
    } else if !r.lacks.is_empty() || kmax.is_some_and(|v| v < (7, 2, 0)) {
        "kernels without a feature only"
    } else if r.features.contains(&AddArea) || kmin.is_some_and(|v| v >= (7, 3, 0)) {
        "7.3 (ADD_AREA)"
    } else if kmax.is_some_and(|v| v < (7, 3, 0)) {
        "7.2 only"
    } else if has(&[ArmEvent, Event]) || kmin.is_some_and(|v| v >= (7, 2, 0)) {
        "7.2+ (events, or pinned)"
    } else if has(&[Nodev, RxBufLen]) {
        "7.1+ (NODEV)"
    } else if has(&[Import, Ctrl, FlushRq, Export, QueryZcrx]) {
        "6.19+ (QUERY ZCRX, CTRL)"
    } else {
        "any zcrx kernel"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_lists_tagged_cases_once_per_file() {
        let load = |text: &str| crate::case::load_str(std::path::Path::new("t.yaml"), text).expect("loads");
        let steps = "steps:\n  - register: {}\n    expect: { errno: EINVAL }\n";
        let mut cases = load(&format!(
            "id: rq.a\narea: rq\nabout: x\nmatrix: {{ n: [1, 2] }}\nfixes: [{{ id: 4f02cc4071a1, subject: \"a | b\" }}]\n{steps}"
        ));
        cases.extend(load(&format!("id: rq.b\narea: rq\nabout: x\n{steps}")));
        let t = catalogue_tags(&cases);
        assert_eq!(
            t,
            "## Regression tags\n\n| case | fixes | cve |\n|---|---|---|\n| rq.a | 4f02cc4071a1 (\"a \\| b\") |  |\n"
        );
        assert!(catalogue_tags(&cases[2..]).contains("No case carries a `fixes:` tag yet"));
    }
}
