//! The host functions of proxy-wasm (module `env`): every one the proxy-wasm Rust SDK 0.2.x
//! links, 0.1.0's configuration calls, and Layotto's additions. Each answers with a status
//! the SDKs accept for it: where fwasm has no such thing (upstream HTTP and gRPC calls,
//! foreign functions) the answer is the error status the SDK passes back to the guest, never
//! one it panics on.

use std::time::{SystemTime, UNIX_EPOCH};

use wasmi::ValType::{I32, I64};
use wasmi::{Caller, Linker};

use super::guest::{check_out, hand_over, proxy, read, write};
use super::layotto;
use super::maps::{self, Pairs};
use super::status::{Refused, Status};
use super::stream::{LocalResponse, ProxyCall, ROOT_CONTEXT, STREAM_CONTEXT, buffer};
use crate::abi::ImportSignature;
use crate::host::HostState;
use crate::host::memory::cut_message;

/// The import module of every proxy-wasm host function.
pub(crate) const MODULE: &str = "env";

/// Every host function defined here, for validation.
pub(crate) const IMPORTS: &[ImportSignature] = &[
    ("env", "proxy_log", &[I32, I32, I32], &[I32]),
    ("env", "proxy_get_log_level", &[I32], &[I32]),
    ("env", "proxy_get_current_time_nanoseconds", &[I32], &[I32]),
    ("env", "proxy_set_tick_period_milliseconds", &[I32], &[I32]),
    (
        "env",
        "proxy_get_buffer_bytes",
        &[I32, I32, I32, I32, I32],
        &[I32],
    ),
    (
        "env",
        "proxy_set_buffer_bytes",
        &[I32, I32, I32, I32, I32],
        &[I32],
    ),
    (
        "env",
        "proxy_get_header_map_pairs",
        &[I32, I32, I32],
        &[I32],
    ),
    (
        "env",
        "proxy_set_header_map_pairs",
        &[I32, I32, I32],
        &[I32],
    ),
    (
        "env",
        "proxy_get_header_map_value",
        &[I32, I32, I32, I32, I32],
        &[I32],
    ),
    (
        "env",
        "proxy_remove_header_map_value",
        &[I32, I32, I32],
        &[I32],
    ),
    (
        "env",
        "proxy_replace_header_map_value",
        &[I32, I32, I32, I32, I32],
        &[I32],
    ),
    (
        "env",
        "proxy_add_header_map_value",
        &[I32, I32, I32, I32, I32],
        &[I32],
    ),
    ("env", "proxy_get_property", &[I32, I32, I32, I32], &[I32]),
    ("env", "proxy_set_property", &[I32, I32, I32, I32], &[I32]),
    (
        "env",
        "proxy_get_shared_data",
        &[I32, I32, I32, I32, I32],
        &[I32],
    ),
    (
        "env",
        "proxy_set_shared_data",
        &[I32, I32, I32, I32, I32],
        &[I32],
    ),
    (
        "env",
        "proxy_register_shared_queue",
        &[I32, I32, I32],
        &[I32],
    ),
    (
        "env",
        "proxy_resolve_shared_queue",
        &[I32, I32, I32, I32, I32],
        &[I32],
    ),
    (
        "env",
        "proxy_dequeue_shared_queue",
        &[I32, I32, I32],
        &[I32],
    ),
    (
        "env",
        "proxy_enqueue_shared_queue",
        &[I32, I32, I32],
        &[I32],
    ),
    ("env", "proxy_continue_stream", &[I32], &[I32]),
    ("env", "proxy_close_stream", &[I32], &[I32]),
    (
        "env",
        "proxy_send_local_response",
        &[I32, I32, I32, I32, I32, I32, I32, I32],
        &[I32],
    ),
    (
        "env",
        "proxy_send_http_response",
        &[I32, I32, I32, I32, I32, I32, I32, I32],
        &[I32],
    ),
    (
        "env",
        "proxy_http_call",
        &[I32, I32, I32, I32, I32, I32, I32, I32, I32, I32],
        &[I32],
    ),
    (
        "env",
        "proxy_grpc_call",
        &[I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32],
        &[I32],
    ),
    (
        "env",
        "proxy_grpc_stream",
        &[I32, I32, I32, I32, I32, I32, I32, I32, I32],
        &[I32],
    ),
    ("env", "proxy_grpc_send", &[I32, I32, I32, I32], &[I32]),
    ("env", "proxy_grpc_cancel", &[I32], &[I32]),
    ("env", "proxy_grpc_close", &[I32], &[I32]),
    ("env", "proxy_get_status", &[I32, I32, I32], &[I32]),
    ("env", "proxy_set_effective_context", &[I32], &[I32]),
    (
        "env",
        "proxy_call_foreign_function",
        &[I32, I32, I32, I32, I32, I32],
        &[I32],
    ),
    ("env", "proxy_done", &[], &[I32]),
    ("env", "proxy_define_metric", &[I32, I32, I32, I32], &[I32]),
    ("env", "proxy_get_metric", &[I32, I32], &[I32]),
    ("env", "proxy_record_metric", &[I32, I64], &[I32]),
    ("env", "proxy_increment_metric", &[I32, I64], &[I32]),
    ("env", "proxy_get_configuration", &[I32, I32], &[I32]),
    ("env", "proxy_continue_request", &[], &[I32]),
    ("env", "proxy_continue_response", &[], &[I32]),
    ("env", "proxy_clear_route_cache", &[], &[I32]),
    (
        "env",
        "proxy_get_state",
        &[I32, I32, I32, I32, I32, I32],
        &[I32],
    ),
    (
        "env",
        "proxy_invoke_service",
        &[I32, I32, I32, I32, I32, I32, I32, I32],
        &[I32],
    ),
];

