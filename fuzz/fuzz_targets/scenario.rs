//! Fuzzes the scenario loader and validator: any bytes give a scenario or a located error,
//! never a panic, an abort, a hang or an allocation sized by a number in the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let known = bazaar::sim::registry();
    match bazaar::scenario::Scenario::from_bytes("fuzz.ron", data.to_vec(), &known) {
        Ok(mut scenario) => {
            // What a run checks next: the memory guard and the command-line overrides.
            let _ = bazaar::run::check_capacity(&scenario);
            let _ = scenario.apply(bazaar::scenario::Overrides {
                days: Some(u32::from(data.first().copied().unwrap_or(1)).max(1)),
                scale: Some(f64::from(data.last().copied().unwrap_or(1)) / 16.0 + 0.01),
                ..Default::default()
            });
            let _ = scenario.max_customers();
            let _ = scenario
                .calendar
                .day(scenario.start, scenario.catalog.len());
        }
        Err(e) => {
            // Rendering the error (snippets, carets) must not panic either.
            let _ = e.to_string();
        }
    }
});
