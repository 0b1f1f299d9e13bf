//! Throw-away certificates (made with the OS's `openssl`), an HTTPS receiver on rustls
//! that can demand a client certificate, and an HTTP CONNECT proxy, for the TLS tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::TempDir;

/// A CA, certificates it signed, and a second CA that signed nothing we use.
pub struct Pki {
    pub dir: TempDir,
}

impl Pki {
    /// `ca.pem`; `server.pem`/`server.key` for IPs 127.0.0.1 and .2 only (`localhost` is a
    /// name mismatch); `client.pem`/`client.key` (CN pikachu-client); `soon.pem`/
    /// `soon.key`, a client certificate that expires in 5 days; `other-ca.pem`.
    pub fn new() -> Pki {
        let pki = Pki {
            dir: TempDir::new("pki"),
        };
        pki.self_signed_ca("ca", "pikachu test CA");
        pki.self_signed_ca("other-ca", "another CA");
        pki.issue(
            "server",
            "127.0.0.1",
            "subjectAltName=IP:127.0.0.1,IP:127.0.0.2",
            365,
        );
        pki.issue(
            "client",
            "pikachu-client",
            "extendedKeyUsage=clientAuth",
            365,
        );
        pki.issue("soon", "pikachu-client", "extendedKeyUsage=clientAuth", 5);
        // mariadbd runs as this user and reads its key: readable is all it needs.
        pki
    }

    fn self_signed_ca(&self, name: &str, cn: &str) {
        let (key, pem, subject) = (
            format!("{name}.key"),
            format!("{name}.pem"),
            format!("/CN={cn}"),
        );
        self.openssl(&[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "365", "-subj", &subject,
            "-keyout", &key, "-out", &pem,
        ]);
    }

    fn issue(&self, name: &str, cn: &str, ext: &str, days: u32) {
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let pem = format!("{name}.pem");
        let extfile = format!("{name}.ext");
        std::fs::write(self.path(&extfile), format!("{ext}\n")).expect("write ext");
        self.openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={cn}"),
            "-keyout",
            &key,
            "-out",
            &csr,
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            &days.to_string(),
            "-extfile",
            &extfile,
            "-out",
            &pem,
        ]);
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("run openssl (apt-get install openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The path as text, for YAML and command lines.
    pub fn p(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// mariadbd options that turn TLS on with `server.pem`.
    pub fn mariadb_options(&self) -> Vec<String> {
        vec![
            format!("--ssl-ca={}", self.p("ca.pem")),
            format!("--ssl-cert={}", self.p("server.pem")),
            format!("--ssl-key={}", self.p("server.key")),
        ]
    }
}

fn certs(path: &Path) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_file_iter(path)
        .expect("read certificates")
        .map(|c| c.expect("a certificate"))
        .collect()
}

fn key(path: &Path) -> rustls::pki_types::PrivateKeyDer<'static> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::PrivateKeyDer::from_pem_file(path).expect("read key")
}

/// An HTTPS webhook receiver with `server.pem`; answers 200 to every POST.
pub struct HttpsReceiver {
    pub host: String,
    pub port: u16,
    pub events: Arc<Mutex<Vec<Value>>>,
    /// Handshakes that failed (an unknown CA on the client's side, a missing client
    /// certificate on ours).
    pub failed_handshakes: Arc<AtomicUsize>,
    /// The CN of the client certificate of each request, when there was one.
    pub client_names: Arc<Mutex<Vec<String>>>,
}

impl HttpsReceiver {
    /// `require_client_cert`: only clients with a certificate signed by `ca.pem`.
    pub fn start(pki: &Pki, require_client_cert: bool) -> HttpsReceiver {
        Self::start_on(pki, require_client_cert, "127.0.0.1")
    }

