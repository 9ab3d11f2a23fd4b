//! `extra_config` namespaces: the registry ([`REGISTRY`], in `table.rs`) of every namespace
//! KrakenD CE reads, with the levels where it may appear, its [`Class`] here and a one-line
//! description; [`judge`] applies it to a namespace found at a level, [`warning`] words it for
//! `proxy check`, [`readme_table`] renders it for the README. Also the v1 long-name aliases.

mod aliases;
mod table;

pub use aliases::{alias_of, normalise};
pub use table::REGISTRY;

/// Where an `extra_config` sits in krakend.json.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Service,
    Endpoint,
    Backend,
    /// `async_agent[].extra_config` (async agents are not run yet).
    AsyncAgent,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Service => "service",
            Level::Endpoint => "endpoint",
            Level::Backend => "backend",
            Level::AsyncAgent => "async_agent",
        }
    }

    /// What a fail-closed namespace at this level does, as `check` says it.
    pub fn refusal(self) -> &'static str {
        match self {
            Level::Service => "every endpoint answers 501 Not Implemented",
            Level::Endpoint => "this endpoint answers 501 Not Implemented",
            Level::Backend => "the endpoint calling this backend answers 501 Not Implemented",
            Level::AsyncAgent => "this async agent is not run",
        }
    }
}

/// How this gateway treats a namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// Built.
    Implemented,
    /// Not built, and serving without it changes no answer (it observes, or what it would act
    /// on fails closed itself): ignored with a warning.
    Ignored,
    /// Not built, and it guards access or changes what is sent or returned: the endpoint
    /// answers 501 rather than give an answer KrakenD would not give.
    FailClosed,
}

impl Class {
    /// The README's status column.
    pub fn status(self) -> &'static str {
        match self {
            Class::Implemented => "yes",
            Class::Ignored => "ignored with a warning",
            Class::FailClosed => "not yet: fail closed (501)",
        }
    }
}

/// One registry entry.
#[derive(Debug, PartialEq, Eq)]
pub struct Namespace {
    /// The short name, or a prefix ending in `/*`.
    pub name: &'static str,
    /// Where KrakenD CE reads it.
    pub levels: &'static [Level],
    pub class: Class,
    /// What it does, and why it has its class.
    pub about: &'static str,
}

impl Namespace {
    fn prefix(&self) -> Option<&'static str> {
        self.name.strip_suffix('*')
    }

    fn matches(&self, ns: &str) -> bool {
        match self.prefix() {
            Some(p) => ns.starts_with(p),
            None => self.name == ns,
        }
    }

    fn levels_text(&self) -> String {
        let names: Vec<&str> = self.levels.iter().map(|l| l.name()).collect();
        names.join(", ")
    }
}

/// What the registry says about a namespace found at one level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// How it is treated here.
    pub class: Class,
    /// Its entry; None when KrakenD CE does not know the namespace.
    pub entry: Option<&'static Namespace>,
    /// The entry does not list this level: KrakenD does not read it here.
    pub misplaced: bool,
}

/// How namespace `ns` (a long alias or a short name) found at `level` is treated.
pub fn judge(ns: &str, level: Level) -> Verdict {
    let ns = normalise(ns);
    // Own entries before prefixes; the entry for this level before another level's, and
    // elsewhere the strictest (auth/validator in a backend is not the service's cache setting).
    let exact = || {
        REGISTRY
            .iter()
            .filter(|n| n.prefix().is_none() && n.name == ns)
    };
    let under = || {
        REGISTRY
            .iter()
            .filter(|n| n.prefix().is_some() && n.matches(ns))
    };
    let found = exact()
        .find(|n| n.levels.contains(&level))
        .map(|n| (n, false))
        .or_else(|| exact().max_by_key(|n| n.class).map(|n| (n, true)))
        .or_else(|| {
            under()
                .find(|n| n.levels.contains(&level))
                .map(|n| (n, false))
        })
        .or_else(|| under().next().map(|n| (n, true)));
    match found {
        // KrakenD: a built namespace where KrakenD does not read it does nothing; neither do we.
        // One that is not built fails closed wherever it appears: it was put there to act.
        Some((entry, misplaced)) => Verdict {
            class: if misplaced && entry.class == Class::Implemented {
                Class::Ignored
            } else {
                entry.class
            },
            entry: Some(entry),
            misplaced,
        },
        // KrakenD ignores a namespace it does not know. It may be Enterprise-only, a custom
        // build's or a typo of one that guards access: fail closed rather than serve without it.
        None => Verdict {
            class: Class::FailClosed,
            entry: None,
            misplaced: false,
        },
    }
}

