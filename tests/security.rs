//! Secured connections end to end: SASL/SCRAM against tansu with authentication required, TLS
//! and mutual TLS through stunnel in front of tansu, SASL_SSL through both. Documents go
//! through Sluice and are checked with an independent client; errors are the ones a user sees;
//! secrets appear nowhere.

mod harness;

use std::process::Output;

use harness::components::send_and_receive;
use harness::flows::round_trip;
use harness::gateway::{broker_behind, Mechanism, SaslGateway};
use harness::oidc::TokenEndpoint;
use harness::tls::{Certificates, TlsTerminator};
use harness::{
    assert_exit, assert_hidden, stderr, stdout, Broker, BrokerOptions, Kafka, Stream, Workspace,
};

const PASSWORD: &str = "correct-horse-battery-staple";

fn scram_settings(mechanism: &str) -> Vec<(String, String)> {
    vec![
        ("security.protocol".into(), "SASL_PLAINTEXT".into()),
        ("sasl.mechanism".into(), mechanism.into()),
        ("sasl.username".into(), "alice".into()),
        ("sasl.password".into(), PASSWORD.into()),
    ]
}

/// A broker requiring SASL/SCRAM, user alice with PASSWORD; the harness's own client uses
/// `mechanism`.
fn scram_broker(mechanism: &str) -> Broker {
    Broker::start_with(BrokerOptions {
        scram_users: &[("alice", PASSWORD)],
        client_settings: scram_settings(mechanism),
        ..BrokerOptions::default()
    })
}

/// Connection elements: `protocol` with SASL `mechanism` as alice with `password` (a value or
/// a ${…} reference).
fn sasl_security(protocol: &str, mechanism: &str, password: &str) -> String {
    format!(
        "<security-protocol>{protocol}</security-protocol><sasl-mechanism>{mechanism}</sasl-mechanism>\
         <username>alice</username><password>{password}</password>"
    )
}

