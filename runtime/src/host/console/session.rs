//! Console sessions. With `SLUICE_API_TOKEN` set, the login form exchanges the token for a
//! session cookie (HttpOnly, SameSite=Strict) that only the console's routes accept; without
//! it, the console is open like the API and a session starts on the first page. Either way a
//! session carries the CSRF token every state-changing console request must send back.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue};

/// The cookie's name.
pub const COOKIE: &str = "sluice_session";
/// How long a session lasts.
const LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// Most sessions kept: a login loop cannot fill the host's memory.
const MOST_SESSIONS: usize = 1_000;

/// One browser's session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The cookie's value.
    pub id: String,
    /// What the console's forms carry and state-changing requests must send back.
    pub csrf: String,
    expires: Instant,
}

/// The live sessions.
#[derive(Debug, Default)]
pub struct Sessions {
    sessions: Mutex<HashMap<String, Session>>,
}

/// 244 random bits from the operating system's generator, as hex.
fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

impl Sessions {
    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts a session.
    pub fn start(&self) -> Session {
        let now = Instant::now();
        let session = Session {
            id: random_token(),
            csrf: random_token(),
            expires: now + LIFETIME,
        };
        let mut sessions = self.sessions();
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= MOST_SESSIONS {
            // The oldest goes: its browser logs in again.
            if let Some(oldest) = sessions
                .values()
                .min_by_key(|s| s.expires)
                .map(|s| s.id.clone())
            {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(session.id.clone(), session.clone());
        session
    }

    /// The session the request's cookie names, if it is live.
    pub fn of(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers, COOKIE)?;
        let sessions = self.sessions();
        sessions
            .get(&id)
            .filter(|s| s.expires > Instant::now())
            .cloned()
    }

    /// Ends the request's session.
    pub fn end(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers, COOKIE) {
            self.sessions().remove(&id);
        }
    }
}

impl Session {
    /// Whether `given` is this session's CSRF token (compared in constant time).
    pub fn accepts(&self, given: &str) -> bool {
        crate::host::api::same(given.as_bytes(), self.csrf.as_bytes())
    }

    /// The `Set-Cookie` header that hands this session to the browser: only for this host's
    /// pages, never to scripts, never on requests from other sites.
    pub fn set_cookie(&self) -> (header::HeaderName, HeaderValue) {
        let value = format!(
            "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
            self.id,
            LIFETIME.as_secs()
        );
        (
            header::SET_COOKIE,
            HeaderValue::from_str(&value).expect("a cookie of hex digits"),
        )
    }
}

/// The `Set-Cookie` header that ends a session in the browser.
pub fn clear_cookie() -> (header::HeaderName, HeaderValue) {
    (
        header::SET_COOKIE,
        HeaderValue::from_static("sluice_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    )
}

/// The value of cookie `name`, if the request sent it.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then(|| value.to_string())
        })
}
