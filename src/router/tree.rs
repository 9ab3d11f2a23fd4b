//! One method's route tree, segment by segment, with gin's (>= 1.8) matching rules: a static
//! segment beats a parameter at the same position and matching backtracks to the parameter
//! when the static branch dead-ends; a parameter never matches an empty segment.

/// One parsed segment of a KrakenD endpoint template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seg {
    Static(String),
    /// `{name}`: the whole segment.
    Param(String),
    /// `prefix{name}` in the last segment (`disable_rest`).
    PrefixParam {
        prefix: String,
        name: String,
    },
}

pub(crate) struct Leaf<T> {
    pub template: String,
    pub value: T,
}

struct PrefixParam<T> {
    prefix: String,
    name: String,
    leaf: Leaf<T>,
}

struct ParamChild<T> {
    name: String,
    /// The template that introduced this parameter, for conflict messages.
    first: String,
    node: Node<T>,
}

pub(crate) struct Node<T> {
    statics: Vec<(String, Node<T>)>,
    /// Kept longest prefix first so the most specific prefix wins, as gin's static bytes do.
    prefix_params: Vec<PrefixParam<T>>,
    param: Option<Box<ParamChild<T>>>,
    leaf: Option<Leaf<T>>,
}

/// Path parameters: name (borrowed from the route) and value (decoded path text).
pub type Params<'a> = Vec<(&'a str, String)>;

/// `rest` split at its first `/`: the segment and what follows the slash.
fn split_seg(rest: &str) -> (&str, Option<&str>) {
    match rest.split_once('/') {
        Some((seg, tail)) => (seg, Some(tail)),
        None => (rest, None),
    }
}

fn eq_ignore_case(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

fn strip_prefix_ignore_case<'s>(s: &'s str, prefix: &str) -> Option<&'s str> {
    let mut chars = s.char_indices();
    for p in prefix.chars() {
        let (_, c) = chars.next()?;
        if !c.to_lowercase().eq(p.to_lowercase()) {
            return None;
        }
    }
    match chars.next() {
        Some((i, _)) => s.get(i..),
        None => Some(""),
    }
}

impl<T> Node<T> {
    pub(crate) fn new() -> Self {
        Node {
            statics: Vec::new(),
            prefix_params: Vec::new(),
            param: None,
            leaf: None,
        }
    }

    /// Adds a route; `Err` carries the reason and the template it collides with.
    pub(crate) fn insert(
        &mut self,
        segs: &[Seg],
        template: &str,
        value: T,
    ) -> Result<(), (String, String)> {
        let Some((seg, rest)) = segs.split_first() else {
            if let Some(existing) = &self.leaf {
                return Err((
                    "is already registered".to_string(),
                    existing.template.clone(),
                ));
            }
            self.leaf = Some(Leaf {
                template: template.to_string(),
                value,
            });
            return Ok(());
        };
        match seg {
            Seg::Static(text) => {
                let pos = match self.statics.iter().position(|(t, _)| t == text) {
                    Some(pos) => pos,
                    None => {
                        self.statics.push((text.clone(), Node::new()));
                        self.statics.len() - 1
                    }
                };
                match self.statics.get_mut(pos) {
                    Some((_, child)) => child.insert(rest, template, value),
                    None => Err(("internal router error".to_string(), String::new())),
                }
            }
            Seg::Param(name) => {
                let child = self.param.get_or_insert_with(|| {
                    Box::new(ParamChild {
                        name: name.clone(),
                        first: template.to_string(),
                        node: Node::new(),
                    })
                });
                if &child.name != name {
                    // gin: "':b' in new path ... conflicts with existing wildcard ':a'".
                    return Err((
                        format!(
                            "has parameter {{{name}}} where an existing route has {{{}}} at the same position",
                            child.name
                        ),
                        child.first.clone(),
                    ));
                }
                child.node.insert(rest, template, value)
            }
            Seg::PrefixParam { prefix, name } => {
                if let Some(existing) = self.prefix_params.iter().find(|p| &p.prefix == prefix) {
                    let why = if &existing.name == name {
                        "is already registered".to_string()
                    } else {
                        format!(
                            "has parameter {{{name}}} where an existing route has {{{}}} after the same prefix",
                            existing.name
                        )
                    };
                    return Err((why, existing.leaf.template.clone()));
                }
                let at = self
                    .prefix_params
                    .iter()
                    .position(|p| p.prefix.len() < prefix.len())
                    .unwrap_or(self.prefix_params.len());
                self.prefix_params.insert(
                    at,
                    PrefixParam {
                        prefix: prefix.clone(),
                        name: name.clone(),
                        leaf: Leaf {
                            template: template.to_string(),
                            value,
                        },
                    },
                );
                Ok(())
            }
        }
    }

