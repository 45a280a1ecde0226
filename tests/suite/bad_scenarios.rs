//! Every kind of bad scenario gets a clear message naming file:line:col and a hint, exit
//! code 2, and no output.

use crate::common;

use common::{MINIMAL, bazaar, text, write};

/// Validates `scenario` (written as `bad.ron`) and returns stderr, asserting exit code 2.
fn reject(scenario: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "bad.ron", scenario);
    let out = bazaar(&["validate", path.to_str().unwrap()]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// Validates `scenario` (written as `ok.ron`) and returns stdout, asserting success.
fn accept(scenario: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "ok.ron", scenario);
    let out = bazaar(&["validate", path.to_str().unwrap()]);
    assert!(out.status.success(), "{:?}", text(&out));
    text(&out).0
}

/// Asserts that `err` points at the first `needle` of `scenario` (as `bad.ron`).
fn points_at(err: &str, scenario: &str, needle: &str) {
    let (line, col) = position(scenario, needle);
    assert!(err.contains(&format!("bad.ron:{line}:{col}")), "{err}");
}

/// The 1-based line and column of the first occurrence of `needle` in `text`.
fn position(text: &str, needle: &str) -> (usize, usize) {
    let at = text.find(needle).expect("needle in text");
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let col = at - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

#[test]
fn the_minimal_scenario_is_valid() {
    assert!(accept(MINIMAL).contains("ok (1 personas, 50 customers, 3 days"));
}

#[test]
fn missing_field() {
    let s = MINIMAL.replace("    seed: 1,\n", "");
    let err = reject(&s);
    assert!(err.contains("missing field `seed`"), "{err}");
    assert!(err.contains("bad.ron:"), "{err}");
    assert!(err.contains("hint: add `seed: ...`"), "{err}");
}

#[test]
fn unknown_field_suggests_the_right_one() {
    let s = MINIMAL.replace("days: 3", "dayz: 3");
    let err = reject(&s);
    let (line, col) = position(&s, "dayz");
    assert!(err.contains("unknown field `dayz`"), "{err}");
    assert!(err.contains(&format!("bad.ron:{line}:{col}")), "{err}");
    assert!(err.contains("did you mean `days`?"), "{err}");
}

#[test]
fn wrong_type() {
    let s = MINIMAL.replace("days: 3", "days: \"three\"");
    let err = reject(&s);
    points_at(&err, &s, "\"three\"");
    assert!(err.to_lowercase().contains("expected"), "{err}");
}

#[test]
fn negative_count() {
    let s = MINIMAL.replace("count: 50", "count: -5");
    let err = reject(&s);
    let (line, col) = position(&s, "-5");
    assert!(err.contains(&format!("bad.ron:{line}:{col}")), "{err}");
    assert!(
        err.contains("`population[0].count`: count -5 is negative"),
        "{err}"
    );
}

#[test]
fn end_before_start() {
    let s = MINIMAL.replace("days: 3", "end: \"2026-10-01\"");
    let err = reject(&s);
    let (line, col) = position(&s, "\"2026-10-01\"");
    assert!(err.contains(&format!("bad.ron:{line}:{col}")), "{err}");
    assert!(
        err.contains("end 2026-10-01 is before start 2026-11-01"),
        "{err}"
    );
}

#[test]
fn probability_above_one() {
    let s = MINIMAL.replace("p: 0.8", "p: 1.8");
    let err = reject(&s);
    let (line, col) = position(&s, "1.8");
    assert!(err.contains(&format!("bad.ron:{line}:{col}")), "{err}");
    assert!(
        err.contains("`personas[0].basket[0].p`: probability 1.8 is outside 0..=1"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn unknown_persona_in_population() {
    let s = MINIMAL.replace("(persona: \"family\", count", "(persona: \"famly\", count");
    let err = reject(&s);
    let (line, col) = position(&s, "\"famly\"");
    assert!(err.contains(&format!("bad.ron:{line}:{col}")), "{err}");
    assert!(err.contains("unknown persona `famly`"), "{err}");
    assert!(err.contains("did you mean `family`?"), "{err}");
}

#[test]
fn unknown_category_in_basket() {
    let s = MINIMAL.replace("category: \"rice\"", "category: \"ryce\"");
    let err = reject(&s);
    assert!(err.contains("unknown category `ryce`"), "{err}");
    assert!(err.contains("did you mean `rice`?"), "{err}");
}

#[test]
fn missing_include() {
    let s = MINIMAL.replace(
        "catalog: [(name: \"rice\", group: \"grocery\"), (name: \"sweets\")]",
        "catalog: include(\"catalogs/nowhere.ron\")",
    );
    let err = reject(&s);
    let (line, col) = position(&s, "include(");
    assert!(err.contains(&format!("bad.ron:{line}:{col}")), "{err}");
    assert!(err.contains("cannot read included file"), "{err}");
    assert!(err.contains("nowhere.ron"), "{err}");
}

#[test]
fn an_error_inside_an_include_points_into_the_included_file() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "cat.ron",
        "[\n  (name: \"rice\"),\n  (nmae: \"sweets\"),\n]\n",
    );
    let s = MINIMAL.replace(
        "catalog: [(name: \"rice\", group: \"grocery\"), (name: \"sweets\")]",
        "catalog: include(\"cat.ron\")",
    );
    let path = write(dir.path(), "bad.ron", &s);
    let out = bazaar(&["validate", path.to_str().unwrap()]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("cat.ron:3:4"), "{err}");
    assert!(err.contains("did you mean `name`?"), "{err}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let s = MINIMAL
        .replace("p: 0.8", "p: 1.8")
        .replace("count: 50", "count: -5");
    let err = reject(&s);
    assert!(
        err.contains("probability 1.8") && err.contains("count -5"),
        "{err}"
    );
}

#[test]
fn a_syntax_error_is_located() {
    let s = MINIMAL.replace("seed: 1,", "seed: 1,,");
    let err = reject(&s);
    let (line, _) = position(&s, ",,");
    assert!(err.contains(&format!("bad.ron:{line}:")), "{err}");
}

#[test]
fn a_bad_scenario_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = MINIMAL.replace("count: 50", "count: -5");
    let path = write(dir.path(), "bad.ron", &s);
    let out_dir = dir.path().join("out");
    let out = bazaar(&[path.to_str().unwrap(), "--out", out_dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!out_dir.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "only bad.ron"
    );
}

#[test]
fn a_missing_scenario_file_is_a_clear_error() {
    let out = bazaar(&["validate", "scenarios/no_such_file.ron"]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("cannot read scenario file `scenarios/no_such_file.ron`"),
        "{err}"
    );
}

/// `ok` validates; `bad`, just past a limit, is refused at the first `at` and says `says`.
fn refused_past_a_limit(ok: &str, bad: &str, at: &str, says: &[&str]) {
    accept(ok);
    let err = reject(bad);
    points_at(&err, bad, at);
    for s in says {
        assert!(err.contains(s), "{err}");
    }
}

#[test]
fn budget_too_large_for_its_paise() {
    let ok = MINIMAL.replace(
        "            hours: Slots",
        "            budget: (income_share: 0.5, payday: 1, exhausted_visit_factor: 0.5),\n            hours: Slots",
    );
    // Rs 1,20,000 x 0.5 is a fine budget; Rs 6 crore x 0.5 is not.
    let bad = ok.replace("income: (60000, 120000)", "income: (60000, 60000000)");
    refused_past_a_limit(
        &ok,
        &bad,
        "0.5, payday",
        &[
            "a budget of up to Rs 30000000 a month (income 60000000 x 0.5)",
            "hint: budgets are held in 32-bit minor units (paise, cents)",
        ],
    );
}

#[test]
fn a_category_is_a_need_or_a_prioritised_want_not_both() {
    let with = |needs: &str, priority: &str| {
        MINIMAL.replace(
            "            hours: Slots",
            &format!(
                "            budget: (income_share: 0.2, needs: {needs}, priority: {priority}),\n            hours: Slots"
            ),
        )
    };
    accept(&with(r#"["grocery"]"#, r#"["sweets"]"#));
    let bad = with(r#"["grocery"]"#, r#"["sweets", "rice"]"#);
    let err = reject(&bad);
    assert!(
        err.contains("`rice` is both a need and a prioritised want"),
        "{err}"
    );
    assert!(err.contains("budget.priority[1]"), "{err}");
    points_at(&err, &bad, r#""rice"]"#);
}

#[test]
fn run_longer_than_a_day_index_holds() {
    refused_past_a_limit(
        &MINIMAL.replace("days: 3", "days: 32767"),
        &MINIMAL.replace("days: 3", "days: 32768"),
        "32768",
        &["days must be between 1 and 32767, got 32768"],
    );
}

/// MINIMAL with `systems: [...]` holding `entries`.
fn with_systems(entries: &str) -> String {
    MINIMAL.replace(
        "    population:",
        &format!("    systems: [{entries}],\n    population:"),
    )
}

#[test]
fn a_system_takes_its_settings_in_either_spelling() {
    accept(&with_systems("DailyLog(every_days: 2)"));
    accept(&with_systems("daily_log"));
    accept(&with_systems("\"DailyLog\""));
}

#[test]
fn an_unknown_system_suggests_the_right_one() {
    let s = with_systems("DailyLogs()");
    let err = reject(&s);
    points_at(&err, &s, "DailyLogs");
    assert!(err.contains("unknown system `DailyLogs`"), "{err}");
    assert!(err.contains("did you mean `DailyLog`?"), "{err}");
}

#[test]
fn a_misspelt_setting_is_located_inside_its_system() {
    let s = with_systems("DailyLog(evry_days: 2)");
    let err = reject(&s);
    points_at(&err, &s, "evry_days");
    assert!(err.contains("`systems[0]`"), "{err}");
    assert!(
        err.contains("unknown field `evry_days` in `DailyLog`"),
        "{err}"
    );
    assert!(err.contains("did you mean `every_days`?"), "{err}");
}

#[test]
fn a_setting_of_the_wrong_type_is_located() {
    let s = with_systems("DailyLog(every_days: \"weekly\")");
    let err = reject(&s);
    points_at(&err, &s, "\"weekly\"");
}

#[test]
fn a_setting_out_of_range_is_refused_by_the_systems_own_check() {
    let s = with_systems("DailyLog(every_days: 0)");
    let err = reject(&s);
    points_at(&err, &s, "0)]");
    assert!(err.contains("`systems[0].every_days`"), "{err}");
    assert!(
        err.contains("`every_days` must be between 1 and 3, got 0"),
        "{err}"
    );
    assert!(err.contains("hint: set `every_days`"), "{err}");
}

#[test]
fn a_system_enabled_twice_is_refused() {
    let s = with_systems("DailyLog(every_days: 2), daily_log");
    let err = reject(&s);
    points_at(&err, &s, "daily_log");
    assert!(err.contains("`DailyLog` is enabled twice"), "{err}");
}

#[test]
fn systems_lists_settings_defaults_and_meanings_from_the_plugins() {
    let out = bazaar(&["systems"]);
    assert!(out.status.success());
    let (listing, _) = text(&out);
    assert!(listing.contains("DailyLog (also `daily_log`)"), "{listing}");
    // The setting's row: name, type, default (from `DailyLog::default()`) and its doc
    // comment (through its JSON schema).
    let row = listing
        .lines()
        .find(|l| l.trim_start().starts_with("every_days"))
        .unwrap_or_else(|| panic!("{listing}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[..3], ["every_days", "integer", "1"], "{row}");
    assert!(row.contains("Log every this many days"), "{row}");
    // The example entry it prints is itself a valid scenario entry.
    let example = listing
        .lines()
        .find_map(|l| l.trim().strip_prefix("systems: [")?.strip_suffix(']'))
        .unwrap_or_else(|| panic!("{listing}"));
    accept(&with_systems(example));
}

#[test]
fn a_trip_without_a_share_or_with_a_negative_factor_is_refused() {
    let bad = MINIMAL.replace(
        "hours: Slots",
        "trips: [(share: 0, purchase: 0.5), (share: 1, purchase: -2)],\n            hours: Slots",
    );
    let err = reject(&bad);
    assert!(err.contains("`personas[0].trips[0].share`"), "{err}");
    assert!(
        err.contains("a trip's share must be positive, not 0"),
        "{err}"
    );
    points_at(&err, &bad, "0, purchase: 0.5");
    assert!(err.contains("`personas[0].trips[1].purchase`"), "{err}");
    accept(&MINIMAL.replace(
        "hours: Slots",
        "trips: [(share: 2, purchase: 0.5), (share: 1, purchase: 2)],\n            hours: Slots",
    ));
}

#[test]
fn a_tuning_block_names_what_the_scenario_has_and_factors_in_range() {
    let with = |tuning: &str| MINIMAL.replace("\n)\n", &format!("\n    tuning: {tuning},\n)\n"));
    let bad = with(r#"(visits: 0, personas: {"famly": (prices: 2)}, categories: {"ryce": 3})"#);
    let err = reject(&bad);
    assert!(
        err.contains("tuning factor visits is 0: it must be between 0.01 and 100"),
        "{err}"
    );
    points_at(&err, &bad, "0, personas");
    assert!(
        err.contains("tuning names the persona `famly`") && err.contains("did you mean `family`?"),
        "{err}"
    );
    points_at(&err, &bad, "\"famly\"");
    assert!(
        err.contains("tuning names the category or group `ryce`")
            && err.contains("did you mean `rice`?"),
        "{err}"
    );
    // A group is a category of the tuning too; an event the calendar lacks is not.
    accept(&with(
        r#"(visits: 1.5, categories: {"grocery": 2}, personas: {"family": (customers: 2)})"#,
    ));
    let err = reject(&with(r#"(events: {"Diwal": (traffic: 2)})"#));
    assert!(err.contains("tuning names the event `Diwal`"), "{err}");
}

#[test]
fn a_name_of_dots_is_no_folder_of_its_own() {
    for name in [".", ".."] {
        let s = MINIMAL.replace("name: \"minimal\"", &format!("name: \"{name}\""));
        let err = reject(&s);
        points_at(&err, &s, &format!("\"{name}\""));
    }
    accept(&MINIMAL.replace("name: \"minimal\"", "name: \"v1.2\""));
}

#[test]
fn a_figure_tuned_out_of_range_says_the_tuning_moved_it() {
    let with = |tuning: &str| MINIMAL.replace("\n)\n", &format!("\n    tuning: {tuning},\n)\n"));
    assert!(accept(&with(r#"(personas: {"family": (customers: 2)})"#)).contains("100 customers"));
    let bad = with("(prices: 100)").replace("Uniform(800, 2000)", "Uniform(800, 200000)");
    let err = reject(&bad);
    assert!(err.contains("`personas[0].basket[0].price`"), "{err}");
    assert!(
        err.contains("checked after this block's factors multiplied them"),
        "{err}"
    );
    points_at(&err, &bad, "(prices: 100)");
}

#[test]
fn margins_are_shares_and_every_category_has_one_or_none_does() {
    let catalog = r#"catalog: [(name: "rice", group: "grocery"), (name: "sweets")],"#;
    assert!(MINIMAL.contains(catalog));
    let partial = MINIMAL.replace(
        catalog,
        r#"catalog: [(name: "rice", group: "grocery", margin: 0.1), (name: "sweets")],"#,
    );
    let err = reject(&partial);
    points_at(&err, &partial, r#"(name: "sweets")"#);
    assert!(err.contains("category `sweets` has no margin"), "{err}");
    assert!(err.contains("hint: give every category a margin"), "{err}");
    let whole = MINIMAL.replace(
        catalog,
        r#"catalog: [(name: "rice", group: "grocery", margin: 1.0), (name: "sweets", margin: 0.3)],"#,
    );
    let err = reject(&whole);
    points_at(&err, &whole, "1.0)");
    assert!(err.contains("margin 1 is not a share"), "{err}");
    accept(&MINIMAL.replace(
        catalog,
        r#"catalog: [(name: "rice", group: "grocery", margin: 0.1), (name: "sweets", margin: 0.3)],"#,
    ));
}
