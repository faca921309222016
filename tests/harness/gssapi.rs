//! The server side of SASL/GSSAPI for the test gateway, through Cyrus SASL (libsasl2 with the
//! MIT GSSAPI plugin, the library librdkafka uses on the client side). The acceptor reads the
//! service keytab named by `KRB5_KTNAME` and the realm from `KRB5_CONFIG` (both process-wide).
#![allow(unsafe_code)] // FFI to libsasl2; every call is checked and pointers are not kept

use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_uint, c_void};
use std::ptr;
use std::sync::Once;

use sasl2_sys::prelude::*;

static INIT: Once = Once::new();

/// One server-side GSSAPI exchange.
pub struct GssapiServer {
    conn: *mut sasl_conn_t,
    started: bool,
}

// The connection is used by one gateway thread at a time.
unsafe impl Send for GssapiServer {}

/// What a step produced: the token to send back, and the authenticated user once complete.
pub struct Step {
    pub token: Vec<u8>,
    pub user: Option<String>,
}

impl GssapiServer {
    /// An acceptor for `service/host` (e.g. kafka/localhost).
    pub fn new(service: &str, host: &str) -> Result<Self, String> {
        INIT.call_once(|| {
            let app = CString::new("sluice-test-gateway").expect("no NUL");
            let rc = unsafe { sasl_server_init(ptr::null(), app.as_ptr()) };
            assert_eq!(rc, SASL_OK, "sasl_server_init");
        });
        let service = CString::new(service).map_err(|e| e.to_string())?;
        let host = CString::new(host).map_err(|e| e.to_string())?;
        let mut conn = ptr::null_mut();
        let rc = unsafe {
            sasl_server_new(
                service.as_ptr(),
                host.as_ptr(),
                ptr::null(),
                ptr::null(),
                ptr::null(),
                ptr::null(),
                0,
                &mut conn,
            )
        };
        check(rc, conn, "sasl_server_new")?;
        Ok(Self {
            conn,
            started: false,
        })
    }

    /// Feeds the client's token; `Err` when authentication failed.
    pub fn step(&mut self, token: &[u8]) -> Result<Step, String> {
        let mut out: *const c_char = ptr::null();
        let mut out_len: c_uint = 0;
        let rc = unsafe {
            if self.started {
                sasl_server_step(
                    self.conn,
                    token.as_ptr() as *const c_char,
                    token.len() as c_uint,
                    &mut out,
                    &mut out_len,
                )
            } else {
                self.started = true;
                let mechanism = CString::new("GSSAPI").expect("no NUL");
                sasl_server_start(
                    self.conn,
                    mechanism.as_ptr(),
                    token.as_ptr() as *const c_char,
                    token.len() as c_uint,
                    &mut out,
                    &mut out_len,
                )
            }
        };
        check(rc, self.conn, "GSSAPI step")?;
        let token = if out.is_null() || out_len == 0 {
            Vec::new()
        } else {
            unsafe { std::slice::from_raw_parts(out as *const u8, out_len as usize) }.to_vec()
        };
        let user = (rc == SASL_OK).then(|| {
            let mut value: *const c_void = ptr::null();
            unsafe { sasl_getprop(self.conn, SASL_USERNAME as i32, &mut value) };
            if value.is_null() {
                "?".to_string()
            } else {
                unsafe { CStr::from_ptr(value as *const c_char) }
                    .to_string_lossy()
                    .into_owned()
            }
        });
        Ok(Step { token, user })
    }
}

impl Drop for GssapiServer {
    fn drop(&mut self) {
        unsafe { sasl_dispose(&mut self.conn) };
    }
}

fn check(rc: i32, conn: *mut sasl_conn_t, what: &str) -> Result<(), String> {
    if rc == SASL_OK || rc == SASL_CONTINUE {
        return Ok(());
    }
    let detail = unsafe {
        if conn.is_null() {
            CStr::from_ptr(sasl_errstring(rc, ptr::null(), ptr::null_mut()))
        } else {
            CStr::from_ptr(sasl_errdetail(conn))
        }
    };
    Err(format!(
        "{what} failed ({rc}): {}",
        detail.to_string_lossy()
    ))
}
