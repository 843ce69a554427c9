//! The kind process: serves `simulator/{{name}}` on stdin and stdout (the
//! kind process protocol; the daemon starts it). Log to stderr only.

use villas_sdk::typed::TypedKind;

fn main() {
    let kinds = vec![{{name}}_kind::SimulatorKind.into_kind()];
    std::process::exit(villas_sdk::serve::serve(
        kinds,
        "{{name}}",
        env!("CARGO_PKG_VERSION"),
    ));
}
