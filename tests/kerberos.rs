//! Kerberos (SASL/GSSAPI) end to end: a throw-away MIT KDC, the SASL gateway accepting GSSAPI
//! with the service keytab in front of tansu, and Sluice taking krb5.conf and the keytab from
//! its custom library. The gateway tells which principal authenticated.
//!
//! The gateway's acceptor reads KRB5_CONFIG and KRB5_KTNAME from this test process's
//! environment, so these tests run one at a time, each with its own realm.

mod harness;

use std::sync::Mutex;

use harness::gateway::{Mechanism, SaslGateway};
use harness::kdc::{Kdc, KdcOptions, CLIENT, CLIENT_PASSWORD};
use harness::{assert_exit, stdout, Broker, BrokerOptions, Workspace};

static ONE_REALM_AT_A_TIME: Mutex<()> = Mutex::new(());

struct Realm {
    kdc: Kdc,
    broker: Broker,
    gateway: SaslGateway,
}

fn realm() -> Realm {
    realm_with(Kdc::start(), false)
}

/// A realm around `kdc`; with `plain_harness`, the harness's own client authenticates with
/// PLAIN (for a KDC whose tickets the gateway would refuse).
fn realm_with(kdc: Kdc, plain_harness: bool) -> Realm {
    std::env::set_var("KRB5_CONFIG", kdc.path("krb5.conf"));
    std::env::set_var("KRB5_KTNAME", kdc.path("kafka.keytab"));
    std::env::set_var(
        "KRB5CCNAME",
        format!("FILE:{}", kdc.path("harness.ccache").display()),
    );
    let listener = SaslGateway::bind();
    let port = listener.local_addr().expect("address").port();
    let client_settings = if plain_harness {
        vec![
            ("security.protocol".into(), "SASL_PLAINTEXT".into()),
            ("sasl.mechanism".into(), "PLAIN".into()),
            ("sasl.username".into(), "harness".into()),
            ("sasl.password".into(), "harness-password".into()),
        ]
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
    let broker = Broker::start_with(BrokerOptions {
        advertised_port: Some(port),
        advertised_host: Some("localhost"),
        client_settings,
        ..BrokerOptions::default()
    });
    let gateway = SaslGateway::start_many(
        listener,
        broker.port(),
        vec![
            Mechanism::Gssapi,
            Mechanism::Plain(vec![("harness".into(), "harness-password".into())]),
        ],
    );
    Realm {
        kdc,
        broker,
        gateway,
    }
}

/// A workspace whose custom library holds krb5.conf (and the keytab, with `keytab`), and a
/// GSSAPI connection with `credentials` (elements) to the gateway.
fn workspace(realm: &Realm, keytab: bool, credentials: &str, topic: &str) -> Workspace {
    let ws = Workspace::new();
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
    ws.write(
        "components/c.xml",
        &format!(
            r#"<components>
  <connection id="kerberos">
    <bootstrap-servers>{bootstrap}</bootstrap-servers>
    <consumer-group>{group}</consumer-group>
    <security-protocol>SASL_PLAINTEXT</security-protocol>
    <sasl-mechanism>GSSAPI</sasl-mechanism>
    {credentials}
  </connection>
  <operation id="send" type="produce" connection="kerberos"><topic>{topic}</topic></operation>
  <operation id="receive" type="consume" connection="kerberos">
    <topic>{topic}</topic><minimum-messages>2</minimum-messages><offset-reset>earliest</offset-reset>
  </operation>
  <process id="send"><steps><connector operation="send"/></steps></process>
  <process id="receive"><start operation="receive"/></process>
</components>"#,
            bootstrap = realm.gateway.bootstrap(),
            group = harness::unique("g"),
        ),
    );
    ws.write("in.txt", "first\nsecond\n");
    ws
}

fn round_trip(realm: &Realm, ws: &Workspace, topic: &str) {
    let sent = ws.sluice(&["run", "send", "--input", "in.txt"]);
    assert_exit(&sent, 0);
    let payloads: Vec<_> = realm
        .broker
        .read_all(topic, 2)
        .into_iter()
        .map(|r| r.payload)
        .collect();
    assert_eq!(payloads, ["first", "second"]);
    let received = ws.sluice(&["run", "receive"]);
    assert_exit(&received, 0);
    assert!(stdout(&received).contains("documents: 2 in, 2 out, 0 errors"));
}

/// A realm of its own (holding the lock until dropped, as the last of the four) and a
/// workspace whose custom library has the client's keytab.
fn keytab_realm() -> (std::sync::MutexGuard<'static, ()>, Realm, String, Workspace) {
    let one = ONE_REALM_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let realm = realm();
    let topic = realm.broker.create_topic("krb", 1);
    let ws = workspace(
        &realm,
        true,
        &format!("<username>{CLIENT}</username>"),
        &topic,
    );
    (one, realm, topic, ws)
}

#[test]
fn keytab_from_the_custom_library_authenticates_the_principal() {
    let (_one, realm, topic, ws) = keytab_realm();
    round_trip(&realm, &ws, &topic);
    // Cyrus SASL names a principal of its default realm without the realm.
    let principals = realm.gateway.authenticated();
    assert!(
        !principals.is_empty() && principals.iter().all(|p| p == "client"),
        "{principals:?}"
    );
}

#[test]
fn a_password_authenticates_without_a_keytab() {
    let _one = ONE_REALM_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let realm = realm();
    let topic = realm.broker.create_topic("krb", 1);
    std::env::set_var("SLUICE_TEST_KERBEROS_PASSWORD", CLIENT_PASSWORD);
    let ws = workspace(
        &realm,
        false,
        &format!("<username>{CLIENT}</username><password>${{env:SLUICE_TEST_KERBEROS_PASSWORD}}</password>"),
        &topic,
    );
    round_trip(&realm, &ws, &topic);
    let principals = realm.gateway.authenticated();
    assert!(
        !principals.is_empty() && principals.iter().all(|p| p == "client"),
        "{principals:?}"
    );
}

#[test]
fn missing_files_and_a_wrong_service_name_say_what_to_fix() {
    let _one = ONE_REALM_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let mut realm = realm();
    let topic = realm.broker.create_topic("krb", 1);

    // No keytab and no password.
    let ws = workspace(
        &realm,
        false,
        &format!("<username>{CLIENT}</username>"),
        &topic,
    );
    let output = ws.sluice(&["run", "send", "--input", "in.txt"]);
    assert_exit(&output, 1);
    let err = harness::stderr(&output);
    assert!(err.contains(
        "custom-libs/EXAMPLE.TEST.keytab does not exist: Kerberos connection \"kerberos\" has no \
         password, so it needs the keytab of client@EXAMPLE.TEST in the custom library folder"
    ), "{err}");

    let doctor = ws.sluice(&["test-connection", "kerberos"]);
    assert_exit(&doctor, 1);
    let report = stdout(&doctor);
    assert!(
        report.contains("  ✗ Kerberos\n      custom-libs/EXAMPLE.TEST.keytab does not exist"),
        "{report}"
    );

    // No krb5.conf.
    std::fs::remove_file(ws.path().join("custom-libs/krb5.conf")).expect("rm");
    let output = ws.sluice(&["run", "send", "--input", "in.txt"]);
    assert_exit(&output, 1);
    assert!(
        harness::stderr(&output).contains(
            "custom-libs/krb5.conf does not exist: Kerberos connection \"kerberos\" needs your \
         realm's krb5.conf in the custom library folder"
        ),
        "{}",
        harness::stderr(&output)
    );

    // A service name the realm does not have.
    let ws = workspace(
        &realm,
        true,
        &format!("<username>{CLIENT}</username><service-name>kafkaa</service-name>"),
        &topic,
    );
    let output = ws.sluice(&["run", "send", "--input", "in.txt"]);
    assert_exit(&output, 1);
    let out = stdout(&output);
    assert!(
        out.contains("could not connect to the Kafka brokers at localhost:"),
        "{out}"
    );
    assert!(
        out.contains("Server kafkaa/localhost@EXAMPLE.TEST not found in Kerberos database"),
        "{out}"
    );
    assert!(
        out.contains(". The brokers' service principal does not exist: check service-name"),
        "{out}"
    );

    // A keytab that holds another principal's key.
    std::fs::copy(
        realm.kdc.path("kafka.keytab"),
        ws.path().join("custom-libs/EXAMPLE.TEST.keytab"),
    )
    .expect("wrong keytab");
    let ws_wrong = ws;
    ws_wrong.write(
        "components/c.xml",
        &std::fs::read_to_string(ws_wrong.path().join("components/c.xml"))
            .expect("c.xml")
            .replace("<service-name>kafkaa</service-name>", ""),
    );
    let output = ws_wrong.sluice(&["run", "send", "--input", "in.txt"]);
    assert_exit(&output, 1);
    let err = harness::stderr(&output);
    assert!(
        err.contains(
            "Kerberos: kinit could not get a ticket for client@EXAMPLE.TEST with the keytab \
         custom-libs/EXAMPLE.TEST.keytab: "
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "Fix: the keytab custom-libs/EXAMPLE.TEST.keytab holds no key for client@EXAMPLE.TEST"
        ),
        "{err}"
    );

    // The KDC is down.
    realm.kdc.stop();
    let ws = workspace(
        &realm,
        true,
        &format!("<username>{CLIENT}</username>"),
        &topic,
    );
    let output = ws.sluice(&["run", "send", "--input", "in.txt"]);
    assert_exit(&output, 1);
    let err = harness::stderr(&output);
    assert!(
        err.contains("Kerberos: kinit could not get a ticket for client@EXAMPLE.TEST"),
        "{err}"
    );
    assert!(
        err.contains("Fix: the KDC named in custom-libs/krb5.conf cannot be reached"),
        "{err}"
    );
}

#[test]
fn a_kdc_clock_ten_minutes_ahead_is_measured_and_named() {
    let _one = ONE_REALM_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    // MIT Kerberos (kdc_timesync, on by default) corrects its own requests by the KDC's
    // offset; the broker, whose clock is this machine's, then refuses the ticket's times.
    let realm = realm_with(
        Kdc::start_with(KdcOptions {
            clock_offset: Some("+10m"),
            ..KdcOptions::default()
        }),
        true,
    );
    let topic = realm.broker.create_topic("krb", 1);
    let ws = workspace(
        &realm,
        true,
        &format!("<username>{CLIENT}</username>"),
        &topic,
    );
    let doctor = ws.sluice(&["test-connection", "kerberos"]);
    assert_exit(&doctor, 1);
    let report = stdout(&doctor);
    assert!(
        report.contains("  ✗ Kerberos: this machine's clock differs from the KDC's by 600 s (the KDC's is ahead)\n      synchronise the clocks of this machine, the KDC and the brokers (NTP)")
            || report.contains("by 599 s (the KDC's is ahead)")
            || report.contains("by 601 s (the KDC's is ahead)"),
        "{report}"
    );
    let output = ws.sluice(&["run", "send", "--input", "in.txt"]);
    assert_exit(&output, 1);
    let out = stdout(&output);
    assert!(
        out.contains("could not connect to the Kafka brokers"),
        "{out}"
    );
    assert!(
        out.contains("The brokers refused the Kerberos ticket: check that the clocks of this machine, the KDC and the brokers agree (NTP)")
            && out.contains("check the connection part by part: sluice test-connection kerberos"),
        "{out}"
    );
    assert!(realm.gateway.authenticated().iter().all(|p| p == "harness"));
}

#[test]
fn without_kdc_timesync_a_skewed_clock_stops_kinit_with_the_fix() {
    let _one = ONE_REALM_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let realm = realm_with(
        Kdc::start_with(KdcOptions {
            clock_offset: Some("+10m"),
            libdefaults: "    kdc_timesync = 0\n",
        }),
        true,
    );
    let topic = realm.broker.create_topic("krb", 1);
    let ws = workspace(
        &realm,
        true,
        &format!("<username>{CLIENT}</username>"),
        &topic,
    );
    let output = ws.sluice(&["run", "send", "--input", "in.txt"]);
    assert_exit(&output, 1);
    let err = harness::stderr(&output);
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
    let (_one, realm, topic, ws) = keytab_realm();
    let keytab = ws.path().join("custom-libs/EXAMPLE.TEST.keytab");
    let krb5_conf = ws.path().join("custom-libs/krb5.conf");

    // Readable by everyone: used, with a warning.
    set_mode(&keytab, 0o644);
    set_mode(&krb5_conf, 0o644);
    let output = ws.sluice(&["run", "send", "--input", "in.txt"]);
    assert_exit(&output, 0);
    assert!(
        harness::stderr(&output)
            .contains("the keytab is readable by every user of this machine: chmod o-r it"),
        "{}",
        harness::stderr(&output)
    );

    // Writable by everyone: refused, before any ticket is asked for.
    set_mode(&keytab, 0o666);
    let output = ws.sluice(&["run", "send", "--input", "in.txt"]);
    assert_exit(&output, 1);
    assert!(
        harness::stderr(&output).contains(
            "custom-libs/EXAMPLE.TEST.keytab may be changed by every user of this machine, so \
             it is not used: chmod o-w it"
        ),
        "{}",
        harness::stderr(&output)
    );
    set_mode(&keytab, 0o600);
    set_mode(&krb5_conf, 0o666);
    let output = ws.sluice(&["run", "send", "--input", "in.txt"]);
    assert_exit(&output, 1);
    assert!(
        harness::stderr(&output).contains(
            "custom-libs/krb5.conf may be changed by every user of this machine, so it is not \
             used: chmod o-w it"
        ),
        "{}",
        harness::stderr(&output)
    );
    // Nothing was sent by the refused runs: the two documents of the first run only.
    assert_eq!(realm.broker.read_all(&topic, 2).len(), 2);
    harness::reliability_row(
        "security",
        "custom library: keytab readable by all; keytab or krb5.conf writable by all",
        3,
        "readable: used, with a warning to chmod o-r; writable: refused, naming the file and \
         the fix, nothing sent",
        Some((6, 2)),
    );
}
