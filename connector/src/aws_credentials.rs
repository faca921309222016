//! AWS credentials for Amazon MSK IAM, found where the AWS SDKs look for them, in the same
//! order: the environment, a web identity token (EKS IRSA), the shared profile files (static
//! keys or `credential_process`), the container credentials endpoint (ECS, EKS Pod Identity),
//! and EC2 instance metadata (IMDSv2).
//!
//! A source that is configured but fails stops the search with its own error: silently falling
//! through to another identity would authenticate as someone the user did not choose.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::Secret;

/// How long one request to a credentials endpoint may take. Instance metadata answers in
/// milliseconds where it exists; elsewhere it must not hold up the search.
const ENDPOINT_TIMEOUT: Duration = Duration::from_secs(2);

/// Where ECS (and the relative form of the container endpoint) serves task credentials.
const ECS_ENDPOINT: &str = "http://169.254.170.2";

/// EC2 instance metadata, unless `AWS_EC2_METADATA_SERVICE_ENDPOINT` says otherwise.
const IMDS_ENDPOINT: &str = "http://169.254.169.254";

/// Temporary AWS credentials or long-term keys. The secret parts never print.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    /// The access key id (`AKIA…`, `ASIA…`): an identifier, not a secret; AWS logs it.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Secret,
    /// The session token of temporary credentials.
    pub session_token: Option<Secret>,
    /// When temporary credentials expire.
    pub expiration: Option<SystemTime>,
    /// Where they came from, for messages: `environment`, `profile "dev"`, …
    pub source: String,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("source", &self.source)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

/// Finds credentials: those of `profile` when the connection names one, else the first source
/// of the default chain that is configured. The error lists what was looked at and what to do.
pub fn find(profile: Option<&str>, region: &str) -> Result<AwsCredentials, String> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if let Some(profile) = profile {
        return from_profile(profile, true).and_then(|found| {
            found.ok_or_else(|| {
                format!(
                    "AWS profile \"{profile}\" is not in {} nor {}",
                    credentials_file().display(),
                    config_file().display()
                )
            })
        });
    }
    let mut looked = Vec::new();
    match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => {
            return Ok(AwsCredentials {
                access_key_id: id,
                secret_access_key: Secret::new(secret),
                session_token: env("AWS_SESSION_TOKEN").map(Secret::new),
                expiration: None,
                source: "environment (AWS_ACCESS_KEY_ID)".into(),
            })
        }
        (Some(_), None) => {
            return Err(
                "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not: set both".into(),
            )
        }
        _ => looked.push("environment: AWS_ACCESS_KEY_ID is not set".to_string()),
    }
    match (env("AWS_WEB_IDENTITY_TOKEN_FILE"), env("AWS_ROLE_ARN")) {
        (Some(file), Some(role)) => return web_identity(Path::new(&file), &role, region),
        (Some(_), None) => {
            return Err(
                "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not: set both \
                        (EKS sets them together for a service account with an IAM role)"
                    .into(),
            )
        }
        _ => looked.push("web identity: AWS_WEB_IDENTITY_TOKEN_FILE is not set".to_string()),
    }
    let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".into());
    match from_profile(&profile, env("AWS_PROFILE").is_some())? {
        Some(found) => return Ok(found),
        None => looked.push(format!(
            "profile \"{profile}\": not in {}",
            credentials_file().display()
        )),
    }
    if let Some(found) = container()? {
        return Ok(found);
    }
    looked.push("container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/FULL_URI are not set".into());
    let imds_disabled = env("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v == "true");
    if imds_disabled {
        looked.push("EC2 instance metadata: AWS_EC2_METADATA_DISABLED=true".into());
    } else {
        match instance_metadata() {
            Ok(found) => return Ok(found),
            Err(e) => looked.push(format!("EC2 instance metadata: {e}")),
        }
    }
    Err(format!(
        "no AWS credentials found ({}). Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or \
         AWS_PROFILE with a profile in ~/.aws/credentials, or run with an IAM role (EC2, ECS, \
         EKS)",
        looked.join("; ")
    ))
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from)
}