/// A workspace whose every run logs at TRACE and is checked for the secrets of these tests:
/// the passwords, client secrets, OAuth access tokens and AWS secret keys (and their base64).
/// Its components: connection "secured" to `bootstrap` with `security` (elements inside
/// <connection>), process "send" producing to `topic` and process "receive" consuming two
/// documents from it.
fn secured_workspace(bootstrap: &str, security: &str, topic: &str) -> Workspace {
    let ws = Workspace::with_components(&send_and_receive("secured", bootstrap, security, topic));
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

/// Sends two documents and reads them back through Sluice; checks them with the harness's
/// own client, and that the password appears in neither run's output.
fn round_trip_hiding_the_password(ws: &Workspace, broker: &Kafka, topic: &str) {
    for output in round_trip(ws, broker, topic) {
        assert_hidden(&output, PASSWORD);
    }
}

/// Sends one document through process "send", which must fail (exit 1) with each of
/// `expected` in its summary; returns the run's output.
#[track_caller]
fn send_fails(ws: &Workspace, expected: &[&str]) -> Output {
    ws.write("in.txt", "x\n");
    ws.sluice_expect(
        &["run", "send", "--input", "in.txt"],
        1,
        Stream::Stdout,
        expected,
    )
}

/// Runs a consume of `topic` on connection "secured" that waits 4 s and wants no document, and
/// asserts that it succeeds and that meanwhile `issued` (a count of `what`) grew by at least 2:
/// what the connection authenticates with was renewed. Returns the run's output.
fn consume_for_4s_renewing(
    ws: &Workspace,
    topic: &str,
    what: &str,
    issued: impl Fn() -> usize,
) -> Output {
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
    let before = issued();
    let output = ws.sluice(&["run", "wait"]);
    assert_exit(&output, 0);
    assert!(
        issued() >= before + 2,
        "{what} issued: {} before, {} after",
        before,
        issued()
    );
    output
}

#[test]
fn no_secret_reaches_any_output_even_at_trace_level() {
    let broker = scram_broker("SCRAM-SHA-512");
    let topic = broker.create_topic("trace", 1);
    std::env::set_var("SLUICE_TEST_TRACE_PASSWORD", PASSWORD);
    let ws = secured_workspace(
        &broker.bootstrap(),
        &sasl_security(
            "SASL_PLAINTEXT",
            "SCRAM-SHA-512",
            "${env:SLUICE_TEST_TRACE_PASSWORD}",
        ),
        &topic,
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

fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[test]
fn scram_sha_256_and_sha_512_authenticate() {
    let broker = scram_broker("SCRAM-SHA-256");
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let topic = broker.create_topic("scram", 1);
        let ws = secured_workspace(
            &broker.bootstrap(),
            &sasl_security("SASL_PLAINTEXT", mechanism, "${file:../password.txt}"),
            &topic,
        );
        ws.write("password.txt", &format!("{PASSWORD}\n"));
        round_trip_hiding_the_password(&ws, &broker, &topic);
    }
}

#[test]
fn a_wrong_scram_password_says_authentication_failed_and_hides_the_password() {
    let broker = scram_broker("SCRAM-SHA-512");
    let topic = broker.create_topic("scram", 1);
    let ws = secured_workspace(
        &broker.bootstrap(),
        &sasl_security("SASL_PLAINTEXT", "SCRAM-SHA-512", "not-the-password"),
        &topic,
    );
    let output = send_fails(
        &ws,
        &[
            "could not connect to the Kafka brokers at 127.0.0.1:",
            "SASL SCRAM authentication failed",
            ". Check username, password and sasl-mechanism",
        ],
    );
    assert_hidden(&output, "not-the-password");
}

/// A broker behind a TLS terminator that advertises the terminator's port, and a topic named
/// after `prefix` on it.
fn tls_broker(
    certificates: &Certificates,
    mutual: bool,
    prefix: &str,
) -> (Broker, TlsTerminator, String) {
    let port = TlsTerminator::reserve_port();
    let broker = Broker::start_with(BrokerOptions {
        advertised_port: Some(port),
        client_settings: certificates.client_settings(),
        ..BrokerOptions::default()
    });
    let terminator = TlsTerminator::start(certificates, port, broker.port(), mutual);
    let topic = broker.create_topic(prefix, 1);
    (broker, terminator, topic)
}

/// Connection elements: SSL trusting the CA in `ca_file` of `certificates`, with `more`
/// elements inside <tls>.
fn tls_security(certificates: &Certificates, ca_file: &str, more: &str) -> String {
    format!(
        "<security-protocol>SSL</security-protocol><tls><ca-file>{}</ca-file>{more}</tls>",
        certificates.path(ca_file).display()
    )
}

#[test]
fn tls_with_a_ca_file_and_hostname_verification() {
    let certificates = Certificates::generate();
    let (broker, terminator, topic) = tls_broker(&certificates, false, "tls");
    let security = tls_security(&certificates, "ca.pem", "");
    let ws = secured_workspace(&terminator.bootstrap(), &security, &topic);
    round_trip_hiding_the_password(&ws, &broker, &topic);
}

#[test]
fn tls_with_the_wrong_ca_is_a_certificate_error() {
    let certificates = Certificates::generate();
    let (_broker, terminator, topic) = tls_broker(&certificates, false, "tls");
    let security = tls_security(&certificates, "other-ca.pem", "");
    send_fails(
        &secured_workspace(&terminator.bootstrap(), &security, &topic),
        &[
            "could not connect to the Kafka brokers at localhost:",
            "certificate verify failed",
            ". Check tls/ca-file: it must hold the CA certificate that signed the brokers' certificates",
        ],
    );
}

#[test]
fn mutual_tls_needs_the_client_certificate() {
    let certificates = Certificates::generate();
    let (broker, terminator, topic) = tls_broker(&certificates, true, "mtls");
    let client = format!(
        "<certificate-file>{}</certificate-file><key-file>{}</key-file>",
        certificates.path("client.pem").display(),
        certificates.path("client.key").display()
    );
    let ws = secured_workspace(
        &terminator.bootstrap(),
        &tls_security(&certificates, "ca.pem", &client),
        &topic,
    );
    // The client's private key: any line of its PEM body.
    let key = std::fs::read_to_string(certificates.path("client.key")).expect("client.key");
    let lines: Vec<&[u8]> = key
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 32)
        .map(str::as_bytes)
        .collect();
    ws.hold_secrets(&lines);
    round_trip_hiding_the_password(&ws, &broker, &topic);

    let without = secured_workspace(
        &terminator.bootstrap(),
        &tls_security(&certificates, "ca.pem", ""),
        &topic,
    );
    send_fails(
        &without,
        &[
            "could not connect to the Kafka brokers at localhost:",
            "certificate required",
            ". The brokers require a client certificate: set tls/certificate-file and tls/key-file",
        ],
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
    std::env::set_var("SLUICE_TEST_SCRAM_PASSWORD", PASSWORD);
    let security = sasl_security(
        "SASL_SSL",
        "SCRAM-SHA-512",
        "${env:SLUICE_TEST_SCRAM_PASSWORD}",
    ) + &format!(
        "<tls><ca-file>{}</ca-file></tls>",
        certificates.path("ca.pem").display()
    );
    let ws = secured_workspace(&terminator.bootstrap(), &security, &topic);
    round_trip_hiding_the_password(&ws, &broker, &topic);
}

/// tansu behind the SASL gateway, which speaks PLAIN (alice with PASSWORD, and the harness's
/// own user), and a topic on it.
fn plain_broker() -> (Broker, SaslGateway, String) {
    let (broker, gateway) = broker_behind(vec![Mechanism::Plain(vec![(
        "alice".into(),
        PASSWORD.into(),
    )])]);
    let topic = broker.create_topic("plain", 1);
    (broker, gateway, topic)
}

#[test]
fn sasl_plain_authenticates_as_the_configured_user() {
    let (broker, gateway, topic) = plain_broker();
    std::env::set_var("SLUICE_TEST_PLAIN_PASSWORD", PASSWORD);
    let security = sasl_security(
        "SASL_PLAINTEXT",
        "PLAIN",
        "${env:SLUICE_TEST_PLAIN_PASSWORD}",
    );
    let ws = secured_workspace(&gateway.bootstrap(), &security, &topic);
    round_trip_hiding_the_password(&ws, &broker, &topic);
    let users = gateway.authenticated();
    assert!(users.iter().any(|u| u == "alice"), "{users:?}");
    assert!(
        users.iter().all(|u| u == "alice" || u == "harness"),
        "only known users: {users:?}"
    );
}

#[test]
fn a_wrong_plain_password_is_an_authentication_error() {
    let (_broker, gateway, topic) = plain_broker();
    let security = sasl_security("SASL_PLAINTEXT", "PLAIN", "guessed-wrong");
    let output = send_fails(
        &secured_workspace(&gateway.bootstrap(), &security, &topic),
        &[
            "could not connect to the Kafka brokers at localhost:",
            "Authentication failed: invalid user name or password",
            ". Check username, password and sasl-mechanism",
        ],
    );
    assert_hidden(&output, "guessed-wrong");
    assert!(!gateway.authenticated().contains(&"alice".to_string()));
}

/// tansu behind the SASL gateway speaking OAUTHBEARER, a token endpoint issuing tokens of
/// `lifetime_s` seconds to client "sluice-client", and a topic.
fn oauth_broker(lifetime_s: u64) -> (Broker, SaslGateway, TokenEndpoint, String) {
    let endpoint = TokenEndpoint::start("sluice-client", PASSWORD, lifetime_s);
    // The harness's own client authenticates with PLAIN; Sluice with OAUTHBEARER.
    let (broker, gateway) = broker_behind(vec![Mechanism::OAuthBearer(endpoint.issued.clone())]);
    let topic = broker.create_topic("oauth", 1);
    (broker, gateway, endpoint, topic)
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
    let (broker, gateway, endpoint, topic) = oauth_broker(2);
    std::env::set_var("SLUICE_TEST_OAUTH_SECRET", PASSWORD);
    let security = oauth_security(&endpoint.url(), "${env:SLUICE_TEST_OAUTH_SECRET}");
    let ws = secured_workspace(&gateway.bootstrap(), &security, &topic);
    round_trip_hiding_the_password(&ws, &broker, &topic);
    let users = gateway.authenticated();
    assert!(users.iter().any(|u| u == "sluice-client"), "{users:?}");

    // Tokens live 2 s; librdkafka asks for a new one at 80 % of that, so a consume that runs
    // for 4 s gets at least one more.
    consume_for_4s_renewing(&ws, &topic, "tokens", || endpoint.count());
}

#[test]
fn a_wrong_oauth_client_secret_names_the_endpoints_answer_not_the_secret() {
    let (_broker, gateway, endpoint, topic) = oauth_broker(60);
    let security = oauth_security(&endpoint.url(), "wrong-client-secret");
    let output = send_fails(
        &secured_workspace(&gateway.bootstrap(), &security, &topic),
        &[
            "could not connect to the Kafka brokers at localhost:",
            &format!(
                "the token endpoint {} answered HTTP 401: {{\"error\":\"invalid_client\"}}. Check \
                 oauth/client-id and oauth/client-secret, and oauth/client-authentication \
                 (client_secret_post or client_secret_basic, as the identity provider expects)",
                endpoint.url()
            ),
        ],
    );
    assert_hidden(&output, "wrong-client-secret");
}

#[test]
fn a_provider_that_wants_http_basic_gets_the_client_credentials_that_way() {
    let endpoint = TokenEndpoint::start_basic("sluice-client", PASSWORD, 60);
    let (broker, gateway) = broker_behind(vec![Mechanism::OAuthBearer(endpoint.issued.clone())]);
    let topic = broker.create_topic("oauth-basic", 1);
    let security = oauth_security(&endpoint.url(), PASSWORD).replace(
        "</oauth>",
        "<client-authentication>client_secret_basic</client-authentication></oauth>",
    );
    let ws = secured_workspace(&gateway.bootstrap(), &security, &topic);
    round_trip_hiding_the_password(&ws, &broker, &topic);
    assert!(endpoint.count() > 0);
    // The same provider refuses the credentials in the form body, the default.
    let post = oauth_security(&endpoint.url(), PASSWORD);
    send_fails(
        &secured_workspace(&gateway.bootstrap(), &post, &topic),
        &["answered HTTP 401: {\"error\":\"invalid_client\"}. Check oauth/client-id"],
    );
}

/// The access key id the test broker knows, with PASSWORD as its secret access key (so that
/// every leak check for PASSWORD also covers the AWS secret).
const ACCESS_KEY_ID: &str = "AKIASLUICETEST000001";
const REGION: &str = "eu-west-1";

/// tansu behind the SASL gateway checking Amazon MSK IAM tokens (signed for REGION with
/// ACCESS_KEY_ID or the temporary `more` keys), a topic, and a secured workspace whose
/// connection has the MSK IAM settings `aws_iam` (<aws-iam> for REGION when empty).
fn msk_iam_broker(
    more: &[(&str, &str)],
    aws_iam: &str,
) -> (Broker, SaslGateway, String, Workspace) {
    let mut keys = vec![(ACCESS_KEY_ID.to_string(), PASSWORD.to_string())];
    keys.extend(
        more.iter()
            .map(|(id, secret)| (id.to_string(), secret.to_string())),
    );
    let (broker, gateway) = broker_behind(vec![Mechanism::AwsIam {
        region: REGION.into(),
        keys,
    }]);
    let topic = broker.create_topic("msk-iam", 1);
    let aws_iam = match aws_iam {
        "" => format!("<aws-iam><region>{REGION}</region></aws-iam>"),
        given => given.to_string(),
    };
    // MSK IAM over SASL_PLAINTEXT: the gateway has no TLS (the amazon-msk preset would insist
    // on SASL_SSL and port 9098, which the golden files cover).
    let security = format!(
        "<security-protocol>SASL_PLAINTEXT</security-protocol><sasl-mechanism>OAUTHBEARER</sasl-mechanism>{aws_iam}"
    );
    let ws = secured_workspace(&gateway.bootstrap(), &security, &topic);
    (broker, gateway, topic, ws)
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
    let (broker, gateway, topic, ws) = msk_iam_broker(&[], "");
    ws.set_env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID);
    ws.set_env("AWS_SECRET_ACCESS_KEY", PASSWORD);
    round_trip_hiding_the_password(&ws, &broker, &topic);
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
    assert_hidden(&doctor, PASSWORD);
}

#[test]
fn msk_iam_takes_credentials_from_a_named_profile() {
    let (broker, gateway, topic, ws) = msk_iam_broker(
        &[],
        &format!("<aws-iam><region>{REGION}</region><profile>orders</profile></aws-iam>"),
    );
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
    round_trip_hiding_the_password(&ws, &broker, &topic);
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

/// A container credentials endpoint (as ECS and EKS Pod Identity serve) handing out
/// temporary credentials valid for `lifetime`, to requests with its authorization token.
fn temporary_credentials(lifetime: std::time::Duration) -> harness::msk_iam::CredentialsEndpoint {
    harness::msk_iam::CredentialsEndpoint::start(
        "ASIASLUICETEMPORARY1",
        "temporary-secret-key",
        "temporary-session-token",
        "Bearer pod-identity-token",
        lifetime,
    )
}

/// An MSK IAM broker that accepts the temporary credentials, and a workspace that takes its
/// credentials from the container endpoint at `url` (with the endpoint's token).
fn msk_iam_with_container_credentials(url: &str) -> (Broker, SaslGateway, String, Workspace) {
    let msk = msk_iam_broker(&[("ASIASLUICETEMPORARY1", "temporary-secret-key")], "");
    msk.3.set_env("AWS_CONTAINER_CREDENTIALS_FULL_URI", url);
    msk.3.set_env(
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "Bearer pod-identity-token",
    );
    msk
}

#[test]
fn msk_iam_renews_tokens_before_the_credentials_expire() {
    // Temporary credentials from a container endpoint, valid 3 s: a token cannot outlive the
    // credentials that signed it, so librdkafka asks for a new one after 80 % of 3 s.
    let endpoint = temporary_credentials(std::time::Duration::from_secs(3));
    let (broker, gateway, topic, ws) = msk_iam_with_container_credentials(&endpoint.url());
    round_trip_hiding_the_password(&ws, &broker, &topic);
    assert!(gateway
        .authenticated()
        .iter()
        .any(|u| u == "ASIASLUICETEMPORARY1"));
    let output = consume_for_4s_renewing(&ws, &topic, "credentials", || endpoint.count());
    let all = format!("{}{}", stdout(&output), stderr(&output));
    assert!(!all.contains("temporary-secret-key") && !all.contains("temporary-session-token"));
}

#[test]
fn msk_iam_without_credentials_says_where_it_looked() {
    let (_broker, _gateway, _topic, ws) = msk_iam_broker(&[], "");
    send_fails(
        &ws,
        &[
            "SASL OAUTHBEARER token: no AWS credentials found (environment: AWS_ACCESS_KEY_ID is \
             not set; web identity: AWS_WEB_IDENTITY_TOKEN_FILE is not set; profile \"default\": \
             not in ",
            "EC2 instance metadata: AWS_EC2_METADATA_DISABLED=true). Set AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with a profile in ~/.aws/credentials, or run \
             with an IAM role (EC2, ECS, EKS)",
        ],
    );

    // A key the broker does not accept: its refusal reaches the user.
    ws.set_env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID);
    ws.set_env("AWS_SECRET_ACCESS_KEY", "not-the-secret-key");
    let output = send_fails(
        &ws,
        &["Authentication failed: the signature does not match"],
    );
    assert_hidden(&output, "not-the-secret-key");
}

#[test]
fn msk_iam_refuses_to_send_the_container_token_in_clear_to_another_host() {
    // A container credentials endpoint that is neither loopback nor the ECS/EKS agent, over
    // plain HTTP: the AWS SDKs refuse it, and so does Sluice, before any request is made.
    let endpoint = temporary_credentials(std::time::Duration::from_secs(60));
    let elsewhere = endpoint
        .url()
        .replace("127.0.0.1", "credentials.example.invalid");
    let (_broker, gateway, _topic, ws) = msk_iam_with_container_credentials(&elsewhere);
    ws.hold_secrets(&[b"Bearer pod-identity-token"]);
    send_fails(
        &ws,
        &[
            "AWS_CONTAINER_CREDENTIALS_FULL_URI http://credentials.example.invalid:",
            "plain http:// to credentials.example.invalid is refused",
        ],
    );
    assert_eq!(endpoint.count(), 0, "the endpoint was asked");
    assert!(!gateway
        .authenticated()
        .iter()
        .any(|u| u == "ASIASLUICETEMPORARY1"));
}
