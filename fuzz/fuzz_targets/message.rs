//! Fuzz target: an AMQP message (header table and body) through header
//! extraction, routing, `parse_body` and `Driver::handle`.

#![cfg_attr(feature = "libfuzzer", no_main)]

#[cfg(feature = "libfuzzer")]
libfuzzer_sys::fuzz_target!(|data: &[u8]| villas_controller_fuzz::message(data));

#[cfg(not(feature = "libfuzzer"))]
fn main() {
    use villas_controller_fuzz::{message, message_seeds as s, message_signature, mutate};
    let options = mutate::Options::from_args("message");
    std::process::exit(mutate::fuzz(
        "message",
        &options,
        s::SEEDS,
        s::DICTIONARY,
        message,
        message_signature,
    ));
}
