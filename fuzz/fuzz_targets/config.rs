//! Arbitrary bytes as a config file (YAML and JSON), through validation and both policies.
//! Run: `cargo +nightly fuzz run config` (from the repository root).
#![no_main]

use libfuzzer_sys::fuzz_target;

use addon_sandbox::config::validate::validate;
use addon_sandbox::diag::Sink;
use addon_sandbox::plan::PolicyMode;
use addon_sandbox::policy::{PlanOptions, decide};
use addon_sandbox::source::{Format, SourceText, decode, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = decode(data) else { return };
    for format in [Format::Yaml, Format::Json] {
        let Ok(root) = parse(text, format) else { continue };
        let source = SourceText::new(text.to_owned());
        let mut sink = Sink::new(std::path::Path::new("config.yaml"), Some(&source));
        let Some(config) = validate(&root, &mut sink) else { continue };
        for policy in [PolicyMode::Strict, PolicyMode::Supervisor] {
            for protected in [true, false] {
                let options = PlanOptions { policy, protected, ..PlanOptions::default() };
                let _ = decide(&config, false, &options);
            }
        }
    }
});
