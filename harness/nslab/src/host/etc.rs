//! The per-host /etc files a lab gives its programs: hosts, resolv.conf and an optional gai.conf.

use std::net::IpAddr;

/// `/etc/hosts` of a lab host: loopback names as on Debian, then every lab host.
pub(crate) fn hosts(entries: &[(String, Vec<IpAddr>)], domain: &str) -> String {
    let mut s = String::from("# written by nslab for this lab host\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for (name, addrs) in entries {
        for a in addrs {
            s.push_str(&format!("{a}\t{name}.{domain} {name}\n"));
        }
    }
    s
}

/// `/etc/resolv.conf` of a lab host. Without a lab DNS server (`nameservers` empty: a lab with a
/// DNS server gives every host at least one, or fails to build), it names the host's own
/// loopback, where nothing listens, so look-ups fail at once instead of leaking to the real
/// network; a comment in the file says so.
pub(crate) fn resolv_conf(nameservers: &[String], search: &[String]) -> String {
    let mut s = format!("# written by nslab for this lab host\nsearch {}\noptions timeout:1 attempts:2\n", search.join(" "));
    if nameservers.is_empty() {
        s.push_str("# no DNS server in this lab: look-ups go to this host's loopback and fail\nnameserver 127.0.0.1\n");
    }
    for n in nameservers {
        s.push_str(&format!("nameserver {n}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lists_loopback_then_lab_hosts() {
        let h = hosts(&[("server".into(), vec!["192.0.2.23".parse().unwrap(), "2001:db8:1::23".parse().unwrap()])], "lab.test");
        assert_eq!(
            h,
            "# written by nslab for this lab host\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
             192.0.2.23\tserver.lab.test server\n2001:db8:1::23\tserver.lab.test server\n"
        );
    }

    #[test]
    fn resolv_conf_never_points_outside_the_lab() {
        let r = resolv_conf(&[], &["lab.test".into()]);
        assert!(r.contains("nameserver 127.0.0.1\n"));
        let r = resolv_conf(&["fe80::53%eth0".into()], &["example.test".into(), "lab.test".into()]);
        assert!(r.contains("search example.test lab.test\n"));
        assert!(r.ends_with("nameserver fe80::53%eth0\n"));
    }
}
