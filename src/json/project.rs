//! Per-backend projection, compiled once from config: decode -> target -> allow|deny -> mapping
//! -> group (or decode -> target -> flatmap -> group). Works on raw text: dropped members are
//! skipped (and validated) by our scanner (`scan`), never materialised.

use bytes::Bytes;

use super::flatmap::Ops;
use super::{scan, text, Fields, JsonError};

/// How the backend body is decoded (`encoding`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decoder {
    /// `json`: a top-level object.
    Object,
    /// `json` + `is_collection`: a top-level array under `collection`.
    Collection,
    /// `safejson`: object as is, array under `collection`, anything else under `result`.
    Safe,
    /// `string`: the whole body as a string under `content`.
    Text,
    /// `xml`: mxj's shape ([`super::xml`]); with `is_collection`, under `collection`.
    Xml { collection: bool },
    /// `rss`: gofeed's feed shape ([`super::rss`]).
    Rss,
}

/// A dot-path tree for allow/deny. `None` children are leaves (keep / delete the whole value).
#[derive(Clone, Debug, Default)]
struct PathTree {
    children: Vec<(String, Option<PathTree>)>,
}

impl PathTree {
    fn child(&self, name: &str) -> Option<&Option<PathTree>> {
        self.child_bytes(name.as_bytes())
    }

    /// The rule for an unescaped name. Most body keys match no rule, so the first byte is
    /// compared before the rest (no `memcmp` call per key and rule).
    fn child_bytes(&self, name: &[u8]) -> Option<&Option<PathTree>> {
        self.children
            .iter()
            .find(|(k, _)| {
                let k = k.as_bytes();
                k.len() == name.len() && k.first() == name.first() && k == name
            })
            .map(|(_, v)| v)
    }

    fn child_mut(&mut self, name: &str) -> Option<&mut Option<PathTree>> {
        self.children
            .iter_mut()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// The rule for a raw (escaped) key from the body.
    fn child_raw(&self, raw: &[u8]) -> Option<&Option<PathTree>> {
        if !text::has_escape(raw) {
            return self.child_bytes(raw);
        }
        let name = text::unescape(raw)?;
        self.child(&name)
    }

    fn set(&mut self, name: &str, v: Option<PathTree>) {
        match self.child_mut(name) {
            Some(slot) => *slot = v,
            None => self.children.push((name.to_owned(), v)),
        }
    }

    /// KrakenD (`buildDictPath`): intermediate segments replace a leaf by a subtree, and the last
    /// segment always becomes a leaf, so `["a.b", "a"]` keeps all of `a` but `["a", "a.b"]` keeps
    /// only `a.b`.
    fn allow(paths: &[String]) -> PathTree {
        let mut root = PathTree::default();
        for p in paths {
            let segs: Vec<&str> = p.split('.').collect();
            root.insert_allow(&segs);
        }
        root
    }

    fn insert_allow(&mut self, segs: &[&str]) {
        let Some((first, rest)) = segs.split_first() else {
            return;
        };
        if rest.is_empty() {
            self.set(first, None);
            return;
        }
        if !matches!(self.child(first), Some(Some(_))) {
            self.set(first, Some(PathTree::default()));
        }
        if let Some(Some(next)) = self.child_mut(first) {
            next.insert_allow(rest);
        }
    }

    /// KrakenD (`buildDenyTree`): a shorter path wins over a longer one in either order.
    fn deny(paths: &[String]) -> PathTree {
        let mut root = PathTree::default();
        for p in paths {
            let segs: Vec<&str> = p.split('.').collect();
            root.insert_deny(&segs);
        }
        root
    }

    fn insert_deny(&mut self, segs: &[&str]) {
        let Some((first, rest)) = segs.split_first() else {
            return;
        };
        if rest.is_empty() {
            self.set(first, None);
            return;
        }
        match self.child(first) {
            Some(None) => return,
            None => self.set(first, Some(PathTree::default())),
            Some(Some(_)) => {}
        }
        if let Some(Some(next)) = self.child_mut(first) {
            next.insert_deny(rest);
        }
    }
}

#[derive(Clone, Debug)]
enum Filter {
    None,
    Allow(PathTree),
    Deny(PathTree),
}

/// Everything about one backend's response shaping that depends only on config.
#[derive(Clone, Debug)]
pub struct BackendShape {
    decoder: Decoder,
    target: Vec<String>,
    filter: Filter,
    /// (from, escaped to), in file order.
    mapping: Vec<(String, Bytes)>,
    /// Escaped group key.
    group: Option<Bytes>,
    flatmap: Option<Ops>,
}

impl BackendShape {
    /// Precompute the shaping of `b`. Errors name the bad setting.
    pub fn compile(b: &crate::config::Backend) -> Result<BackendShape, String> {
        let decoder = match b.encoding.as_str() {
            "safejson" => Decoder::Safe,
            "string" => Decoder::Text,
            "xml" => Decoder::Xml {
                collection: b.is_collection,
            },
            "rss" => Decoder::Rss,
            // KrakenD: an unknown encoding falls back to json. no-op never reaches shaping.
            _ if b.is_collection => Decoder::Collection,
            _ => Decoder::Object,
        };
        let flatmap = super::flatmap::parse(b.extra_config.get("proxy"))
            .map_err(|e| format!("backend {}: proxy.flatmap_filter: {e}", b.url_pattern))?;
        let filter = if !b.allow.is_empty() {
            Filter::Allow(PathTree::allow(&b.allow))
        } else if !b.deny.is_empty() {
            Filter::Deny(PathTree::deny(&b.deny))
        } else {
            Filter::None
        };
        // KrakenD: a dotted mapping target is cut at the first dot.
        let mapping = b
            .mapping
            .iter()
            .map(|(from, to)| {
                let to = to.split('.').next().unwrap_or_default();
                (from.clone(), text::escaped(to))
            })
            .collect();
        let target = if b.target.is_empty() {
            Vec::new()
        } else {
            b.target.split('.').map(str::to_owned).collect()
        };
        Ok(BackendShape {
            decoder,
            target,
            filter,
            mapping,
            group: (!b.group.is_empty()).then(|| text::escaped(&b.group)),
            flatmap,
        })
    }

