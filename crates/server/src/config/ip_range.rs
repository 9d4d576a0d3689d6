//! One entry of `general_settings.allowed_ips`: an address (as LiteLLM takes them) or a CIDR range.

use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    network: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// `192.168.1.1`, `10.0.0.0/8`, `::1`, `fd00::/8`.
    pub fn parse(text: &str) -> Result<IpRange, String> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let network: IpAddr = addr
            .parse::<IpAddr>()
            .map_err(|_| {
                format!("\"{text}\" is not an IP address or CIDR range; write it like 192.168.1.10 or 10.0.0.0/8")
            })?
            .to_canonical();
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("\"{text}\": the prefix length must be a number from 0 to {max}")),
            },
        };
        Ok(IpRange { network, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::IpRange;

    #[test]
    fn addresses_and_ranges() {
        let ip = |s: &str| s.parse().unwrap();
        let one = IpRange::parse("192.168.1.1").unwrap();
        assert!(one.contains(ip("192.168.1.1")));
        assert!(one.contains(ip("::ffff:192.168.1.1")), "IPv4 clients on a dual-stack socket");
        assert!(!one.contains(ip("192.168.1.2")));
        let net = IpRange::parse("10.0.0.0/8").unwrap();
        assert!(net.contains(ip("10.200.3.4")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(IpRange::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        let v6 = IpRange::parse("fd00::/8").unwrap();
        assert!(v6.contains(ip("fd12::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        for bad in ["localhost", "10.0.0.0/33", "1.2.3.4/x", "", "::1/129"] {
            assert!(IpRange::parse(bad).is_err(), "{bad}");
        }
    }
}
