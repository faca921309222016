//! Secured connections end to end: SASL/SCRAM against tansu with authentication required, TLS
//! and mutual TLS through stunnel in front of tansu, SASL_SSL through both. Documents go
//! through Sluice and are checked with an independent client; errors are the ones a user sees;
//! secrets appear nowhere.

mod harness;

use harness::tls::{Certificates, TlsTerminator};
use harness::{assert_exit, stderr, stdout, Broker, BrokerOptions, Workspace};

const PASSWORD: &str = "correct-horse-battery-staple";

/// A connection with `security` (elements inside <connection>), a produce and a consume
/// operation on `topic`, and a process for each.
fn components(bootstrap: &str, security: &str, topic: &str) -> String {
    format!(
        r#"<components>
  <connection id="secured">
    <bootstrap-servers>{bootstrap}</bootstrap-servers>
    <consumer-group>{group}</consumer-group>
    {security}
  </connection>
  <operation id="send" type="produce" connection="secured"><topic>{topic}</topic></operation>
  <operation id="receive" type="consume" connection="secured">
    <topic>{topic}</topic><minimum-messages>2</minimum-messages><offset-reset>earliest</offset-reset>
  </operation>
  <process id="send"><steps><connector operation="send"/></steps></process>
  <process id="receive"><start operation="receive"/></process>
</components>"#,
        group = harness::unique("g"),
    )
}

fn scram_settings(mechanism: &str) -> Vec<(String, String)> {
    vec![
        ("security.protocol".into(), "SASL_PLAINTEXT".into()),
        ("sasl.mechanism".into(), mechanism.into()),
        ("sasl.username".into(), "alice".into()),
        ("sasl.password".into(), PASSWORD.into()),
    ]
}

/// Sends two documents and reads them back through Sluice; checks them with the harness's
/// own client.
fn round_trip(ws: &Workspace, broker: &harness::Kafka, topic: &str) {
    ws.write("in.txt", "first\nsecond\n");
    let sent = ws.sluice(&["run", "send", "--input", "in.txt"]);
    assert_exit(&sent, 0);
    let payloads: Vec<_> = broker
        .read_all(topic, 2)
        .into_iter()
        .map(|r| r.payload)
        .collect();
    assert_eq!(payloads, ["first", "second"]);
    let received = ws.sluice(&["run", "receive"]);
    assert_exit(&received, 0);
    assert!(stdout(&received).contains("documents: 2 in, 2 out, 0 errors"));
    for output in [&sent, &received] {
        assert!(
            !stdout(output).contains(PASSWORD) && !stderr(output).contains(PASSWORD),
            "the password leaked into sluice's output"
        );
    }
}

#[test]
fn no_secret_reaches_any_output_even_at_trace_level() {
    let broker = Broker::start_with(BrokerOptions {
        scram_users: &[("alice", PASSWORD)],
        client_settings: scram_settings("SCRAM-SHA-512"),
        ..BrokerOptions::default()
    });
    let topic = broker.create_topic("trace", 1);
    let ws = secured_workspace();
    std::env::set_var("SLUICE_TEST_TRACE_PASSWORD", PASSWORD);
    ws.write(
        "components/c.xml",
        &components(
            &broker.bootstrap(),
            "<security-protocol>SASL_PLAINTEXT</security-protocol>\
             <sasl-mechanism>SCRAM-SHA-512</sasl-mechanism><username>alice</username>\
             <password>${env:SLUICE_TEST_TRACE_PASSWORD}</password>",
            &topic,
        ),
    );
    ws.write("in.txt", "one\ntwo\n");
    for args in [
        &["run", "send", "--input", "in.txt"][..],
        &["run", "receive"],
        &["test-connection", "secured"],
        &["validate", "components"],
    ] {
        let output = ws.sluice_traced(args);
        let everything = format!("{}{}", stdout(&output), stderr(&output));
        if args[0] != "validate" {
            // The check means something only if the run did log at TRACE.
            assert!(
                everything.contains(" TRACE "),
                "{args:?} logged no TRACE line: {everything}"
            );
        }
        // Nor its base64, which SASL PLAIN or a careless encoder might print.
        for needle in [PASSWORD.to_string(), base64_of(PASSWORD)] {
            assert!(!everything.contains(&needle), "{args:?} printed a secret");
        }
    }
    harness::reliability_row(
        "security",
        "secrets at TRACE: every sluice run of the security, Kerberos, API and CLI secret \
         tests (passwords, OAuth client secrets, AWS secret keys, the TLS private key, keytab \
         bytes, the API token)",
        25,
        "none of them, nor their base64, in any log line, error, CLI output, API answer or \
         serve log",
        None,
    );
}

