//! A throw-away MIT Kerberos KDC on loopback (Debian's krb5-kdc), with a realm entirely under a
//! temp folder: principals `client@EXAMPLE.TEST` (with a password and a keytab) and
//! `kafka/localhost@EXAMPLE.TEST` (the broker's service, keytab only).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use super::{free_port, read, spawn_listening};

pub const REALM: &str = "EXAMPLE.TEST";
pub const CLIENT: &str = "client@EXAMPLE.TEST";
pub const CLIENT_PASSWORD: &str = "client-kerberos-password";

pub struct Kdc {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

/// How a KDC differs from the default one.
#[derive(Default)]
pub struct KdcOptions<'a> {
    /// Runs the KDC with its clock moved by this much (libfaketime's syntax, e.g. `+10m`).
    pub clock_offset: Option<&'a str>,
    /// More `[libdefaults]` lines for the realm's krb5.conf.
    pub libdefaults: &'a str,
}

impl Kdc {
    pub fn start() -> Self {
        Self::start_with(KdcOptions::default())
    }

    pub fn start_with(options: KdcOptions<'_>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let d = dir.path().display();
        std::fs::write(
            dir.path().join("krb5.conf"),
            format!(
                "[libdefaults]\n    default_realm = {REALM}\n    dns_lookup_realm = false\n    \
                 dns_lookup_kdc = false\n    rdns = false\n    dns_canonicalize_hostname = false\n    \
                 udp_preference_limit = 1\n{}[realms]\n    {REALM} = {{\n        kdc = 127.0.0.1:{port}\n    }}\n\
                 [domain_realm]\n    localhost = {REALM}\n",
                options.libdefaults
            ),
        )
        .expect("krb5.conf");
        std::fs::write(
            dir.path().join("kdc.conf"),
            format!(
                "[kdcdefaults]\n    kdc_listen = 127.0.0.1:{port}\n    kdc_tcp_listen = 127.0.0.1:{port}\n\
                 [realms]\n    {REALM} = {{\n        database_name = {d}/principal\n        \
                 key_stash_file = {d}/stash\n        acl_file = {d}/kadm5.acl\n        \
                 supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal\n    }}\n\
                 [logging]\n    kdc = FILE:{d}/kdc.log\n"
            ),
        )
        .expect("kdc.conf");
        std::fs::write(dir.path().join("kadm5.acl"), "").expect("acl");
        let run = |program: &str, args: &[&str]| {
            let output = Command::new(program)
                .args(args)
                .env("KRB5_CONFIG", dir.path().join("krb5.conf"))
                .env("KRB5_KDC_PROFILE", dir.path().join("kdc.conf"))
                .output()
                .unwrap_or_else(|e| panic!("{program} (Debian package krb5-kdc): {e}"));
            assert!(
                output.status.success(),
                "{program} {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        run(
            "kdb5_util",
            &["create", "-s", "-r", REALM, "-P", "throw-away-master-key"],
        );
        let kadmin = |query: String| run("kadmin.local", &["-q", &query]);
        kadmin(format!("addprinc -pw {CLIENT_PASSWORD} {CLIENT}"));
        kadmin(format!("addprinc -randkey kafka/localhost@{REALM}"));
        // -norandkey keeps the client's password valid next to its keytab.
        kadmin(format!("ktadd -norandkey -k {d}/client.keytab {CLIENT}"));
        kadmin(format!("ktadd -k {d}/kafka.keytab kafka/localhost@{REALM}"));
        let mut command = match options.clock_offset {
            // Debian's faketime (package faketime) preloads libfaketime into the KDC alone.
            Some(offset) => {
                let mut command = Command::new("faketime");
                command.args(["-f", offset, "krb5kdc"]);
                command
            }
            None => Command::new("krb5kdc"),
        };
        command
            .args(["-n", "-r", REALM])
            .env("KRB5_CONFIG", dir.path().join("krb5.conf"))
            .env("KRB5_KDC_PROFILE", dir.path().join("kdc.conf"));
        let child = spawn_listening(
            &mut command,
            port,
            Duration::from_secs(10),
            "krb5kdc (Debian package krb5-kdc; faketime for a clock offset)",
            &dir.path().join("kdc.log"),
        );
        Self { child, port, dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the KDC (for "KDC unreachable" tests); dropping it does the same.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Kdc {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("---- kdc log ----\n{}", read(&self.path("kdc.log")));
        }
    }
}