fn credentials_file() -> PathBuf {
    std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map_or_else(|| home().join(".aws/credentials"), PathBuf::from)
}

fn config_file() -> PathBuf {
    std::env::var_os("AWS_CONFIG_FILE").map_or_else(|| home().join(".aws/config"), PathBuf::from)
}

/// The `key = value` pairs of one section of an AWS profile file; `None` when the file or the
/// section does not exist. In the config file, profiles other than `default` are written
/// `[profile NAME]`.
fn profile_section(path: &Path, profile: &str, config: bool) -> Option<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).ok()?;
    let wanted = if config && profile != "default" {
        format!("profile {profile}")
    } else {
        profile.to_string()
    };
    let mut section: Option<Vec<(String, String)>> = None;
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == wanted;
            if inside {
                section.get_or_insert_with(Vec::new);
            }
            continue;
        }
        if let (true, Some((key, value))) = (inside, line.split_once('=')) {
            if let Some(section) = section.as_mut() {
                section.push((key.trim().to_string(), value.trim().to_string()));
            }
        }
    }
    section
}

/// Credentials of a profile: from the credentials file, else the config file (static keys or
/// `credential_process`). `Ok(None)` when the profile does not exist and was not asked for
/// explicitly.
fn from_profile(profile: &str, explicit: bool) -> Result<Option<AwsCredentials>, String> {
    let (credentials_path, config_path) = (credentials_file(), config_file());
    let mut keys = profile_section(&credentials_path, profile, false).unwrap_or_default();
    let config = profile_section(&config_path, profile, true);
    if keys.is_empty() && config.is_none() {
        return if explicit {
            Err(format!(
                "AWS profile \"{profile}\" is not in {} nor {}",
                credentials_path.display(),
                config_path.display()
            ))
        } else {
            Ok(None)
        };
    }
    keys.extend(config.unwrap_or_default());
    let get = |key: &str| {
        keys.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let source = format!("profile \"{profile}\"");
    if let Some(id) = get("aws_access_key_id") {
        let secret = get("aws_secret_access_key").ok_or_else(|| {
            format!("{source} has aws_access_key_id but no aws_secret_access_key: add it")
        })?;
        return Ok(Some(AwsCredentials {
            access_key_id: id,
            secret_access_key: Secret::new(secret),
            session_token: get("aws_session_token").map(Secret::new),
            expiration: None,
            source,
        }));
    }
    if let Some(command) = get("credential_process") {
        return credential_process(&command, &source).map(Some);
    }
    if get("role_arn").is_some() || get("sso_session").is_some() || get("sso_start_url").is_some() {
        return Err(format!(
            "{source} uses role_arn or AWS SSO, which Sluice does not resolve itself: give the \
             profile credential_process = aws configure export-credentials --profile \
             {profile} --format process (AWS CLI v2), or export the credentials to the \
             environment"
        ));
    }
    if explicit {
        Err(format!(
            "{source} has neither aws_access_key_id nor credential_process"
        ))
    } else {
        Ok(None)
    }
}

/// Runs a profile's `credential_process` and reads the JSON it prints (AWS's documented
/// format: Version 1, AccessKeyId, SecretAccessKey, SessionToken, Expiration).
fn credential_process(command: &str, source: &str) -> Result<AwsCredentials, String> {
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("{source}: credential_process cannot run: {e}"))?;
    if !output.status.success() {
        // Its standard error is the tool's own explanation; its standard output may hold keys.
        let said: String = String::from_utf8_lossy(&output.stderr)
            .trim()
            .chars()
            .take(300)
            .collect();
        return Err(format!(
            "{source}: credential_process failed ({}): {said}",
            output.status
        ));
    }
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).map_err(|_| {
        format!(
            "{source}: credential_process did not print JSON with AccessKeyId and SecretAccessKey"
        )
    })?;
    parse_json_credentials(&json, source, "AccessKeyId", "Token")
        .or_else(|_| parse_json_credentials(&json, source, "AccessKeyId", "SessionToken"))
}

