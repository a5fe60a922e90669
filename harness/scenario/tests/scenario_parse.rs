//! Scenario files: every bad file in scenarios/invalid/ gives exactly the message in its
//! `.expected` file, every other scenario loads, and random input never panics.
//!
//! `NSLAB_BLESS=1 cargo test --test scenario_parse` writes the `.expected` files from the
//! current messages (review the diff before committing it).

use std::path::{Path, PathBuf};

use nslab::dns::{RecordSpec, RecordValue};
use nslab::Profile;
use nslab_scenario::scenario::{self, Action, Check, ConnectCheck, ConnectResult};
use proptest::prelude::*;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).expect("the workspace holds harness/CRATE").to_path_buf()
}

/// The error for `path`, with the workspace prefix removed so messages read `scenarios/...`.
fn message(path: &Path) -> String {
    let root = format!("{}/", workspace().display());
    match scenario::load(path) {
        Ok(_) => "<loaded without error>".to_string(),
        Err(e) => e.to_string().replace(&root, ""),
    }
}

#[test]
fn invalid_scenarios_give_their_exact_messages() {
    let dir = workspace().join("scenarios/invalid");
    let bless = std::env::var_os("NSLAB_BLESS").is_some();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    let mut failures = Vec::new();
    let mut checked = 0;
    for path in &entries {
        let ext = path.extension().and_then(|e| e.to_str());
        if ext == Some("expected") && !path.with_extension("toml").exists() {
            failures.push(format!("{} has no .toml beside it", path.display()));
        }
        if ext != Some("toml") {
            continue;
        }
        checked += 1;
        let got = message(path);
        let expected_path = path.with_extension("expected");
        if bless {
            std::fs::write(&expected_path, format!("{got}\n")).unwrap();
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Err(_) => failures.push(format!("{} has no .expected file; it gives:\n  {got}", path.display())),
            Ok(want) if want.trim_end() != got => failures.push(format!("{}:\n  expected: {}\n  got:      {got}", path.display(), want.trim_end())),
            Ok(_) => {}
        }
    }
    assert!(checked >= 15, "expected at least 15 invalid scenarios, found {checked}");
    assert!(failures.is_empty(), "{} of {checked} invalid scenarios differ:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_scenario_outside_invalid_loads() {
    let files = scenario::discover(&workspace().join("scenarios")).unwrap();
    assert!(files.iter().any(|f| f.name == "examples/cname-swap"), "{files:?}");
    assert!(files.iter().all(|f| !f.name.starts_with("invalid/")));
    let errors: Vec<String> = files.iter().filter_map(|f| scenario::load(&f.path).err()).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn examples_hold_what_the_readme_says() {
    let s = scenario::load(&workspace().join("scenarios/examples/wildcard-ipv4-bind.toml")).unwrap();
    assert_eq!(s.trials(), &[Profile::Ipv4Only, Profile::DualStack, Profile::Ipv6Only]);
    let in_v6: Vec<String> = s.expectations_for(Profile::Ipv6Only).map(|e| e.description()).collect();
    assert_eq!(in_v6, ["service web listens on tcp:0.0.0.0:8000 and nothing else", "IPv6 peers are refused"]);
    assert!(s.expectations.iter().any(|e| matches!(e.check, Check::Connect(ConnectCheck { result: ConnectResult::Errno(n), .. }) if n.number == 111)));

    let s = scenario::load(&workspace().join("scenarios/examples/cname-swap.toml")).unwrap();
    assert_eq!(s.step_index("swap"), Some(0));
    assert!(matches!(&s.timeline[0].action, Action::SwapCname { zone, record, to } if zone == "example.test" && record == "app" && to == "green"));
    assert_eq!(s.dns.as_ref().unwrap().zones[0].records[0].ttl, 5);
    assert_eq!(s.dns.as_ref().unwrap().zones[0].records[1].ttl, scenario::DEFAULT_TTL);

    // Records decode straight into the library's zone model: what the server gets is what was
    // written, MX included.
    let s = scenario::load(&workspace().join("scenarios/examples/mx-record.toml")).unwrap();
    let dns = s.dns.as_ref().unwrap();
    let mx = |preference, exchange: &str| RecordValue::Mx { preference, exchange: exchange.into() };
    assert_eq!(
        dns.zones[0].records,
        [
            RecordSpec::new("@", 300, mx(10, "mail")),
            RecordSpec::new("@", 300, mx(20, "backup.example.org.")),
            RecordSpec::new("mail", 60, RecordValue::Host("mail".into()))
        ]
    );
    assert!(matches!(&s.timeline[1].action, Action::SetRecord { record, data, ttl: 30, .. } if record == "@" && *data == mx(5, "mail")));

    let s = scenario::load(&workspace().join("scenarios/examples/dual-bind.toml")).unwrap();
    let split = s.service("split").unwrap();
    match &split.files[0].content {
        scenario::FileContent::Source(p) => assert!(p.ends_with("scenarios/examples/files/dual_bind.py")),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.host("split").unwrap().bindv6only, Some(true));
    assert_eq!(s.service("clash").unwrap().expect_start, scenario::ExpectStart::Failure);
}

#[test]
fn a_huge_file_is_refused_before_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.toml");
    let mut text = String::from("description = \"huge\"\n[hosts.web]\n");
    while text.len() <= scenario::MAX_FILE_SIZE as usize {
        text.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    std::fs::write(&path, text).unwrap();
    assert_eq!(
        scenario::load(&path).unwrap_err().to_string(),
        format!("{}:1:1: the file is larger than 1024 KiB; expected a scenario of at most 1 MiB", path.display())
    );
}

#[test]
fn a_missing_file_is_a_located_error() {
    let e = scenario::load(Path::new("scenarios/no-such.toml")).unwrap_err().to_string();
    assert!(e.starts_with("scenarios/no-such.toml:1:1: cannot read the scenario file ("), "{e}");
}

#[test]
fn inline_errors_name_place_found_and_expected() {
    let d = "description = \"x\"\n";
    let cases = [
        (format!("{d}hosts = 5\n"), "s.toml:2:9: [hosts] is the integer 5; expected a table of hosts such as [hosts.web]"),
        (format!("{d}profiles = []\n[hosts.a]\n"), "s.toml:2:12: profiles in the scenario: the array is empty; expected at least one profile"),
        (
            format!("{d}[hosts.a]\n[hosts.b]\n[[expect]]\nkind = \"connect\"\nfrom = \"a\"\nto = \"[2001:db8:1::5]:80\"\nfamily = \"ipv6\"\nresult = \"ok\"\n"),
            "s.toml:8:10: family in expectation 1 (connect): family is given with an address in to = \"[2001:db8:1::5]:80\"; expected family only with a host name such as \"web:8000\"",
        ),
        (
            format!("{d}[hosts.a]\n[services.s]\nhost = \"a\"\ncommand = [\"x\"]\n[[expect]]\nkind = \"exit\"\nservice = \"s\"\ncode = 0\nsuccess = false\n"),
            "s.toml:9:1: code in expectation 1 (exit): code = 0 contradicts success = false; expected one of them, or values that agree",
        ),
        (
            format!("{d}[hosts.a]\n[services.s]\nhost = \"a\"\n"),
            "s.toml:3:1: service \"s\" has neither command nor shell; expected command = [\"prog\", \"arg\"] or shell = \"prog arg | other\"",
        ),
        (
            format!("{d}[hosts.a]\nsysctls = {{ net.ipv6.conf.eth0.accept_dad = 1, kernel.x = 2 }}\n"),
            "s.toml:3:55: sysctl \"kernel.x\" is not a network sysctl; expected a name under net. (only those are private to a lab host)",
        ),
        (
            format!("{d}[hosts.a]\n[[timeline]]\nat = \"5s\"\naction = \"wait\"\nduration = \"1s\"\n[[timeline]]\nat = \"3s\"\naction = \"wait\"\nduration = \"1s\"\n"),
            "s.toml:8:6: at in timeline step 2 (wait): \"3s\" is earlier than at = \"5s\" of an earlier step; expected steps in time order",
        ),
        (
            format!("{d}[hosts.a]\n[dns]\n[[dns.zones]]\norigin = \"a.test\"\n[[dns.zones]]\norigin = \"b.test\"\n[[timeline]]\naction = \"swap-cname\"\nrecord = \"app\"\nto = \"x\"\n"),
            "s.toml:8:1: timeline step 1 (swap-cname) has no key \"zone\"; expected zone = \"a.test\" (the scenario has several zones: a.test, b.test)",
        ),
        (
            format!("{d}[hosts.a]\n[dns]\n[[dns.zones]]\norigin = \"a.test\"\nrecords = [{{ name = \"app.b.test.\", type = \"CNAME\", value = \"x\" }}]\n"),
            "s.toml:6:21: name in record 1 of zone \"a.test\": \"app.b.test.\" is outside zone \"a.test\"; expected a name relative to the zone, or an absolute name ending in .a.test.",
        ),
        (
            format!("{d}[hosts.a]\n[dns]\n[[timeline]]\naction = \"dns-fault\"\nfault = \"servfail\"\ndelay = \"1s\"\n"),
            "s.toml:7:1: delay in timeline step 1 (dns-fault) is given with fault = \"servfail\"; expected delay only with fault = \"delay\"",
        ),
        (
            format!("{d}timeout = 30\n[hosts.a]\n"),
            "s.toml:2:11: timeout in the scenario is the integer 30; expected a duration such as \"500ms\", \"30s\", \"2m\" or \"1m30s\" (a string with a unit)",
        ),
        (
            format!("{d}[hosts.a]\n[services.s]\nhost = \"a\"\nshell = \"echo {{{{dns.ipv4}}}}\"\n"),
            "s.toml:5:15: shell in service \"s\": template variable \"dns.ipv4\" needs the lab DNS server; expected a [dns] table in the scenario",
        ),
        (
            format!("{d}[hosts.a]\n[services.s]\nhost = \"a\"\ncommand = [\"x\"]\nready = {{ exit = false }}\n"),
            "s.toml:6:18: exit in the ready condition of service \"s\" is the boolean false; expected \"success\" (exited with status 0) or true (exited, whatever the status)",
        ),
        (
            format!("{d}[hosts.a]\n[services.s]\nhost = \"a\"\ncommand = [\"x\"]\n[[timeline]]\naction = \"wait-for\"\nservice = \"s\"\nexit = 0\n"),
            "s.toml:9:8: exit in timeline step 1 (wait-for) is the integer 0; expected \"success\" (exited with status 0) or true (exited, whatever the status)",
        ),
        (d.to_string(), "s.toml:1:1: the scenario declares no hosts; expected at least one [hosts.<name>] table, such as [hosts.web]"),
    ];
    for (text, want) in cases {
        let got = scenario::parse_str(Path::new("s.toml"), &text).map(|_| ()).unwrap_err().to_string();
        assert_eq!(got, want, "for:\n{text}");
    }
}

#[test]
fn ready_exit_success_or_any_status() {
    let s = scenario::load(&workspace().join("scenarios/examples/ready-exit-success.toml")).unwrap();
    assert!(matches!(s.service("ok").unwrap().ready, Some(scenario::Condition::Exit { success: true })));
    assert!(matches!(s.service("crash").unwrap().ready, Some(scenario::Condition::Exit { success: true })));
    assert!(matches!(s.service("any").unwrap().ready, Some(scenario::Condition::Exit { success: false })));
}

#[test]
fn dotted_sysctls_and_defaults() {
    let text = "description = \"x\"\n[hosts.a]\nsysctls = { net.ipv6.conf.eth0.accept_dad = 1, \"net.ipv4.ip_forward\" = \"1\" }\n";
    let s = scenario::parse_str(Path::new("s.toml"), text).unwrap();
    assert_eq!(s.trials(), &[Profile::DualStack]);
    assert_eq!(s.timeout, scenario::DEFAULT_TIMEOUT);
    assert_eq!(s.hosts[0].sysctls, vec![("net.ipv6.conf.eth0.accept_dad".to_string(), "1".to_string()), ("net.ipv4.ip_forward".to_string(), "1".to_string())]);
    assert_eq!(
        s.host_specs(Profile::Ipv6Only)[0],
        nslab::HostSpec::new("a").profile(Profile::Ipv6Only).sysctl("net.ipv6.conf.eth0.accept_dad", "1").sysctl("net.ipv4.ip_forward", "1")
    );
}

/// Random edits of a valid scenario: delete a range, insert a TOML-ish token, or replace a char.
fn mutated() -> impl Strategy<Value = String> {
    let base = std::fs::read_to_string(workspace().join("scenarios/examples/cname-swap.toml")).unwrap();
    let tokens = prop::sample::select(vec![
        "[",
        "]",
        "{",
        "}",
        "=",
        "\"",
        "'",
        "\"\"\"",
        ",",
        "\n",
        "#",
        ".",
        "[[timeline]]\n",
        "[hosts.x]\n",
        "{{",
        "}}",
        "{{host.blue.ipv4}}",
        "\"10.0.0.1\"",
        "\"tcp:[::]:0\"",
        "-1",
        "1e400",
        "true",
        "\"0s\"",
        "kind = \"connect\"\n",
        "action = \"link\"\n",
        "\u{e9}",
        "\\",
        "(",
    ]);
    let edit = (0usize..4000, 0usize..40, tokens, 0u8..3);
    prop::collection::vec(edit, 1..6).prop_map(move |edits| {
        let mut s = base.clone();
        for (at, len, tok, op) in edits {
            let mut at = at % (s.len() + 1);
            while !s.is_char_boundary(at) {
                at -= 1;
            }
            match op {
                0 => {
                    let mut end = (at + len).min(s.len());
                    while !s.is_char_boundary(end) {
                        end -= 1;
                    }
                    s.replace_range(at..end, "");
                }
                1 => s.insert_str(at, tok),
                _ => {
                    let mut end = (at + 1).min(s.len());
                    while !s.is_char_boundary(end) {
                        end += 1;
                    }
                    s.replace_range(at..end, tok);
                }
            }
        }
        s
    })
}

fn assert_located(text: &str) -> Result<(), TestCaseError> {
    let file = workspace().join("scenarios/examples/fuzz.toml");
    if let Err(e) = scenario::parse_str(&file, text) {
        let msg = e.to_string();
        let prefix = format!("{}:", file.display());
        prop_assert!(msg.starts_with(&prefix), "{msg}");
        let rest = &msg[prefix.len()..];
        let mut parts = rest.splitn(3, ':');
        let line = parts.next().unwrap_or("");
        let col = parts.next().unwrap_or("");
        let tail = parts.next().unwrap_or("");
        prop_assert!(line.parse::<usize>().is_ok_and(|n| n >= 1), "{msg}");
        prop_assert!(col.parse::<usize>().is_ok_and(|n| n >= 1), "{msg}");
        prop_assert!(tail.starts_with(' ') && tail.len() > 1, "{msg}");
        prop_assert!(!msg.contains('\n'), "{msg}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_scenarios_never_panic_and_errors_are_located(text in mutated()) {
        assert_located(&text)?;
    }

    #[test]
    fn random_text_never_panics_and_errors_are_located(text in "(\\PC|\n){0,300}") {
        assert_located(&text)?;
    }
}

const RESOLVER_NAMES: &str = r#"description = "t"
[hosts.client]
[hosts.box]
[dns]
[[dns.zones]]
origin = "example.test"
records = [{ name = "app", type = "A", value = "192.0.2.99" }]
[resolvers.cache]
host = "box"
kind = "unbound"
[[timeline]]
name = "start"
action = "wait"
duration = "1s"
[[expect]]
kind = "dns-queries"
from = "cache"
to = "cache"
qname = "app.example.test"
after = "start"
for = "5s"
at_least = 1
[[expect]]
kind = "stale"
client = "client"
after = "start"
old = "box"
new = "client"
held_by = ["client-cache", "resolver:cache"]
"#;

#[test]
fn a_resolver_name_is_its_host_and_a_layer() {
    let text = RESOLVER_NAMES.replace("[hosts.box]", "[hosts.box]\n[targets.box]\nhost = \"box\"\nport = 80\n[targets.client]\nhost = \"client\"\nport = 80");
    let s = scenario::parse_str(Path::new("t.toml"), &text).unwrap_or_else(|e| panic!("{e}"));
    let scenario::Check::DnsQueries(q) = &s.expectations[0].check else { panic!("not dns-queries") };
    assert_eq!(q.to, Some(scenario::Asked::Host("box".into())));
    let scenario::Check::Stale(st) = &s.expectations[1].check else { panic!("not stale") };
    assert_eq!(st.held_by, Some(vec!["client-cache".to_string(), "resolver:cache".to_string()]));
    let bad = text.replace("\"resolver:cache\"", "\"resolver:nope\"");
    let e = scenario::parse_str(Path::new("t.toml"), &bad).unwrap_err().to_string();
    assert!(e.contains("\"resolver:nope\" is not a layer"), "{e}");
}

// Builds ([build.<name>]): a build and its use, and errors placed at the offending text.

fn build_scenario(dir: &Path, build: &str, service: &str) -> Result<nslab_scenario::scenario::Scenario, String> {
    let text = format!("description = \"d\"\n[hosts.a]\n{build}\n[services.s]\nhost = \"a\"\n{service}\n");
    nslab_scenario::scenario::parse_str(&dir.join("s.toml"), &text).map_err(|e| e.to_string().replace(&dir.display().to_string(), "D"))
}

#[test]
fn a_build_and_its_use_parse() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("files")).unwrap();
    std::fs::write(dir.path().join("files/A.java"), "class A {}").unwrap();
    let s = build_scenario(
        dir.path(),
        "[build.client]\ncommand = [\"javac\", \"-d\", \"{{out}}\", \"{{scenario_dir}}/files/A.java\"]\ninputs = [\"files/A.java\"]\ntimeout = \"30s\"",
        "command = [\"java\", \"-cp\", \"{{build.client}}\", \"A\"]",
    )
    .unwrap();
    let b = &s.builds[0];
    assert_eq!(b.name, "client");
    assert_eq!(b.timeout, std::time::Duration::from_secs(30));
    assert_eq!(b.command[2].parts(), &[nslab_scenario::scenario::Part::Var(nslab_scenario::scenario::Var::Out)]);
    assert_eq!(b.inputs[0].path, Path::new("files/A.java"));
    assert_eq!(b.inputs[0].source, dir.path().canonicalize().unwrap().join("files/A.java"));
    let nslab_scenario::scenario::Run::Command(argv) = &s.services[0].run else { panic!("a command") };
    assert_eq!(argv[2].parts(), &[nslab_scenario::scenario::Part::Var(nslab_scenario::scenario::Var::Build("client".into()))]);
}

#[test]
fn build_errors_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let ok_service = "command = [\"true\"]";
    let cases = [
        (
            "[build.c]\ncommand = [\"true\"]\nimputs = []",
            ok_service,
            "D/s.toml:5:1: unknown key \"imputs\" in build \"c\"; expected one of command, inputs, timeout",
        ),
        ("[build.c]\ncommand = []", ok_service, "D/s.toml:4:11: command in build \"c\": the array is empty; expected the program and its arguments"),
        (
            "[build.c]\ncommand = [\"true\"]\ninputs = [\"files/nope.java\"]",
            ok_service,
            "D/s.toml:5:11: inputs in build \"c\": D/files/nope.java cannot be opened (No such file or directory (os error 2)); expected a path relative to the scenario's folder, inside it, such as \"files/app.py\"",
        ),
        (
            "[build.c]\ncommand = [\"true\", \"{{host.a.ipv4}}\"]",
            ok_service,
            "D/s.toml:4:21: command in build \"c\": template variable \"host.a.ipv4\" has no value in a build's command, which runs once for every trial, before any lab exists; expected one of out, scenario_dir",
        ),
        (
            "",
            "command = [\"java\", \"-cp\", \"{{build.client}}\"]",
            "D/s.toml:6:28: command in service \"s\": template variable \"build.client\" names build \"client\", which is not declared; expected a [build.client] table (the scenario declares no build)",
        ),
        (
            "",
            "shell = \"cp x {{out}}\"",
            "D/s.toml:6:15: shell in service \"s\": template variable \"out\" is a build's output directory, known only in the command of a [build.<name>] table; expected {{build.<name>}} to use a build's output here",
        ),
    ];
    for (build, service, want) in cases {
        assert_eq!(build_scenario(dir.path(), build, service).unwrap_err(), want);
    }
}
