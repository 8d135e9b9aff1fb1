//! The callbacks of one call, in the order a proxy makes them (as Layotto does for each
//! request, with a fresh instance): the plugin's start (`_start`, unless the module is a
//! reactor whose `_initialize` ran), its root context, `proxy_on_vm_start` and
//! `proxy_on_configure`; then the stream's context, `proxy_on_request_headers` and
//! `proxy_on_request_body`; then `proxy_on_done` and `proxy_on_delete`.

use wasmi::{Func, Instance, Store, Val};

use super::stream::{ProxyCall, ROOT_CONTEXT, STREAM_CONTEXT};
use crate::abi::{Entry, Vals};
use crate::host::HostState;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Step {
    Instantiated,
    Start,
    RootContext,
    VmStart,
    Configure,
    StreamContext,
    RequestHeaders,
    RequestBody,
    Done,
    Delete,
}

impl Step {
    fn following(self) -> Option<Step> {
        use Step::*;
        Some(match self {
            Instantiated => Start,
            Start => RootContext,
            RootContext => VmStart,
            VmStart => Configure,
            Configure => StreamContext,
            StreamContext => RequestHeaders,
            RequestHeaders => RequestBody,
            RequestBody => Done,
            Done => Delete,
            Delete => return None,
        })
    }

    /// The export this step calls.
    pub(crate) fn export(self) -> &'static str {
        match self {
            Step::Instantiated => "the module's start function",
            Step::Start => "_start",
            Step::RootContext | Step::StreamContext => "proxy_on_context_create",
            Step::VmStart => "proxy_on_vm_start",
            Step::Configure => "proxy_on_configure",
            Step::RequestHeaders => "proxy_on_request_headers",
            Step::RequestBody => "proxy_on_request_body",
            Step::Done => "proxy_on_done",
            Step::Delete => "proxy_on_delete",
        }
    }
}

/// The callbacks an instance exports, looked up once per call.
#[derive(Default)]
pub(crate) struct Callbacks {
    start: Option<Func>,
    context_create: Option<Func>,
    vm_start: Option<Func>,
    configure: Option<Func>,
    request_headers: Option<Func>,
    /// Whether `proxy_on_request_headers` takes proxy-wasm 0.1.0's two arguments.
    headers_without_end: bool,
    request_body: Option<Func>,
    done: Option<Func>,
    delete: Option<Func>,
}

impl Callbacks {
    pub(crate) fn of(store: &Store<HostState>, instance: &Instance) -> Self {
        let get = |step: Step| instance.get_func(store, step.export());
        let request_headers = get(Step::RequestHeaders);
        Self {
            // A reactor's `_initialize` ran when the instance was made.
            start: match instance.get_func(store, "_initialize") {
                Some(_) => None,
                None => get(Step::Start),
            },
            context_create: get(Step::RootContext),
            vm_start: get(Step::VmStart),
            configure: get(Step::Configure),
            headers_without_end: request_headers.is_some_and(|f| f.ty(store).params().len() == 2),
            request_headers,
            request_body: get(Step::RequestBody),
            done: get(Step::Done),
            delete: get(Step::Delete),
        }
    }

    fn func(&self, step: Step) -> Option<Func> {
        match step {
            Step::Instantiated => None,
            Step::Start => self.start,
            Step::RootContext | Step::StreamContext => self.context_create,
            Step::VmStart => self.vm_start,
            Step::Configure => self.configure,
            Step::RequestHeaders => self.request_headers,
            Step::RequestBody => self.request_body,
            Step::Done => self.done,
            Step::Delete => self.delete,
        }
    }
}

/// Whether the request body callback will run: there is a body (or a query) to hand over.
pub(crate) fn has_body_step(proxy: &ProxyCall) -> bool {
    !proxy.request_body.is_empty() && proxy.callbacks.request_body.is_some()
}

/// The first step after `after` that the module has a callback for (skipping to the end of
/// the request once it has a reply), with its entry; `None` once every step has run.
pub(crate) fn next_entry(proxy: &ProxyCall, after: Step) -> Option<(Step, Entry)> {
    let mut step = after.following()?;
    if proxy.reply.is_some() && step < Step::Done {
        step = Step::Done;
    }
    loop {
        if let Some(entry) = entry(proxy, step) {
            return Some((step, entry));
        }
        step = step.following()?;
    }
}

fn entry(proxy: &ProxyCall, step: Step) -> Option<Entry> {
    if step == Step::RequestBody && !has_body_step(proxy) {
        return None;
    }
    let func = proxy.callbacks.func(step)?;
    let returns_action = || Vals::new(&[Val::I32(0)]);
    let len = |bytes: usize| bytes.min(i32::MAX as usize) as i32;
    let (params, results) = match step {
        Step::Instantiated | Step::Start => (i32s(&[]), i32s(&[])),
        Step::RootContext => (i32s(&[ROOT_CONTEXT, 0]), i32s(&[])),
        Step::VmStart => (i32s(&[ROOT_CONTEXT, 0]), returns_action()),
        Step::Configure => (
            i32s(&[ROOT_CONTEXT, len(proxy.plugin_configuration.len())]),
            returns_action(),
        ),
        Step::StreamContext => (i32s(&[STREAM_CONTEXT, ROOT_CONTEXT]), i32s(&[])),
        Step::RequestHeaders => {
            let headers = len(proxy.request_header_count());
            let end_of_stream = i32::from(!has_body_step(proxy));
            // proxy-wasm 0.1.0 has no end_of_stream argument.
            match proxy.callbacks.headers_without_end {
                true => (i32s(&[STREAM_CONTEXT, headers]), returns_action()),
                false => (
                    i32s(&[STREAM_CONTEXT, headers, end_of_stream]),
                    returns_action(),
                ),
            }
        }
        Step::RequestBody => (
            i32s(&[STREAM_CONTEXT, len(proxy.request_body.len()), 1]),
            returns_action(),
        ),
        Step::Done => (i32s(&[STREAM_CONTEXT]), returns_action()),
        Step::Delete => (i32s(&[STREAM_CONTEXT]), i32s(&[])),
    };
    Some(Entry {
        func,
        params,
        results,
    })
}

/// Up to three i32 arguments, inline.
fn i32s(vals: &[i32]) -> Vals {
    let all = [0, 1, 2].map(|i| Val::I32(vals.get(i).copied().unwrap_or(0)));
    Vals::new(&all[..vals.len()])
}
