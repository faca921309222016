//! A SASL gateway in front of tansu, which has no SASL/PLAIN (nor GSSAPI): it answers
//! ApiVersions (tansu's list plus SaslHandshake and SaslAuthenticate), runs the server side of
//! the SASL exchange, records who authenticated, and then forwards the connection's bytes to
//! tansu unchanged. tansu advertises the gateway's port, so every connection comes through it.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

const API_VERSIONS: i16 = 18;
const SASL_HANDSHAKE: i16 = 17;
const SASL_AUTHENTICATE: i16 = 36;
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
const SASL_AUTHENTICATION_FAILED: i16 = 58;

/// What the gateway accepts.
#[derive(Clone)]
pub enum Mechanism {
    /// SASL/PLAIN against these (user, password) pairs.
    Plain(Vec<(String, String)>),
    /// SASL/GSSAPI as `kafka/localhost`, with the keytab `KRB5_KTNAME` names.
    Gssapi,
    /// SASL/OAUTHBEARER accepting the tokens this endpoint issued.
    OAuthBearer(std::sync::Arc<Mutex<super::oidc::Issued>>),
    /// SASL/OAUTHBEARER accepting Amazon MSK IAM tokens for `region` signed with one of these
    /// (access key id, secret access key) pairs.
    AwsIam {
        region: String,
        keys: Vec<(String, String)>,
    },
}

impl Mechanism {
    fn name(&self) -> &'static str {
        match self {
            Self::Plain(_) => "PLAIN",
            Self::Gssapi => "GSSAPI",
            Self::OAuthBearer(_) | Self::AwsIam { .. } => "OAUTHBEARER",
        }
    }
}

/// The gateway; it stops accepting when dropped.
pub struct SaslGateway {
    port: u16,
    authenticated: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl SaslGateway {
    /// A listener on a free loopback port, to be given to the broker as its advertised port
    /// before the gateway starts.
    pub fn bind() -> TcpListener {
        TcpListener::bind("127.0.0.1:0").expect("gateway listener")
    }

    /// Serves several mechanisms, as brokers may: each client picks one in its handshake.
    pub fn start_many(
        listener: TcpListener,
        upstream_port: u16,
        mechanisms: Vec<Mechanism>,
    ) -> Self {
        let port = listener.local_addr().expect("address").port();
        let apis = broker_api_versions(upstream_port);
        let users = Arc::new(mechanisms);
        let authenticated = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopped) = (authenticated.clone(), stop.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let (apis, users, seen) = (apis.clone(), users.clone(), seen.clone());
                thread::spawn(move || {
                    if let Err(e) = serve(client, upstream_port, &apis, &users, &seen) {
                        eprintln!("gateway: {e}");
                    }
                });
            }
        });
        Self {
            port,
            authenticated,
            stop,
        }
    }

    /// `localhost:port`.
    pub fn bootstrap(&self) -> String {
        format!("localhost:{}", self.port)
    }

    /// The user names that authenticated, in order.
    pub fn authenticated(&self) -> Vec<String> {
        self.authenticated.lock().expect("lock").clone()
    }
}

