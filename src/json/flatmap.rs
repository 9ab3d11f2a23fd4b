//! Flatmap (`proxy.flatmap_filter`): `move`, `del` and `append` over dot paths with numeric
//! indexes and `*` wildcards, with the semantics of `krakend/flatmap`'s tree. The tree is built
//! lazily: only nodes that an operation walks into are parsed; everything else stays raw text.

use bytes::Bytes;

use super::project::members_of;
use super::{text, Fields, JsonError};

const WILDCARD: &str = "*";

#[derive(Clone, Debug)]
enum Op {
    Move(Vec<String>, Vec<String>),
    Del(Vec<Vec<String>>),
    Append(Vec<String>, Vec<String>),
    /// KrakenD skips unknown types, but their presence still turns the flatmap on.
    Skip,
}

/// A parsed, validated `flatmap_filter`.
#[derive(Clone, Debug)]
pub(crate) struct Ops(Vec<Op>);

fn split(p: &str) -> Vec<String> {
    p.split('.').map(str::to_owned).collect()
}

/// Parse a `proxy` namespace value. `Ok(None)` when there is no usable flatmap_filter (KrakenD:
/// then allow/deny/mapping apply as usual).
pub(crate) fn parse(ns: Option<&serde_json::Value>) -> Result<Option<Ops>, String> {
    let Some(list) = ns
        .and_then(|v| v.get("flatmap_filter"))
        .and_then(|v| v.as_array())
    else {
        return Ok(None);
    };
    let mut ops = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        // KrakenD: entries that are not objects or lack a string "type" are skipped.
        let Some(kind) = entry.get("type").and_then(|t| t.as_str()) else {
            continue;
        };
        let args = match entry.get("args") {
            None => Vec::new(),
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(split)
                        .ok_or_else(|| format!("[{i}] ({kind}): every arg must be a string"))
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(format!("[{i}] ({kind}): args must be an array of strings")),
        };
        // KrakenD: lura reads `Args[0]` and `Args[1]` unchecked: more are ignored (the decoder
        // warns), fewer panic on every request that reaches the op, so we refuse those.
        let two = |args: Vec<Vec<String>>| -> Result<(Vec<String>, Vec<String>), String> {
            let mut it = args.into_iter();
            match (it.next(), it.next()) {
                (Some(a), Some(b)) => Ok((a, b)),
                _ => Err(format!(
                    "[{i}] ({kind}): needs exactly two args [source, destination] (KrakenD \
                     panics on every request that reaches this op)"
                )),
            }
        };
        let stars = |p: &[String]| p.iter().filter(|s| *s == WILDCARD).count();
        ops.push(match kind {
            "move" => {
                let (src, dst) = two(args)?;
                if stars(&dst) > stars(&src) {
                    return Err(format!(
                        "[{i}] (move): the destination has more wildcards than the source"
                    ));
                }
                Op::Move(src, dst)
            }
            "append" => {
                let (src, dst) = two(args)?;
                if stars(&src) + stars(&dst) > 0 {
                    return Err(format!("[{i}] (append): wildcards are not supported"));
                }
                Op::Append(src, dst)
            }
            // KrakenD: lura deletes each arg in turn, so a `del` without args does nothing
            // (it still turns the flatmap on).
            "del" => Op::Del(args),
            _ => Op::Skip,
        });
    }
    Ok((!ops.is_empty()).then_some(Ops(ops)))
}