/// A workspace whose every run logs at TRACE and is checked for the secrets of these tests:
/// the passwords, client secrets, OAuth access tokens and AWS secret keys (and their base64).
fn secured_workspace() -> Workspace {
    let ws = Workspace::new();
    ws.hold_secrets(&[
        PASSWORD.as_bytes(),
        b"wrong-client-secret",
        b"not-the-password",
        b"guessed-wrong",
        b"temporary-secret-key",
        b"temporary-session-token",
        b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        // Every access token the test OIDC endpoint issues to sluice starts so.
        b"token-sluice-client-",
    ]);
    ws
}

fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[test]
fn scram_sha_256_and_sha_512_authenticate() {
    let broker = Broker::start_with(BrokerOptions {
        scram_users: &[("alice", PASSWORD)],
        client_settings: scram_settings("SCRAM-SHA-256"),
        ..BrokerOptions::default()
    });
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let topic = broker.create_topic("scram", 1);
        let ws = secured_workspace();
        ws.write("password.txt", &format!("{PASSWORD}\n"));
        ws.write(
            "components/c.xml",
            &components(
                &broker.bootstrap(),
                &format!(
                    "<security-protocol>SASL_PLAINTEXT</security-protocol>\
                     <sasl-mechanism>{mechanism}</sasl-mechanism><username>alice</username>\
                     <password>${{file:../password.txt}}</password>"
                ),
                &topic,
            ),
        );
        round_trip(&ws, &broker, &topic);
    }
}

#[test]
fn a_wrong_scram_password_says_authentication_failed_and_hides_the_password() {
    let broker = Broker::start_with(BrokerOptions {
        scram_users: &[("alice", PASSWORD)],
        client_settings: scram_settings("SCRAM-SHA-512"),
        ..BrokerOptions::default()
    });
    let topic = broker.create_topic("scram", 1);
    let ws = secured_workspace();
    ws.write(
        "components/c.xml",
        &components(
            &broker.bootstrap(),
            "<security-protocol>SASL_PLAINTEXT</security-protocol>\
             <sasl-mechanism>SCRAM-SHA-512</sasl-mechanism><username>alice</username>\
             <password>not-the-password</password>",
            &topic,
        ),
    );
    ws.write("in.txt", "x\n");
    let output = ws.sluice(&["run", "send", "--input", "in.txt"]);
    assert_exit(&output, 1);
    let out = stdout(&output);
    assert!(
        out.contains("could not connect to the Kafka brokers at 127.0.0.1:"),
        "{out}"
    );
    assert!(out.contains("SASL SCRAM authentication failed"), "{out}");
    assert!(
        out.contains(". Check username, password and sasl-mechanism"),
        "{out}"
    );
    assert!(!out.contains("not-the-password") && !stderr(&output).contains("not-the-password"));
}

/// A broker behind a TLS terminator that advertises the terminator's port.
fn tls_broker(certificates: &Certificates, mutual: bool) -> (Broker, TlsTerminator) {
    let port = TlsTerminator::reserve_port();
    let broker = Broker::start_with(BrokerOptions {
        advertised_port: Some(port),
        client_settings: certificates.client_settings(),
        ..BrokerOptions::default()
    });
    let terminator = TlsTerminator::start(certificates, port, broker.port(), mutual);
    (broker, terminator)
}

#[test]
fn tls_with_a_ca_file_and_hostname_verification() {
    let certificates = Certificates::generate();
    let (broker, terminator) = tls_broker(&certificates, false);
    let topic = broker.create_topic("tls", 1);
    let ws = secured_workspace();
    ws.write(
        "components/c.xml",
        &components(
            &terminator.bootstrap(),
            &format!(
                "<security-protocol>SSL</security-protocol><tls><ca-file>{}</ca-file></tls>",
                certificates.path("ca.pem").display()
            ),
            &topic,
        ),
    );
    round_trip(&ws, &broker, &topic);
}