/// The status an import returns; a refusal that means something went wrong is logged, kept
/// for `last_error`, and kept as the reason the call fails if the guest traps on it (the SDKs
/// panic on statuses they do not expect).
fn answer(caller: &mut Caller<'_, HostState>, import: &str, result: Result<(), Refused>) -> i32 {
    let Err(refused) = result else {
        return Status::Ok as i32;
    };
    if let Some(message) = refused.message {
        let message = format!("{import}: {message}");
        tracing::debug!(target: "fwasm::guest", status = refused.status as i32, "{message}");
        let host = caller.data_mut();
        host.failure_reason.get_or_insert_with(|| message.clone());
        host.last_error = Some(message);
    }
    refused.status as i32
}

/// A function fwasm does not have, answered with the error status the SDK passes back.
fn unsupported(status: Status, what: &str) -> Result<(), Refused> {
    tracing::warn!(target: "fwasm::guest", "{what}");
    Err(Refused::quietly(status))
}

fn over_budget(proxy: &ProxyCall) -> Refused {
    Refused::because(
        Status::BadArgument,
        format!(
            "the guest has had the host keep over its memory limit of {} bytes",
            proxy.max_held_bytes
        ),
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The header map of `map_type`.
fn header_map(proxy: &mut ProxyCall, map_type: i32) -> Result<&mut Pairs, Refused> {
    proxy.map(map_type).ok_or_else(|| {
        Refused::because(
            Status::BadArgument,
            format!("there is no header map {map_type}"),
        )
    })
}

/// Replaces `size` bytes at `start` with `data`: `start` past the end appends.
fn splice(buffer: &mut Vec<u8>, start: i32, size: i32, data: Vec<u8>) {
    if buffer.is_empty() {
        *buffer = data;
        return;
    }
    let len = buffer.len();
    let start = (start as u32 as usize).min(len);
    let end = start.saturating_add(size as u32 as usize).min(len);
    buffer.splice(start..end, data);
}

/// Defines one host function: `$body` is the import's work, `Ok` being status OK.
macro_rules! import {
    ($linker:expr, $name:expr, |$caller:ident $(, $arg:ident: $ty:ty)*| $body:block) => {
        $linker
            .func_wrap(
                MODULE,
                $name,
                |mut $caller: Caller<'_, HostState>, $($arg: $ty),*| -> i32 {
                    #[allow(clippy::redundant_closure_call, unused_mut)]
                    let result = (|| -> Result<(), Refused> { $body })();
                    answer(&mut $caller, $name, result)
                },
            )
            .unwrap_or_else(|_| panic!("{} is defined once", $name));
    };
}

pub(crate) fn define_imports(linker: &mut Linker<HostState>) {
    define_logging_and_time(linker);
    define_buffers(linker);
    define_header_maps(linker);
    define_stream(linker);
    define_plugin_state(linker);
    define_upstream_calls(linker);
    layotto::define_imports(linker);
}

fn define_logging_and_time(linker: &mut Linker<HostState>) {
    import!(
        linker,
        "proxy_log",
        |caller, level: i32, ptr: i32, len: i32| {
            let message = cut_message(&text(&read(&caller, "message", ptr, len)?));
            let name = match level {
                0 => "TRACE",
                1 => "DEBUG",
                3 => "WARN",
                4 => "ERROR",
                5 => "CRITICAL",
                _ => "INFO",
            };
            caller.data_mut().io.keep_log(name, &message);
            match level {
                0 => tracing::trace!(target: "fwasm::guest", "{message}"),
                1 => tracing::debug!(target: "fwasm::guest", "{message}"),
                3 => tracing::warn!(target: "fwasm::guest", "{message}"),
                4 => tracing::error!(target: "fwasm::guest", "{message}"),
                5 => {
                    tracing::error!(target: "fwasm::guest", critical = true, "{message}");
                    // The SDKs log a panic's message at this level just before trapping.
                    caller.data_mut().failure_reason.get_or_insert(message);
                }
                _ => tracing::info!(target: "fwasm::guest", "{message}"),
            }
            Ok(())
        }
    );
    import!(linker, "proxy_get_log_level", |caller, level_out: i32| {
        let level = [
            (tracing::Level::TRACE, 0u32),
            (tracing::Level::DEBUG, 1),
            (tracing::Level::INFO, 2),
            (tracing::Level::WARN, 3),
        ]
        .into_iter()
        .find(|(level, _)| match *level {
            tracing::Level::TRACE => {
                tracing::enabled!(target: "fwasm::guest", tracing::Level::TRACE)
            }
            tracing::Level::DEBUG => {
                tracing::enabled!(target: "fwasm::guest", tracing::Level::DEBUG)
            }
            tracing::Level::INFO => tracing::enabled!(target: "fwasm::guest", tracing::Level::INFO),
            _ => tracing::enabled!(target: "fwasm::guest", tracing::Level::WARN),
        })
        .map_or(4, |(_, code)| code);
        write(&mut caller, level_out, &level.to_le_bytes())
    });
    import!(
        linker,
        "proxy_get_current_time_nanoseconds",
        |caller, time_out: i32| {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.as_nanos() as u64);
            write(&mut caller, time_out, &now.to_le_bytes())
        }
    );
    // The instance lives for one request: there is no later tick to set a period for.
    import!(
        linker,
        "proxy_set_tick_period_milliseconds",
        |caller, _period: i32| { Ok(()) }
    );
}