/// Credentials from the JSON a credentials endpoint or process answers.
fn parse_json_credentials(
    json: &serde_json::Value,
    source: &str,
    id_field: &str,
    token_field: &str,
) -> Result<AwsCredentials, String> {
    let text = |field: &str| json[field].as_str().filter(|v| !v.is_empty());
    let (Some(id), Some(secret)) = (text(id_field), text("SecretAccessKey")) else {
        return Err(format!(
            "{source} answered without {id_field} and SecretAccessKey"
        ));
    };
    let expiration =
        match text("Expiration") {
            Some(when) => Some(parse_timestamp(when).ok_or_else(|| {
                format!("{source}: Expiration \"{when}\" is not an ISO 8601 time")
            })?),
            None => None,
        };
    Ok(AwsCredentials {
        access_key_id: id.to_string(),
        secret_access_key: Secret::new(secret),
        session_token: text(token_field).map(Secret::new),
        expiration,
        source: source.to_string(),
    })
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(ENDPOINT_TIMEOUT)
        .timeout(ENDPOINT_TIMEOUT * 2)
        .build()
}

/// ECS task roles and EKS Pod Identity: an HTTP endpoint named by the environment.
fn container() -> Result<Option<AwsCredentials>, String> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let url = match (
        env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
        env("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
    ) {
        (Some(relative), _) => format!("{ECS_ENDPOINT}{relative}"),
        (None, Some(full)) => {
            allowed_full_uri(&full)
                .map_err(|why| format!("AWS_CONTAINER_CREDENTIALS_FULL_URI {full}: {why}"))?;
            full
        }
        (None, None) => return Ok(None),
    };
    let source = format!("container credentials endpoint {url}");
    let token = match env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
        Some(file) => Some(
            std::fs::read_to_string(&file)
                .map_err(|e| format!("{source}: cannot read {file}: {e}"))?
                .trim()
                .to_string(),
        ),
        None => env("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
    };
    let mut request = agent().get(&url);
    if let Some(token) = &token {
        request = request.set("Authorization", token);
    }
    let response = request
        .call()
        .map_err(|e| format!("{source}: {}", http_failure(e)))?;
    let json = json_body(response, &source)?;
    parse_json_credentials(&json, &source, "AccessKeyId", "Token").map(Some)
}

/// Whether the container credentials may be asked of `url`, with its authorization token:
/// as the AWS SDKs allow, HTTPS to any host, plain HTTP only to loopback and to the ECS
/// (169.254.170.2) and EKS Pod Identity (169.254.170.23, fd00:ec2::23) agents. A token sent
/// elsewhere in clear could be read on the way.
fn allowed_full_uri(url: &str) -> Result<(), String> {
    const AGENTS: [&str; 3] = ["169.254.170.2", "169.254.170.23", "fd00:ec2::23"];
    let (scheme, rest) = url
        .split_once("://")
        .ok_or("is not a URL (http:// or https://)")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match scheme.to_ascii_lowercase().as_str() {
        "https" => Ok(()),
        "http" if loopback || AGENTS.contains(&host) => Ok(()),
        "http" => Err(format!(
            "plain http:// to {host} is refused (the authorization token would travel in clear \
             to a host the AWS SDKs do not allow): use https://, loopback, or the ECS \
             (169.254.170.2) or EKS Pod Identity (169.254.170.23, [fd00:ec2::23]) agent"
        )),
        other => Err(format!("has scheme {other}; use http:// or https://")),
    }
}