impl Ops {
    /// Run the operations over top-level members.
    pub(crate) fn run(
        &self,
        members: Vec<(Bytes, Bytes)>,
    ) -> Result<Vec<(Bytes, Bytes)>, JsonError> {
        let edges = members
            .into_iter()
            .map(|(k, v)| (label(&k), Node::Lazy(v)))
            .collect();
        let mut root = Node::Branch { list: false, edges };
        for op in &self.0 {
            match op {
                Op::Move(src, dst) => move_op(&mut root, src, dst)?,
                Op::Del(paths) => {
                    for p in paths {
                        root.del(p)?;
                    }
                }
                Op::Append(src, dst) => append_op(&mut root, src, dst)?,
                Op::Skip => {}
            }
        }
        let Node::Branch { list: false, edges } = root else {
            return Ok(Vec::new());
        };
        let mut out: Vec<(Bytes, Bytes)> = edges
            .into_iter()
            .map(|(l, n)| (text::escaped(&l), n.render()))
            .collect();
        text::dedupe_last_wins(&mut out);
        Ok(out)
    }
}

fn label(raw: &[u8]) -> String {
    text::unescape(raw).unwrap_or_else(|| String::from_utf8_lossy(raw).into_owned())
}

/// A node of the flatmap tree. A `Branch` whose edges were all deleted renders as `null`
/// (KrakenD: its value is nil).
#[derive(Clone, Debug)]
enum Node {
    /// Raw text not yet looked into.
    Lazy(Bytes),
    /// A scalar or an empty container.
    Leaf(Bytes),
    Branch {
        list: bool,
        edges: Vec<(String, Node)>,
    },
}

impl Node {
    fn expand(&mut self) -> Result<(), JsonError> {
        let Node::Lazy(raw) = self else { return Ok(()) };
        let raw = raw.clone();
        *self = match text::first_byte(&raw) {
            Some(b'{') => {
                let edges: Vec<(String, Node)> = members_of(&raw, |_| true)?
                    .into_iter()
                    .map(|(k, v)| (label(&k), Node::Lazy(v)))
                    .collect();
                if edges.is_empty() {
                    Node::Leaf(raw)
                } else {
                    Node::Branch { list: false, edges }
                }
            }
            Some(b'[') => {
                let mut edges = Vec::new();
                for (i, item) in sonic_rs::to_array_iter(raw.as_ref()).enumerate() {
                    let v = item?;
                    edges.push((
                        i.to_string(),
                        Node::Lazy(text::sub(&raw, v.as_raw_str().as_bytes())),
                    ));
                }
                if edges.is_empty() {
                    Node::Leaf(raw)
                } else {
                    Node::Branch { list: true, edges }
                }
            }
            _ => Node::Leaf(raw),
        };
        Ok(())
    }

    fn edges_mut(&mut self) -> Result<Option<&mut Vec<(String, Node)>>, JsonError> {
        self.expand()?;
        Ok(match self {
            Node::Branch { edges, .. } => Some(edges),
            _ => None,
        })
    }

    fn child_mut(&mut self, label: &str) -> Result<Option<&mut Node>, JsonError> {
        Ok(self
            .edges_mut()?
            .and_then(|e| e.iter_mut().find(|(l, _)| l == label).map(|(_, n)| n)))
    }

    /// KrakenD (`node.Add` on a leaf): a scalar that gets children becomes an object; an empty
    /// array stays a list.
    fn push_edge(&mut self, label: String, child: Node) -> Result<(), JsonError> {
        self.expand()?;
        match self {
            Node::Branch { edges, .. } => edges.push((label, child)),
            Node::Leaf(raw) | Node::Lazy(raw) => {
                let list = text::first_byte(raw) == Some(b'[');
                *self = Node::Branch {
                    list,
                    edges: vec![(label, child)],
                };
            }
        }
        Ok(())
    }

    fn del(&mut self, ks: &[String]) -> Result<(), JsonError> {
        let Some((first, rest)) = ks.split_first() else {
            return Ok(());
        };
        let Some(edges) = self.edges_mut()? else {
            return Ok(());
        };
        if first == WILDCARD {
            if rest.is_empty() {
                edges.clear();
            } else {
                for (_, n) in edges.iter_mut() {
                    n.del(rest)?;
                }
            }
            return Ok(());
        }
        if let Some(i) = edges.iter().position(|(l, _)| l == first) {
            if rest.is_empty() {
                edges.remove(i);
            } else if let Some((_, n)) = edges.get_mut(i) {
                n.del(rest)?;
            }
        }
        Ok(())
    }

