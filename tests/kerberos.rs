//! Kerberos (SASL/GSSAPI) end to end: a throw-away MIT KDC, the SASL gateway accepting GSSAPI
//! with the service keytab in front of tansu, and Sluice taking krb5.conf and the keytab from
//! its custom library. The gateway tells which principal authenticated.
//!
//! The gateway's acceptor reads KRB5_CONFIG and KRB5_KTNAME from this test process's
//! environment, so these tests run one at a time, each with its own realm.

mod harness;

use std::process::Output;
use std::sync::{Mutex, MutexGuard};

use harness::components::send_and_receive;
use harness::flows::round_trip;
use harness::gateway::{broker_behind_with, harness_plain_settings, Mechanism, SaslGateway};
use harness::kdc::{Kdc, KdcOptions, CLIENT, CLIENT_PASSWORD};
use harness::{assert_exit, stderr, stdout, Broker, Stream, Workspace};

static ONE_REALM_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A realm of its own: a KDC, tansu behind the gateway (which accepts GSSAPI, and PLAIN for
/// the harness's own client) and a topic on it. It holds the lock that keeps other tests'
/// realms out of this process's environment until it is dropped.
struct Realm {
    kdc: Kdc,
    broker: Broker,
    gateway: SaslGateway,
    topic: String,
    // Dropped last.
    _one: MutexGuard<'static, ()>,
}

fn realm() -> Realm {
    realm_with(KdcOptions::default(), false)
}

/// A realm around a KDC started with `options`; with `plain_harness`, the harness's own client
/// authenticates with PLAIN (for a KDC whose tickets the gateway would refuse).
fn realm_with(options: KdcOptions<'_>, plain_harness: bool) -> Realm {
    let one = ONE_REALM_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let kdc = Kdc::start_with(options);
    std::env::set_var("KRB5_CONFIG", kdc.path("krb5.conf"));
    std::env::set_var("KRB5_KTNAME", kdc.path("kafka.keytab"));
    std::env::set_var(
        "KRB5CCNAME",
        format!("FILE:{}", kdc.path("harness.ccache").display()),
    );
    let client_settings = if plain_harness {
        harness_plain_settings()
    } else {
        vec![
            ("security.protocol".into(), "SASL_PLAINTEXT".into()),
            ("sasl.mechanism".into(), "GSSAPI".into()),
            ("sasl.kerberos.service.name".into(), "kafka".into()),
            ("sasl.kerberos.principal".into(), CLIENT.into()),
            (
                "sasl.kerberos.keytab".into(),
                kdc.path("client.keytab").display().to_string(),
            ),
        ]
    };
    let (broker, gateway) =
        broker_behind_with(vec![Mechanism::Gssapi], Some("localhost"), client_settings);
    let topic = broker.create_topic("krb", 1);
    Realm {
        kdc,
        broker,
        gateway,
        topic,
        _one: one,
    }
}

/// A workspace whose custom library holds krb5.conf (and the keytab, with `keytab`), and a
/// GSSAPI connection "kerberos" with `credentials` (elements) to the gateway, with processes
/// "send" and "receive" on the realm's topic and two documents in in.txt.
fn workspace(realm: &Realm, keytab: bool, credentials: &str) -> Workspace {
    let ws = Workspace::with_components(&send_and_receive(
        "kerberos",
        &realm.gateway.bootstrap(),
        &format!(
            "<security-protocol>SASL_PLAINTEXT</security-protocol>\
             <sasl-mechanism>GSSAPI</sasl-mechanism>{credentials}"
        ),
        &realm.topic,
    ));
    // Every run logs at TRACE and must show neither the password nor the keytab's bytes.
    let keytab_bytes = std::fs::read(realm.kdc.path("client.keytab")).expect("client keytab");
    ws.hold_secrets(&[CLIENT_PASSWORD.as_bytes(), &keytab_bytes]);
    std::fs::create_dir_all(ws.path().join("custom-libs")).expect("custom-libs");
    std::fs::copy(
        realm.kdc.path("krb5.conf"),
        ws.path().join("custom-libs/krb5.conf"),
    )
    .expect("krb5.conf");
    if keytab {
        std::fs::copy(
            realm.kdc.path("client.keytab"),
            ws.path().join("custom-libs/EXAMPLE.TEST.keytab"),
        )
        .expect("keytab");
    }
    ws.write("in.txt", "first\nsecond\n");
    ws
}

/// The connection's credentials: the client principal, and `more` elements.
fn principal(more: &str) -> String {
    format!("<username>{CLIENT}</username>{more}")
}

/// A realm and a workspace whose custom library has the client's keytab.
fn keytab_realm() -> (Realm, Workspace) {
    let realm = realm();
    let ws = workspace(&realm, true, &principal(""));
    (realm, ws)
}

/// Sends in.txt through process "send", which must exit with `code` and print each of
/// `expected` to `stream`; returns the run's output.
#[track_caller]
fn send(ws: &Workspace, code: i32, stream: Stream, expected: &[&str]) -> Output {
    ws.sluice_expect(
        &["run", "send", "--input", "in.txt"],
        code,
        stream,
        expected,
    )
}

/// Asserts that the client principal, and only it, authenticated at the gateway. (Cyrus SASL
/// names a principal of its default realm without the realm.)
fn assert_only_the_client_authenticated(realm: &Realm) {
    let principals = realm.gateway.authenticated();
    assert!(
        !principals.is_empty() && principals.iter().all(|p| p == "client"),
        "{principals:?}"
    );
}

#[test]
fn keytab_from_the_custom_library_authenticates_the_principal() {
    let (realm, ws) = keytab_realm();
    round_trip(&ws, &realm.broker, &realm.topic);
    assert_only_the_client_authenticated(&realm);
}

#[test]
fn a_password_authenticates_without_a_keytab() {
    let realm = realm();
    std::env::set_var("SLUICE_TEST_KERBEROS_PASSWORD", CLIENT_PASSWORD);
    let ws = workspace(
        &realm,
        false,
        &principal("<password>${env:SLUICE_TEST_KERBEROS_PASSWORD}</password>"),
    );
    round_trip(&ws, &realm.broker, &realm.topic);
    assert_only_the_client_authenticated(&realm);
}

#[test]
fn missing_files_and_a_wrong_service_name_say_what_to_fix() {
    let mut realm = realm();

    // No keytab and no password.
    let ws = workspace(&realm, false, &principal(""));
    send(
        &ws,
        1,
        Stream::Stderr,
        &["custom-libs/EXAMPLE.TEST.keytab does not exist: Kerberos connection \"kerberos\" has no \
         password, so it needs the keytab of client@EXAMPLE.TEST in the custom library folder"],
    );
    ws.sluice_expect(
        &["test-connection", "kerberos"],
        1,
        Stream::Stdout,
        &["  ✗ Kerberos\n      custom-libs/EXAMPLE.TEST.keytab does not exist"],
    );

    // No krb5.conf.
    std::fs::remove_file(ws.path().join("custom-libs/krb5.conf")).expect("rm");
    send(
        &ws,
        1,
        Stream::Stderr,
        &[
            "custom-libs/krb5.conf does not exist: Kerberos connection \"kerberos\" needs your \
         realm's krb5.conf in the custom library folder",
        ],
    );

    // A service name the realm does not have.
    let ws = workspace(
        &realm,
        true,
        &principal("<service-name>kafkaa</service-name>"),
    );
    send(
        &ws,
        1,
        Stream::Stdout,
        &[
            "could not connect to the Kafka brokers at localhost:",
            "Server kafkaa/localhost@EXAMPLE.TEST not found in Kerberos database",
            ". The brokers' service principal does not exist: check service-name",
        ],
    );

    // A keytab that holds another principal's key.
    std::fs::copy(
        realm.kdc.path("kafka.keytab"),
        ws.path().join("custom-libs/EXAMPLE.TEST.keytab"),
    )
    .expect("wrong keytab");
    let ws_wrong = ws;
    ws_wrong.write_components(
        &std::fs::read_to_string(ws_wrong.path().join("components/c.xml"))
            .expect("c.xml")
            .replace("<service-name>kafkaa</service-name>", ""),
    );
    send(
        &ws_wrong,
        1,
        Stream::Stderr,
        &[
            "Kerberos: kinit could not get a ticket for client@EXAMPLE.TEST with the keytab \
         custom-libs/EXAMPLE.TEST.keytab: ",
            "Fix: the keytab custom-libs/EXAMPLE.TEST.keytab holds no key for client@EXAMPLE.TEST",
        ],
    );

    // The KDC is down.
    realm.kdc.stop();
    send(
        &workspace(&realm, true, &principal("")),
        1,
        Stream::Stderr,
        &[
            "Kerberos: kinit could not get a ticket for client@EXAMPLE.TEST",
            "Fix: the KDC named in custom-libs/krb5.conf cannot be reached",
        ],
    );
}

#[test]
fn a_kdc_clock_ten_minutes_ahead_is_measured_and_named() {
    // MIT Kerberos (kdc_timesync, on by default) corrects its own requests by the KDC's
    // offset; the broker, whose clock is this machine's, then refuses the ticket's times.
    let realm = realm_with(
        KdcOptions {
            clock_offset: Some("+10m"),
            ..KdcOptions::default()
        },
        true,
    );
    let ws = workspace(&realm, true, &principal(""));
    let doctor = ws.sluice(&["test-connection", "kerberos"]);
    assert_exit(&doctor, 1);
    let report = stdout(&doctor);
    assert!(
        report.contains("  ✗ Kerberos: this machine's clock differs from the KDC's by 600 s (the KDC's is ahead)\n      synchronise the clocks of this machine, the KDC and the brokers (NTP)")
            || report.contains("by 599 s (the KDC's is ahead)")
            || report.contains("by 601 s (the KDC's is ahead)"),
        "{report}"
    );
    let output = send(
        &ws,
        1,
        Stream::Stdout,
        &["could not connect to the Kafka brokers"],
    );
    let out = stdout(&output);
    assert!(
        out.contains("The brokers refused the Kerberos ticket: check that the clocks of this machine, the KDC and the brokers agree (NTP)")
            && out.contains("check the connection part by part: sluice test-connection kerberos"),
        "{out}"
    );
    assert!(realm.gateway.authenticated().iter().all(|p| p == "harness"));
}

#[test]
fn without_kdc_timesync_a_skewed_clock_stops_kinit_with_the_fix() {
    let realm = realm_with(
        KdcOptions {
            clock_offset: Some("+10m"),
            libdefaults: "    kdc_timesync = 0\n",
        },
        true,
    );
    let output = send(
        &workspace(&realm, true, &principal("")),
        1,
        Stream::Stderr,
        &[],
    );
    let err = stderr(&output);
    assert!(
        err.contains("Clock skew too great in KDC reply")
            && err.contains(
                "Fix: this machine's clock differs too much from the KDC's: synchronise it (NTP)"
            ),
        "{err}"
    );
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn kerberos_files_others_may_change_are_refused_and_a_keytab_others_may_read_is_warned_about() {
    let (realm, ws) = keytab_realm();
    let keytab = ws.path().join("custom-libs/EXAMPLE.TEST.keytab");
    let krb5_conf = ws.path().join("custom-libs/krb5.conf");

    // Readable by everyone: used, with a warning.
    set_mode(&keytab, 0o644);
    set_mode(&krb5_conf, 0o644);
    send(
        &ws,
        0,
        Stream::Stderr,
        &["the keytab is readable by every user of this machine: chmod o-r it"],
    );

    // Writable by everyone: refused, before any ticket is asked for.
    set_mode(&keytab, 0o666);
    send(
        &ws,
        1,
        Stream::Stderr,
        &[
            "custom-libs/EXAMPLE.TEST.keytab may be changed by every user of this machine, so \
             it is not used: chmod o-w it",
        ],
    );
    set_mode(&keytab, 0o600);
    set_mode(&krb5_conf, 0o666);
    send(
        &ws,
        1,
        Stream::Stderr,
        &[
            "custom-libs/krb5.conf may be changed by every user of this machine, so it is not \
             used: chmod o-w it",
        ],
    );
    // Nothing was sent by the refused runs: the two documents of the first run only.
    assert_eq!(realm.broker.read_all(&realm.topic, 2).len(), 2);
    harness::reliability_row(
        "security",
        "custom library: keytab readable by all; keytab or krb5.conf writable by all",
        3,
        "readable: used, with a warning to chmod o-r; writable: refused, naming the file and \
         the fix, nothing sent",
        Some((6, 2)),
    );
}