/// EC2 instance metadata, IMDSv2: a session token first, then the role's credentials.
fn instance_metadata() -> Result<AwsCredentials, String> {
    let endpoint = std::env::var("AWS_EC2_METADATA_SERVICE_ENDPOINT")
        .unwrap_or_else(|_| IMDS_ENDPOINT.to_string());
    let endpoint = endpoint.trim_end_matches('/');
    let agent = agent();
    let token = agent
        .put(&format!("{endpoint}/latest/api/token"))
        .set("X-aws-ec2-metadata-token-ttl-seconds", "21600")
        .call()
        .map_err(|e| format!("no answer from {endpoint} ({})", http_failure(e)))?
        .into_string()
        .map_err(|e| e.to_string())?;
    let get = |path: &str| {
        agent
            .get(&format!(
                "{endpoint}/latest/meta-data/iam/security-credentials/{path}"
            ))
            .set("X-aws-ec2-metadata-token", &token)
            .call()
            .map_err(|e| {
                format!(
                    "{endpoint} has no IAM role for this instance ({}): attach an instance \
                     profile",
                    http_failure(e)
                )
            })
    };
    let roles = get("")?.into_string().map_err(|e| e.to_string())?;
    let role = roles.lines().next().unwrap_or_default().trim().to_string();
    if role.is_empty() {
        return Err(format!(
            "{endpoint} has no IAM role for this instance: attach an instance profile"
        ));
    }
    let json = json_body(get(&role)?, endpoint)?;
    parse_json_credentials(
        &json,
        &format!("EC2 instance role \"{role}\""),
        "AccessKeyId",
        "Token",
    )
}

/// EKS IAM roles for service accounts: trade the web identity token for credentials at STS
/// (`AssumeRoleWithWebIdentity` needs no signature: the token is the proof).
fn web_identity(token_file: &Path, role_arn: &str, region: &str) -> Result<AwsCredentials, String> {
    let source = format!("web identity ({role_arn})");
    let token = std::fs::read_to_string(token_file)
        .map_err(|e| format!("{source}: cannot read {}: {e}", token_file.display()))?;
    let endpoint = std::env::var("AWS_ENDPOINT_URL_STS")
        .unwrap_or_else(|_| format!("https://sts.{region}.amazonaws.com"));
    let session = std::env::var("AWS_ROLE_SESSION_NAME").unwrap_or_else(|_| "sluice".into());
    let tls = native_tls::TlsConnector::new().map_err(|e| format!("TLS set-up failed: {e}"))?;
    let response = ureq::AgentBuilder::new()
        .tls_connector(std::sync::Arc::new(tls))
        .timeout(ENDPOINT_TIMEOUT * 5)
        .build()
        .post(&format!("{}/", endpoint.trim_end_matches('/')))
        .send_form(&[
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", "2011-06-15"),
            ("RoleArn", role_arn),
            ("RoleSessionName", &session),
            ("WebIdentityToken", token.trim()),
        ])
        .map_err(|e| format!("{source}: STS at {endpoint}: {}", http_failure(e)))?
        .into_string()
        .map_err(|e| format!("{source}: {e}"))?;
    // The answer is small, flat XML: take the four elements by name.
    let element = |name: &str| {
        let open = format!("<{name}>");
        let start = response.find(&open)? + open.len();
        let end = response[start..].find(&format!("</{name}>"))? + start;
        Some(response[start..end].trim().to_string())
    };
    let (Some(id), Some(secret)) = (element("AccessKeyId"), element("SecretAccessKey")) else {
        return Err(format!("{source}: STS answered without credentials"));
    };
    Ok(AwsCredentials {
        access_key_id: id,
        secret_access_key: Secret::new(secret),
        session_token: element("SessionToken").map(Secret::new),
        expiration: element("Expiration").as_deref().and_then(parse_timestamp),
        source,
    })
}

/// The JSON body of an endpoint's answer (credentials: never echoed when it is not JSON).
fn json_body(response: ureq::Response, source: &str) -> Result<serde_json::Value, String> {
    let text = response
        .into_string()
        .map_err(|e| format!("{source}: reading the answer failed: {e}"))?;
    serde_json::from_str(&text).map_err(|_| format!("{source} did not answer JSON"))
}

