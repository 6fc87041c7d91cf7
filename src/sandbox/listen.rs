//! Where the sandbox listens (`--listen`): a host and a port, the host an IP address or a name
//! (`localhost:0`), resolved when the sandbox binds, as a server's listen flag is.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

/// A host and a port to bind; port 0 picks a free one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenAddr {
    /// An IP address (an IPv6 one without its brackets) or a host name.
    host: String,
    port: u16,
}

impl ListenAddr {
    /// Binds the first of the host's addresses that can be bound.
    pub async fn bind(&self) -> std::io::Result<tokio::net::TcpListener> {
        tokio::net::TcpListener::bind((self.host.as_str(), self.port)).await
    }
}

impl From<SocketAddr> for ListenAddr {
    fn from(addr: SocketAddr) -> Self {
        Self {
            host: addr.ip().to_string(),
            port: addr.port(),
        }
    }
}

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(addr.into());
        }
        let Some((host, port)) = text.rsplit_once(':') else {
            return Err(format!(
                "`{text}` is not HOST:PORT, e.g. 127.0.0.1:8006 or localhost:0"
            ));
        };
        let port: u16 = port
            .parse()
            .map_err(|_| format!("`{port}` is not a port: 0 to 65535 (0 picks a free one)"))?;
        let is_name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
        if host.is_empty() || !host.chars().all(is_name_char) {
            return Err(format!(
                "`{host}` is not a host: give an IP address (an IPv6 one in brackets, [::1]) or \
                 a host name"
            ));
        }
        Ok(Self {
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_host_names_are_taken() {
        for (text, shown) in [
            ("127.0.0.1:8006", "127.0.0.1:8006"),
            ("[::1]:0", "[::1]:0"),
            ("localhost:0", "localhost:0"),
            ("sandbox.internal:8006", "sandbox.internal:8006"),
        ] {
            assert_eq!(text.parse::<ListenAddr>().unwrap().to_string(), shown);
        }
        for (bad, why) in [
            ("localhost", "is not HOST:PORT"),
            ("localhost:http", "is not a port"),
            ("localhost:70000", "is not a port"),
            (":8006", "is not a host"),
            ("::1:0", "is not a host"),
            ("a b:1", "is not a host"),
        ] {
            let err = bad.parse::<ListenAddr>().unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[tokio::test]
    async fn a_host_name_is_resolved_when_binding() {
        let listener = "localhost:0"
            .parse::<ListenAddr>()
            .unwrap()
            .bind()
            .await
            .unwrap();
        assert!(listener.local_addr().unwrap().ip().is_loopback());
    }
}