    /// Nothing to project: the body is passed on whole (after validation), never split into
    /// members unless a merge needs them.
    fn is_identity(&self) -> bool {
        self.decoder == Decoder::Object
            && self.target.is_empty()
            && self.flatmap.is_none()
            && matches!(self.filter, Filter::None)
            && self.mapping.is_empty()
    }

    /// Shape one backend body.
    pub fn apply(&self, body: Bytes) -> Result<Fields, JsonError> {
        if self.is_identity() && text::first_byte(&body) == Some(b'{') {
            let object = whole(&body)?;
            return Ok(match &self.group {
                Some(g) => Fields::from_members(vec![(g.clone(), object)]),
                None => Fields::from_whole(object),
            });
        }
        let mut data = self.decode(&body)?;
        // KrakenD: `null` decodes to a nil map; `target` always leaves a (maybe empty) map.
        let mut nil = matches!(data, Data::Empty) && self.target.is_empty();
        for seg in &self.target {
            data = data.descend(seg)?;
        }
        let members = match &self.flatmap {
            Some(ops) => {
                let input = data.into_members(|_| true)?;
                // KrakenD (recorded): operations that empty a map leave a nil map; an
                // empty map stays empty.
                let emptied = !input.is_empty();
                let m = ops.run(input)?;
                nil |= emptied && m.is_empty();
                m
            }
            None => {
                let members = match &self.filter {
                    Filter::None => data.into_members(|_| true)?,
                    Filter::Allow(tree) => {
                        let kept = data.into_members(|k| tree.child_bytes(k).is_some())?;
                        allow_members(tree, kept)?
                    }
                    Filter::Deny(tree) => {
                        let kept =
                            data.into_members(|k| !matches!(tree.child_bytes(k), Some(None)))?;
                        deny_members(tree, kept)?.0
                    }
                };
                self.map(members)
            }
        };
        Ok(match &self.group {
            Some(g) if nil => Fields::from_members(vec![(g.clone(), Bytes::from_static(b"null"))]),
            None if nil => Fields::nil(),
            Some(g) => {
                let mut out = Vec::new();
                text::write_members(&mut out, &members);
                Fields::from_members(vec![(g.clone(), Bytes::from(out))])
            }
            None => Fields::from_members(members),
        })
    }

