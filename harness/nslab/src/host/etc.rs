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

/// The `options` and `search` lines of a host's `/etc/resolv.conf` (glibc's resolver; see
/// resolv.conf(5)). Unset fields keep nslab's defaults: `timeout:1 attempts:2`, and the lab's
/// search list (its domain `lab.test`, then the DNS zones).
///
/// ```
/// use nslab::host::etc::ResolvOptions;
/// let o = ResolvOptions::new().timeout(5).attempts(1).rotate(true).ndots(2).single_request(true).search(["corp.example.test"]);
/// assert_eq!(o.options_line(), "options timeout:5 attempts:1 rotate ndots:2 single-request");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvOptions {
    timeout: Option<u32>,
    attempts: Option<u32>,
    rotate: bool,
    ndots: Option<u32>,
    single_request: bool,
    single_request_reopen: bool,
    edns0: bool,
    use_vc: bool,
    search: Option<Vec<String>>,
}

/// glibc's largest `timeout` (seconds); larger values are silently cut to it.
pub const MAX_TIMEOUT: u32 = 30;
/// glibc's largest `attempts`.
pub const MAX_ATTEMPTS: u32 = 5;
/// glibc's largest `ndots`.
pub const MAX_NDOTS: u32 = 15;

impl ResolvOptions {
    /// nslab's defaults: `options timeout:1 attempts:2` and the lab's search list.
    pub fn new() -> Self {
        Self::default()
    }

    /// `timeout:N`: seconds to wait for a server before the next try (1 to 30; nslab's default 1).
    pub fn timeout(mut self, secs: u32) -> Self {
        self.timeout = Some(secs);
        self
    }

    /// `attempts:N`: rounds over the nameservers before giving up (1 to 5; nslab's default 2).
    pub fn attempts(mut self, n: u32) -> Self {
        self.attempts = Some(n);
        self
    }

    /// `rotate`: spread queries over the nameservers round-robin instead of always the first.
    pub fn rotate(mut self, on: bool) -> Self {
        self.rotate = on;
        self
    }

    /// `ndots:N`: names with fewer dots are tried with the search list first (0 to 15; glibc's default 1).
    pub fn ndots(mut self, n: u32) -> Self {
        self.ndots = Some(n);
        self
    }

    /// `single-request`: send the A and AAAA queries one after the other, not in parallel from one socket.
    pub fn single_request(mut self, on: bool) -> Self {
        self.single_request = on;
        self
    }

    /// `single-request-reopen`: send A and AAAA from two sockets.
    pub fn single_request_reopen(mut self, on: bool) -> Self {
        self.single_request_reopen = on;
        self
    }

    /// `edns0`: announce EDNS0 (larger UDP answers).
    pub fn edns0(mut self, on: bool) -> Self {
        self.edns0 = on;
        self
    }

    /// `use-vc`: query over TCP.
    pub fn use_vc(mut self, on: bool) -> Self {
        self.use_vc = on;
        self
    }

    /// The `search` list, replacing the lab's (so a short name such as `web` then resolves
    /// through DNS only when `lab.test` is listed; `/etc/hosts` still names every lab host). An
    /// empty list writes no `search` line.
    pub fn search<S: Into<String>>(mut self, domains: impl IntoIterator<Item = S>) -> Self {
        self.search = Some(domains.into_iter().map(Into::into).collect());
        self
    }

    /// The search list given with [`ResolvOptions::search`], if any.
    pub fn search_list(&self) -> Option<&[String]> {
        self.search.as_deref()
    }

    /// The `options` line these settings write.
    pub fn options_line(&self) -> String {
        let mut s = format!("options timeout:{} attempts:{}", self.timeout.unwrap_or(1), self.attempts.unwrap_or(2));
        if self.rotate {
            s.push_str(" rotate");
        }
        if let Some(n) = self.ndots {
            s.push_str(&format!(" ndots:{n}"));
        }
        for (on, word) in
            [(self.single_request, "single-request"), (self.single_request_reopen, "single-request-reopen"), (self.edns0, "edns0"), (self.use_vc, "use-vc")]
        {
            if on {
                s.push(' ');
                s.push_str(word);
            }
        }
        s
    }

