//! `[resolvers.<name>]`: decoding, the generated service, upstream order and families, located errors.

use std::net::IpAddr;
use std::path::Path;

use nslab::lab::resolver::ResolverMode;
use nslab_scenario::scenario::{parse_str, Condition, FileContent, Run, Upstream, DEFAULT_STALE};

const LAB: &str = "description = \"x\"\n[hosts.cache]\n[hosts.client]\n[dns]\n";

fn load(extra: &str) -> std::result::Result<nslab_scenario::scenario::Scenario, String> {
    parse_str(Path::new("s.toml"), &format!("{LAB}{extra}")).map_err(|e| e.to_string())
}

#[test]
fn a_resolver_is_a_generated_service_started_before_the_scenarios_own() {
    let s = load("[services.app]\nhost = \"client\"\ncommand = [\"true\"]\n[resolvers.cache]\nhost = \"cache\"\nkind = \"unbound\"\nmin_ttl = \"20s\"\nserve_stale = true\n")
        .unwrap();
    assert_eq!(s.services.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["cache", "app"]);
    let svc = &s.services[0];
    let Run::Command(argv) = &svc.run else { panic!("a command") };
    assert_eq!(argv.iter().map(|t| t.source()).collect::<Vec<_>>(), ["unbound", "-d", "-p", "-c", "{{service_dir}}/unbound.conf"]);
    assert!(matches!(&svc.files[0].content, FileContent::Resolver { root_hints: false, .. }));
    assert!(matches!(&svc.ready, Some(Condition::Answers { query, .. }) if query == "dns.lab.test"));
    let r = s.resolver("cache").unwrap();
    assert_eq!((r.min_ttl, r.serve_stale, r.upstream.clone()), (Some(20), Some(DEFAULT_STALE), Upstream::LabDns));
    assert_eq!(s.resolver_hosts(), [("cache".to_string(), "cache".to_string())]);
}

#[test]
fn upstreams_start_first_and_resolve_to_their_hosts_addresses() {
    let s =
        load("[resolvers.local]\nhost = \"client\"\nkind = \"systemd-resolved\"\nupstream = \"net\"\n[resolvers.net]\nhost = \"cache\"\nkind = \"unbound\"\n")
            .unwrap();
    assert_eq!(s.resolvers.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["net", "local"]);
    let local = s.resolver("local").unwrap();
    let addrs = |h: &str| -> Vec<IpAddr> {
        match h {
            "cache" => vec!["192.0.2.2".parse().unwrap(), "2001:db8:1::2".parse().unwrap()],
            _ => vec!["2001:db8:1::3".parse().unwrap()],
        }
    };
    // The client host has IPv6 only: the upstream's IPv4 address is left out.
    let spec = local.spec(&addrs, &[], &s.resolver_hosts());
    assert_eq!(spec.mode, ResolverMode::Forward { upstreams: vec!["[2001:db8:1::2]:53".parse().unwrap()] });
    assert_eq!(spec.listen, ["2001:db8:1::3".parse::<IpAddr>().unwrap()]);
}

#[test]
fn located_errors() {
    let e =
        load("[resolvers.a]\nhost = \"cache\"\nkind = \"unbound\"\nupstream = \"b\"\n[resolvers.b]\nhost = \"cache\"\nkind = \"unbound\"\nupstream = \"a\"\n")
            .unwrap_err();
    assert!(e.starts_with("s.toml:5:1: resolver \"a\" is in a loop of resolvers forwarding to each other"), "{e}");
    let e = load("[resolvers.a]\nhost = \"cache\"\nkind = \"unbound\"\nmode = \"iterate\"\n").unwrap_err();
    assert_eq!(e, "s.toml:8:8: mode in resolver \"a\": \"iterate\" is not a mode; expected \"forward\" (to the lab DNS or `upstream`) or \"recurse\" (from the lab's root)");
    let e = load("[resolvers.a]\nhost = \"cache\"\nkind = \"unbound\"\nmode = \"recurse\"\nupstream = \"192.0.2.9\"\n").unwrap_err();
    assert!(e.starts_with("s.toml:9:12: upstream in resolver \"a\": a resolver with mode = \"recurse\" asks the lab's root"), "{e}");
    let e = load("[resolvers.a]\nhost = \"cache\"\nkind = \"unbound\"\nmin_ttl = \"1.5s\"\n").unwrap_err();
    assert!(e.starts_with("s.toml:8:11: min_ttl in resolver \"a\": \"1.5s\" is not a whole number of seconds"), "{e}");
    let e = load("[resolvers.a]\nhost = \"cache\"\nkind = \"unbound\"\ncommand = [\"x\"]\n").unwrap_err();
    assert!(e.starts_with("s.toml:8:1: command in resolver \"a\": only kind = \"custom\" takes a command"), "{e}");
    let e = load("[services.a]\nhost = \"cache\"\ncommand = [\"true\"]\n[resolvers.a]\nhost = \"cache\"\nkind = \"unbound\"\n").unwrap_err();
    assert!(e.starts_with("s.toml:8:12: resolver \"a\" has the name of a service"), "{e}");
}
