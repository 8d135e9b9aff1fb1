//! Integration tests for Wasmi.

mod integration;
