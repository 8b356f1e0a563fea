//! The child-run protocol: a test starts `l1-test-child` (see [`crate::helper_bin`]) on a
//! scratch directory; the child runs every trial of the specs there and prints one
//! `TRIAL\t<name>\t<pass|fail>\t<message>` line per trial (newlines in the message escaped),
//! which [`parse_trials`] reads back.

/// A child run's trials: (name, passed, message).
pub type Trials = Vec<(String, bool, String)>;

const PREFIX: &str = "TRIAL\t";

/// The line the child prints for trial `name` with outcome `result`.
pub fn trial_line(name: &str, result: &Result<(), String>) -> String {
    let (ok, msg) = match result {
        Ok(()) => ("pass", String::new()),
        Err(e) => ("fail", e.replace('\n', "\\n")),
    };
    format!("{PREFIX}{name}\t{ok}\t{msg}")
}

/// The trials of a child's standard output (other lines are ignored).
pub fn parse_trials(stdout: &str) -> Trials {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix(PREFIX))
        .map(|l| {
            let mut f = l.splitn(3, '\t');
            let name = f.next().unwrap_or("").to_string();
            let passed = f.next() == Some("pass");
            let msg = f.next().unwrap_or("").replace("\\n", "\n");
            (name, passed, msg)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_with_newlines_and_tabs_in_messages() {
        let out = format!(
            "noise\n{}\n{}\n",
            trial_line("a::b", &Ok(())),
            trial_line("c", &Err("two\nlines\tand a tab".into()))
        );
        assert_eq!(
            parse_trials(&out),
            vec![
                ("a::b".to_string(), true, String::new()),
                ("c".to_string(), false, "two\nlines\tand a tab".to_string()),
            ]
        );
    }
}
