//! The egress proxy: the only way out of a `local` sandbox's network namespace.
//!
//! A sandbox has no network interface but its own loopback. Its processes get
//! `HTTP(S)_PROXY=http://127.0.0.1:3128`, which the sandbox's init relays to a Unix socket
//! served here, one per sandbox, so the proxy always knows which sandbox is asking. It
//! understands `CONNECT host:port` (HTTPS and any TLS) and absolute-URI HTTP requests, asks
//! the [`EgressPolicy`] whether that sandbox may reach `host:port`, and then relays bytes or
//! answers `403` and logs the refusal. Names are resolved here, on the host, and the proxy
//! connects to the addresses it checked (a name cannot resolve differently in between).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixListener, UnixStream};

/// The largest request head read before the request is refused.
const MAX_HEAD: usize = 64 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// What a policy says about one destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Egress {
    Denied,
    /// Whatever addresses the name resolves to (the operator's own allow-list).
    Allowed,
    /// Only public addresses: never loopback, private, link-local or other local ranges, so
    /// that a destination a user added cannot open the host's or the network's services.
    PublicOnly,
}

/// Decides where a sandbox may connect.
#[async_trait]
pub trait EgressPolicy: Send + Sync {
    async fn decide(&self, sandbox_id: &str, host: &str, port: u16) -> Egress;
}

/// Whether `ip` is an address on the public internet, as far as the address alone tells.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
                || (a == 192 && b == 0) // IETF protocol assignments
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
                || a >= 240)
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || v6.is_unique_local()
                    || v6.is_unicast_link_local()
                    || v6.segments()[0] == 0x2001 && v6.segments()[1] == 0xdb8)
            }
        },
    }
}

/// Host patterns: `example.com` (ports 80 and 443), `example.com:8080`, `*.example.com`
/// (any subdomain, not the domain itself), `host:*` (any port), IPv6 as `[::1]:8080`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<(String, Option<u16>)>,
}

impl AllowList {
    pub fn parse<S: AsRef<str>>(patterns: &[S]) -> Result<Self, String> {
        let mut entries = Vec::new();
        for pattern in patterns {
            let pattern = pattern.as_ref().trim().to_ascii_lowercase();
            if pattern.is_empty() {
                continue;
            }
            let (host, port) = split_host_port(&pattern)
                .ok_or_else(|| format!("{pattern:?} is not a host or host:port pattern"))?;
            let port = match port {
                None => None,
                Some("*") => Some(None),
                Some(p) => {
                    Some(Some(p.parse::<u16>().map_err(|_| format!("bad port in {pattern:?}"))?))
                }
            };
            let valid_host = !host.is_empty()
                && host.chars().all(|c| c.is_ascii_alphanumeric() || "-.*:".contains(c))
                && !host[1..].contains('*')
                && (!host.starts_with('*') || host.starts_with("*."));
            if !valid_host {
                return Err(format!("{pattern:?} is not a valid host pattern"));
            }
            match port {
                None => {
                    entries.push((host.to_owned(), Some(80)));
                    entries.push((host.to_owned(), Some(443)));
                }
                Some(port) => entries.push((host.to_owned(), port)),
            }
        }
        Ok(Self { entries })
    }

    pub fn merge(&self, other: &Self) -> Self {
        Self { entries: self.entries.iter().chain(&other.entries).cloned().collect() }
    }

    pub fn allows(&self, host: &str, port: u16) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.entries.iter().any(|(pattern, allowed)| {
            let host_ok = match pattern.strip_prefix("*.") {
                Some(domain) => host.ends_with(&format!(".{domain}")),
                None => *pattern == host,
            };
            host_ok && allowed.is_none_or(|p| p == port)
        })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// `host:port`, `[v6]:port` or `host` (port `None`).
fn split_host_port(text: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(port) => Some((host, Some(port))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some((host, Some(port))),
        Some(_) => None,
        None => Some((text, None)),
    }
}

/// Serves one sandbox's proxy socket.
pub struct EgressProxy {
    policy: Arc<dyn EgressPolicy>,
}

impl EgressProxy {
    pub fn new(policy: Arc<dyn EgressPolicy>) -> Arc<Self> {
        Arc::new(Self { policy })
    }

