//! Opening a database connection: the one place that applies `database.tls`, the
//! authentication settings and the timeouts, for every connection pikachu opens (binlog,
//! schema look-ups, `check`). It turns a failed connection into an error that names the
//! cause (unknown CA, name mismatch, a server without TLS, a server that requires it, an
//! authentication plugin the driver cannot speak) and the setting that fixes it.
//!
//! It never logs the password and never falls back to a weaker mode than configured:
//! only `preferred` connects without TLS, and only when the server offers none.

use std::time::Duration;

use mysql::prelude::Queryable;

use crate::config::{DatabaseConfig, DbTlsMode};

/// Builds connections for one `DatabaseConfig`; cheap to clone.
#[derive(Clone)]
pub struct Connector {
    /// `database.hosts` (or `host`), tried in this order.
    servers: Vec<Server>,
    mode: DbTlsMode,
}

/// One server's connection options.
#[derive(Clone)]
struct Server {
    /// With TLS settings; `None` for `tls: disabled`.
    secure: Option<mysql::Opts>,
    /// Without TLS; `None` unless the mode may go without (`disabled`, `preferred`).
    plain: Option<mysql::Opts>,
    host: String,
    /// `host:port as `user``, for messages.
    address: String,
}

impl Connector {
    /// `read_timeout`: `None` for `database.read_timeout`.
    pub fn new(db: &DatabaseConfig, read_timeout: Option<Duration>) -> Connector {
        Connector::with_init(db, read_timeout, None)
    }

    /// `charset`: overrides `database.charset` in `SET NAMES` (schema look-ups need
    /// utf8mb4 whatever the rows are read as).
    pub fn with_init(
        db: &DatabaseConfig,
        read_timeout: Option<Duration>,
        charset: Option<&str>,
    ) -> Connector {
        let charset = match charset {
            Some(c) => c,
            None if db.charset.is_empty() => "utf8mb4",
            None => db.charset.as_str(),
        };
        let base = mysql::OptsBuilder::new()
            .user(Some(db.user.clone()))
            .pass(if db.password.expose().is_empty() {
                None
            } else {
                Some(db.password.expose().to_owned())
            })
            .prefer_socket(false)
            .tcp_connect_timeout(Some(db.connect_timeout))
            .read_timeout(read_timeout.or(Some(db.read_timeout)))
            .write_timeout(Some(db.read_timeout))
            // A single row event can be far larger than the server's default packet size.
            .max_allowed_packet(Some(1 << 30))
            // caching_sha2_password without TLS encrypts the password with the server's
            // RSA key: this one when given, else the driver asks the server for it.
            .server_key_path(db.server_public_key_file.clone())
            .init(vec![format!("SET NAMES {charset}")]);
        let tls = &db.tls;
        let ssl = || {
            let mut ssl = mysql::SslOpts::default();
            if let Some(ca) = &tls.ca_file {
                ssl = ssl.with_root_cert_path(Some(ca.clone()));
            }
            if let Some(client) = &tls.client_cert {
                ssl = ssl.with_client_identity(Some(mysql::ClientIdentity::new(
                    client.cert_file.clone(),
                    client.key_file.clone(),
                )));
            }
            match tls.mode {
                DbTlsMode::VerifyIdentity => ssl,
                DbTlsMode::VerifyCa => ssl.with_danger_skip_domain_validation(true),
                // Encrypted, but a certificate is not checked: what `preferred` and
                // `required` mean to the MySQL client too.
                _ => ssl.with_danger_accept_invalid_certs(true),
            }
        };
        // The clear-text plugin (PAM, LDAP accounts) sends the password as it is: only
        // over a connection that is always encrypted.
        let base = base.enable_cleartext_plugin(!matches!(
            tls.mode,
            DbTlsMode::Disabled | DbTlsMode::Preferred
        ));
        let servers = db
            .hosts
            .iter()
            .map(|(host, port)| {
                let base = base
                    .clone()
                    .ip_or_hostname(Some(host.clone()))
                    .tcp_port(*port);
                let (secure, plain) = match tls.mode {
                    DbTlsMode::Disabled => (None, Some(base.into())),
                    DbTlsMode::Preferred => {
                        (Some(base.clone().ssl_opts(ssl()).into()), Some(base.into()))
                    }
                    _ => (Some(base.ssl_opts(ssl()).into()), None),
                };
                Server {
                    secure,
                    plain,
                    host: host.clone(),
                    address: format!("{host}:{port} as `{}`", db.user),
                }
            })
            .collect();
        Connector {
            servers,
            mode: tls.mode,
        }
    }

    pub fn mode(&self) -> DbTlsMode {
        self.mode
    }

    /// Opens a connection and logs in.
    pub fn connect(&self) -> Result<mysql::Conn, ConnectError> {
        self.connect_to().map(|(conn, _)| conn)
    }