/// What a failed HTTP request says, without echoing anything it sent.
fn http_failure(error: ureq::Error) -> String {
    match error {
        ureq::Error::Status(status, response) => {
            let body: String = response
                .into_string()
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect();
            format!("HTTP {status} {}", body.trim())
        }
        ureq::Error::Transport(transport) => transport.to_string(),
    }
}

/// Parses an ISO 8601 UTC time as AWS writes it: `2026-11-22T12:00:00Z`, with optional
/// fractional seconds, or an offset such as `+00:00`.
pub(crate) fn parse_timestamp(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let (date, time) = text.split_once('T')?;
    let mut ymd = date.split('-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let (clock, offset_s) = if let Some(clock) = time.strip_suffix('Z') {
        (clock, 0)
    } else {
        let at = time.rfind(['+', '-'])?;
        let (clock, offset) = time.split_at(at);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let (h, m) = offset[1..].split_once(':')?;
        (
            clock,
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60),
        )
    };
    let clock = clock.split('.').next()?;
    let mut hms = clock.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s - offset_s;
    let seconds = u64::try_from(seconds).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day count since 1970-01-01, as (year, month, day).
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_container_token_goes_only_where_the_aws_sdks_send_it() {
        for allowed in [
            "https://credentials.example.com/v1",
            "http://127.0.0.1:51679/creds",
            "http://localhost/creds",
            "http://[::1]:8080/creds",
            "http://169.254.170.2/v2/credentials/abc",
            "http://169.254.170.23/v1/credentials",
            "http://[fd00:ec2::23]/v1/credentials",
        ] {
            assert_eq!(allowed_full_uri(allowed), Ok(()), "{allowed}");
        }
        let refused = allowed_full_uri("http://credentials.example.com:8080/v1").unwrap_err();
        assert!(
            refused.starts_with("plain http:// to credentials.example.com is refused"),
            "{refused}"
        );
        assert!(allowed_full_uri("http://10.0.0.7/creds").is_err());
        assert!(allowed_full_uri("ftp://127.0.0.1/creds").is_err());
        assert!(allowed_full_uri("169.254.170.2/creds").is_err());
    }

    #[test]
    fn timestamps_as_aws_writes_them() {
        let at = |s| {
            parse_timestamp(s).map(|t| {
                t.duration_since(SystemTime::UNIX_EPOCH)
                    .expect("after epoch")
                    .as_secs()
            })
        };
        assert_eq!(at("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(at("2026-11-22T12:34:56Z"), Some(1_795_350_896));
        assert_eq!(at("2026-11-22T12:34:56.789Z"), Some(1_795_350_896));
        assert_eq!(at("2026-11-22T14:34:56+02:00"), Some(1_795_350_896));
        assert_eq!(at("2026-11-22T11:34:56-01:00"), Some(1_795_350_896));
        assert_eq!(at("2026-13-22T12:34:56Z"), None);
        assert_eq!(at("yesterday"), None);
        for days in [-1, 0, 59, 60, 365, 10_957, 20_779, 100_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil_from_days(20_779), (2026, 11, 22));
    }

    #[test]
    fn profile_sections_of_both_files() {
        let dir = tempfile_dir();
        let credentials = dir.join("credentials");
        std::fs::write(
            &credentials,
            "[default]\naws_access_key_id = AKIDDEFAULT\n# comment\n[dev]\naws_access_key_id=AKIDDEV\n",
        )
        .expect("write");
        let config = dir.join("config");
        std::fs::write(
            &config,
            "[profile dev]\nregion = eu-west-1\n[default]\nregion=us-east-1\n",
        )
        .expect("write");
        assert_eq!(
            profile_section(&credentials, "dev", false),
            Some(vec![("aws_access_key_id".into(), "AKIDDEV".into())])
        );
        assert_eq!(
            profile_section(&config, "dev", true),
            Some(vec![("region".into(), "eu-west-1".into())])
        );
        assert_eq!(
            profile_section(&config, "default", true),
            Some(vec![("region".into(), "us-east-1".into())])
        );
        assert_eq!(profile_section(&credentials, "prod", false), None);
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "sluice-aws-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }
}