fn define_buffers(linker: &mut Linker<HostState>) {
    import!(
        linker,
        "proxy_get_buffer_bytes",
        |caller, buffer_type: i32, start: i32, max_size: i32, ptr_out: i32, len_out: i32| {
            check_out(&caller, ptr_out, len_out)?;
            let proxy = proxy(caller.data_mut())?;
            let Some(buffer) = proxy.buffer(buffer_type) else {
                return Err(Refused::quietly(Status::NotFound));
            };
            let start = (start as u32 as usize).min(buffer.len());
            let end = start
                .saturating_add(max_size as u32 as usize)
                .min(buffer.len());
            hand_over(&mut caller, &buffer.slice(start..end), ptr_out, len_out)
        }
    );
    import!(
        linker,
        "proxy_set_buffer_bytes",
        |caller, buffer_type: i32, start: i32, size: i32, ptr: i32, len: i32| {
            let data = read(&caller, "data", ptr, len)?;
            let proxy = proxy(caller.data_mut())?;
            match buffer_type {
                buffer::HTTP_REQUEST_BODY => {
                    let mut body = proxy.request_body.to_vec();
                    splice(&mut body, start, size, data);
                    proxy.request_body = body.into();
                }
                buffer::HTTP_RESPONSE_BODY => {
                    let mut body = std::mem::take(&mut proxy.response_body);
                    splice(&mut body, start, size, data);
                    if body.len() > proxy.max_response_bytes {
                        return Err(Refused::because(
                            Status::BadArgument,
                            format!(
                                "a response body of {} bytes is over the output limit of {} bytes",
                                body.len(),
                                proxy.max_response_bytes
                            ),
                        ));
                    }
                    proxy.response_body = body;
                }
                buffer::CALL_DATA => {
                    proxy.hold(data.len()).map_err(|_| over_budget(proxy))?;
                    splice(&mut proxy.call_data, start, size, data);
                }
                other => {
                    return Err(Refused::because(
                        Status::BadArgument,
                        format!(
                            "there is no buffer {other} to write (fwasm has the HTTP request and \
                         response bodies, 0 and 1, and the call data, 8)"
                        ),
                    ));
                }
            }
            Ok(())
        }
    );
    // proxy-wasm 0.1.0's way to read the plugin configuration.
    import!(
        linker,
        "proxy_get_configuration",
        |caller, ptr_out: i32, len_out: i32| {
            check_out(&caller, ptr_out, len_out)?;
            let configuration = proxy(caller.data_mut())?.plugin_configuration.clone();
            hand_over(&mut caller, &configuration, ptr_out, len_out)
        }
    );
}