    /// Checks the values against glibc's limits (it silently cuts larger ones, which would
    /// make a scenario test something else than it says) and the search domains' syntax.
    ///
    /// # Errors
    /// A message naming the option, the value and the allowed range.
    pub fn check(&self) -> Result<(), String> {
        for (name, v, lo, hi) in [("timeout", self.timeout, 1, MAX_TIMEOUT), ("attempts", self.attempts, 1, MAX_ATTEMPTS), ("ndots", self.ndots, 0, MAX_NDOTS)]
        {
            if let Some(v) = v {
                if v < lo || v > hi {
                    return Err(format!("resolv.conf option {name} = {v} is out of range; expected {lo} to {hi} (glibc silently cuts larger values to {hi})"));
                }
            }
        }
        for d in self.search.iter().flatten() {
            let ok = !d.is_empty()
                && d.len() <= 253
                && d.trim_end_matches('.').split('.').all(|l| {
                    !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') && !l.starts_with('-') && !l.ends_with('-')
                });
            if !ok {
                return Err(format!("search domain {d:?} is not a DNS name; expected a name such as \"corp.example.test\""));
            }
        }
        Ok(())
    }
}

/// `/etc/resolv.conf` of a lab host. Without a nameserver (`nameservers` empty: a lab without
/// a DNS server whose host names no resolver), it names the host's own loopback, where nothing
/// listens, so look-ups fail at once instead of leaking to the real network; a comment in the
/// file says so. `options` may replace the search list.
pub(crate) fn resolv_conf(nameservers: &[String], search: &[String], options: &ResolvOptions) -> String {
    let search = options.search.as_deref().unwrap_or(search);
    let mut s = String::from("# written by nslab for this lab host\n");
    if !search.is_empty() {
        s.push_str(&format!("search {}\n", search.join(" ")));
    }
    s.push_str(&options.options_line());
    s.push('\n');
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
        let d = ResolvOptions::new();
        let r = resolv_conf(&[], &["lab.test".into()], &d);
        assert!(r.contains("nameserver 127.0.0.1\n"));
        assert!(r.contains("options timeout:1 attempts:2\n"));
        let r = resolv_conf(&["fe80::53%eth0".into()], &["example.test".into(), "lab.test".into()], &d);
        assert!(r.contains("search example.test lab.test\n"));
        assert!(r.ends_with("nameserver fe80::53%eth0\n"));
    }

    #[test]
    fn resolv_options_replace_the_defaults_and_the_search_list() {
        let o = ResolvOptions::new().timeout(3).attempts(4).rotate(true).ndots(5).single_request(true).edns0(true).search(["corp.example.test"]);
        let r = resolv_conf(&["192.0.2.53".into(), "198.51.100.53".into()], &["lab.test".into()], &o);
        assert_eq!(
            r,
            "# written by nslab for this lab host\nsearch corp.example.test\noptions timeout:3 attempts:4 rotate ndots:5 single-request edns0\n\
             nameserver 192.0.2.53\nnameserver 198.51.100.53\n"
        );
        let none = resolv_conf(&["192.0.2.53".into()], &["lab.test".into()], &ResolvOptions::new().search(Vec::<String>::new()));
        assert!(!none.contains("search"), "{none}");
    }

    #[test]
    fn resolv_options_outside_glibcs_limits_are_refused() {
        assert_eq!(
            ResolvOptions::new().timeout(31).check().unwrap_err(),
            "resolv.conf option timeout = 31 is out of range; expected 1 to 30 (glibc silently cuts larger values to 30)"
        );
        assert!(ResolvOptions::new().attempts(0).check().is_err());
        assert!(ResolvOptions::new().ndots(16).check().is_err());
        assert!(ResolvOptions::new().ndots(0).check().is_ok());
        assert_eq!(
            ResolvOptions::new().search(["bad domain"]).check().unwrap_err(),
            "search domain \"bad domain\" is not a DNS name; expected a name such as \"corp.example.test\""
        );
        assert!(ResolvOptions::new().search(["corp.example.test."]).check().is_ok());
    }
}