impl Drop for SaslGateway {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// The broker's (api key, min, max) list, from an ApiVersions v0 request.
fn broker_api_versions(port: u16) -> Vec<(i16, i16, i16)> {
    let mut broker = TcpStream::connect(("127.0.0.1", port)).expect("broker for ApiVersions");
    let mut request = Vec::new();
    put_i16(&mut request, API_VERSIONS);
    put_i16(&mut request, 0);
    put_i32(&mut request, 1);
    put_i16(&mut request, -1); // null client id
    write_frame(&mut broker, &request).expect("ApiVersions request");
    let response = read_frame(&mut broker).expect("ApiVersions response");
    let mut r = Reader(&response);
    let _correlation = r.i32();
    assert_eq!(r.i16(), 0, "ApiVersions error from the broker");
    (0..r.i32()).map(|_| (r.i16(), r.i16(), r.i16())).collect()
}

/// The SASL exchange of one client connection, then its bytes forwarded to the broker.
fn serve(
    mut client: TcpStream,
    upstream_port: u16,
    broker_apis: &[(i16, i16, i16)],
    mechanisms: &[Mechanism],
    authenticated: &Mutex<Vec<String>>,
) -> Result<(), String> {
    let mut gssapi: Option<super::gssapi::GssapiServer> = None;
    // The mechanism the client chose in its handshake.
    let mut mechanism = &mechanisms[0];
    let mut apis: Vec<(i16, i16, i16)> = broker_apis
        .iter()
        .copied()
        .filter(|(key, _, _)| *key != SASL_HANDSHAKE && *key != SASL_AUTHENTICATE)
        .collect();
    apis.extend([(SASL_HANDSHAKE, 0, 1), (SASL_AUTHENTICATE, 0, 0)]);
    loop {
        let Ok(request) = read_frame(&mut client) else {
            return Ok(()); // closed before authenticating
        };
        let mut r = Reader(&request);
        let (key, version, correlation) = (r.i16(), r.i16(), r.i32());
        let _client_id = r.string();
        let mut out = Vec::new();
        put_i32(&mut out, correlation);
        match key {
            API_VERSIONS => put_api_versions(&mut out, version, &apis),
            SASL_HANDSHAKE => {
                let asked = r.string().unwrap_or_default();
                let chosen = mechanisms.iter().find(|m| m.name() == asked);
                put_i16(
                    &mut out,
                    if chosen.is_some() {
                        0
                    } else {
                        UNSUPPORTED_SASL_MECHANISM
                    },
                );
                if let Some(chosen) = chosen {
                    mechanism = chosen;
                }
                put_i32(&mut out, mechanisms.len() as i32);
                for m in mechanisms {
                    put_string(&mut out, m.name());
                }
            }
            SASL_AUTHENTICATE => match authenticate(mechanism, &r.bytes(), &mut gssapi)? {
                Ok((reply, user)) => {
                    put_i16(&mut out, 0);
                    put_i16(&mut out, -1);
                    put_i32(&mut out, reply.len() as i32);
                    out.extend_from_slice(&reply);
                    write_frame(&mut client, &out).map_err(|e| e.to_string())?;
                    if let Some(user) = user {
                        authenticated.lock().expect("lock").push(user);
                        return forward(client, upstream_port);
                    }
                    continue;
                }
                Err(reason) => {
                    put_i16(&mut out, SASL_AUTHENTICATION_FAILED);
                    put_string(&mut out, &reason);
                    put_i32(&mut out, 0);
                }
            },
            other => return Err(format!("api key {other} before authentication; closing")),
        }
        write_frame(&mut client, &out).map_err(|e| e.to_string())?;
    }
}

/// The body of an ApiVersions response of `version` listing `apis`.
fn put_api_versions(out: &mut Vec<u8>, version: i16, apis: &[(i16, i16, i16)]) {
    put_i16(out, 0);
    if version >= 3 {
        // Flexible version: compact array, tagged fields; the response header stays v0.
        out.push(apis.len() as u8 + 1);
        for (k, lo, hi) in apis {
            put_i16(out, *k);
            put_i16(out, *lo);
            put_i16(out, *hi);
            out.push(0);
        }
        put_i32(out, 0);
        out.push(0);
        return;
    }
    put_i32(out, apis.len() as i32);
    for (k, lo, hi) in apis {
        put_i16(out, *k);
        put_i16(out, *lo);
        put_i16(out, *hi);
    }
    if version >= 1 {
        put_i32(out, 0);
    }
}

/// Checks one SaslAuthenticate `token` for `mechanism`: `Ok(Ok((reply, user)))` for a step
/// (`user` once authenticated), `Ok(Err(reason))` when refused, `Err` when the GSSAPI
/// acceptor cannot start.
#[allow(clippy::type_complexity)]
fn authenticate(
    mechanism: &Mechanism,
    token: &[u8],
    gssapi: &mut Option<super::gssapi::GssapiServer>,
) -> Result<Result<(Vec<u8>, Option<String>), String>, String> {
    Ok(match mechanism {
        Mechanism::Plain(users) => {
            // authzid NUL authcid NUL password
            let parts: Vec<&[u8]> = token.split(|b| *b == 0).collect();
            let ok = parts.len() == 3
                && users
                    .iter()
                    .any(|(u, p)| parts[1] == u.as_bytes() && parts[2] == p.as_bytes());
            if ok {
                Ok((
                    Vec::new(),
                    Some(String::from_utf8_lossy(parts[1]).into_owned()),
                ))
            } else {
                Err("Authentication failed: invalid user name or password".to_string())
            }
        }
        Mechanism::AwsIam { region, keys } => {
            match super::msk_iam::verify(&bearer(token), keys, region) {
                Ok(access_key_id) => Ok((Vec::new(), Some(access_key_id))),
                Err(why) => Err(format!("Authentication failed: {why}")),
            }
        }
        Mechanism::OAuthBearer(issued) => {
            let presented = bearer(token);
            let issued = issued.lock().expect("lock");
            match issued.tokens.iter().find(|(t, _)| *t == presented) {
                Some((_, client)) => Ok((Vec::new(), Some(client.clone()))),
                None => Err("Authentication failed: the token is not valid".to_string()),
            }
        }
        Mechanism::Gssapi => {
            let server = match gssapi.as_mut() {
                Some(server) => server,
                None => gssapi.insert(super::gssapi::GssapiServer::new("kafka", "localhost")?),
            };
            server.step(token).map(|step| (step.token, step.user))
        }
    })
}

/// The token of an RFC 7628 client response: gs2 header, then \x01auth=Bearer TOKEN\x01\x01.
fn bearer(response: &[u8]) -> String {
    String::from_utf8_lossy(response)
        .split('\u{1}')
        .find_map(|kv| kv.strip_prefix("auth=Bearer "))
        .unwrap_or_default()
        .to_string()
}

/// Copies bytes both ways until either side closes.
fn forward(client: TcpStream, upstream_port: u16) -> Result<(), String> {
    let upstream = TcpStream::connect(("127.0.0.1", upstream_port)).map_err(|e| e.to_string())?;
    let (mut client_in, mut upstream_out) = (
        client.try_clone().map_err(|e| e.to_string())?,
        upstream.try_clone().map_err(|e| e.to_string())?,
    );
    let (mut upstream_in, mut client_out) = (upstream, client);
    let to_broker = thread::spawn(move || {
        let _ = std::io::copy(&mut client_in, &mut upstream_out);
        let _ = upstream_out.shutdown(Shutdown::Both);
    });
    let _ = std::io::copy(&mut upstream_in, &mut client_out);
    let _ = client_out.shutdown(Shutdown::Both);
    let _ = to_broker.join();
    Ok(())
}

fn read_frame(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size)?;
    let mut frame = vec![0u8; i32::from_be_bytes(size).max(0) as usize];
    stream.read_exact(&mut frame)?;
    Ok(frame)
}