fn define_header_maps(linker: &mut Linker<HostState>) {
    import!(
        linker,
        "proxy_get_header_map_pairs",
        |caller, map_type: i32, ptr_out: i32, len_out: i32| {
            check_out(&caller, ptr_out, len_out)?;
            let serialized = maps::serialize(header_map(proxy(caller.data_mut())?, map_type)?);
            hand_over(&mut caller, &serialized, ptr_out, len_out)
        }
    );
    import!(
        linker,
        "proxy_set_header_map_pairs",
        |caller, map_type: i32, ptr: i32, len: i32| {
            let bytes = read(&caller, "map", ptr, len)?;
            let pairs = maps::deserialize(&bytes).ok_or_else(|| {
                Refused::because(Status::BadArgument, "the header map is malformed")
            })?;
            let proxy = proxy(caller.data_mut())?;
            proxy.hold(bytes.len()).map_err(|_| over_budget(proxy))?;
            *header_map(proxy, map_type)? = pairs;
            Ok(())
        }
    );
    import!(
        linker,
        "proxy_get_header_map_value",
        |caller, map_type: i32, key_ptr: i32, key_len: i32, ptr_out: i32, len_out: i32| {
            let key = read(&caller, "header name", key_ptr, key_len)?;
            check_out(&caller, ptr_out, len_out)?;
            let map = header_map(proxy(caller.data_mut())?, map_type)?;
            let Some((_, value)) = map.iter().find(|(name, _)| name.eq_ignore_ascii_case(&key))
            else {
                return Err(Refused::quietly(Status::NotFound));
            };
            let value = value.clone();
            hand_over(&mut caller, &value, ptr_out, len_out)
        }
    );
    import!(
        linker,
        "proxy_add_header_map_value",
        |caller, map_type: i32, key_ptr: i32, key_len: i32, value_ptr: i32, value_len: i32| {
            let key = read(&caller, "header name", key_ptr, key_len)?;
            let value = read(&caller, "header value", value_ptr, value_len)?;
            let proxy = proxy(caller.data_mut())?;
            proxy
                .hold(key.len() + value.len())
                .map_err(|_| over_budget(proxy))?;
            header_map(proxy, map_type)?.push((key, value));
            Ok(())
        }
    );
    import!(
        linker,
        "proxy_replace_header_map_value",
        |caller, map_type: i32, key_ptr: i32, key_len: i32, value_ptr: i32, value_len: i32| {
            let key = read(&caller, "header name", key_ptr, key_len)?;
            let value = read(&caller, "header value", value_ptr, value_len)?;
            let proxy = proxy(caller.data_mut())?;
            proxy
                .hold(key.len() + value.len())
                .map_err(|_| over_budget(proxy))?;
            let map = header_map(proxy, map_type)?;
            map.retain(|(name, _)| !name.eq_ignore_ascii_case(&key));
            map.push((key, value));
            Ok(())
        }
    );
    import!(
        linker,
        "proxy_remove_header_map_value",
        |caller, map_type: i32, key_ptr: i32, key_len: i32| {
            let key = read(&caller, "header name", key_ptr, key_len)?;
            let map = header_map(proxy(caller.data_mut())?, map_type)?;
            map.retain(|(name, _)| !name.eq_ignore_ascii_case(&key));
            Ok(())
        }
    );
}

