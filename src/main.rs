//! The `villas-controller` binary with the built-in kinds.

use std::process::ExitCode;

fn main() -> ExitCode {
    villas_controller::entry::main_with_kinds(villas_controller::builtin_kinds())
}
