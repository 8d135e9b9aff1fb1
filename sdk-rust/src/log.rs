//! Logging to the host, which attaches each line to the call's trace.

use fwasm_abi::log_level;

pub fn error(message: &str) {
    crate::host::log(log_level::ERROR, message);
}

pub fn warn(message: &str) {
    crate::host::log(log_level::WARN, message);
}

pub fn info(message: &str) {
    crate::host::log(log_level::INFO, message);
}

pub fn debug(message: &str) {
    crate::host::log(log_level::DEBUG, message);
}

pub fn trace(message: &str) {
    crate::host::log(log_level::TRACE, message);
}