    /// Opens a connection to the first of the servers that takes it, and says which
    /// (`host:port as `user``). When none does, the first one's error (the primary's)
    /// with what the others answered.
    pub fn connect_to(&self) -> Result<(mysql::Conn, &str), ConnectError> {
        let mut first: Option<ConnectError> = None;
        for server in &self.servers {
            match server.connect(self.mode) {
                Ok(conn) => {
                    if let Some(e) = &first {
                        log::debug!("{e}; connected to {} instead", server.address);
                    }
                    return Ok((conn, &server.address));
                }
                Err(e) => match &mut first {
                    None => first = Some(e),
                    Some(f) => f.also.push(format!("{}: {}", server.address, e.error)),
                },
            }
        }
        Err(first.unwrap_or_else(|| ConnectError {
            address: "(no server configured)".into(),
            cause: Cause::Network,
            hint: "set database.host".into(),
            error: Box::new(mysql::Error::DriverError(
                mysql::DriverError::CouldNotConnect(None),
            )),
            also: Vec::new(),
        }))
    }
}

impl Server {
    fn connect(&self, mode: DbTlsMode) -> Result<mysql::Conn, ConnectError> {
        let fail = |error: mysql::Error| ConnectError::new(self, mode, error);
        match (&self.secure, &self.plain) {
            (Some(secure), plain) => match mysql::Conn::new(secure.clone()) {
                Ok(conn) => Ok(conn),
                Err(mysql::Error::DriverError(mysql::DriverError::TlsNotSupported))
                    if plain.is_some() =>
                {
                    log::debug!(
                        "{}: the server offers no TLS; connecting without it (database.tls: \
                         preferred)",
                        self.address
                    );
                    let plain = plain.clone().unwrap_or_else(|| secure.clone());
                    mysql::Conn::new(plain).map_err(fail)
                }
                Err(e) => Err(fail(e)),
            },
            (None, Some(plain)) => mysql::Conn::new(plain.clone()).map_err(fail),
            (None, None) => Err(fail(mysql::Error::DriverError(
                mysql::DriverError::TlsNotSupported,
            ))),
        }
    }
}

/// What a session's TLS looks like from the server's side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSession {
    /// `TLSv1.3`; `None` when the connection is not encrypted.
    pub version: Option<String>,
    pub cipher: Option<String>,
}

impl TlsSession {
    /// Asks the server (`Ssl_version`, `Ssl_cipher` of this session).
    pub fn read(conn: &mut mysql::Conn) -> mysql::Result<TlsSession> {
        let rows: Vec<(String, String)> =
            conn.query("SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_version', 'Ssl_cipher')")?;
        let get = |name: &str| {
            rows.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };
        Ok(TlsSession {
            version: get("Ssl_version"),
            cipher: get("Ssl_cipher"),
        })
    }

    /// `TLSv1.3 (TLS_AES_256_GCM_SHA384)` or `not encrypted`.
    pub fn describe(&self) -> String {
        match (&self.version, &self.cipher) {
            (Some(v), Some(c)) => format!("{v} ({c})"),
            (Some(v), None) => v.clone(),
            _ => "not encrypted".to_owned(),
        }
    }
}

/// Why a connection could not be opened, with the setting that fixes it.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to the database at {address}: {error}; {hint}{}",
    if .also.is_empty() { String::new() } else { format!(" (also tried {})", .also.join("; ")) })]
pub struct ConnectError {
    address: String,
    pub cause: Cause,
    hint: String,
    /// Boxed: the driver's error is large, and this one travels up through `?`.
    #[source]
    error: Box<mysql::Error>,
    /// The other servers of `database.hosts` and their errors.
    also: Vec<String>,
}

/// The kinds of failure a user fixes differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// `tls` demands TLS and the server offers none.
    TlsNotOffered,
    /// The server requires TLS (`require_secure_transport`) and `tls: disabled`.
    TlsRequiredByServer,
    UnknownCa,
    NameMismatch,
    CertificateExpired,
    /// Another TLS failure (a refused client certificate, a bad certificate).
    Tls,
    AccessDenied,
    UnknownDatabase,
    AuthPlugin,
    /// The network: refused, unreachable, timed out, closed.
    Network,
}

/// MySQL's and MariaDB's errors for a plain connection to a server that requires TLS.
const ER_SECURE_TRANSPORT_REQUIRED: [u16; 2] = [3159, 4151];
const ER_ACCESS_DENIED: u16 = 1045;
const ER_BAD_DB: u16 = 1049;

