//! Names and paths from HTTP paths, gRPC fields and guests: users, functions, state keys,
//! command lines and shared-file paths (the WASI path resolution). A path that normalises
//! stays where it is when normalised again, and never leaves the root.
#![no_main]

use fwasm_proto::names;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = names::check_name("user", text);
    let _ = names::check_state_key(text);
    let _ = names::check_cmdline(text);
    if let Some((user, function)) = text.split_once('/') {
        let _ = names::check_function_ref(user, function);
    }
    if let Ok(path) = names::file_path(text) {
        assert!(
            !path.starts_with('/') && !path.split('/').any(|part| part == ".."),
            "{path}"
        );
        assert_eq!(names::file_path(&path).ok().as_deref(), Some(path.as_str()));
    }
});