    fn decode(&self, body: &Bytes) -> Result<Data, JsonError> {
        let first = text::first_byte(body);
        match self.decoder {
            Decoder::Xml { collection } => {
                let json = Bytes::from(super::xml::to_json(body)?);
                if collection {
                    // KrakenD (krakend-xml `CollectionDecoder`): the whole map under `collection`.
                    Ok(Data::Members(vec![(
                        Bytes::from_static(b"collection"),
                        json,
                    )]))
                } else {
                    Ok(Data::Raw(json))
                }
            }
            Decoder::Rss => Ok(Data::Raw(Bytes::from(super::rss::to_json(body)?))),
            Decoder::Text => {
                let s = String::from_utf8_lossy(body);
                Ok(Data::Members(vec![(
                    Bytes::from_static(b"content"),
                    text::quoted(&s),
                )]))
            }
            Decoder::Object => match first {
                Some(b'{') => Ok(Data::Raw(body.clone())),
                // KrakenD: Go decodes `null` into a nil map without error.
                Some(b'n') => {
                    whole(body)?;
                    Ok(Data::Empty)
                }
                Some(_) => {
                    whole(body)?;
                    Err(JsonError::ExpectedObject)
                }
                None => Err(JsonError::Syntax("empty body".into())),
            },
            Decoder::Collection => match first {
                Some(b'[') | Some(b'n') => Ok(Data::Members(vec![(
                    Bytes::from_static(b"collection"),
                    whole(body)?,
                )])),
                Some(_) => {
                    whole(body)?;
                    Err(JsonError::ExpectedArray)
                }
                None => Err(JsonError::Syntax("empty body".into())),
            },
            Decoder::Safe => match first {
                Some(b'{') => Ok(Data::Raw(body.clone())),
                Some(b'[') => Ok(Data::Members(vec![(
                    Bytes::from_static(b"collection"),
                    whole(body)?,
                )])),
                // KrakenD CE 2.13 (recorded, tests/differential): scalars, `null` included, go
                // under "content" (older lura releases used "result").
                Some(_) => Ok(Data::Members(vec![(
                    Bytes::from_static(b"content"),
                    whole(body)?,
                )])),
                None => Err(JsonError::Syntax("empty body".into())),
            },
        }
    }

    /// Rename top-level keys. All renames read the data before any rename (KrakenD iterates a Go
    /// map, so its order is random; we are deterministic): renamed members win over untouched
    /// ones with the same name, and a later mapping entry wins over an earlier one.
    fn map(&self, members: Vec<(Bytes, Bytes)>) -> Vec<(Bytes, Bytes)> {
        if self.mapping.is_empty() {
            return members;
        }
        let mut out = Vec::with_capacity(members.len());
        let mut renamed: Vec<(usize, Bytes)> = Vec::new();
        for (k, v) in members {
            match self
                .mapping
                .iter()
                .position(|(from, _)| text::key_is(&k, from))
            {
                Some(i) => renamed.push((i, v)),
                None => out.push((k, v)),
            }
        }
        renamed.sort_by_key(|(i, _)| *i);
        let mut fields = Fields::from_members(out);
        for (i, v) in renamed {
            if let Some((_, to)) = self.mapping.get(i) {
                fields.insert(to.clone(), v);
            }
        }
        fields.into_members()
    }
}

/// The whole body as one validated value (trailing whitespace allowed).
fn whole(body: &Bytes) -> Result<Bytes, JsonError> {
    Ok(text::slice(body, scan::validate(body)?))
}

/// The object being shaped: raw text, synthetic members from a decoder, or nothing.
enum Data {
    Raw(Bytes),
    Members(Vec<(Bytes, Bytes)>),
    Empty,
}

impl Data {
    /// `target`: the object at `seg`, or nothing when missing or not an object.
    fn descend(self, seg: &str) -> Result<Data, JsonError> {
        let found = match self {
            Data::Empty => return Ok(Data::Empty),
            Data::Members(m) => m
                .into_iter()
                .rev()
                .find(|(k, _)| text::key_is(k, seg))
                .map(|(_, v)| v),
            Data::Raw(raw) => {
                let mut found = None;
                for m in scan::Members::new(&raw) {
                    let m = m?;
                    if key_name(&raw, &m).as_deref() == Some(seg.as_bytes()) {
                        found = Some(m.value);
                    }
                }
                found.map(|r| text::slice(&raw, r))
            }
        };
        Ok(match found {
            Some(v) if text::first_byte(&v) == Some(b'{') => Data::Raw(v),
            _ => Data::Empty,
        })
    }