fn define_stream(linker: &mut Linker<HostState>) {
    import!(
        linker,
        "proxy_set_effective_context",
        |caller, context: i32| {
            match context {
                ROOT_CONTEXT | STREAM_CONTEXT => Ok(()),
                _ => Err(Refused::quietly(Status::BadArgument)),
            }
        }
    );
    // A context that finishes later (proxy_on_done returned false) finishes with the call.
    import!(linker, "proxy_done", |caller| { Ok(()) });
    // The request is never held back: the next callback follows at once.
    import!(linker, "proxy_continue_stream", |caller, _stream: i32| {
        Ok(())
    });
    import!(linker, "proxy_continue_request", |caller| { Ok(()) });
    import!(linker, "proxy_continue_response", |caller| { Ok(()) });
    import!(linker, "proxy_clear_route_cache", |caller| { Ok(()) });
    import!(linker, "proxy_close_stream", |caller, _stream: i32| {
        proxy(caller.data_mut())?.reset = true;
        Ok(())
    });
    // Layotto calls the same import `proxy_send_http_response`.
    for name in ["proxy_send_local_response", "proxy_send_http_response"] {
        import!(
            linker,
            name,
            |caller,
             status: i32,
             details_ptr: i32,
             details_len: i32,
             body_ptr: i32,
             body_len: i32,
             headers_ptr: i32,
             headers_len: i32,
             grpc_status: i32| {
                send_local_response(
                    &mut caller,
                    [
                        status,
                        details_ptr,
                        details_len,
                        body_ptr,
                        body_len,
                        headers_ptr,
                        headers_len,
                        grpc_status,
                    ],
                )
            }
        );
    }
    import!(
        linker,
        "proxy_get_property",
        |caller, path_ptr: i32, path_len: i32, ptr_out: i32, len_out: i32| {
            let path = read(&caller, "property path", path_ptr, path_len)?;
            check_out(&caller, ptr_out, len_out)?;
            let Some(value) = proxy(caller.data_mut())?.property(&path) else {
                return Err(Refused::quietly(Status::NotFound));
            };
            hand_over(&mut caller, &value, ptr_out, len_out)
        }
    );
    import!(
        linker,
        "proxy_set_property",
        |caller, path_ptr: i32, path_len: i32, value_ptr: i32, value_len: i32| {
            let path = read(&caller, "property path", path_ptr, path_len)?;
            let value = read(&caller, "property value", value_ptr, value_len)?;
            let proxy = proxy(caller.data_mut())?;
            proxy
                .hold(path.len() + value.len())
                .map_err(|_| over_budget(proxy))?;
            proxy.properties.insert(path, value);
            Ok(())
        }
    );
}

/// `proxy_send_local_response(status, details, body, headers, grpc_status)`: the reply, sent
/// once the callback returns. The details and gRPC status are a proxy's own business.
fn send_local_response(caller: &mut Caller<'_, HostState>, args: [i32; 8]) -> Result<(), Refused> {
    let [
        status,
        _,
        _,
        body_ptr,
        body_len,
        headers_ptr,
        headers_len,
        _,
    ] = args;
    let body = read(caller, "body", body_ptr, body_len)?;
    let headers = read(caller, "headers", headers_ptr, headers_len)?;
    let headers = maps::deserialize(&headers)
        .ok_or_else(|| Refused::because(Status::BadArgument, "the headers are malformed"))?;
    let proxy = proxy(caller.data_mut())?;
    if body.len() > proxy.max_response_bytes {
        return Err(Refused::because(
            Status::BadArgument,
            format!(
                "a response body of {} bytes is over the output limit of {} bytes",
                body.len(),
                proxy.max_response_bytes
            ),
        ));
    }
    if !(100..=999).contains(&status) {
        return Err(Refused::because(
            Status::BadArgument,
            format!("{status} is not an HTTP status"),
        ));
    }
    proxy.local_response = Some(LocalResponse {
        status: status as u32,
        headers,
        body,
    });
    Ok(())
}

