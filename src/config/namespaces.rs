//! TEMPORARY stub (replaced by the config branch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamespaceSupport {
    Supported,
    Observational,
    AccessControl,
    Unsupported,
}
pub fn classify(ns: &str) -> NamespaceSupport {
    if ns.starts_with("auth/") {
        NamespaceSupport::AccessControl
    } else {
        NamespaceSupport::Supported
    }
}
pub fn unsupported_namespaces(
    _cfg: &crate::config::Config,
) -> Vec<(String, String, NamespaceSupport)> {
    Vec::new()
}