/// The registry name nearest to an unknown `ns`, if it is a likely typo.
pub fn nearest(ns: &str) -> Option<&'static str> {
    let names: Vec<&'static str> = REGISTRY
        .iter()
        .filter(|n| n.prefix().is_none())
        .map(|n| n.name)
        .collect();
    super::suggest::nearest(ns, &names)
}

/// `check`'s warning for namespace `ns` (short name) at `level`; None when it is built.
pub fn warning(ns: &str, level: Level) -> Option<String> {
    let v = judge(ns, level);
    let Some(entry) = v.entry else {
        let hint = nearest(ns)
            .map(|n| format!(" (did you mean {n:?}?)"))
            .unwrap_or_default();
        return Some(format!(
            "namespace {ns:?} is not one KrakenD CE knows{hint}; it may guard access or change \
             answers, so {}",
            level.refusal()
        ));
    };
    let place = if v.misplaced {
        format!(
            " (KrakenD reads it only at {} level)",
            entry.levels_text().replace(", ", " or ")
        )
    } else {
        String::new()
    };
    match (v.class, entry.class) {
        (Class::Implemented, _) => None,
        (Class::Ignored, Class::Implemented) => Some(format!("namespace {ns:?} is ignored{place}")),
        (Class::Ignored, _) => Some(format!(
            "namespace {ns:?} is not built yet and is ignored{place}: {}",
            entry.about
        )),
        (Class::FailClosed, _) => Some(format!(
            "namespace {ns:?} is not built yet, so {}{place}: {}",
            level.refusal(),
            entry.about
        )),
    }
}