/// What a proxy keeps for a plugin across requests (shared data and queues, metrics): here
/// for the life of the call's instance, which serves one request.
fn define_plugin_state(linker: &mut Linker<HostState>) {
    import!(
        linker,
        "proxy_get_shared_data",
        |caller, key_ptr: i32, key_len: i32, ptr_out: i32, len_out: i32, cas_out: i32| {
            let key = read(&caller, "key", key_ptr, key_len)?;
            check_out(&caller, ptr_out, len_out)?;
            let Some((value, cas)) = proxy(caller.data_mut())?.shared_data.get(&key).cloned()
            else {
                return Err(Refused::quietly(Status::NotFound));
            };
            write(&mut caller, cas_out, &cas.to_le_bytes())?;
            hand_over(&mut caller, &value, ptr_out, len_out)
        }
    );
    import!(
        linker,
        "proxy_set_shared_data",
        |caller, key_ptr: i32, key_len: i32, value_ptr: i32, value_len: i32, cas: i32| {
            let key = read(&caller, "key", key_ptr, key_len)?;
            let value = read(&caller, "value", value_ptr, value_len)?;
            let proxy = proxy(caller.data_mut())?;
            let current = proxy.shared_data.get(&key).map_or(0, |(_, cas)| *cas);
            if cas != 0 && cas as u32 != current {
                return Err(Refused::quietly(Status::CasMismatch));
            }
            proxy
                .hold(key.len() + value.len())
                .map_err(|_| over_budget(proxy))?;
            proxy
                .shared_data
                .insert(key, (value, current.wrapping_add(1).max(1)));
            Ok(())
        }
    );
    import!(
        linker,
        "proxy_register_shared_queue",
        |caller, name_ptr: i32, name_len: i32, id_out: i32| {
            let name = read(&caller, "queue name", name_ptr, name_len)?;
            let proxy = proxy(caller.data_mut())?;
            let index = match proxy.queues.iter().position(|(n, _)| *n == name) {
                Some(index) => index,
                None => {
                    proxy.hold(name.len()).map_err(|_| over_budget(proxy))?;
                    proxy.queues.push((name, Default::default()));
                    proxy.queues.len() - 1
                }
            };
            write(&mut caller, id_out, &(index as u32 + 1).to_le_bytes())
        }
    );
    import!(
        linker,
        "proxy_resolve_shared_queue",
        |caller, _vm_ptr: i32, _vm_len: i32, name_ptr: i32, name_len: i32, id_out: i32| {
            let name = read(&caller, "queue name", name_ptr, name_len)?;
            let proxy = proxy(caller.data_mut())?;
            let Some(index) = proxy.queues.iter().position(|(n, _)| *n == name) else {
                return Err(Refused::quietly(Status::NotFound));
            };
            write(&mut caller, id_out, &(index as u32 + 1).to_le_bytes())
        }
    );
    import!(
        linker,
        "proxy_enqueue_shared_queue",
        |caller, id: i32, ptr: i32, len: i32| {
            let data = read(&caller, "data", ptr, len)?;
            let proxy = proxy(caller.data_mut())?;
            proxy.hold(data.len()).map_err(|_| over_budget(proxy))?;
            let Some((_, queue)) = queue_index(id).and_then(|i| proxy.queues.get_mut(i)) else {
                return Err(Refused::quietly(Status::NotFound));
            };
            queue.push_back(data);
            Ok(())
        }
    );
    import!(
        linker,
        "proxy_dequeue_shared_queue",
        |caller, id: i32, ptr_out: i32, len_out: i32| {
            check_out(&caller, ptr_out, len_out)?;
            let proxy = proxy(caller.data_mut())?;
            let Some((_, queue)) = queue_index(id).and_then(|i| proxy.queues.get_mut(i)) else {
                return Err(Refused::quietly(Status::NotFound));
            };
            let Some(data) = queue.pop_front() else {
                return Err(Refused::quietly(Status::Empty));
            };
            hand_over(&mut caller, &data, ptr_out, len_out)
        }
    );
    import!(
        linker,
        "proxy_define_metric",
        |caller, _metric_type: i32, _name_ptr: i32, _name_len: i32, id_out: i32| {
            let proxy = proxy(caller.data_mut())?;
            proxy.metrics.push(0);
            let id = proxy.metrics.len() as u32;
            write(&mut caller, id_out, &id.to_le_bytes())
        }
    );
    import!(
        linker,
        "proxy_increment_metric",
        |caller, id: i32, offset: i64| {
            let metric = metric(proxy(caller.data_mut())?, id)?;
            *metric = metric.wrapping_add(offset);
            Ok(())
        }
    );
    import!(
        linker,
        "proxy_record_metric",
        |caller, id: i32, value: i64| {
            *metric(proxy(caller.data_mut())?, id)? = value;
            Ok(())
        }
    );
    import!(
        linker,
        "proxy_get_metric",
        |caller, id: i32, value_out: i32| {
            let value = *metric(proxy(caller.data_mut())?, id)?;
            write(&mut caller, value_out, &value.to_le_bytes())
        }
    );
}