    /// Accept connections on `listener` for `sandbox_id` until the task is aborted.
    pub fn serve(
        self: &Arc<Self>,
        sandbox_id: String,
        listener: UnixListener,
    ) -> tokio::task::JoinHandle<()> {
        let proxy = self.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let proxy = proxy.clone();
                let sandbox_id = sandbox_id.clone();
                tokio::spawn(async move {
                    if let Err(err) = proxy.handle(&sandbox_id, conn).await {
                        tracing::debug!(%sandbox_id, %err, "egress connection ended with an error");
                    }
                });
            }
        })
    }

    async fn handle(&self, sandbox_id: &str, mut client: UnixStream) -> std::io::Result<()> {
        let mut buffer = Vec::with_capacity(4096);
        let head_end = loop {
            if let Some(end) = find_head_end(&buffer) {
                break end;
            }
            if buffer.len() > MAX_HEAD {
                return respond(&mut client, 431, "request head too large").await;
            }
            let mut chunk = [0u8; 4096];
            let n = client.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buffer.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
        let rest = buffer[head_end..].to_vec();
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default();
        let mut parts = request_line.split(' ');
        let (method, target, version) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("HTTP/1.1"),
        );

        let (host, port, forwarded_head) = if method.eq_ignore_ascii_case("CONNECT") {
            let Some((host, Some(port))) = split_host_port(target) else {
                return respond(&mut client, 400, "CONNECT needs host:port").await;
            };
            let Ok(port) = port.parse::<u16>() else {
                return respond(&mut client, 400, "bad port").await;
            };
            (host.to_owned(), port, None)
        } else if let Some(after) = target.strip_prefix("http://") {
            let (authority, path) = match after.find('/') {
                Some(i) => (&after[..i], &after[i..]),
                None => (after, "/"),
            };
            let Some((host, port)) = split_host_port(authority) else {
                return respond(&mut client, 400, "bad host in the request").await;
            };
            let Ok(port) = port.map_or(Ok(80), str::parse::<u16>) else {
                return respond(&mut client, 400, "bad port").await;
            };
            // Origin-form for the server; one request per connection keeps relaying simple.
            let mut forwarded = format!("{method} {path} {version}\r\n");
            for line in lines.filter(|l| !l.is_empty()) {
                let name = line.split(':').next().unwrap_or("").trim().to_ascii_lowercase();
                if name.starts_with("proxy-") || name == "connection" || name == "keep-alive" {
                    continue;
                }
                forwarded.push_str(line);
                forwarded.push_str("\r\n");
            }
            forwarded.push_str("Connection: close\r\n\r\n");
            (host.to_owned(), port, Some(forwarded))
        } else {
            return respond(
                &mut client,
                400,
                "only CONNECT and absolute http:// requests are proxied",
            )
            .await;
        };

        let verdict = self.policy.decide(sandbox_id, &host, port).await;
        if verdict == Egress::Denied {
            count_egress("denied", "not_listed");
            tracing::warn!(%sandbox_id, %host, port, "egress denied: not on the sandbox's allow-list");
            let message = format!("agentbox: {host}:{port} is not on this sandbox's allow-list");
            return respond(&mut client, 403, &message).await;
        }
        let resolved =
            tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::lookup_host((host.as_str(), port)))
                .await;
        let mut addresses: Vec<SocketAddr> = match resolved {
            Ok(Ok(found)) => found.collect(),
            Ok(Err(err)) => {
                return respond(&mut client, 502, &format!("cannot resolve {host}: {err}")).await;
            }
            Err(_) => {
                return respond(&mut client, 504, &format!("{host} did not resolve in time")).await;
            }
        };
        if verdict == Egress::PublicOnly {
            addresses.retain(|address| is_public(address.ip()));
            if addresses.is_empty() {
                count_egress("denied", "local_network");
                tracing::warn!(%sandbox_id, %host, port, "egress denied: a user's host on a local network");
                let message = format!(
                    "agentbox: {host}:{port} is on a loopback or private network; only the \
                     server's own allow-list can open those"
                );
                return respond(&mut client, 403, &message).await;
            }
        }
        let Some(mut upstream) = connect_any(&mut client, &host, port, &addresses).await? else {
            return Ok(());
        };
        tracing::debug!(%sandbox_id, %host, port, "egress allowed");
        count_egress(
            "allowed",
            if verdict == Egress::PublicOnly { "user_allow_list" } else { "server_allow_list" },
        );
        match forwarded_head {
            None => client.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n").await?,
            Some(head) => upstream.write_all(head.as_bytes()).await?,
        }
        if !rest.is_empty() {
            upstream.write_all(&rest).await?;
        }
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
        Ok(())
    }
}