#[test]
fn tls_with_the_wrong_ca_is_a_certificate_error() {
    let certificates = Certificates::generate();
    let (broker, terminator) = tls_broker(&certificates, false);
    let topic = broker.create_topic("tls", 1);
    let ws = secured_workspace();
    ws.write(
        "components/c.xml",
        &components(
            &terminator.bootstrap(),
            &format!(
                "<security-protocol>SSL</security-protocol><tls><ca-file>{}</ca-file></tls>",
                certificates.path("other-ca.pem").display()
            ),
            &topic,
        ),
    );
    ws.write("in.txt", "x\n");
    let output = ws.sluice(&["run", "send", "--input", "in.txt"]);
    assert_exit(&output, 1);
    let out = stdout(&output);
    assert!(
        out.contains("could not connect to the Kafka brokers at localhost:"),
        "{out}"
    );
    assert!(out.contains("certificate verify failed"), "{out}");
    assert!(
        out.contains(". Check tls/ca-file: it must hold the CA certificate that signed the brokers' certificates"),
        "{out}"
    );
}

#[test]
fn mutual_tls_needs_the_client_certificate() {
    let certificates = Certificates::generate();
    let (broker, terminator) = tls_broker(&certificates, true);
    let topic = broker.create_topic("mtls", 1);
    let ca = certificates.path("ca.pem").display().to_string();

    let ws = secured_workspace();
    // The client's private key: any line of its PEM body.
    let key = std::fs::read_to_string(certificates.path("client.key")).expect("client.key");
    let lines: Vec<&[u8]> = key
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 32)
        .map(str::as_bytes)
        .collect();
    ws.hold_secrets(&lines);
    ws.write(
        "components/c.xml",
        &components(
            &terminator.bootstrap(),
            &format!(
                "<security-protocol>SSL</security-protocol><tls><ca-file>{ca}</ca-file>\
                 <certificate-file>{}</certificate-file><key-file>{}</key-file></tls>",
                certificates.path("client.pem").display(),
                certificates.path("client.key").display()
            ),
            &topic,
        ),
    );
    round_trip(&ws, &broker, &topic);

    let without = secured_workspace();
    without.write(
        "components/c.xml",
        &components(
            &terminator.bootstrap(),
            &format!(
                "<security-protocol>SSL</security-protocol><tls><ca-file>{ca}</ca-file></tls>"
            ),
            &topic,
        ),
    );
    without.write("in.txt", "x\n");
    let output = without.sluice(&["run", "send", "--input", "in.txt"]);
    assert_exit(&output, 1);
    let out = stdout(&output);
    assert!(
        out.contains("could not connect to the Kafka brokers at localhost:"),
        "{out}"
    );
    assert!(out.contains("certificate required"), "{out}");
    assert!(
        out.contains(
            ". The brokers require a client certificate: set tls/certificate-file and tls/key-file"
        ),
        "{out}"
    );
}

#[test]
fn sasl_ssl_is_scram_over_tls() {
    let certificates = Certificates::generate();
    let port = TlsTerminator::reserve_port();
    let mut settings = scram_settings("SCRAM-SHA-512");
    settings[0].1 = "SASL_SSL".into();
    settings.push((
        "ssl.ca.location".into(),
        certificates.path("ca.pem").display().to_string(),
    ));
    let broker = Broker::start_with(BrokerOptions {
        advertised_port: Some(port),
        scram_users: &[("alice", PASSWORD)],
        client_settings: settings,
        ..BrokerOptions::default()
    });
    let terminator = TlsTerminator::start(&certificates, port, broker.port(), false);
    let topic = broker.create_topic("sasl-ssl", 1);
    let ws = secured_workspace();
    std::env::set_var("SLUICE_TEST_SCRAM_PASSWORD", PASSWORD);
    ws.write(
        "components/c.xml",
        &components(
            &terminator.bootstrap(),
            &format!(
                "<security-protocol>SASL_SSL</security-protocol>\
                 <sasl-mechanism>SCRAM-SHA-512</sasl-mechanism><username>alice</username>\
                 <password>${{env:SLUICE_TEST_SCRAM_PASSWORD}}</password>\
                 <tls><ca-file>{}</ca-file></tls>",
                certificates.path("ca.pem").display()
            ),
            &topic,
        ),
    );
    round_trip(&ws, &broker, &topic);
}

