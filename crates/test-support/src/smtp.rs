//! A real SMTP server on loopback (aiosmtpd, installed by `deploy/dev.sh test` and named by
//! TRAWL_AIOSMTPD_PYTHON), and the mail it delivered, read back from its Maildir.
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const SCRIPT: &str = include_str!("smtp_server.py");

/// The server; stopped (killed) when dropped.
pub struct SmtpServer {
    pub port: u16,
    dir: tempfile::TempDir,
    _child: Child,
}

/// One delivered message: its headers and decoded text parts, as read from the Maildir.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub raw: String,
}

impl Delivered {
    /// The first value of `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.raw.split("\n\n").next().unwrap_or_default();
        let mut found: Option<String> = None;
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                if let Some(value) = &mut found {
                    value.push(' ');
                    value.push_str(line.trim());
                }
                continue;
            }
            if found.is_some() {
                break;
            }
            if let Some((key, value)) = line.split_once(':')
                && key.eq_ignore_ascii_case(name)
            {
                found = Some(value.trim().to_owned());
            }
        }
        found
    }

    /// The body with quoted-printable soft breaks and `=3D` undone (enough to search it).
    ///
    /// One pass over the escapes: undoing them one kind after another re-read what an earlier
    /// one made (a token `=3D20ab…` became `=20ab…`, then ` ab…`; one confirmation link in 256).
    pub fn body(&self) -> String {
        let body = self.raw.split_once("\n\n").map_or("", |(_, b)| b);
        let joined = body
            .replace("=\r\n", "")
            .replace("=\n", "")
            .replace("\r\n", "\n");
        let bytes = joined.as_bytes();
        let mut decoded = Vec::with_capacity(bytes.len());
        let mut at = 0;
        while at < bytes.len() {
            let escape = bytes
                .get(at + 1..at + 3)
                .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
            match (bytes[at], escape) {
                (b'=', Some(byte)) => {
                    decoded.push(byte);
                    at += 3;
                }
                (byte, _) => {
                    decoded.push(byte);
                    at += 1;
                }
            }
        }
        String::from_utf8_lossy(&decoded).into_owned()
    }
}

/// A certificate authority (`ca.pem`, what clients trust) and a server certificate for
/// 127.0.0.1 it signed (`server.pem`, `server.key`), made by openssl in `dir`. rustls refuses a
/// self-signed authority presented as a server, as any real server's chain would not be.
fn make_certificate(dir: &std::path::Path) -> (PathBuf, PathBuf) {
    let openssl = |args: &[&str]| {
        let done = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stderr(Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(done.success(), "openssl {args:?} failed");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=trawl test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=critical,CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .expect("extensions written");
    openssl(&[
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
        "server.ext",
        "-out",
        "server.pem",
    ]);
    (dir.join("server.pem"), dir.join("server.key"))
}

impl SmtpServer {
    /// Starts the server on a free port. Panics (never skips) when aiosmtpd is missing.
    pub async fn start() -> Self {
        Self::launch(false).await
    }

    /// The same, offering STARTTLS with a certificate for 127.0.0.1 made for it (openssl);
    /// [`SmtpServer::certificate`] is the PEM a client must trust.
    pub async fn start_tls() -> Self {
        Self::launch(true).await
    }

    /// The PEM certificate authority that signed a `start_tls` server's certificate.
    pub fn certificate(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("ca.pem")).expect("the certificate")
    }

    async fn launch(tls: bool) -> Self {
        let python = std::env::var("TRAWL_AIOSMTPD_PYTHON").unwrap_or_else(|_| {
            panic!(
                "TRAWL_AIOSMTPD_PYTHON is not set: run the tests with `deploy/dev.sh test`, which \
                 installs aiosmtpd (or `source deploy/tools.sh && need_aiosmtpd`)"
            )
        });
        let dir = tempfile::tempdir().expect("a temporary folder");
        let script = dir.path().join("smtp_server.py");
        std::fs::write(&script, SCRIPT).expect("the script is written");
        let maildir = dir.path().join("maildir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut command = Command::new(&python);
        command
            .arg(&script)
            .arg(port.to_string())
            .arg(&maildir)
            .arg(dir.path());
        if tls {
            let (cert, key) = make_certificate(dir.path());
            command.arg(&cert).arg(&key);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {python}: {e}"));
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await;
        assert!(
            matches!(ready, Ok(Ok(Some(ref line))) if line == "ready"),
            "the SMTP server did not start: {ready:?}"
        );
        Self {
            port,
            dir,
            _child: child,
        }
    }

    /// `smtp://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// While busy, every recipient gets a 451.
    pub fn set_busy(&self, busy: bool) {
        let flag = self.dir.path().join("busy");
        if busy {
            std::fs::write(flag, b"").expect("flag written");
        } else {
            let _ = std::fs::remove_file(flag);
        }
    }

    fn maildir(&self) -> PathBuf {
        self.dir.path().join("maildir").join("new")
    }

    /// Every message delivered so far, oldest first.
    pub fn delivered(&self) -> Vec<Delivered> {
        let Ok(entries) = std::fs::read_dir(self.maildir()) else {
            return Vec::new();
        };
        // In delivery order, which the names hold (Python's Maildir: `<secs>.M<µs>P<pid>Q<n>.
        // <host>`): file times are coarse (two mails a few ms apart may share one) and the
        // numbers are not zero-padded, so neither times nor names sort them.
        let mut files: Vec<_> = entries
            .flatten()
            .map(|e| (delivery_order(&e.file_name().to_string_lossy()), e.path()))
            .collect();
        files.sort();
        files
            .into_iter()
            .filter_map(|(_, path)| std::fs::read_to_string(path).ok())
            .map(|raw| Delivered { raw })
            .collect()
    }

    /// Waits until `count` messages were delivered; returns them.
    pub async fn wait_for(&self, count: usize) -> Vec<Delivered> {
        crate::eventually(Duration::from_secs(30), "mail delivered", || async {
            let delivered = self.delivered();
            (delivered.len() >= count).then_some(delivered)
        })
        .await
    }
}

/// `(seconds, microseconds, sequence)` from a Maildir file name `<secs>.M<µs>P<pid>Q<n>.<host>`.
fn delivery_order(name: &str) -> (u64, u64, u64) {
    let mut parts = name.split('.');
    let seconds = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let unique = parts.next().unwrap_or_default();
    let number_after = |mark: char| -> u64 {
        unique
            .split_once(mark)
            .map(|(_, rest)| rest)
            .unwrap_or_default()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap_or(0)
    };
    (seconds, number_after('M'), number_after('Q'))
}

#[cfg(test)]
mod tests {
    use super::Delivered;

    #[test]
    fn a_body_is_decoded_in_one_pass_over_its_escapes() {
        let mail = Delivered {
            raw: "Subject: x\n\nconfirm?token=3D20ab=\ncd caf=C3=A9 =3D20\n".into(),
        };
        assert_eq!(mail.body(), "confirm?token=20abcd café =20\n");
    }

    #[test]
    fn maildir_names_sort_in_delivery_order() {
        let mut names = [
            "1796574686.M141956P22466Q2.vm",
            "1796574686.M99999P22466Q1.vm",
            "1796574685.M900000P22466Q7.vm",
        ];
        names.sort_by_key(|name| super::delivery_order(name));
        assert_eq!(
            names,
            [
                "1796574685.M900000P22466Q7.vm",
                "1796574686.M99999P22466Q1.vm",
                "1796574686.M141956P22466Q2.vm",
            ]
        );
    }
}
