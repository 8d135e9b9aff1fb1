//! fwasm end-to-end tests live in tests/e2e; example and test functions in functions/.