/// tansu behind the SASL gateway (which speaks PLAIN) and the gateway.
fn plain_broker() -> (Broker, harness::gateway::SaslGateway) {
    let listener = harness::gateway::SaslGateway::bind();
    let port = listener.local_addr().expect("address").port();
    let settings = vec![
        (
            "security.protocol".to_string(),
            "SASL_PLAINTEXT".to_string(),
        ),
        ("sasl.mechanism".to_string(), "PLAIN".to_string()),
        ("sasl.username".to_string(), "harness".to_string()),
        ("sasl.password".to_string(), "harness-password".to_string()),
    ];
    let broker = Broker::start_with(BrokerOptions {
        advertised_port: Some(port),
        client_settings: settings,
        ..BrokerOptions::default()
    });
    let gateway = harness::gateway::SaslGateway::start_plain(
        listener,
        broker.port(),
        &[("alice", PASSWORD), ("harness", "harness-password")],
    );
    (broker, gateway)
}

#[test]
fn sasl_plain_authenticates_as_the_configured_user() {
    let (broker, gateway) = plain_broker();
    let topic = broker.create_topic("plain", 1);
    let ws = secured_workspace();
    std::env::set_var("SLUICE_TEST_PLAIN_PASSWORD", PASSWORD);
    ws.write(
        "components/c.xml",
        &components(
            &gateway.bootstrap(),
            "<security-protocol>SASL_PLAINTEXT</security-protocol>\
             <sasl-mechanism>PLAIN</sasl-mechanism><username>alice</username>\
             <password>${env:SLUICE_TEST_PLAIN_PASSWORD}</password>",
            &topic,
        ),
    );
    round_trip(&ws, &broker, &topic);
    let users = gateway.authenticated();
    assert!(users.iter().any(|u| u == "alice"), "{users:?}");
    assert!(
        users.iter().all(|u| u == "alice" || u == "harness"),
        "only known users: {users:?}"
    );
}

#[test]
fn a_wrong_plain_password_is_an_authentication_error() {
    let (broker, gateway) = plain_broker();
    let topic = broker.create_topic("plain", 1);
    let ws = secured_workspace();
    ws.write(
        "components/c.xml",
        &components(
            &gateway.bootstrap(),
            "<security-protocol>SASL_PLAINTEXT</security-protocol>\
             <sasl-mechanism>PLAIN</sasl-mechanism><username>alice</username>\
             <password>guessed-wrong</password>",
            &topic,
        ),
    );
    ws.write("in.txt", "x\n");
    let output = ws.sluice(&["run", "send", "--input", "in.txt"]);
    assert_exit(&output, 1);
    let out = stdout(&output);
    assert!(
        out.contains("could not connect to the Kafka brokers at localhost:"),
        "{out}"
    );
    assert!(
        out.contains("Authentication failed: invalid user name or password"),
        "{out}"
    );
    assert!(
        out.contains(". Check username, password and sasl-mechanism"),
        "{out}"
    );
    assert!(!out.contains("guessed-wrong") && !stderr(&output).contains("guessed-wrong"));
    assert!(!gateway.authenticated().contains(&"alice".to_string()));
}

/// tansu behind the SASL gateway speaking OAUTHBEARER, and a token endpoint issuing tokens of
/// `lifetime_s` seconds to client "sluice-client".
fn oauth_broker(
    lifetime_s: u64,
) -> (
    Broker,
    harness::gateway::SaslGateway,
    harness::oidc::TokenEndpoint,
) {
    let endpoint = harness::oidc::TokenEndpoint::start("sluice-client", PASSWORD, lifetime_s);
    // The harness's own client authenticates with PLAIN; Sluice with OAUTHBEARER.
    let (broker, gateway) =
        harness::gateway::broker_behind(vec![harness::gateway::Mechanism::OAuthBearer(
            endpoint.issued.clone(),
        )]);
    (broker, gateway, endpoint)
}