    fn at_mut(&mut self, path: &[usize]) -> Result<Option<&mut Node>, JsonError> {
        let mut node = self;
        for i in path {
            let Some(edges) = node.edges_mut()? else {
                return Ok(None);
            };
            let Some((_, n)) = edges.get_mut(*i) else {
                return Ok(None);
            };
            node = n;
        }
        Ok(Some(node))
    }

    fn render(self) -> Bytes {
        match self {
            Node::Lazy(raw) | Node::Leaf(raw) => raw,
            Node::Branch { edges, .. } if edges.is_empty() => Bytes::from_static(b"null"),
            Node::Branch { list: true, edges } => {
                let mut out = vec![b'['];
                for (i, (_, n)) in edges.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(&n.render());
                }
                out.push(b']');
                Bytes::from(out)
            }
            Node::Branch { list: false, edges } => {
                let mut members: Vec<(Bytes, Bytes)> = edges
                    .into_iter()
                    .map(|(l, n)| (text::escaped(&l), n.render()))
                    .collect();
                text::dedupe_last_wins(&mut members);
                let mut out = Vec::new();
                text::write_members(&mut out, &members);
                Bytes::from(out)
            }
        }
    }
}

/// A node matched by the source prefix: its edge-index path from the root and its labels.
struct Candidate {
    index: Vec<usize>,
    labels: Vec<String>,
}

/// KrakenD (`Tree.Move`): same length = relabel the last segment in place; shorter destination
/// = promote towards the root (wildcards take the source's labels); longer = embed below the
/// source's parent (the destination's first segments are not re-read).
fn move_op(root: &mut Node, src: &[String], dst: &[String]) -> Result<(), JsonError> {
    let (Some((src_last, src_prefix)), Some((dst_last, dst_prefix))) =
        (src.split_last(), dst.split_last())
    else {
        return Ok(());
    };
    let mut cands = vec![Candidate {
        index: Vec::new(),
        labels: Vec::new(),
    }];
    for step in src_prefix {
        let mut next = Vec::new();
        for c in &cands {
            let Some(node) = root.at_mut(&c.index)? else {
                continue;
            };
            let Some(edges) = node.edges_mut()? else {
                continue;
            };
            for (i, (l, _)) in edges.iter().enumerate() {
                if step == WILDCARD || l == step {
                    let mut index = c.index.clone();
                    index.push(i);
                    let mut labels = c.labels.clone();
                    labels.push(l.clone());
                    next.push(Candidate { index, labels });
                    if step != WILDCARD {
                        break;
                    }
                }
            }
        }
        cands = next;
    }
    let relabel = src.len() == dst.len();
    let mut moved: Vec<(Candidate, Node)> = Vec::new();
    for c in cands {
        let Some(node) = root.at_mut(&c.index)? else {
            continue;
        };
        let Some(edges) = node.edges_mut()? else {
            continue;
        };
        // KrakenD: the last source segment is matched literally (no wildcard here).
        let Some(i) = edges.iter().position(|(l, _)| l == src_last) else {
            continue;
        };
        if relabel {
            if let Some(e) = edges.get_mut(i) {
                e.0 = dst_last.clone();
            }
            continue;
        }
        let (_, n) = edges.remove(i);
        moved.push((c, n));
    }
    if relabel {
        return Ok(());
    }
    if src.len() > dst.len() {
        for (c, n) in moved {
            place(root, dst_prefix, &c.labels, 0, false, dst_last, n)?;
        }
        return Ok(());
    }
    let inner = dst_prefix.get(src_prefix.len()..).unwrap_or_default();
    for (c, n) in moved {
        if let Some(node) = root.at_mut(&c.index)? {
            place(node, inner, &c.labels, 0, true, dst_last, n)?;
        }
    }
    Ok(())
}

