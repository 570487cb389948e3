//! The HTML report's "What the suite catches" section: the kernel mutants killed and the
//! zcrx.c lines executed, from the campaign reports the binary was built with.

use std::fmt::Write;

use super::escape::html as escape;

/// What the suite catches in the kernel, as measured when this binary was built.
mod measured {
    include!(concat!(env!("OUT_DIR"), "/measured.rs"));
}

/// The kernel mutants killed and the zcrx.c lines executed, by this suite and by liburing's
/// zcrx.t, from the campaign reports the binary was built with (nothing when there are none).
pub fn section(s: &mut String) {
    let parse = |t: Option<&str>| t.and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok());
    let (m, c) = (parse(measured::MUTATION_JSON), parse(measured::COVERAGE_JSON));
    if m.is_none() && c.is_none() {
        return;
    }
    let str_of = |v: &serde_json::Value, k: &str| escape(v.get(k).and_then(|x| x.as_str()).unwrap_or("?"));
    let num = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_f64()).unwrap_or(0.0);
    s.push_str("<section id=\"measured\"><h2>What the suite catches</h2><ul>");
    if let Some(m) = &m {
        let _ = write!(
            s,
            "<li>Kernel mutants of io_uring/zcrx.c (<code>reports/mutation.md</code>): {} of {} run on <code>{}</code> \
             (measured {}): killed by this suite {} ({:.0}%), by liburing's zcrx.t {} ({:.0}%).</li>",
            num(m, "run"),
            num(m, "mutants"),
            str_of(m, "kernel_release"),
            str_of(m, "measured"),
            num(m, "killed") + num(m, "killed_by_crash"),
            num(m, "killed_pct"),
            num(m, "liburing_killed"),
            num(m, "liburing_killed_pct"),
        );
    }
    if let Some(c) = &c {
        let _ = write!(
            s,
            "<li>Lines of io_uring/zcrx.c executed (<code>reports/coverage.md</code>, gcov, <code>{}</code>, measured \
             {}): this suite {:.1}%, liburing's zcrx.t {:.1}%, either {:.1}% of {}.</li>",
            str_of(c, "kernel_release"),
            str_of(c, "measured"),
            num(c, "suite_pct"),
            num(c, "liburing_pct"),
            num(c, "either_pct"),
            num(c, "lines_found"),
        );
    }
    s.push_str("</ul></section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measured_numbers_appear_when_the_binary_was_built_with_them() {
        let mut page = String::new();
        section(&mut page);
        let built_with = measured::MUTATION_JSON.is_some() || measured::COVERAGE_JSON.is_some();
        assert_eq!(page.contains("<section id=\"measured\">"), built_with);
        if let Some(m) = measured::MUTATION_JSON {
            let v: serde_json::Value = serde_json::from_str(m).expect("reports/mutation.json is JSON");
            let run = v.get("run").and_then(|x| x.as_u64()).expect("mutation.json has `run`");
            assert!(page.contains(&format!("{run} of ")), "the mutant count is shown");
        }
    }
}