impl ConnectError {
    fn new(server: &Server, mode: DbTlsMode, error: mysql::Error) -> ConnectError {
        let tls_mode = mode;
        let mode = mode.as_str();
        let host = &server.host;
        let (cause, hint) = match classify(&error) {
            Cause::TlsNotOffered => (
                Cause::TlsNotOffered,
                format!(
                    "the server does not offer TLS and database.tls is {mode}; enable TLS on the \
                     server (ssl_cert and ssl_key), or set database.tls: preferred to connect \
                     without encryption"
                ),
            ),
            Cause::TlsRequiredByServer => (
                Cause::TlsRequiredByServer,
                "the server accepts only TLS connections (require_secure_transport=ON); set \
                 database.tls: verify_identity with database.ca_file (or required, or preferred)"
                    .to_owned(),
            ),
            Cause::UnknownCa => (
                Cause::UnknownCa,
                format!(
                    "the server's certificate is not signed by a CA pikachu trusts (database.tls: \
                     {mode}); set database.ca_file to the PEM file of the CA that signed it"
                ),
            ),
            Cause::NameMismatch => (
                Cause::NameMismatch,
                format!(
                    "the server's certificate is not issued for {host:?} (database.tls: \
                     verify_identity); set database.host to a name the certificate lists, or \
                     database.tls: verify_ca to check the CA only"
                ),
            ),
            Cause::CertificateExpired => (
                Cause::CertificateExpired,
                "the server's certificate has expired or is not valid yet; renew it on the \
                 server (or check this machine's clock)"
                    .to_owned(),
            ),
            Cause::Tls => (
                Cause::Tls,
                "the TLS handshake failed; check database.ca_file, database.cert_file and \
                 database.key_file, and the server's ssl_* settings"
                    .to_owned(),
            ),
            Cause::AccessDenied => (
                Cause::AccessDenied,
                format!(
                    "check database.user and the password (database.password, \
                     database.password_file or PIKACHU_DATABASE_PASSWORD); an account created \
                     with REQUIRE SSL or REQUIRE X509 also needs database.tls, and X509 a \
                     database.cert_file and key_file{}",
                    if tls_mode == DbTlsMode::Disabled {
                        // MariaDB refuses a plain login to a server with
                        // require_secure_transport=ON as access denied.
                        "; a server with require_secure_transport=ON refuses logins without TLS \
                         like this too: set database.tls: verify_identity with database.ca_file \
                         (or required)"
                    } else {
                        ""
                    }
                ),
            ),
            Cause::UnknownDatabase => {
                (Cause::UnknownDatabase, "check database.database".to_owned())
            }
            Cause::AuthPlugin => (
                Cause::AuthPlugin,
                "pikachu's driver speaks mysql_native_password, caching_sha2_password, \
                 ed25519 (MariaDB) and mysql_clear_password (with database.tls required or \
                 stronger); \
                 give pikachu's account one of them, e.g. ALTER USER … IDENTIFIED WITH \
                 mysql_native_password BY '…' (MySQL) or IDENTIFIED VIA ed25519 USING \
                 PASSWORD('…') (MariaDB)"
                    .to_owned(),
            ),
            Cause::Network => (
                Cause::Network,
                "check database.host and database.port, and that the server accepts TCP \
                 connections from this machine (bind-address, firewall, skip-networking)"
                    .to_owned(),
            ),
        };
        ConnectError {
            address: server.address.clone(),
            cause,
            hint,
            error: Box::new(error),
            also: Vec::new(),
        }
    }
}

/// The rustls error somewhere in the chain: the driver wraps the handshake's failure
/// in an I/O error, often inside its packet codec's error.
fn rustls_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        // An io::Error's `source()` skips the error it wraps: look at that one too.
        if let Some(tls) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(tls);
        }
        current = e.source();
    }
    None
}

fn classify(error: &mysql::Error) -> Cause {
    use mysql::{DriverError, Error};
    if let Error::TlsError(_) = error {
        return Cause::Tls;
    }
    // The driver's error has no `source()`: start below it.
    let tls_error = match error {
        Error::IoError(io) => rustls_error(io),
        Error::CodecError(codec) => rustls_error(codec),
        _ => None,
    };
    if let Some(tls_error) = tls_error {
        use rustls::CertificateError as C;
        return match tls_error {
            rustls::Error::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => {
                Cause::UnknownCa
            }
            rustls::Error::InvalidCertificate(
                C::NotValidForName | C::NotValidForNameContext { .. },
            ) => Cause::NameMismatch,
            rustls::Error::InvalidCertificate(
                C::Expired
                | C::ExpiredContext { .. }
                | C::NotValidYet
                | C::NotValidYetContext { .. },
            ) => Cause::CertificateExpired,
            _ => Cause::Tls,
        };
    }
    match error {
        Error::DriverError(DriverError::TlsNotSupported) => Cause::TlsNotOffered,
        Error::DriverError(DriverError::UnknownAuthPlugin(_)) => Cause::AuthPlugin,
        Error::MySqlError(e) if ER_SECURE_TRANSPORT_REQUIRED.contains(&e.code) => {
            Cause::TlsRequiredByServer
        }
        Error::MySqlError(e) if e.code == ER_ACCESS_DENIED => Cause::AccessDenied,
        Error::MySqlError(e) if e.code == ER_BAD_DB => Cause::UnknownDatabase,
        // A plugin the server names but the driver does not know ends as a refused
        // login with a message naming it.
        Error::MySqlError(e) if e.message.contains("plugin") => Cause::AuthPlugin,
        _ => Cause::Network,
    }
}
