// Layotto's FaaS ABI, declared by hand as Layotto's demo functions do (shared by the two
// Layotto-shaped test functions through `#[path]`): proxy-wasm 0.2.0's buffer calls plus
// Layotto's `proxy_get_state` and `proxy_invoke_service`, with their exact signatures.

#[link(wasm_import_module = "env")]
extern "C" {
    pub fn proxy_log(level: u32, message: *const u8, size: usize) -> u32;
    pub fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    pub fn proxy_set_buffer_bytes(
        buffer_type: u32,
        start: usize,
        size: usize,
        data: *const u8,
        data_size: usize,
    ) -> u32;
    pub fn proxy_get_state(
        store_name: *const u8,
        store_name_size: usize,
        key: *const u8,
        key_size: usize,
        return_value: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    pub fn proxy_invoke_service(
        id: *const u8,
        id_size: usize,
        method: *const u8,
        method_size: usize,
        param: *const u8,
        param_size: usize,
        return_value: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
}

pub const BUFFER_REQUEST_BODY: u32 = 0;
pub const BUFFER_RESPONSE_BODY: u32 = 1;
pub const BUFFER_CALL_DATA: u32 = 8;
pub const STATUS_OK: u32 = 0;

#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_0() {}

/// The allocator the host writes returned data into (Layotto's host calls only `malloc`).
#[no_mangle]
pub extern "C" fn malloc(size: usize) -> *mut u8 {
    let mut bytes = Vec::<u8>::with_capacity(size);
    let ptr = bytes.as_mut_ptr();
    std::mem::forget(bytes);
    ptr
}

/// Bytes the host allocated with `malloc` and handed over.
pub unsafe fn take(ptr: *mut u8, size: usize) -> Vec<u8> {
    if ptr.is_null() {
        Vec::new()
    } else {
        Vec::from_raw_parts(ptr, size, size)
    }
}

pub fn log(message: &str) {
    unsafe { proxy_log(2, message.as_ptr(), message.len()) };
}

pub fn set_id(id: &str) {
    unsafe { proxy_set_buffer_bytes(BUFFER_CALL_DATA, 0, id.len(), id.as_ptr(), id.len()) };
}

pub fn request_body(size: usize) -> Vec<u8> {
    let (mut ptr, mut len) = (std::ptr::null_mut(), 0);
    match unsafe { proxy_get_buffer_bytes(BUFFER_REQUEST_BODY, 0, size, &mut ptr, &mut len) } {
        STATUS_OK => unsafe { take(ptr, len) },
        _ => Vec::new(),
    }
}

pub fn set_response_body(body: &[u8]) {
    unsafe { proxy_set_buffer_bytes(BUFFER_RESPONSE_BODY, 0, body.len(), body.as_ptr(), body.len()) };
}

pub fn get_state(store: &str, key: &str) -> Result<Vec<u8>, u32> {
    let (mut ptr, mut len) = (std::ptr::null_mut(), 0);
    let status = unsafe {
        proxy_get_state(store.as_ptr(), store.len(), key.as_ptr(), key.len(), &mut ptr, &mut len)
    };
    match status {
        STATUS_OK => Ok(unsafe { take(ptr, len) }),
        status => Err(status),
    }
}

pub fn invoke_service(id: &str, method: &str, param: &str) -> Result<Vec<u8>, u32> {
    let (mut ptr, mut len) = (std::ptr::null_mut(), 0);
    let status = unsafe {
        proxy_invoke_service(
            id.as_ptr(),
            id.len(),
            method.as_ptr(),
            method.len(),
            param.as_ptr(),
            param.len(),
            &mut ptr,
            &mut len,
        )
    };
    match status {
        STATUS_OK => Ok(unsafe { take(ptr, len) }),
        status => Err(status),
    }
}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(_context_id: u32, _parent_id: u32) {}

#[no_mangle]
pub extern "C" fn proxy_on_vm_start(_root: u32, _size: usize) -> u32 {
    1
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(_root: u32, _size: usize) -> u32 {
    1
}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(_context: u32, _headers: usize, _end: u32) -> u32 {
    0
}

#[no_mangle]
pub extern "C" fn proxy_on_done(_context: u32) -> u32 {
    1
}

#[no_mangle]
pub extern "C" fn proxy_on_delete(_context: u32) {}
