//! Kerberos for the runtime host: `krb5.conf` and `{REALM}.keytab` come from the custom
//! library, and MIT Kerberos is configured process-wide before any thread starts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sluice_connector::{prepare_kerberos, Secret};

use crate::components::Components;

/// The custom library folder when none is given.
pub const DEFAULT_CUSTOM_LIBRARY: &str = "custom-libs";

/// The host's own Kerberos credential cache; it holds tickets, which are credentials, so it is
/// removed when this is dropped (at the end of the host's run). It also remembers what the
/// host was set up with, since MIT Kerberos is configured once per process: components loaded
/// again later can use it only for the same principal.
#[derive(Debug)]
pub struct CredentialCache {
    path: PathBuf,
    principal: String,
    password: Option<Secret>,
    /// Absolute, as the connections without a password get it.
    keytab: PathBuf,
    krb5_conf: PathBuf,
    /// krb5.conf as it was read at start (`None`: unreadable), to tell when it changed.
    krb5_conf_text: Option<Vec<u8>>,
}

impl CredentialCache {
    /// How far the KDC's clock is ahead of this machine's (negative: behind), in seconds, as
    /// MIT Kerberos measured it when it got the first ticket. MIT records it in the header of
    /// a version 4 FILE cache (tag 1, "KDC time offset") when `kdc_timesync` is on, and then
    /// corrects its own requests by it; brokers do no such thing, so a large offset means
    /// tickets the brokers may refuse. `None` when the cache records none.
    pub fn kdc_clock_offset(&self) -> Option<i64> {
        let bytes = std::fs::read(&self.path).ok()?;
        let u16_at = |at: usize| Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]));
        let i32_at = |at: usize| Some(i32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
        if bytes.get(0..2)? != [0x05, 0x04] {
            return None;
        }
        let header_end = 4 + usize::from(u16_at(2)?);
        let mut at = 4;
        while at + 4 <= header_end {
            let (tag, length) = (u16_at(at)?, usize::from(u16_at(at + 2)?));
            if tag == 1 && length == 8 {
                let (seconds, micros) = (i64::from(i32_at(at + 4)?), i64::from(i32_at(at + 8)?));
                // Rounded to the nearest second.
                return Some(seconds + (micros + 500_000).div_euclid(1_000_000));
            }
            at += 4 + length;
        }
        None
    }
}

impl CredentialCache {
    /// Gives the GSSAPI connections `in_use` of components loaded again (a reload) the keytab
    /// the host was set up with. Returns, per connection that cannot be served without a
    /// restart of the host (another principal or password), why.
    pub fn adopt(
        &self,
        components: &mut Components,
        in_use: impl Fn(&str) -> bool,
    ) -> BTreeMap<String, String> {
        let mut refused = BTreeMap::new();
        for connection in kerberos_connections(components, &in_use) {
            if connection.principal != self.principal {
                refused.insert(
                    connection.id,
                    format!(
                        "it authenticates as {}, and this host was started as {}: one host \
                         authenticates as one principal, so this needs a restart of the host",
                        connection.principal, self.principal
                    ),
                );
            } else if connection.password.is_some() && connection.password != self.password {
                refused.insert(
                    connection.id,
                    "its Kerberos password differs from the one the host started with: that \
                     needs a restart of the host"
                        .into(),
                );
            }
        }
        fill_in_keytabs(components, &self.keytab);
        refused
    }

    /// Whether krb5.conf is no longer what the host read at start: MIT Kerberos keeps the
    /// one it read until the host restarts.
    pub fn krb5_conf_changed(&self) -> Option<String> {
        (std::fs::read(&self.krb5_conf).ok() != self.krb5_conf_text).then(|| {
            format!(
                "{} changed: Kerberos keeps the one read at start until the host restarts",
                self.krb5_conf.display()
            )
        })
    }
}

/// Per GSSAPI connection `in_use`, why it cannot run in a host that set up no Kerberos when
/// it started (MIT Kerberos is configured before the host starts its threads).
pub fn needs_setup(
    components: &Components,
    in_use: impl Fn(&str) -> bool,
) -> BTreeMap<String, String> {
    kerberos_connections(components, in_use)
        .into_iter()
        .map(|c| {
            let why = "it uses Kerberos, which this host did not set up when it started (no \
                       connection in use needed it then): that needs a restart of the host";
            (c.id, why.to_string())
        })
        .collect()
}

