//! The HTTP agents: one per distinct (TLS settings, proxy) among the tasks, so that
//! connections are pooled across workers and tasks that share a receiver setup.
//!
//! TLS: the bundled Mozilla roots by default (the static binary needs no CA files on
//! the host), or exactly the CAs of `ca_file` (as curl's `--cacert`); a client
//! certificate from `cert_file`/`key_file`. There is no switch that turns verification
//! off. Proxies: chosen per callback URL as curl chooses them, from the environment at
//! start.

use std::collections::HashMap;
use std::net::IpAddr;

use ureq::http::Uri;
use ureq::tls::{ClientCert, RootCerts, TlsConfig};

use super::resolve;
use crate::config::{DispatcherConfig, HttpTls};
use crate::tls::PemError;

/// The agents built so far, by what sets them apart.
pub(super) struct Agents<'a> {
    dc: &'a DispatcherConfig,
    workers: usize,
    env: &'a dyn Fn(&str) -> Option<String>,
    built: HashMap<(HttpTls, Option<String>), ureq::Agent>,
}

impl<'a> Agents<'a> {
    pub(super) fn new(
        dc: &'a DispatcherConfig,
        workers: usize,
        env: &'a dyn Fn(&str) -> Option<String>,
    ) -> Agents<'a> {
        Agents {
            dc,
            workers,
            env,
            built: HashMap::new(),
        }
    }

    /// The agent for requests to `url` with `tls`; built on first use.
    pub(super) fn for_url(&mut self, url: &Uri, tls: &HttpTls) -> Result<ureq::Agent, PemError> {
        let proxy = proxy_for(url, self.env);
        let key = (tls.clone(), proxy);
        if let Some(agent) = self.built.get(&key) {
            return Ok(agent.clone());
        }
        let agent = build_agent(self.dc, self.workers, tls, key.1.as_deref())?;
        self.built.insert(key, agent.clone());
        Ok(agent)
    }
}

fn build_agent(
    dc: &DispatcherConfig,
    workers: usize,
    tls: &HttpTls,
    proxy: Option<&str>,
) -> Result<ureq::Agent, PemError> {
    let mut tls_config = TlsConfig::builder();
    if let Some(ca) = &tls.ca_file {
        tls_config = tls_config.root_certs(RootCerts::new_with_certs(
            &crate::tls::read_certificates(ca)?,
        ));
    }
    if let Some(client) = &tls.client_cert {
        let chain = crate::tls::read_certificates(&client.cert_file)?;
        let key = crate::tls::read_private_key(&client.key_file)?;
        tls_config = tls_config.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
    }
    // A proxy URL from the environment that ureq cannot use is left out, as curl
    // would fail on it: say so rather than send around it in silence.
    let proxy = proxy.and_then(|url| match ureq::Proxy::new(url) {
        Ok(p) => Some(p),
        Err(e) => {
            log::warn!(
                "proxy {} from the environment is not usable ({e}); not using it",
                shown(url)
            );
            None
        }
    });
    let config = ureq::Agent::config_builder()
        // 4xx/5xx come back as responses: their status and `Retry-After` decide.
        .http_status_as_error(false)
        .timeout_global(Some(dc.timeout))
        // A POST redirected would be replayed as a GET without body: a 3xx is an answer
        // (not retried, dead-lettered), so that a moved receiver is noticed.
        .max_redirects(0)
        // Every worker keeps its connection between requests; with ureq's default of 3
        // idle connections per host every request beyond that reconnects.
        .max_idle_connections_per_host(workers.max(dc.max_idle_conns))
        .max_idle_connections(workers.max(dc.max_idle_conns))
        .max_idle_age(dc.idle_conn_timeout)
        .user_agent(concat!("pikachu/", env!("CARGO_PKG_VERSION")))
        .tls_config(tls_config.build())
        // Chosen here per URL (curl's rules), never by ureq from the environment.
        .proxy(proxy)
        .build();
    Ok(ureq::Agent::with_parts(
        config,
        ureq::unversioned::transport::DefaultConnector::default(),
        resolve::CachingResolver::default(),
    ))
}

