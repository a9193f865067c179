//! A bad value fails with one error naming the file, the link and the field.

use link_shaper::LinkProfiles;

fn error_of(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("links.toml");
    std::fs::write(&path, text).unwrap();
    let err = LinkProfiles::load(&path).unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert_eq!(message.lines().count(), 1, "one line: {message}");
    message
}

const GOOD: &str = r#"
[[link]]
name = "a"
down = "10 Mbit/s"
up = "5 Mbit/s"
rtt = "50 ms"
source = "test"
"#;

#[test]
fn a_negative_rate_names_the_field() {
    let m = error_of(&GOOD.replace("5 Mbit/s", "-5 Mbit/s"));
    assert!(
        m.contains("\"a\"") && m.contains("`up`") && m.contains("negative rate"),
        "{m}"
    );
}

#[test]
fn an_unknown_unit_names_the_field_and_the_known_units() {
    let m = error_of(&GOOD.replace("10 Mbit/s", "10 Mbps/s"));
    assert!(
        m.contains("`down`") && m.contains("unknown unit \"Mbps/s\"") && m.contains("Mbit/s"),
        "{m}"
    );
    let m = error_of(&GOOD.replace("50 ms", "50 fortnights"));
    assert!(m.contains("`rtt`") && m.contains("unknown unit"), "{m}");
    let m = error_of(&GOOD.replace("\"10 Mbit/s\"", "10"));
    assert!(m.contains("`down`") && m.contains("no unit"), "{m}");
}

#[test]
fn a_duplicate_name_names_both_entries() {
    let m = error_of(&format!("{GOOD}{GOOD}"));
    assert!(
        m.contains("[[link]] #2")
            && m.contains("`name`")
            && m.contains("duplicate name")
            && m.contains("#1"),
        "{m}"
    );
}

#[test]
fn a_missing_or_unknown_field_is_a_parse_error_naming_the_file() {
    let m = error_of(&GOOD.replace("source = \"test\"\n", ""));
    assert!(m.contains("source"), "{m}");
    let m = error_of(&GOOD.replace("rtt =", "latency ="));
    assert!(m.contains("latency"), "{m}");
}