impl Drop for CredentialCache {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Checks the custom library for what the GSSAPI connections `in_use` need, fills in their
/// keytabs, and sets up Kerberos for this process. Call before any thread starts and keep the
/// returned cache for as long as clients run; `None` when no connection uses GSSAPI. Each
/// error names the file or connection and the fix.
pub fn prepare(
    components: &mut Components,
    custom_library: &Path,
    in_use: impl Fn(&str) -> bool,
) -> Result<Option<CredentialCache>, Vec<String>> {
    let kerberos = kerberos_connections(components, in_use);
    let Some(files) = Files::of(&kerberos, custom_library) else {
        return Ok(None);
    };
    let errors = problems(&kerberos, &files, custom_library);
    if !errors.is_empty() {
        return Err(errors);
    }
    let Files {
        krb5_conf,
        keytab,
        needs_keytab,
    } = files;
    let principal = &kerberos[0].principal;
    fill_in_keytabs(components, &keytab);
    let password = kerberos.iter().find_map(|c| c.password.as_ref());
    let ccache = CredentialCache {
        path: std::env::temp_dir().join(format!("sluice-krb5cc-{}", std::process::id())),
        principal: principal.clone(),
        password: password.cloned(),
        keytab: absolute(&keytab),
        krb5_conf: krb5_conf.clone(),
        krb5_conf_text: std::fs::read(&krb5_conf).ok(),
    };
    prepare_kerberos(&absolute(&krb5_conf), &ccache.path, password);
    // Get the first ticket now: librdkafka runs the same kinit later, but only its exit code
    // would reach us, and kinit's own message is what says what to fix.
    // The keytab when some connection has no password, else the password.
    first_ticket(
        principal,
        needs_keytab.then_some(&keytab),
        password,
        &krb5_conf,
    )
    .map_err(|e| vec![e])?;
    tracing::debug!(principal, krb5_conf = %krb5_conf.display(), "kerberos ticket obtained");
    Ok(Some(ccache))
}

/// What the Kerberos connections `in_use` need of the custom library, and of this machine,
/// without getting a ticket (`sluice validate --custom-library`): each problem names the file
/// or connection and the fix; empty when everything is there.
pub fn check(
    components: &Components,
    custom_library: &Path,
    in_use: impl Fn(&str) -> bool,
) -> Vec<String> {
    let kerberos = kerberos_connections(components, in_use);
    match Files::of(&kerberos, custom_library) {
        Some(files) => problems(&kerberos, &files, custom_library),
        None => Vec::new(),
    }
}

/// The custom library's files the Kerberos connections need.
struct Files {
    krb5_conf: PathBuf,
    /// The principal's `{REALM}.keytab`.
    keytab: PathBuf,
    /// Whether some connection has no password, and so needs the keytab.
    needs_keytab: bool,
}

impl Files {
    /// `None` when there is no Kerberos connection.
    fn of(kerberos: &[KerberosConnection], custom_library: &Path) -> Option<Self> {
        let principal = &kerberos.first()?.principal;
        let realm = principal.rsplit_once('@').map_or("", |(_, realm)| realm);
        Some(Self {
            krb5_conf: custom_library.join("krb5.conf"),
            keytab: custom_library.join(format!("{realm}.keytab")),
            needs_keytab: kerberos.iter().any(|c| c.password.is_none()),
        })
    }
}

/// Everything that stops the Kerberos connections from getting a ticket, before trying.
fn problems(kerberos: &[KerberosConnection], files: &Files, custom_library: &Path) -> Vec<String> {
    let keytab = files.needs_keytab.then_some(files.keytab.as_path());
    let mut errors = one_principal(kerberos);
    errors.extend(missing_files(
        custom_library,
        &kerberos[0],
        &files.krb5_conf,
        keytab,
    ));
    errors.extend(unsafe_files(&files.krb5_conf, keytab));
    if !on_path("kinit") {
        errors.push(
            "Kerberos needs the kinit command, which librdkafka runs to get tickets: install \
             it (Debian package krb5-user)"
                .into(),
        );
    }
    errors
}

/// A GSSAPI connection: its id, the principal it authenticates as, and its password, if it
/// has one (else it needs a keytab).
struct KerberosConnection {
    id: String,
    principal: String,
    password: Option<Secret>,
}

/// The GSSAPI connections `in_use`, in id order.
fn kerberos_connections(
    components: &Components,
    in_use: impl Fn(&str) -> bool,
) -> Vec<KerberosConnection> {
    components
        .connections
        .values()
        .filter(|c| in_use(&c.id))
        .filter_map(|c| {
            let sasl = c.config.sasl.as_ref()?;
            sasl.kerberos.as_ref().map(|_| KerberosConnection {
                id: c.id.clone(),
                principal: sasl.username.clone(),
                password: sasl.password.clone(),
            })
        })
        .collect()
}

/// One credential cache per process, so one principal per host: two would overwrite each
/// other's tickets and a connection could authenticate as the wrong one. Its connections give
/// one password, if any.
fn one_principal(kerberos: &[KerberosConnection]) -> Vec<String> {
    let mut errors = Vec::new();
    let Some(first) = kerberos.first() else {
        return errors;
    };
    let (first_id, principal) = (&first.id, &first.principal);
    for connection in kerberos {
        let (id, other) = (&connection.id, &connection.principal);
        if other != principal {
            errors.push(format!(
                "connections \"{first_id}\" ({principal}) and \"{id}\" ({other}) use different \
                 Kerberos principals; a host authenticates as one principal: run them in \
                 separate hosts"
            ));
        }
    }
    let passwords: Vec<&Secret> = kerberos
        .iter()
        .filter_map(|c| c.password.as_ref())
        .collect();
    if passwords.windows(2).any(|pair| pair[0] != pair[1]) {
        errors.push(format!(
            "the Kerberos connections of {principal} give different passwords; give the same one"
        ));
    }
    errors
}

/// The files of the custom library that are missing: `krb5_conf`, and the principal's `keytab`
/// when one is needed (some connection has no password). `first` is the connection named.
fn missing_files(
    custom_library: &Path,
    first: &KerberosConnection,
    krb5_conf: &Path,
    keytab: Option<&Path>,
) -> Vec<String> {
    let (first_id, principal) = (&first.id, &first.principal);
    let library = custom_library.display();
    let mut errors = Vec::new();
    if !krb5_conf.is_file() {
        errors.push(format!(
            "{} does not exist: Kerberos connection \"{first_id}\" needs your realm's krb5.conf \
             in the custom library folder ({library}; choose another with --custom-library)",
            krb5_conf.display()
        ));
    }
    if let Some(keytab) = keytab.filter(|keytab| !keytab.is_file()) {
        errors.push(format!(
            "{} does not exist: Kerberos connection \"{first_id}\" has no password, so it needs \
             the keytab of {principal} in the custom library folder, named after the realm (the \
             part of the principal after @)",
            keytab.display()
        ));
    }
    errors
}

/// Who may change these files may choose the KDC or the identity this host authenticates as
/// (an error); a keytab others can read is a password others can read (a warning). `keytab`
/// when one is needed.
fn unsafe_files(krb5_conf: &Path, keytab: Option<&Path>) -> Vec<String> {
    let mut errors: Vec<String> = world_writable(krb5_conf).into_iter().collect();
    if let Some(keytab) = keytab {
        errors.extend(world_writable(keytab));
        if mode(keytab).is_some_and(|m| m & 0o004 != 0) {
            tracing::warn!(
                keytab = %keytab.display(),
                "the keytab is readable by every user of this machine: chmod o-r it"
            );
        }
    }
    errors
}

/// Gives the connections without a password the `keytab`: librdkafka gets it as an absolute
/// path; messages show it as the user wrote it.
fn fill_in_keytabs(components: &mut Components, keytab: &Path) {
    let absolute_keytab = absolute(keytab);
    for connection in components.connections.values_mut() {
        if let Some(sasl) = connection.config.sasl.as_mut() {
            if let Some(kerberos) = sasl.kerberos.as_mut() {
                if sasl.password.is_none() {
                    kerberos.keytab = Some(absolute_keytab.clone());
                }
            }
        }
    }
}

/// Runs kinit for `principal` with the keytab, or else the password on its standard input.
fn first_ticket(
    principal: &str,
    keytab: Option<&PathBuf>,
    password: Option<&Secret>,
    krb5_conf: &Path,
) -> Result<(), String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut command = Command::new("kinit");
    match keytab {
        Some(keytab) => command.arg("-k").arg("-t").arg(keytab),
        None => &mut command,
    };
    let mut child = command
        .arg("--")
        .arg(principal)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run kinit: {e}"))?;
    if let (None, Some(password), Some(mut stdin)) = (keytab, password, child.stdin.take()) {
        let _ = writeln!(stdin, "{}", password.expose());
    }
    let output = child
        .wait_with_output()
        .map_err(|e| format!("kinit failed: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("Password for"))
        .collect::<Vec<_>>()
        .join(" ");
    let with = match keytab {
        Some(keytab) => format!("the keytab {}", keytab.display()),
        None => "the password".to_string(),
    };
    let lower = said.to_ascii_lowercase();
    let krb5 = krb5_conf.display();
    let advice = if lower.contains("cannot contact any kdc") || lower.contains("cannot find kdc") {
        format!("the KDC named in {krb5} cannot be reached: check its address and port there, and the network")
    } else if lower.contains("no suitable keys") || lower.contains("key table entry not found") {
        format!("{with} holds no key for {principal}: export the principal's key into it")
    } else if lower.contains("preauthentication failed") || lower.contains("password incorrect") {
        format!("{with} does not match {principal}'s current key: the password is wrong, or the keytab is outdated")
    } else if lower.contains("not found in kerberos database") {
        format!("{principal} does not exist in its realm: check username")
    } else if lower.contains("clock skew") {
        "this machine's clock differs too much from the KDC's: synchronise it (NTP)".to_string()
    } else {
        format!("check {krb5}, {with} and {principal}")
    };
    Err(format!(
        "Kerberos: kinit could not get a ticket for {principal} with {with}: {said}. Fix: {advice}"
    ))
}

fn mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).ok().map(|m| m.permissions().mode())
}

/// An error when every user of this machine may write the file.
fn world_writable(path: &Path) -> Option<String> {
    mode(path).filter(|m| m & 0o002 != 0).map(|_| {
        format!(
            "{} may be changed by every user of this machine, so it is not used: chmod o-w it",
            path.display()
        )
    })
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
