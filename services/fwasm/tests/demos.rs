//! The bundled demo functions are what `fwasm up` serves first, so they must be built right.

use fwasm::up::DEMOS;

/// Built with the 64 KiB stack (integration/functions/.cargo/config.toml), a demo starts with
/// 2 pages of memory; with Rust's default 1 MiB stack it starts with 17, and every call's fresh
/// instance costs about 5x more. scripts/build-demos must run from the functions workspace.
#[test]
fn demos_are_built_with_the_small_stack() {
    let engine = wasmi::Engine::default();
    for (user, function, wasm) in DEMOS {
        let abi = match *function {
            "proxy-echo" => fwasm_executor::Abi::ProxyWasm,
            _ => fwasm_executor::Abi::FwasmV1,
        };
        assert_eq!(
            fwasm_executor::validate(wasm).map(|validated| validated.abi),
            Ok(abi)
        );
        let module = wasmi::Module::new(&engine, *wasm).unwrap();
        let Some(wasmi::ExternType::Memory(memory)) = module.get_export("memory") else {
            panic!("{user}/{function} exports no memory");
        };
        assert!(
            memory.minimum() <= 4,
            "{user}/{function} starts with {} pages: rebuild it with scripts/build-demos",
            memory.minimum()
        );
    }
}