fn oauth_security(endpoint: &str, secret: &str) -> String {
    format!(
        "<security-protocol>SASL_PLAINTEXT</security-protocol><sasl-mechanism>OAUTHBEARER</sasl-mechanism>\
         <oauth><token-endpoint>{endpoint}</token-endpoint><client-id>sluice-client</client-id>\
         <client-secret>{secret}</client-secret></oauth>"
    )
}

#[test]
fn oauthbearer_gets_tokens_from_the_endpoint_and_refreshes_them_before_expiry() {
    let (broker, gateway, endpoint) = oauth_broker(2);
    let topic = broker.create_topic("oauth", 1);
    let ws = secured_workspace();
    std::env::set_var("SLUICE_TEST_OAUTH_SECRET", PASSWORD);
    ws.write(
        "components/c.xml",
        &components(
            &gateway.bootstrap(),
            &oauth_security(&endpoint.url(), "${env:SLUICE_TEST_OAUTH_SECRET}"),
            &topic,
        ),
    );
    round_trip(&ws, &broker, &topic);
    let users = gateway.authenticated();
    assert!(users.iter().any(|u| u == "sluice-client"), "{users:?}");

    // Tokens live 2 s; librdkafka asks for a new one at 80 % of that, so a consume that runs
    // for 4 s gets at least one more.
    let before = endpoint.count();
    ws.write(
        "components/wait.xml",
        &format!(
            r#"<components>
  <operation id="wait" type="consume" connection="secured">
    <topic>{topic}</topic><minimum-messages>0</minimum-messages><maximum-wait>4s</maximum-wait><offset-reset>earliest</offset-reset>
  </operation>
  <process id="wait"><start operation="wait"/></process>
</components>"#
        ),
    );
    let output = ws.sluice(&["run", "wait"]);
    assert_exit(&output, 0);
    assert!(
        endpoint.count() >= before + 2,
        "tokens issued: {} before, {} after",
        before,
        endpoint.count()
    );
}

#[test]
fn a_wrong_oauth_client_secret_names_the_endpoints_answer_not_the_secret() {
    let (broker, gateway, endpoint) = oauth_broker(60);
    let topic = broker.create_topic("oauth", 1);
    let ws = secured_workspace();
    ws.write(
        "components/c.xml",
        &components(
            &gateway.bootstrap(),
            &oauth_security(&endpoint.url(), "wrong-client-secret"),
            &topic,
        ),
    );
    ws.write("in.txt", "x\n");
    let output = ws.sluice(&["run", "send", "--input", "in.txt"]);
    assert_exit(&output, 1);
    let out = stdout(&output);
    assert!(
        out.contains("could not connect to the Kafka brokers at localhost:"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "the token endpoint {} answered HTTP 401: {{\"error\":\"invalid_client\"}} (check oauth-client-id and oauth-client-secret)",
            endpoint.url()
        )),
        "{out}"
    );
    assert!(
        !out.contains("wrong-client-secret") && !stderr(&output).contains("wrong-client-secret")
    );
}

/// The access key id the test broker knows, with PASSWORD as its secret access key (so that
/// every leak check for PASSWORD also covers the AWS secret).
const ACCESS_KEY_ID: &str = "AKIASLUICETEST000001";
const REGION: &str = "eu-west-1";

/// tansu behind the SASL gateway checking Amazon MSK IAM tokens (signed for REGION with
/// ACCESS_KEY_ID or the temporary `more` keys).
fn msk_iam_broker(more: &[(&str, &str)]) -> (Broker, harness::gateway::SaslGateway) {
    let mut keys = vec![(ACCESS_KEY_ID.to_string(), PASSWORD.to_string())];
    keys.extend(
        more.iter()
            .map(|(id, secret)| (id.to_string(), secret.to_string())),
    );
    harness::gateway::broker_behind(vec![harness::gateway::Mechanism::AwsIam {
        region: REGION.into(),
        keys,
    }])
}

/// Components whose connection "secured" reaches `gateway` with MSK IAM settings `aws_iam`.
fn write_msk_iam_components(
    ws: &Workspace,
    gateway: &harness::gateway::SaslGateway,
    topic: &str,
    aws_iam: &str,
) {
    ws.write(
        "components/c.xml",
        &components(&gateway.bootstrap(), &msk_iam_security(aws_iam), topic),
    );
}