fn queue_index(id: i32) -> Option<usize> {
    (id as u32 as usize).checked_sub(1)
}

fn metric(proxy: &mut ProxyCall, id: i32) -> Result<&mut i64, Refused> {
    (id as u32 as usize)
        .checked_sub(1)
        .and_then(|index| proxy.metrics.get_mut(index))
        .ok_or(Refused::quietly(Status::NotFound))
}

/// Calls to upstream clusters, which fwasm functions do not have: each answers with the
/// error its SDK wrapper passes back to the guest.
fn define_upstream_calls(linker: &mut Linker<HostState>) {
    const NO_UPSTREAMS: &str = "fwasm has no upstream clusters for proxy-wasm calls";
    import!(
        linker,
        "proxy_http_call",
        |caller,
         _a: i32,
         _b: i32,
         _c: i32,
         _d: i32,
         _e: i32,
         _f: i32,
         _g: i32,
         _h: i32,
         _timeout: i32,
         _token_out: i32| {
            unsupported(
                Status::InternalFailure,
                &format!("proxy_http_call: {NO_UPSTREAMS}"),
            )
        }
    );
    import!(
        linker,
        "proxy_grpc_call",
        |caller,
         _a: i32,
         _b: i32,
         _c: i32,
         _d: i32,
         _e: i32,
         _f: i32,
         _g: i32,
         _h: i32,
         _i: i32,
         _j: i32,
         _timeout: i32,
         _token_out: i32| {
            unsupported(
                Status::InternalFailure,
                &format!("proxy_grpc_call: {NO_UPSTREAMS}"),
            )
        }
    );
    import!(
        linker,
        "proxy_grpc_stream",
        |caller,
         _a: i32,
         _b: i32,
         _c: i32,
         _d: i32,
         _e: i32,
         _f: i32,
         _g: i32,
         _h: i32,
         _token_out: i32| {
            unsupported(
                Status::InternalFailure,
                &format!("proxy_grpc_stream: {NO_UPSTREAMS}"),
            )
        }
    );
    // No stream was opened, so no token names one.
    import!(
        linker,
        "proxy_grpc_send",
        |caller, _token: i32, _ptr: i32, _len: i32, _end: i32| {
            Err(Refused::quietly(Status::NotFound))
        }
    );
    import!(linker, "proxy_grpc_cancel", |caller, _token: i32| {
        Err(Refused::quietly(Status::NotFound))
    });
    import!(linker, "proxy_grpc_close", |caller, _token: i32| {
        Err(Refused::quietly(Status::NotFound))
    });
    import!(
        linker,
        "proxy_get_status",
        |caller, code_out: i32, ptr_out: i32, len_out: i32| {
            write(&mut caller, code_out, &0u32.to_le_bytes())?;
            write(&mut caller, ptr_out, &0u32.to_le_bytes())?;
            write(&mut caller, len_out, &0u32.to_le_bytes())
        }
    );
    import!(
        linker,
        "proxy_call_foreign_function",
        |caller,
         name_ptr: i32,
         name_len: i32,
         _args_ptr: i32,
         _args_len: i32,
         _ptr_out: i32,
         _len_out: i32| {
            let name = text(&read(&caller, "function name", name_ptr, name_len)?);
            unsupported(
                Status::NotFound,
                &format!("proxy_call_foreign_function: fwasm has no foreign function {name:?}"),
            )
        }
    );
}

#[cfg(test)]
mod tests {
    use super::splice;

    #[test]
    fn buffer_writes_replace_insert_and_append_as_the_spec_says() {
        let mut buffer = Vec::new();
        splice(&mut buffer, 0, 0, b"world".to_vec());
        assert_eq!(buffer, b"world");
        splice(&mut buffer, 0, 0, b"hello ".to_vec());
        assert_eq!(buffer, b"hello world", "(0, 0) prepends");
        splice(&mut buffer, 6, 5, b"there".to_vec());
        assert_eq!(buffer, b"hello there", "a range is replaced");
        splice(&mut buffer, 100, 0, b"!".to_vec());
        assert_eq!(buffer, b"hello there!", "past the end appends");
        splice(&mut buffer, 0, i32::MAX, b"id_1".to_vec());
        assert_eq!(buffer, b"id_1", "a size past the end replaces the rest");
    }
}