    /// Exact lookup of `rest` (the path after its leading `/`).
    pub(crate) fn find<'a>(&'a self, rest: &str, params: &mut Params<'a>) -> Option<&'a Leaf<T>> {
        let (seg, tail) = split_seg(rest);
        if let Some((_, child)) = self.statics.iter().find(|(t, _)| t == seg) {
            let hit = match tail {
                None => child.leaf.as_ref(),
                Some(t) => child.find(t, params),
            };
            if hit.is_some() {
                return hit;
            }
        }
        if tail.is_none() {
            for pp in &self.prefix_params {
                if let Some(v) = seg.strip_prefix(pp.prefix.as_str()) {
                    if !v.is_empty() {
                        params.push((pp.name.as_str(), v.to_string()));
                        return Some(&pp.leaf);
                    }
                }
            }
        }
        if let Some(p) = &self.param {
            if !seg.is_empty() {
                let mark = params.len();
                params.push((p.name.as_str(), seg.to_string()));
                let hit = match tail {
                    None => p.node.leaf.as_ref(),
                    Some(t) => p.node.find(t, params),
                };
                if hit.is_some() {
                    return hit;
                }
                params.truncate(mark);
            }
        }
        None
    }

    /// Whether `rest` matches exactly, without collecting parameters.
    pub(crate) fn matches(&self, rest: &str) -> bool {
        let mut scratch = Vec::new();
        self.find(rest, &mut scratch).is_some()
    }

    /// Case-insensitive lookup; on success `out` holds the path as registered (static text from
    /// the route, parameter text from the request), without the leading `/`.
    pub(crate) fn find_ci(&self, rest: &str, out: &mut String) -> bool {
        let (seg, tail) = split_seg(rest);
        let mark = out.len();
        // Exact-case static first, then any case-insensitive one.
        let exact = self.statics.iter().filter(|(t, _)| t == seg);
        let folded = self
            .statics
            .iter()
            .filter(|(t, _)| t != seg && eq_ignore_case(t, seg));
        for (text, child) in exact.chain(folded) {
            out.push_str(text);
            let ok = match tail {
                None => child.leaf.is_some(),
                Some(t) => {
                    out.push('/');
                    child.find_ci(t, out)
                }
            };
            if ok {
                return true;
            }
            out.truncate(mark);
        }
        if tail.is_none() {
            for pp in &self.prefix_params {
                if let Some(v) = strip_prefix_ignore_case(seg, &pp.prefix) {
                    if !v.is_empty() {
                        out.push_str(&pp.prefix);
                        out.push_str(v);
                        return true;
                    }
                }
            }
        }
        if let Some(p) = &self.param {
            if !seg.is_empty() {
                out.push_str(seg);
                let ok = match tail {
                    None => p.node.leaf.is_some(),
                    Some(t) => {
                        out.push('/');
                        p.node.find_ci(t, out)
                    }
                };
                if ok {
                    return true;
                }
                out.truncate(mark);
            }
        }
        false
    }
}
