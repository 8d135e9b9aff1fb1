//! `#[fwasm_sdk::handler]`: turns `fn NAME(req: Request) -> Response` into a function-wasm module
//! by emitting the ABI v1 exports around it; `#[fwasm_sdk::init]` makes `fn NAME()` its
//! initialisation. Plain token handling keeps guest builds free of syn.

use proc_macro::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};

#[proc_macro_attribute]
pub fn handler(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        return compile_error("#[fwasm_sdk::handler] takes no arguments");
    }
    let Some(name) = function_name(&item) else {
        return compile_error(
            "#[fwasm_sdk::handler] goes on a function: fn handle(req: Request) -> Response",
        );
    };
    let exports: TokenStream = format!(
        r#"
        #[doc(hidden)]
        #[unsafe(no_mangle)]
        pub extern "C" fn fwasm_abi_v1() {{}}

        #[doc(hidden)]
        #[unsafe(no_mangle)]
        pub extern "C" fn fwasm_alloc(len: i32) -> i32 {{
            ::fwasm_sdk::__private::alloc(len)
        }}

        #[doc(hidden)]
        #[unsafe(no_mangle)]
        pub extern "C" fn fwasm_handle(ptr: i32, len: i32) -> i64 {{
            ::fwasm_sdk::__private::handle(ptr, len, {name})
        }}
        "#
    )
    .parse()
    .expect("generated exports parse");
    let mut out = item;
    out.extend(exports);
    out
}

/// `#[fwasm_sdk::init]`: `fn NAME()` runs once per executor before the first call, and every
/// call starts from the memory it leaves (the ABI's `fwasm_init` export).
#[proc_macro_attribute]
pub fn init(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        return compile_error("#[fwasm_sdk::init] takes no arguments");
    }
    let Some(name) = function_name(&item) else {
        return compile_error("#[fwasm_sdk::init] goes on a function: fn init()");
    };
    let export: TokenStream = format!(
        r#"
        #[doc(hidden)]
        #[unsafe(no_mangle)]
        pub extern "C" fn fwasm_init() {{
            ::fwasm_sdk::__private::init({name})
        }}
        "#
    )
    .parse()
    .expect("generated export parses");
    let mut out = item;
    out.extend(export);
    out
}

/// The identifier following the `fn` keyword at the item's top level.
fn function_name(item: &TokenStream) -> Option<String> {
    let mut tokens = item.clone().into_iter();
    while let Some(token) = tokens.next() {
        if let TokenTree::Ident(ident) = &token
            && ident.to_string() == "fn"
        {
            return match tokens.next() {
                Some(TokenTree::Ident(name)) => Some(name.to_string()),
                _ => None,
            };
        }
    }
    None
}

fn compile_error(message: &str) -> TokenStream {
    let span = Span::call_site();
    let mut bang = Punct::new('!', Spacing::Alone);
    bang.set_span(span);
    let args = TokenStream::from(TokenTree::Literal(Literal::string(message)));
    [
        TokenTree::Ident(Ident::new("compile_error", span)),
        TokenTree::Punct(bang),
        TokenTree::Group(Group::new(Delimiter::Parenthesis, args)),
        TokenTree::Punct(Punct::new(';', Spacing::Alone)),
    ]
    .into_iter()
    .collect()
}
