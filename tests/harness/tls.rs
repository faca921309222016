//! Throw-away certificates (openssl) and a TLS terminator (stunnel) in front of a test broker,
//! so that Sluice's TLS connections run against real OpenSSL servers.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use super::{free_port, read, spawn_listening};

/// A CA, a server certificate for localhost / 127.0.0.1 signed by it, a client certificate
/// signed by it, and an unrelated CA (for "wrong CA" tests). All PEM, in a temp folder.
pub struct Certificates {
    pub dir: tempfile::TempDir,
}

impl Certificates {
    pub fn generate() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let openssl = |args: &[&str]| {
            let output = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("openssl (Debian package openssl)");
            assert!(
                output.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        for ca in ["ca", "other-ca"] {
            openssl(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.pem"),
                "-subj",
                &format!("/CN=sluice test {ca}"),
            ]);
        }
        std::fs::write(
            dir.path().join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .expect("ext file");
        for (name, ext) in [("server", Some("server.ext")), ("client", None)] {
            openssl(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={name}"),
            ]);
            let mut args = vec![
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                &format!("{name}.pem"),
            ]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
            if let Some(ext) = ext {
                args.extend(["-extfile".to_string(), ext.to_string()]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            openssl(&args);
        }
        Self { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// librdkafka settings for the harness's own client, trusting this CA (and presenting the
    /// client certificate, which a terminator that does not ask for it ignores).
    pub fn client_settings(&self) -> Vec<(String, String)> {
        vec![
            ("security.protocol".into(), "SSL".into()),
            (
                "ssl.ca.location".into(),
                self.path("ca.pem").display().to_string(),
            ),
            (
                "ssl.certificate.location".into(),
                self.path("client.pem").display().to_string(),
            ),
            (
                "ssl.key.location".into(),
                self.path("client.key").display().to_string(),
            ),
        ]
    }
}

/// stunnel accepting TLS on its own port and forwarding to a broker.
pub struct TlsTerminator {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl TlsTerminator {
    /// A free port to give the terminator; the broker behind it advertises it.
    pub fn reserve_port() -> u16 {
        free_port()
    }

    /// Starts stunnel on `port` in front of `broker_port`. With `mutual`, clients must present
    /// a certificate signed by the test CA.
    pub fn start(certificates: &Certificates, port: u16, broker_port: u16, mutual: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("stunnel.log");
        let mut config = format!(
            "foreground = yes\npid =\noutput = {log}\ndebug = 5\n[kafka]\n\
             accept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{broker_port}\n\
             cert = {cert}\nkey = {key}\n",
            log = log.display(),
            cert = certificates.path("server.pem").display(),
            key = certificates.path("server.key").display(),
        );
        if mutual {
            config.push_str(&format!(
                "verifyChain = yes\nrequireCert = yes\nCAfile = {}\n",
                certificates.path("ca.pem").display()
            ));
        }
        let config_path = dir.path().join("stunnel.conf");
        std::fs::write(&config_path, config).expect("stunnel.conf");
        let child = spawn_listening(
            Command::new("stunnel").arg(&config_path),
            port,
            Duration::from_secs(10),
            "stunnel (Debian package stunnel4; ./dev test installs it)",
            &log,
        );
        Self {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    /// `localhost:port`: a host name, so that the certificate's name can be checked.
    pub fn bootstrap(&self) -> String {
        format!("localhost:{}", self.port)
    }

    pub fn log(&self) -> &Path {
        &self.log
    }
}

impl Drop for TlsTerminator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- stunnel log ----\n{}", read(&self.log));
        }
    }
}