/// The proxy URL curl would use for `url`: `https_proxy` (or `HTTPS_PROXY`) for https,
/// `http_proxy` for http (lower case only: curl ignores `HTTP_PROXY`, which a CGI
/// request can set through a `Proxy:` header), else `all_proxy` (or `ALL_PROXY`); none
/// when `no_proxy` (or `NO_PROXY`) lists the host.
pub(super) fn proxy_for(url: &Uri, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let var = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| env(n))
            .filter(|v| !v.trim().is_empty())
    };
    let proxy = match url.scheme_str() {
        Some("https") => var(&["https_proxy", "HTTPS_PROXY"]),
        _ => var(&["http_proxy"]),
    }
    .or_else(|| var(&["all_proxy", "ALL_PROXY"]))?;
    let host = url.host().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match var(&["no_proxy", "NO_PROXY"]) {
        Some(list) if no_proxy_matches(&list, host) => None,
        _ => Some(proxy),
    }
}

/// curl's `NO_PROXY`: `*` is every host; a name matches itself and its subdomains (a
/// leading dot is ignored); an IP address matches itself, and `addr/bits` a range.
fn no_proxy_matches(list: &str, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let host_ip: Option<IpAddr> = host.parse().ok();
    list.split(',')
        .map(|entry| entry.trim().trim_start_matches('.').to_ascii_lowercase())
        .filter(|entry| !entry.is_empty())
        .any(|entry| {
            if entry == "*" || entry == host {
                return true;
            }
            if let Some(ip) = host_ip {
                return match entry.split_once('/') {
                    Some((net, bits)) => in_range(ip, net, bits),
                    None => entry.parse::<IpAddr>() == Ok(ip),
                };
            }
            host.strip_suffix(entry.as_str())
                .is_some_and(|rest| rest.ends_with('.'))
        })
}

fn in_range(ip: IpAddr, net: &str, bits: &str) -> bool {
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// A proxy URL without its credentials, for the log.
pub(super) fn shown(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://…@{host}"),
            None => url.to_owned(),
        },
        None => match url.rsplit_once('@') {
            Some((_, host)) => format!("…@{host}"),
            None => url.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn the_proxy_is_chosen_by_scheme_as_curl_does() {
        let e = env(&[
            ("HTTPS_PROXY", "http://secure:3128"),
            ("HTTP_PROXY", "http://ignored:3128"),
        ]);
        assert_eq!(
            proxy_for(&uri("https://a.example/x"), &e).as_deref(),
            Some("http://secure:3128")
        );
        // Upper-case HTTP_PROXY is not curl's variable for http.
        assert_eq!(proxy_for(&uri("http://a.example/x"), &e), None);
        let e = env(&[
            ("http_proxy", "http://plain:3128"),
            ("ALL_PROXY", "socks5://all:1080"),
        ]);
        assert_eq!(
            proxy_for(&uri("http://a.example/x"), &e).as_deref(),
            Some("http://plain:3128")
        );
        assert_eq!(
            proxy_for(&uri("https://a.example/x"), &e).as_deref(),
            Some("socks5://all:1080")
        );
        assert_eq!(proxy_for(&uri("https://a.example/x"), &env(&[])), None);
    }

    #[test]
    fn no_proxy_matches_names_subdomains_addresses_and_ranges() {
        let list = "localhost, .internal.example,10.0.0.0/8,::1,example.org";
        for host in [
            "localhost",
            "api.internal.example",
            "internal.example",
            "10.1.2.3",
            "::1",
            "example.org",
            "www.example.org",
        ] {
            assert!(no_proxy_matches(list, host), "{host}");
        }
        for host in ["notexample.org", "11.0.0.1", "internal.example.com", "::2"] {
            assert!(!no_proxy_matches(list, host), "{host}");
        }
        assert!(no_proxy_matches("*", "anything"));
        let e = env(&[("https_proxy", "http://p:1"), ("NO_PROXY", "127.0.0.1")]);
        assert_eq!(proxy_for(&uri("https://127.0.0.1:8443/x"), &e), None);
        assert_eq!(
            proxy_for(&uri("https://[::1]:8443/x"), &e).as_deref(),
            Some("http://p:1")
        );
    }

    #[test]
    fn proxy_credentials_are_not_shown() {
        assert_eq!(shown("http://user:pw@proxy:3128"), "http://…@proxy:3128");
        assert_eq!(shown("proxy:3128"), "proxy:3128");
    }
}