/// `agentbox_egress_requests_total`: what was decided, and by which list (a bounded set of
/// classes, never the host itself).
fn count_egress(decision: &'static str, host_class: &'static str) {
    metrics::counter!(
        "agentbox_egress_requests_total",
        "decision" => decision,
        "host_class" => host_class
    )
    .increment(1);
}

/// The first of `addresses` that accepts a connection; otherwise the client is told why and
/// the answer is `None`.
async fn connect_any(
    client: &mut UnixStream,
    host: &str,
    port: u16,
    addresses: &[SocketAddr],
) -> std::io::Result<Option<TcpStream>> {
    let mut last = None;
    for address in addresses {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => return Ok(Some(stream)),
            Ok(Err(err)) => last = Some(err.to_string()),
            Err(_) => last = Some("no answer".to_owned()),
        }
    }
    let reason = last.unwrap_or_else(|| "no address".to_owned());
    let status = if reason == "no answer" { 504 } else { 502 };
    respond(client, status, &format!("cannot reach {host}:{port}: {reason}")).await?;
    Ok(None)
}

fn find_head_end(buffer: &[u8]) -> Option<usize> {
    buffer.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

async fn respond(client: &mut UnixStream, status: u16, message: &str) -> std::io::Result<()> {
    let reason = match status {
        400 => "Bad Request",
        403 => "Forbidden",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        _ => "Gateway Timeout",
    };
    let body = format!("{message}\n");
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    client.write_all(response.as_bytes()).await?;
    client.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_patterns() {
        let list = AllowList::parse(&[
            "registry.npmjs.org",
            "*.pythonhosted.org",
            "127.0.0.1:8089",
            "[::1]:9000",
            "api.example.com:*",
        ])
        .unwrap();
        assert!(list.allows("registry.npmjs.org", 443));
        assert!(list.allows("REGISTRY.npmjs.org.", 80));
        assert!(!list.allows("registry.npmjs.org", 22));
        assert!(list.allows("files.pythonhosted.org", 443));
        assert!(!list.allows("pythonhosted.org", 443));
        assert!(!list.allows("evilpythonhosted.org", 443));
        assert!(list.allows("127.0.0.1", 8089));
        assert!(!list.allows("127.0.0.1", 5432));
        assert!(list.allows("::1", 9000));
        assert!(list.allows("api.example.com", 1234));
        for bad in ["a b", "exa*mple.com", "host:99999", "*x.com"] {
            assert!(AllowList::parse(&[bad]).is_err(), "{bad} accepted");
        }
    }

    struct Only(AllowList);

    #[async_trait]
    impl EgressPolicy for Only {
        async fn decide(&self, _sandbox: &str, host: &str, port: u16) -> Egress {
            if self.0.allows(host, port) { Egress::Allowed } else { Egress::Denied }
        }
    }

    #[test]
    fn public_addresses_are_told_from_local_ones() {
        for local in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(local.parse().unwrap()), "{local} counted as public");
        }
        for public in ["1.1.1.1", "93.184.216.34", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(public.parse().unwrap()), "{public} counted as local");
        }
    }

    /// Everything is allowed, but only on public addresses (like a user's own hosts).
    struct PublicOnly;

    #[async_trait]
    impl EgressPolicy for PublicOnly {
        async fn decide(&self, _sandbox: &str, _host: &str, _port: u16) -> Egress {
            Egress::PublicOnly
        }
    }

    #[tokio::test]
    async fn a_public_only_grant_never_reaches_loopback() {
        let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = upstream.local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("proxy.sock");
        let proxy = EgressProxy::new(Arc::new(PublicOnly));
        let _task = proxy.serve("sbx".into(), UnixListener::bind(&socket).unwrap());
        for target in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
            let mut conn = UnixStream::connect(&socket).await.unwrap();
            let request = format!("CONNECT {target} HTTP/1.1\r\n\r\n");
            conn.write_all(request.as_bytes()).await.unwrap();
            let mut out = String::new();
            conn.read_to_string(&mut out).await.unwrap();
            assert!(out.starts_with("HTTP/1.1 403"), "{target}: {out}");
            assert!(out.contains("loopback or private network"), "{out}");
        }
        // Nothing ever connected.
        let accepted = tokio::time::timeout(Duration::from_millis(200), upstream.accept()).await;
        assert!(accepted.is_err(), "the proxy connected to loopback");
    }

    #[tokio::test]
    async fn proxies_allowed_requests_and_refuses_the_rest() {
        // An upstream HTTP server on loopback.
        let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = upstream.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = upstream.accept().await {
                let mut buf = vec![0u8; 4096];
                let n = conn.read(&mut buf).await.unwrap();
                let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                let body =
                    if request.starts_with("GET /hello HTTP/1.1") && !request.contains("Proxy-") {
                        "hello"
                    } else {
                        "bad request line"
                    };
                let _ = conn
                    .write_all(
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len())
                            .as_bytes(),
                    )
                    .await;
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("proxy.sock");
        let proxy = EgressProxy::new(Arc::new(Only(
            AllowList::parse(&[format!("127.0.0.1:{port}")]).unwrap(),
        )));
        let _task = proxy.serve("sbx".into(), UnixListener::bind(&socket).unwrap());

        let ask = |request: String| {
            let socket = socket.clone();
            async move {
                let mut conn = UnixStream::connect(&socket).await.unwrap();
                conn.write_all(request.as_bytes()).await.unwrap();
                let mut out = String::new();
                conn.read_to_string(&mut out).await.unwrap();
                out
            }
        };
        let ok = ask(format!("GET http://127.0.0.1:{port}/hello HTTP/1.1\r\nHost: x\r\nProxy-Connection: keep-alive\r\n\r\n")).await;
        assert!(ok.ends_with("hello"), "{ok}");
        let denied = ask("GET http://127.0.0.1:5432/ HTTP/1.1\r\nHost: x\r\n\r\n".into()).await;
        assert!(
            denied.starts_with("HTTP/1.1 403") && denied.contains("127.0.0.1:5432"),
            "{denied}"
        );
        let tunnel =
            ask(format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n"))
                .await;
        assert!(
            tunnel.starts_with("HTTP/1.1 200 Connection Established") && tunnel.ends_with("hello"),
            "{tunnel}"
        );
        let denied = ask("CONNECT 10.0.0.1:443 HTTP/1.1\r\n\r\n".into()).await;
        assert!(denied.starts_with("HTTP/1.1 403"), "{denied}");
        let bad = ask("GET /relative HTTP/1.1\r\n\r\n".into()).await;
        assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    }
}