/// Walk `path` from `node` and add `n` under `last` at the end of the walk. Promotion
/// (`create == false`) stops at the first missing segment and resolves wildcards from the
/// source's labels; embedding (`create == true`) creates missing intermediate objects.
fn place(
    node: &mut Node,
    path: &[String],
    labels: &[String],
    depth: usize,
    create: bool,
    last: &str,
    n: Node,
) -> Result<(), JsonError> {
    let Some((seg, rest)) = path.split_first() else {
        return node.push_edge(last.to_owned(), n);
    };
    let l = if seg == WILDCARD && !create {
        labels.get(depth).cloned().unwrap_or_default()
    } else {
        seg.clone()
    };
    if node.child_mut(&l)?.is_none() {
        if !create {
            return node.push_edge(last.to_owned(), n);
        }
        node.push_edge(
            l.clone(),
            Node::Branch {
                list: false,
                edges: Vec::new(),
            },
        )?;
    }
    match node.child_mut(&l)? {
        Some(next) => place(next, rest, labels, depth + 1, create, last, n),
        None => Ok(()),
    }
}

fn at_path<'a>(root: &'a mut Node, path: &[String]) -> Result<Option<&'a mut Node>, JsonError> {
    let mut node = root;
    for seg in path {
        let Some(next) = node.child_mut(seg)? else {
            return Ok(None);
        };
        node = next;
    }
    Ok(Some(node))
}

/// The elements of a list node, `None` if it is not a list.
fn list_items(node: &mut Node) -> Result<Option<Vec<Node>>, JsonError> {
    node.expand()?;
    Ok(match node {
        Node::Branch { list: true, edges } => Some(edges.iter().map(|(_, n)| n.clone()).collect()),
        Node::Leaf(raw) if text::first_byte(raw) == Some(b'[') => Some(Vec::new()),
        _ => None,
    })
}

/// `append [src, dst]`: both must be arrays; dst becomes dst ++ src and src is deleted.
fn append_op(root: &mut Node, src: &[String], dst: &[String]) -> Result<(), JsonError> {
    let Some(items) = (match at_path(root, src)? {
        Some(n) => list_items(n)?,
        None => None,
    }) else {
        return Ok(());
    };
    let Some(target) = at_path(root, dst)? else {
        return Ok(());
    };
    if list_items(target)?.is_none() {
        return Ok(());
    }
    for n in items {
        let next = match &*target {
            Node::Branch { edges, .. } => edges.len(),
            _ => 0,
        };
        target.push_edge(next.to_string(), n)?;
    }
    root.del(src)
}

/// Flatmap at endpoint level: runs on the merged data of multi-backend endpoints.
#[derive(Clone, Debug, Default)]
pub struct EndpointFlatmap {
    ops: Option<Ops>,
}

impl EndpointFlatmap {
    /// Compile from the endpoint's `proxy` namespace value.
    pub fn compile(proxy: Option<&serde_json::Value>) -> Result<EndpointFlatmap, String> {
        Ok(EndpointFlatmap {
            ops: parse(proxy).map_err(|e| format!("proxy.flatmap_filter: {e}"))?,
        })
    }

    /// Is there anything to do?
    pub fn is_active(&self) -> bool {
        self.ops.is_some()
    }

    /// Run the operations over merged data.
    pub fn apply(&self, fields: Fields) -> Result<Fields, JsonError> {
        match &self.ops {
            Some(ops) => {
                if fields.is_nil() || fields.is_empty() {
                    return Ok(fields);
                }
                Ok(nil_if_empty(ops.run(fields.into_members())?))
            }
            None => Ok(fields),
        }
    }
}

/// KrakenD (lura flatmap formatter, recorded answers): operations that empty a map leave a nil
/// map (rendered `null`, and an incomplete merge part); an empty map stays empty.
pub(crate) fn nil_if_empty(members: Vec<(Bytes, Bytes)>) -> Fields {
    if members.is_empty() {
        Fields::nil()
    } else {
        Fields::from_members(members)
    }
}
