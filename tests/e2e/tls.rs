//! TLS to servers with their own CA (a self-signed Proxmox or TrueNAS): `verify_ssl` and
//! `ca_cert_file`, against a real TLS server (`openssl s_server`) on loopback.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::support::{Run, cpi_bin, run};

/// `openssl s_server -www` on a loopback port, with a certificate signed by a private CA.
struct TlsServer {
    child: Child,
    port: u16,
    ca: PathBuf,
}

/// Who signed the server's certificate.
#[derive(Clone, Copy, PartialEq)]
enum Issuer {
    /// A private CA (`ca.pem`), as Proxmox does.
    PrivateCa,
    /// The certificate itself, marked as a CA: what `openssl req -x509` makes by default.
    SelfSignedCa,
}

impl TlsServer {
    fn start(dir: &Path) -> TlsServer {
        TlsServer::start_with(dir, Issuer::PrivateCa)
    }

    fn start_with(dir: &Path, issuer: Issuer) -> TlsServer {
        let ca = dir.join("ca.pem");
        let sh = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("openssl runs (Debian's openssl package)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ca_req = [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ];
        if issuer == Issuer::SelfSignedCa {
            sh(&[
                &ca_req[..],
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.pem",
                    "-subj",
                    "/CN=localhost",
                ],
                &["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                &["-addext", "basicConstraints=critical,CA:TRUE"],
            ]
            .concat());
            std::fs::copy(dir.join("server.pem"), &ca).unwrap();
            return TlsServer::serve(dir, ca);
        }
        sh(&[
            &ca_req[..],
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-subj",
                "/CN=cpi test CA",
            ],
        ]
        .concat());
        sh(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ]);
        std::fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        sh(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.pem",
        ]);
        TlsServer::serve(dir, ca)
    }

    /// Runs `openssl s_server -www` with `server.pem`/`server.key` of `dir`.
    fn serve(dir: &Path, ca: PathBuf) -> TlsServer {
        let mut child = Command::new("openssl")
            .args([
                "s_server",
                "-accept",
                "127.0.0.1:0",
                "-cert",
                "server.pem",
                "-key",
                "server.key",
                "-www",
            ])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_server starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let port = loop {
            let line = lines
                .next()
                .expect("s_server printed its ACCEPT line")
                .unwrap();
            if let Some(addr) = line.strip_prefix("ACCEPT ") {
                break addr.rsplit(':').next().unwrap().parse().unwrap();
            }
        };
        // Keep draining s_server's stdout so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        TlsServer { child, port, ca }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `cpi --json run tlsbox test_install ARGS` with a provider whose `api_url` is the server.
fn run_tlsbox(dir: &Path, server: &TlsServer, args: &[&str]) -> Run {
    let providers = dir.join("providers");
    std::fs::create_dir_all(&providers).unwrap();
    std::fs::write(
        providers.join("tlsbox.json"),
        format!(
            r#"{{
  "name": "tlsbox",
  "type": "endpoint",
  "default_settings": {{ "api_url": "https://localhost:{}", "verify_ssl": "true" }},
  "actions": {{
    "test_install": {{
      "target": {{ "Endpoint": {{ "url": "{{api_url}}/", "method": "Get" }} }},
      "params": ["api_url"],
      "parse_rules": {{
        "type": "object",
        "patterns": {{ "server": {{ "regex": "(s_server)", "group": 1 }} }}
      }}
    }}
  }}
}}"#,
            server.port
        ),
    )
    .unwrap();
    let home = dir.join("home");
    let cpi = |words: &[&str]| {
        let mut cmd = Command::new(cpi_bin());
        cmd.current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_DATA_HOME", home.join("data"))
            .arg("--provider-dir")
            .arg(&providers)
            .args(words)
            .stdin(Stdio::null());
        cmd
    };
    // A provider from a directory runs only once approved.
    let approved = run(&mut cpi(&["grant", "--yes", "tlsbox"]));
    assert_eq!(approved.code, 0, "{}", approved.all_output());
    run(cpi(&["--json", "run", "tlsbox", "test_install"]).args(args))
}

#[test]
fn self_signed_servers_are_refused_until_their_ca_is_named_or_checks_are_off() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TlsServer::start(tmp.path());

    // Default: the private CA is unknown, so the request fails once (a certificate does not
    // get better with retries) and the error says how to fix it.
    let refused = run_tlsbox(tmp.path(), &server, &[]);
    let err = refused.err("ProviderError");
    let message = err["message"].as_str().unwrap();
    assert!(
        message.contains("TLS certificate was not accepted") && message.contains("ca_cert_file"),
        "{message}"
    );
    assert!(
        err["details"].get("attempts").is_none(),
        "a certificate failure was retried: {err}"
    );

    // Naming the CA makes the same server acceptable, with verification on.
    let ca = server.ca.to_str().unwrap().to_string();
    let trusted = run_tlsbox(tmp.path(), &server, &["-p", &format!("ca_cert_file={ca}")]);
    assert_eq!(trusted.ok()["server"], "s_server");
    assert!(
        !trusted.stderr.contains("not checked"),
        "{}",
        trusted.stderr
    );

    // verify_ssl=false accepts it too, and says so.
    let unchecked = run_tlsbox(tmp.path(), &server, &["-p", "verify_ssl=false"]);
    assert_eq!(unchecked.ok()["server"], "s_server");
    assert!(
        unchecked
            .stderr
            .contains("verify_ssl is false: the server's TLS certificate is not checked"),
        "no warning: {}",
        unchecked.stderr
    );
}

#[test]
fn a_self_signed_ca_certificate_gets_an_explanation_not_a_loop_of_advice() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TlsServer::start_with(tmp.path(), Issuer::SelfSignedCa);
    let ca = server.ca.to_str().unwrap().to_string();
    // rustls refuses a CA certificate as the server's own even when it is the named root:
    // the error must not tell the user to do what they just did.
    let err = run_tlsbox(tmp.path(), &server, &["-p", &format!("ca_cert_file={ca}")])
        .err("ProviderError");
    let message = err["message"].as_str().unwrap();
    assert!(
        message.contains("presents a CA certificate as its own"),
        "{message}"
    );
    let unchecked = run_tlsbox(tmp.path(), &server, &["-p", "verify_ssl=false"]);
    assert_eq!(unchecked.ok()["server"], "s_server");
}

#[test]
fn bad_tls_settings_are_validation_errors_naming_the_setting() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TlsServer::start(tmp.path());

    let err = run_tlsbox(tmp.path(), &server, &["-p", "verify_ssl=maybe"]).err("ValidationError");
    assert!(
        err["message"].as_str().unwrap().contains("verify_ssl"),
        "{err}"
    );

    let missing = tmp.path().join("no-such-ca.pem");
    let err = run_tlsbox(
        tmp.path(),
        &server,
        &["-p", &format!("ca_cert_file={}", missing.display())],
    )
    .err("ValidationError");
    assert!(
        err["message"].as_str().unwrap().contains("no-such-ca.pem"),
        "{err}"
    );

    // Never read endlessly: /dev/zero is not a regular file.
    let err =
        run_tlsbox(tmp.path(), &server, &["-p", "ca_cert_file=/dev/zero"]).err("ValidationError");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("not a regular file"),
        "{err}"
    );

    let not_pem = tmp.path().join("ext.cnf");
    let err = run_tlsbox(
        tmp.path(),
        &server,
        &["-p", &format!("ca_cert_file={}", not_pem.display())],
    )
    .err("ValidationError");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("holds no PEM certificate"),
        "{err}"
    );
}
