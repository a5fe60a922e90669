//! The service a `[resolvers.<name>]` table becomes: its command, its generated files (rendered
//! per trial by the runner) and its readiness (a socket that answers a real query).

use std::collections::BTreeSet;
use std::path::Path;

use super::resolver::ResolverDef;
use super::service::{Condition, ExpectStart, FileContent, FileDef, Run, ServiceDef};
use super::template::Template;
use super::values::ListenSpec;
use nslab::lab::resolver::ResolverKind;

/// The service that runs it: its command, its generated files and its readiness (a UDP socket
/// on 127.0.0.1:53 that answers a query for `probe_name`).
pub(crate) fn resolver_service(r: &ResolverDef, probe_name: &str) -> ServiceDef {
    let dir = Path::new("{{service_dir}}");
    let hosts = BTreeSet::new();
    let scope = super::template::Scope { hosts: &hosts, dns: false, builds: &Default::default(), in_build: false };
    // Generated text: its only variable is {{service_dir}}, always known.
    let scope_free = |s: &str| Template::parse(s, &scope).expect("generated commands are valid templates");
    let (run, env, files) = match &r.custom {
        Some((cmd, conf)) => {
            let ResolverKind::Custom { config, .. } = &r.kind else { unreachable!("custom has a config") };
            (Run::Command(cmd.clone()), Vec::new(), vec![FileDef { path: config.into(), content: FileContent::Inline(conf.clone()) }])
        }
        None => {
            // The command does not depend on the lab's addresses: a spec without them will do.
            let conf = r.spec(&|_| Vec::new(), &[], &[]).config(dir).unwrap_or_else(|_| {
                // Refused at load time (see decode); kept total for the type.
                nslab::lab::resolver::ResolverConfig { file: "resolver.conf".into(), text: String::new(), command: vec!["false".into()], env: Vec::new() }
            });
            let mut files = vec![FileDef { path: conf.file.clone().into(), content: FileContent::Resolver { def: Box::new(r.clone()), root_hints: false } }];
            if r.recurse && r.kind == ResolverKind::PdnsRecursor {
                files.push(FileDef { path: "root.hints".into(), content: FileContent::Resolver { def: Box::new(r.clone()), root_hints: true } });
            }
            let env = conf.env.iter().map(|(k, v)| (k.clone(), Template::literal(v.clone()))).collect();
            (Run::Command(conf.command.iter().map(|a| scope_free(a)).collect()), env, files)
        }
    };
    ServiceDef {
        name: r.name.clone(),
        host: r.host.clone(),
        run,
        env,
        cwd: None,
        files,
        ready: Some(Condition::Answers { listening: ListenSpec::parse("udp:127.0.0.1:53").expect("literal"), query: probe_name.to_string() }),
        ready_timeout: r.ready_timeout,
        expect_start: ExpectStart::Success,
        expect_start_in: Vec::new(),
        autostart: true,
        stop_grace: None,
        trace: false,
        profiles: None,
    }
}
