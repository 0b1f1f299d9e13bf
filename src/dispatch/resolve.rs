//! Name resolution for webhook requests. ureq resolves the callback host before every
//! request, also when a pooled connection to it is reused, and with a timeout set it
//! does so on a thread of its own: one new thread per webhook. This resolver answers
//! IP literals at once and keeps resolved names for a few seconds, leaving the lookup
//! itself (with its timeout) to ureq's resolver. It only maps names to addresses.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// How long a resolved name is used before it is looked up again: short, so that a
/// receiver that moves (DNS failover) is followed within seconds.
const TTL: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
pub(super) struct CachingResolver {
    lookup: DefaultResolver,
    names: Mutex<HashMap<String, (Instant, ResolvedSocketAddrs)>>,
}

impl Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host_port = match (uri.scheme(), uri.authority()) {
            (Some(scheme), Some(authority)) => DefaultResolver::host_and_port(scheme, authority),
            _ => None,
        };
        // Anything unusual goes to ureq's resolver, which reports it properly.
        let Some(host_port) = host_port else {
            return self.lookup.resolve(uri, config, timeout);
        };
        // `127.0.0.1:3000` and `[::1]:3000` need no lookup at all.
        if let Ok(addr) = host_port.parse::<SocketAddr>() {
            let mut addrs = self.empty();
            addrs.push(addr);
            return Ok(addrs);
        }
        if let Some((at, addrs)) = self.names.lock().get(&host_port) {
            if at.elapsed() < TTL {
                return Ok(addrs.clone());
            }
        }
        let addrs = self.lookup.resolve(uri, config, timeout)?;
        self.names
            .lock()
            .insert(host_port, (Instant::now(), addrs.clone()));
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(r: &CachingResolver, url: &str) -> Result<Vec<SocketAddr>, ureq::Error> {
        let uri: Uri = url.parse().expect("uri");
        let config = Config::default();
        let timeout = NextTimeout {
            after: std::time::Duration::from_secs(5).into(),
            reason: ureq::Timeout::Resolve,
            ..NextTimeout::default()
        };
        r.resolve(&uri, &config, timeout)
            .map(|a| a.iter().copied().collect())
    }

    #[test]
    fn ip_literals_resolve_to_themselves_without_a_lookup() {
        let r = CachingResolver::default();
        assert_eq!(
            resolve(&r, "http://127.0.0.1:3000/hook").unwrap(),
            ["127.0.0.1:3000".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(
            resolve(&r, "http://[::1]/hook").unwrap(),
            ["[::1]:80".parse::<SocketAddr>().unwrap()]
        );
        assert!(r.names.lock().is_empty(), "nothing to remember");
    }

    #[test]
    fn names_are_looked_up_once_and_remembered() {
        let r = CachingResolver::default();
        let first = resolve(&r, "http://localhost:3000/a").unwrap();
        assert!(
            first
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 3000),
            "{first:?}"
        );
        assert!(r.names.lock().contains_key("localhost:3000"));
        assert_eq!(resolve(&r, "http://localhost:3000/b").unwrap(), first);
    }

    #[test]
    fn an_unknown_host_is_an_error_and_not_remembered() {
        let r = CachingResolver::default();
        assert!(resolve(&r, "http://no-such-host.invalid/hook").is_err());
        assert!(r.names.lock().is_empty());
    }
}