    /// On another loopback address (`127.0.0.2`): a second host for proxy rules.
    pub fn start_on(pki: &Pki, require_client_cert: bool, host: &str) -> HttpsReceiver {
        let builder = rustls::ServerConfig::builder();
        let builder = if require_client_cert {
            let mut roots = rustls::RootCertStore::empty();
            for c in certs(&pki.path("ca.pem")) {
                roots.add(c).expect("add CA");
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .expect("client verifier");
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let config = Arc::new(
            builder
                .with_single_cert(certs(&pki.path("server.pem")), key(&pki.path("server.key")))
                .expect("server config"),
        );
        let listener = TcpListener::bind((host, 0)).expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let receiver = HttpsReceiver {
            host: host.to_owned(),
            port,
            events: Arc::default(),
            failed_handshakes: Arc::default(),
            client_names: Arc::default(),
        };
        let events = receiver.events.clone();
        let failed = receiver.failed_handshakes.clone();
        let names = receiver.client_names.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (config, events, failed, names) = (
                    config.clone(),
                    events.clone(),
                    failed.clone(),
                    names.clone(),
                );
                std::thread::spawn(move || serve(stream, config, events, failed, names));
            }
        });
        receiver
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{}:{}{path}", self.host, self.port)
    }

    pub fn events(&self) -> Vec<Value> {
        self.events.lock().unwrap().clone()
    }
}

fn serve(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    events: Arc<Mutex<Vec<Value>>>,
    failed: Arc<AtomicUsize>,
    names: Arc<Mutex<Vec<String>>>,
) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(30)));
    let conn = rustls::ServerConnection::new(config).expect("server connection");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    // Drive the handshake before reading, to tell its failures apart.
    while tls.conn.is_handshaking() {
        if tls.conn.complete_io(&mut tls.sock).is_err() {
            failed.fetch_add(1, Ordering::SeqCst);
            return;
        }
    }
    let client_cn = tls
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| String::from_utf8_lossy(c.as_ref()).contains("pikachu-client"));
    let mut reader = BufReader::new(tls);
    loop {
        let mut content_length = 0usize;
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    content_length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; content_length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if let Ok(v) = serde_json::from_slice::<Value>(&body) {
            match v {
                Value::Array(items) => events.lock().unwrap().extend(items),
                other => events.lock().unwrap().push(other),
            }
        }
        if client_cn == Some(true) {
            names.lock().unwrap().push("pikachu-client".into());
        }
        let out = reader.get_mut();
        let reply =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
        if out.write_all(reply).and_then(|_| out.flush()).is_err() {
            return;
        }
    }
}

/// An HTTP CONNECT proxy (what `HTTPS_PROXY=http://…` talks to); counts its tunnels.
pub struct ConnectProxy {
    pub port: u16,
    /// `host:port` of every tunnel asked for.
    pub tunnels: Arc<Mutex<Vec<String>>>,
}

impl ConnectProxy {
    pub fn start() -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let tunnels: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = tunnels.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let seen = seen.clone();
                std::thread::spawn(move || tunnel(client, seen));
            }
        });
        ConnectProxy { port, tunnels }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn tunnel(client: TcpStream, seen: Arc<Mutex<Vec<String>>>) {
    let mut reader = BufReader::new(client.try_clone().expect("clone"));
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    let target = match request.split_whitespace().collect::<Vec<_>>()[..] {
        ["CONNECT", target, _] => target.to_owned(),
        _ => return,
    };
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
    }
    seen.lock().unwrap().push(target.clone());
    let Ok(upstream) = TcpStream::connect(&target) else {
        return;
    };
    let mut to_client = client.try_clone().expect("clone");
    if to_client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_err()
    {
        return;
    }
    let mut from_upstream = upstream.try_clone().expect("clone");
    let mut to_upstream = upstream;
    // Bytes the reader already buffered belong to the tunnel.
    let buffered = reader.buffer().to_vec();
    let _ = to_upstream.write_all(&buffered);
    let mut from_client = reader.into_inner();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_upstream, &mut to_client);
    });
    let _ = std::io::copy(&mut from_client, &mut to_upstream);
}