/// MSK IAM over SASL_PLAINTEXT: the gateway has no TLS (the amazon-msk preset would insist on
/// SASL_SSL and port 9098, which the golden files cover).
fn msk_iam_security(aws_iam: &str) -> String {
    format!(
        "<security-protocol>SASL_PLAINTEXT</security-protocol><sasl-mechanism>OAUTHBEARER</sasl-mechanism>{aws_iam}"
    )
}

#[test]
fn msk_iam_signatures_match_aws_sigv4() {
    use sluice_connector::aws_credentials::AwsCredentials;
    use sluice_connector::Secret;
    use std::time::{Duration, SystemTime};
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_350_896);
    for session_token in [
        None,
        Some("IQoJb3JpZ2luX2VjEPz//////////wEaCWV1LXdlc3QtMSJHMEUCIQ+/="),
    ] {
        let credentials = AwsCredentials {
            access_key_id: ACCESS_KEY_ID.into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: session_token.map(Secret::new),
            expiration: None,
            source: "test".into(),
        };
        for region in ["eu-west-1", "us-east-1", "ap-southeast-2"] {
            let url = sluice_connector::msk_iam::presigned_url(region, &credentials, at);
            let q = harness::msk_iam::query_parameters(&url);
            assert_eq!(
                q["X-Amz-Signature"],
                harness::msk_iam::reference_signature(
                    region,
                    ACCESS_KEY_ID,
                    "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                    session_token,
                    at,
                    Duration::from_secs(900)
                ),
                "{url}"
            );
            assert_eq!(q["X-Amz-Date"], "20261122T123456Z");
            assert_eq!(q["X-Amz-Expires"], "900");
            assert_eq!(
                q.get("X-Amz-Security-Token").map(String::as_str),
                session_token
            );
            assert!(url.starts_with(&format!(
                "https://kafka.{region}.amazonaws.com/?Action=kafka-cluster%3AConnect&"
            )));
        }
    }
}

#[test]
fn msk_iam_authenticates_with_a_token_the_broker_verifies() {
    let (broker, gateway) = msk_iam_broker(&[]);
    let topic = broker.create_topic("msk-iam", 1);
    let ws = secured_workspace();
    ws.set_env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID);
    ws.set_env("AWS_SECRET_ACCESS_KEY", PASSWORD);
    write_msk_iam_components(
        &ws,
        &gateway,
        &topic,
        &format!("<aws-iam><region>{REGION}</region></aws-iam>"),
    );
    round_trip(&ws, &broker, &topic);
    let users = gateway.authenticated();
    assert!(users.iter().any(|u| u == ACCESS_KEY_ID), "{users:?}");

    let doctor = ws.sluice(&["test-connection", "secured"]);
    assert_exit(&doctor, 0);
    let out = stdout(&doctor);
    let signed = format!(
        "✓ Amazon MSK IAM: AWS credentials {ACCESS_KEY_ID} from environment (AWS_ACCESS_KEY_ID); \
         a kafka-cluster:Connect token for {REGION} signed, valid "
    );
    // 900 s from signing, less the moments since.
    let valid_s: u64 = out
        .split_once(&signed)
        .and_then(|(_, rest)| rest.split_once(' '))
        .and_then(|(seconds, _)| seconds.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!((890..=900).contains(&valid_s), "{out}");
    assert!(!out.contains(PASSWORD) && !stderr(&doctor).contains(PASSWORD));
}

#[test]
fn msk_iam_takes_credentials_from_a_named_profile() {
    let (broker, gateway) = msk_iam_broker(&[]);
    let topic = broker.create_topic("msk-iam", 1);
    let ws = secured_workspace();
    let credentials = ws.write(
        "aws/credentials",
        &format!(
            "[default]\naws_access_key_id = AKIANOTTHISONE\naws_secret_access_key = nope\n\n\
             [orders]\naws_access_key_id = {ACCESS_KEY_ID}\naws_secret_access_key = {PASSWORD}\n"
        ),
    );
    ws.set_env(
        "AWS_SHARED_CREDENTIALS_FILE",
        &credentials.to_string_lossy(),
    );
    write_msk_iam_components(
        &ws,
        &gateway,
        &topic,
        &format!("<aws-iam><region>{REGION}</region><profile>orders</profile></aws-iam>"),
    );
    round_trip(&ws, &broker, &topic);
    assert_eq!(
        gateway
            .authenticated()
            .iter()
            .filter(|u| *u == "AKIANOTTHISONE")
            .count(),
        0
    );
    assert!(gateway.authenticated().iter().any(|u| u == ACCESS_KEY_ID));
}