    /// Unique top-level members whose (unescaped) key passes `keep`.
    fn into_members(self, keep: impl Fn(&[u8]) -> bool) -> Result<Vec<(Bytes, Bytes)>, JsonError> {
        match self {
            Data::Empty => Ok(Vec::new()),
            Data::Members(mut m) => {
                m.retain(|(k, _)| text::unescape(k).is_some_and(|k| keep(k.as_bytes())));
                Ok(m)
            }
            Data::Raw(raw) => members_of(&raw, keep),
        }
    }
}

/// The members of a raw object whose key passes `keep`, deduplicated (last wins). Every member
/// is validated by the scanner; dropped ones are skipped without being built.
pub(crate) fn members_of(
    raw: &Bytes,
    keep: impl Fn(&[u8]) -> bool,
) -> Result<Vec<(Bytes, Bytes)>, JsonError> {
    let mut out = Vec::new();
    for m in scan::Members::new(raw) {
        let m = m?;
        if !key_name(raw, &m).is_some_and(|k| keep(&k)) {
            continue;
        }
        out.push((text::slice(raw, m.key), text::slice(raw, m.value)));
    }
    text::dedupe_last_wins(&mut out);
    Ok(out)
}

/// The unescaped name of a scanned member's key (the scanner has checked it is UTF-8); `None`
/// for an escaped key that does not decode to a string (a lone surrogate), which then matches no
/// configured name.
fn key_name<'a>(raw: &'a [u8], m: &scan::Member) -> Option<std::borrow::Cow<'a, [u8]>> {
    let key = raw.get(m.key.clone())?;
    if m.key_escaped {
        text::unescape(key).map(|k| std::borrow::Cow::Owned(k.into_bytes()))
    } else {
        Some(std::borrow::Cow::Borrowed(key))
    }
}

/// KrakenD (`AllowlistPrune`): keep leaves; descend into objects for subtrees and drop a member
/// whose subtree keeps nothing or whose value is not an object.
fn allow_members(
    tree: &PathTree,
    members: Vec<(Bytes, Bytes)>,
) -> Result<Vec<(Bytes, Bytes)>, JsonError> {
    let mut out = Vec::with_capacity(members.len());
    for (k, v) in members {
        let Some(rule) = tree.child_raw(&k) else {
            continue;
        };
        match rule {
            None => out.push((k, v)),
            Some(sub) => {
                if text::first_byte(&v) != Some(b'{') {
                    continue;
                }
                let inner = members_of(&v, |name| sub.child_bytes(name).is_some())?;
                let kept = allow_members(sub, inner)?;
                if !kept.is_empty() {
                    let mut obj = Vec::with_capacity(v.len());
                    text::write_members(&mut obj, &kept);
                    out.push((k, Bytes::from(obj)));
                }
            }
        }
    }
    Ok(out)
}

/// KrakenD (`recDelete`): delete leaves; descend into objects for subtrees. Also says whether
/// anything changed, so an untouched nested object keeps its raw text.
fn deny_members(
    tree: &PathTree,
    members: Vec<(Bytes, Bytes)>,
) -> Result<(Vec<(Bytes, Bytes)>, bool), JsonError> {
    let mut changed = false;
    let mut out = Vec::with_capacity(members.len());
    for (k, v) in members {
        let rule = tree.child_raw(&k);
        match rule {
            None => out.push((k, v)),
            Some(None) => changed = true,
            Some(Some(sub)) => {
                if text::first_byte(&v) != Some(b'{') {
                    out.push((k, v));
                    continue;
                }
                let (kept, inner_changed) = deny_members(sub, members_of(&v, |_| true)?)?;
                if inner_changed {
                    changed = true;
                    let mut obj = Vec::with_capacity(v.len());
                    text::write_members(&mut obj, &kept);
                    out.push((k, Bytes::from(obj)));
                } else {
                    out.push((k, v));
                }
            }
        }
    }
    Ok((out, changed))
}