/// The README's namespace table, one row per registry entry.
pub fn readme_table() -> String {
    let mut out =
        String::from("| Namespace | Where | Status | What it does |\n|---|---|---|---|\n");
    for n in REGISTRY {
        let name = match n.prefix() {
            Some(p) => format!("`{p}*`"),
            None => format!("`{}`", n.name),
        };
        out.push_str(&format!(
            "| {name} | {} | {} | {} |\n",
            n.levels_text(),
            n.class.status(),
            n.about.replace('|', "\\|")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(ns: &str, level: Level) -> Class {
        judge(ns, level).class
    }

    #[test]
    fn long_names_map_to_short_names() {
        assert_eq!(
            alias_of("github.com/devopsfaith/krakend-jose/validator"),
            Some("auth/validator")
        );
        assert_eq!(
            alias_of("github_com/luraproject/lura/router/gin"),
            Some("router")
        );
        assert_eq!(
            alias_of("github.com/devopsfaith/krakend/http"),
            Some("backend/http")
        );
        assert_eq!(alias_of("router"), None);
        assert_eq!(normalise("qos/http-cache"), "qos/http-cache");
    }

    #[test]
    fn built_namespaces_are_implemented_where_krakend_reads_them() {
        assert_eq!(class("router", Level::Service), Class::Implemented);
        assert_eq!(class("proxy", Level::Endpoint), Class::Implemented);
        assert_eq!(class("proxy", Level::Backend), Class::Implemented);
        assert_eq!(class("backend/http", Level::Backend), Class::Implemented);
        assert_eq!(
            class("telemetry/logging", Level::Service),
            Class::Implemented
        );
    }

    #[test]
    fn a_built_namespace_where_krakend_does_not_read_it_is_ignored() {
        let v = judge("router", Level::Endpoint);
        assert_eq!(v.class, Class::Ignored);
        assert!(v.misplaced);
        let w = warning("router", Level::Endpoint).unwrap();
        assert!(w.contains("only at service level"), "{w}");
    }

    #[test]
    fn only_what_observes_or_has_nothing_to_act_on_is_ignored() {
        for ns in ["telemetry/influx", "telemetry/newrelic"] {
            for level in [Level::Service, Level::Endpoint, Level::Backend] {
                assert_eq!(class(ns, level), Class::Ignored, "{ns} {level:?}");
            }
        }
        // Built at service level; KrakenD CE reads it nowhere else (overrides are EE).
        assert_eq!(
            class("telemetry/opentelemetry", Level::Service),
            Class::Implemented
        );
        assert_eq!(
            class("telemetry/metrics", Level::Service),
            Class::Implemented
        );
        assert_eq!(class("telemetry/metrics", Level::Endpoint), Class::Ignored);
        for level in [Level::Endpoint, Level::Backend] {
            assert_eq!(
                class("telemetry/opentelemetry", level),
                Class::Ignored,
                "{level:?}"
            );
        }
        assert_eq!(
            class("documentation/openapi", Level::Endpoint),
            Class::Ignored
        );
        assert_eq!(class("auth/validator", Level::Service), Class::Implemented);
        assert_eq!(class("auth/revoker", Level::Service), Class::FailClosed);
    }

    #[test]
    fn what_guards_access_or_changes_answers_fails_closed_at_every_level() {
        for ns in [
            "auth/revoker",
            "auth/client-credentials",
            "backend/graphql",
            "backend/lambda",
            "backend/amqp/consumer",
            "backend/pubsub/publisher",
            "plugin/http-server",
            "plugin/middleware",
        ] {
            for level in [Level::Service, Level::Endpoint, Level::Backend] {
                assert_eq!(class(ns, level), Class::FailClosed, "{ns} {level:?}");
            }
        }
        assert_eq!(class("auth/validator", Level::Endpoint), Class::Implemented);
        assert_eq!(class("auth/signer", Level::Endpoint), Class::Implemented);
        // Built, and KrakenD reads them only on endpoints (validator: also the service).
        assert_eq!(class("auth/validator", Level::Backend), Class::Ignored);
        assert_eq!(class("auth/signer", Level::Backend), Class::Ignored);
        // Built for backends; elsewhere KrakenD does not read it, and neither do we.
        assert_eq!(class("qos/http-cache", Level::Backend), Class::Implemented);
        assert_eq!(
            class("validation/json-schema", Level::Endpoint),
            Class::Implemented
        );
        assert_eq!(
            class("validation/json-schema", Level::Backend),
            Class::Ignored
        );
        assert_eq!(class("validation/cel", Level::Backend), Class::Implemented);
        assert_eq!(class("qos/http-cache", Level::Endpoint), Class::Ignored);
    }

    #[test]
    fn long_names_are_judged_like_their_short_names() {
        assert_eq!(
            class(
                "github.com/devopsfaith/krakend-jose/validator",
                Level::Endpoint
            ),
            Class::Implemented
        );
        assert_eq!(
            class("github_com/devopsfaith/krakend-gologging", Level::Service),
            Class::Implemented
        );
    }

    #[test]
    fn an_unknown_namespace_fails_closed_and_the_warning_names_the_nearest_one() {
        let v = judge("auth/validater", Level::Endpoint);
        assert_eq!(v.class, Class::FailClosed);
        assert_eq!(v.entry, None);
        let w = warning("auth/validater", Level::Endpoint).unwrap();
        assert!(w.contains("did you mean \"auth/validator\"?"), "{w}");
        assert!(w.contains("this endpoint answers 501"), "{w}");
        assert_eq!(class("auth/api-keys", Level::Endpoint), Class::FailClosed);
    }

    #[test]
    fn warnings_say_what_happens_at_each_level() {
        assert_eq!(warning("proxy", Level::Endpoint), None);
        let w = warning("backend/graphql", Level::Backend).unwrap();
        assert!(
            w.contains("the endpoint calling this backend answers 501"),
            "{w}"
        );
        let w = warning("plugin/req-resp-modifier", Level::Endpoint).unwrap();
        assert!(w.contains("this endpoint answers 501"), "{w}");
        let w = warning("plugin/http-server", Level::Service).unwrap();
        assert!(w.contains("every endpoint answers 501"), "{w}");
        let w = warning("telemetry/influx", Level::Service).unwrap();
        assert!(w.contains("is ignored"), "{w}");
        let w = warning("qos/ratelimit/router", Level::Backend).unwrap();
        assert!(w.contains("only at endpoint level"), "{w}");
    }

    #[test]
    fn every_entry_is_listed_once_per_level() {
        for (i, a) in REGISTRY.iter().enumerate() {
            assert!(!a.levels.is_empty() && !a.about.is_empty(), "{}", a.name);
            for b in REGISTRY.iter().skip(i + 1) {
                let shared = a.levels.iter().any(|l| b.levels.contains(l));
                assert!(!(a.name == b.name && shared), "{} twice", a.name);
            }
        }
    }
}