#[test]
fn msk_iam_renews_tokens_before_the_credentials_expire() {
    // Temporary credentials from a container endpoint, valid 3 s: a token cannot outlive the
    // credentials that signed it, so librdkafka asks for a new one after 80 % of 3 s.
    let endpoint = harness::msk_iam::CredentialsEndpoint::start(
        "ASIASLUICETEMPORARY1",
        "temporary-secret-key",
        "temporary-session-token",
        "Bearer pod-identity-token",
        std::time::Duration::from_secs(3),
    );
    let (broker, gateway) = msk_iam_broker(&[("ASIASLUICETEMPORARY1", "temporary-secret-key")]);
    let topic = broker.create_topic("msk-iam", 1);
    let ws = secured_workspace();
    ws.set_env("AWS_CONTAINER_CREDENTIALS_FULL_URI", &endpoint.url());
    ws.set_env(
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "Bearer pod-identity-token",
    );
    write_msk_iam_components(
        &ws,
        &gateway,
        &topic,
        &format!("<aws-iam><region>{REGION}</region></aws-iam>"),
    );
    round_trip(&ws, &broker, &topic);
    assert!(gateway
        .authenticated()
        .iter()
        .any(|u| u == "ASIASLUICETEMPORARY1"));
    ws.write(
        "components/wait.xml",
        &format!(
            r#"<components>
  <operation id="wait" type="consume" connection="secured">
    <topic>{topic}</topic><minimum-messages>0</minimum-messages><maximum-wait>4s</maximum-wait><offset-reset>earliest</offset-reset>
  </operation>
  <process id="wait"><start operation="wait"/></process>
</components>"#
        ),
    );
    let before = endpoint.count();
    let output = ws.sluice(&["run", "wait"]);
    assert_exit(&output, 0);
    assert!(
        endpoint.count() >= before + 2,
        "credentials issued: {} before, {} after",
        before,
        endpoint.count()
    );
    let all = format!("{}{}", stdout(&output), stderr(&output));
    assert!(!all.contains("temporary-secret-key") && !all.contains("temporary-session-token"));
}

#[test]
fn msk_iam_without_credentials_says_where_it_looked() {
    let (broker, gateway) = msk_iam_broker(&[]);
    let topic = broker.create_topic("msk-iam", 1);
    let ws = secured_workspace();
    write_msk_iam_components(
        &ws,
        &gateway,
        &topic,
        &format!("<aws-iam><region>{REGION}</region></aws-iam>"),
    );
    ws.write("in.txt", "x\n");
    let output = ws.sluice(&["run", "send", "--input", "in.txt"]);
    assert_exit(&output, 1);
    let out = stdout(&output);
    assert!(
        out.contains(
            "SASL OAUTHBEARER token: no AWS credentials found (environment: AWS_ACCESS_KEY_ID is \
             not set; web identity: AWS_WEB_IDENTITY_TOKEN_FILE is not set; profile \"default\": \
             not in "
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "EC2 instance metadata: AWS_EC2_METADATA_DISABLED=true). Set AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with a profile in ~/.aws/credentials, or run \
             with an IAM role (EC2, ECS, EKS)"
        ),
        "{out}"
    );

    // A key the broker does not accept: its refusal reaches the user.
    ws.set_env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID);
    ws.set_env("AWS_SECRET_ACCESS_KEY", "not-the-secret-key");
    let output = ws.sluice(&["run", "send", "--input", "in.txt"]);
    assert_exit(&output, 1);
    let out = stdout(&output);
    assert!(
        out.contains("Authentication failed: the signature does not match"),
        "{out}"
    );
    assert!(!out.contains("not-the-secret-key") && !stderr(&output).contains("not-the-secret-key"));
}
