//! Fuzz target: a configuration text (TOML, YAML or JSON) through the
//! settings loader.

#![cfg_attr(feature = "libfuzzer", no_main)]

#[cfg(feature = "libfuzzer")]
libfuzzer_sys::fuzz_target!(|data: &[u8]| villas_controller_fuzz::settings(data));

#[cfg(not(feature = "libfuzzer"))]
fn main() {
    use villas_controller_fuzz::{mutate, settings, settings_seeds as s, settings_signature};
    let options = mutate::Options::from_args("settings");
    std::process::exit(mutate::fuzz(
        "settings",
        &options,
        s::SEEDS,
        s::DICTIONARY,
        settings,
        settings_signature,
    ));
}