fn write_frame(stream: &mut TcpStream, body: &[u8]) -> std::io::Result<()> {
    let mut frame = Vec::with_capacity(body.len() + 4);
    put_i32(&mut frame, body.len() as i32);
    frame.extend_from_slice(body);
    stream.write_all(&frame)
}

fn put_i16(out: &mut Vec<u8>, v: i16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    put_i16(out, s.len() as i16);
    out.extend_from_slice(s.as_bytes());
}

/// Reads Kafka protocol primitives; a short frame reads as zeros rather than panicking.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }

    fn i16(&mut self) -> i16 {
        let b = self.take(2);
        if b.len() == 2 {
            i16::from_be_bytes([b[0], b[1]])
        } else {
            0
        }
    }

    fn i32(&mut self) -> i32 {
        let b = self.take(4);
        if b.len() == 4 {
            i32::from_be_bytes([b[0], b[1], b[2], b[3]])
        } else {
            0
        }
    }

    fn string(&mut self) -> Option<String> {
        let n = self.i16();
        (n >= 0).then(|| String::from_utf8_lossy(self.take(n as usize)).into_owned())
    }

    fn bytes(&mut self) -> Vec<u8> {
        let n = self.i32();
        if n < 0 {
            Vec::new()
        } else {
            self.take(n as usize).to_vec()
        }
    }
}

/// The harness's own client's PLAIN credentials at a gateway (the broker helpers use them).
pub const HARNESS_USER: (&str, &str) = ("harness", "harness-password");

/// librdkafka settings with which the harness's own client authenticates at a gateway: PLAIN
/// as [`HARNESS_USER`].
pub fn harness_plain_settings() -> Vec<(String, String)> {
    vec![
        ("security.protocol".into(), "SASL_PLAINTEXT".into()),
        ("sasl.mechanism".into(), "PLAIN".into()),
        ("sasl.username".into(), HARNESS_USER.0.into()),
        ("sasl.password".into(), HARNESS_USER.1.into()),
    ]
}

/// tansu behind a gateway that accepts `mechanisms`, and PLAIN for the harness's own client,
/// which creates topics and reads results.
pub fn broker_behind(mechanisms: Vec<Mechanism>) -> (super::Broker, SaslGateway) {
    broker_behind_with(mechanisms, None, harness_plain_settings())
}

/// [`broker_behind`], the broker advertising `advertised_host` (default 127.0.0.1) and the
/// harness's own client connecting with `client_settings`. The harness's PLAIN user is
/// accepted too: as one more user of a PLAIN mechanism among `mechanisms`, else as a PLAIN
/// mechanism of its own.
pub fn broker_behind_with(
    mechanisms: Vec<Mechanism>,
    advertised_host: Option<&str>,
    client_settings: Vec<(String, String)>,
) -> (super::Broker, SaslGateway) {
    let listener = SaslGateway::bind();
    let port = listener.local_addr().expect("address").port();
    let broker = super::Broker::start_with(super::BrokerOptions {
        advertised_port: Some(port),
        advertised_host,
        client_settings,
        ..super::BrokerOptions::default()
    });
    let harness = (HARNESS_USER.0.to_string(), HARNESS_USER.1.to_string());
    let mut mechanisms = mechanisms;
    match mechanisms.iter_mut().find_map(|m| match m {
        Mechanism::Plain(users) => Some(users),
        _ => None,
    }) {
        Some(users) => users.push(harness),
        None => mechanisms.push(Mechanism::Plain(vec![harness])),
    }
    let gateway = SaslGateway::start_many(listener, broker.port(), mechanisms);
    (broker, gateway)
}
