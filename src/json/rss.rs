//! `encoding: rss`: an RSS or Atom feed as the object KrakenD's decoder makes of it
//! (krakend-rss on mmcdole/gofeed): `items`, `author`, `categories`, `custom`, `copyright`,
//! `description`, `type`, `language`, `title`, `published`, `updated` and, with an image,
//! `img_url`. Items carry gofeed's `Item` JSON fields that are set (`title`, `description`,
//! `content`, `link`, `updated`, `published`, `author`, `guid`, `categories`, `enclosures`).
//!
//! The feed is read with the same bounded, entity-safe XML decoder as `encoding: xml`
//! ([`super::xml`]), then mapped. Not produced (documented in the README): gofeed's parsed
//! dates (`publishedParsed`, `updatedParsed`), extensions (`dcExt`, `itunesExt`,
//! `extensions`) and `custom`, which is always `null`.

use super::text;
use super::xml::{self, XVal, XmlError};

/// Decode a feed to JSON object text.
pub fn to_json(body: &[u8]) -> Result<Vec<u8>, XmlError> {
    let (root, v) = xml::decode(body)?;
    let mut o = Obj::default();
    match root.as_str() {
        "feed" => atom(&v, &mut o),
        "rss" | "RDF" => rss(&root, &v, &mut o),
        _ => {
            return Err(XmlError::Syntax(format!(
                "not an RSS or Atom feed (root element <{root}>)"
            )))
        }
    }
    Ok(o.finish())
}

fn rss(root: &str, v: &XVal, o: &mut Obj) {
    let ch = get(v, "channel");
    let s = |k| ch.and_then(|c| text_at(c, k));
    let author = s("managingEditor")
        .or_else(|| s("webMaster"))
        .or_else(|| s("creator"));
    let author = author.map(|a| rss_person(&a));
    // RSS 1.0 (RDF) keeps items and the image beside the channel.
    let items_parent = if root == "RDF" { Some(v) } else { ch };
    let items: Vec<Vec<u8>> = items_parent
        .map(|p| all(p, "item").map(rss_item).collect())
        .unwrap_or_default();
    let img = ch
        .and_then(|c| get(c, "image"))
        .or_else(|| get(v, "image"))
        .and_then(|i| text_at(i, "url"));
    let cats: Vec<String> = ch
        .map(|c| all(c, "category").filter_map(text_of).collect())
        .unwrap_or_default();
    o.feed(FeedFields {
        items,
        author,
        categories: cats,
        copyright: s("copyright"),
        description: s("description"),
        kind: "rss",
        language: s("language").or_else(|| s("dc:language")),
        title: s("title"),
        published: s("pubDate").or_else(|| s("date")),
        updated: s("lastBuildDate").or_else(|| s("date")),
        img_url: img,
    });
}

fn rss_item(it: &XVal) -> Vec<u8> {
    let s = |k| text_at(it, k);
    let mut w = Obj::default();
    w.str("title", s("title"));
    w.str("description", s("description"));
    w.str("content", s("encoded"));
    w.str("link", s("link"));
    w.str("published", s("pubDate").or_else(|| s("date")));
    if let Some(a) = s("author").or_else(|| s("creator")) {
        w.raw("author", person_json(&rss_person(&a)));
    }
    w.str("guid", s("guid"));
    w.list(
        "categories",
        all(it, "category").filter_map(text_of).collect(),
    );
    let enc: Vec<Vec<u8>> = all(it, "enclosure")
        .map(|e| {
            let mut x = Obj::default();
            x.str("url", text_at(e, "-url"));
            x.str("length", text_at(e, "-length"));
            x.str("type", text_at(e, "-type"));
            x.finish()
        })
        .collect();
    if !enc.is_empty() {
        w.raw("enclosures", array(&enc));
    }
    w.finish()
}

fn atom(v: &XVal, o: &mut Obj) {
    let s = |k| text_at(v, k);
    let items: Vec<Vec<u8>> = all(v, "entry").map(atom_entry).collect();
    let author = get(v, "author").map(atom_person);
    o.feed(FeedFields {
        items,
        author,
        categories: all(v, "category")
            .filter_map(|c| text_at(c, "-term"))
            .collect(),
        copyright: s("rights"),
        description: s("subtitle"),
        kind: "atom",
        language: s("-lang"),
        title: s("title"),
        published: s("published"),
        updated: s("updated"),
        img_url: s("logo"),
    });
}

fn atom_entry(e: &XVal) -> Vec<u8> {
    let s = |k| text_at(e, k);
    let mut w = Obj::default();
    w.str("title", s("title"));
    w.str("description", s("summary"));
    w.str("content", s("content"));
    let link = all(e, "link")
        .find(|l| matches!(text_at(l, "-rel").as_deref(), None | Some("alternate")))
        .and_then(|l| text_at(l, "-href"));
    w.str("link", link);
    w.str("updated", s("updated"));
    w.str("published", s("published"));
    if let Some(a) = get(e, "author") {
        w.raw("author", person_json(&atom_person(a)));
    }
    w.str("guid", s("id"));
    w.list(
        "categories",
        all(e, "category")
            .filter_map(|c| text_at(c, "-term"))
            .collect(),
    );
    w.finish()
}

/// (name, email)
type Person = (Option<String>, Option<String>);

fn atom_person(a: &XVal) -> Person {
    (text_at(a, "name"), text_at(a, "email"))
}

/// gofeed's `ParseNameAddress`: `email (Name)` or `Name <email>` or either alone.
fn rss_person(s: &str) -> Person {
    let s = s.trim();
    if let Some((a, b)) = s.split_once('(') {
        let name = b.trim_end_matches(')').trim();
        return (nonempty(name), nonempty(a.trim()));
    }
    if let Some((a, b)) = s.split_once('<') {
        let email = b.trim_end_matches('>').trim();
        return (nonempty(a.trim()), nonempty(email));
    }
    if s.contains('@') {
        (None, nonempty(s))
    } else {
        (nonempty(s), None)
    }
}

fn nonempty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

fn person_json(p: &Person) -> Vec<u8> {
    let mut o = Obj::default();
    o.str("name", p.0.clone());
    o.str("email", p.1.clone());
    o.finish()
}

/// The member `k` of a map (the first of a list).
fn get<'a>(v: &'a XVal, k: &str) -> Option<&'a XVal> {
    match v {
        XVal::Map(m) => m.iter().find(|(n, _)| n == k).map(|(_, v)| first(v)),
        _ => None,
    }
}

fn first(v: &XVal) -> &XVal {
    match v {
        XVal::List(items) => items.first().unwrap_or(v),
        _ => v,
    }
}

/// Every `k` child (a repeated element is a list).
fn all<'a>(v: &'a XVal, k: &str) -> Box<dyn Iterator<Item = &'a XVal> + 'a> {
    let found = match v {
        XVal::Map(m) => m.iter().find(|(n, _)| n == k).map(|(_, v)| v),
        _ => None,
    };
    match found {
        Some(XVal::List(items)) => Box::new(items.iter()),
        Some(one) => Box::new(std::iter::once(one)),
        None => Box::new(std::iter::empty()),
    }
}

/// An element's text: a simple element's value or `#text`.
fn text_of(v: &XVal) -> Option<String> {
    match first(v) {
        XVal::Str(s) => nonempty(s),
        m @ XVal::Map(_) => get(m, "#text").and_then(text_of),
        XVal::List(_) => None,
    }
}

fn text_at(v: &XVal, k: &str) -> Option<String> {
    get(v, k).and_then(text_of)
}

struct FeedFields {
    items: Vec<Vec<u8>>,
    author: Option<Person>,
    categories: Vec<String>,
    copyright: Option<String>,
    description: Option<String>,
    kind: &'static str,
    language: Option<String>,
    title: Option<String>,
    published: Option<String>,
    updated: Option<String>,
    img_url: Option<String>,
}

/// A JSON object being written.
#[derive(Default)]
struct Obj {
    out: Vec<u8>,
}

impl Obj {
    fn key(&mut self, k: &str) {
        self.out.push(if self.out.is_empty() { b'{' } else { b',' });
        self.out.push(b'"');
        text::escape_into(&mut self.out, k);
        self.out.extend_from_slice(b"\":");
    }

    /// Go `omitempty` string.
    fn str(&mut self, k: &str, v: Option<String>) {
        if let Some(v) = v {
            self.key(k);
            self.out.extend_from_slice(&text::quoted(&v));
        }
    }

    fn raw(&mut self, k: &str, v: Vec<u8>) {
        self.key(k);
        self.out.extend_from_slice(&v);
    }

    /// Go `omitempty` string list.
    fn list(&mut self, k: &str, v: Vec<String>) {
        if !v.is_empty() {
            self.raw(k, string_array(&v));
        }
    }

    // KrakenD (krakend-rss): the top-level members are always there; Go renders an unset
    // string as "", a nil author, category list or custom map as null.
    fn feed(&mut self, f: FeedFields) {
        self.raw("items", array(&f.items));
        let author = f
            .author
            .map_or_else(|| b"null".to_vec(), |p| person_json(&p));
        self.raw("author", author);
        let cats = if f.categories.is_empty() {
            b"null".to_vec()
        } else {
            string_array(&f.categories)
        };
        self.raw("categories", cats);
        self.raw("custom", b"null".to_vec());
        for (k, v) in [
            ("copyright", f.copyright),
            ("description", f.description),
            ("type", Some(f.kind.to_owned())),
            ("language", f.language),
            ("title", f.title),
            ("published", f.published),
            ("updated", f.updated),
        ] {
            self.raw(k, text::quoted(&v.unwrap_or_default()).to_vec());
        }
        if let Some(img) = f.img_url {
            self.raw("img_url", text::quoted(&img).to_vec());
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.out.is_empty() {
            self.out.push(b'{');
        }
        self.out.push(b'}');
        self.out
    }
}

fn array(items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![b'['];
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(it);
    }
    out.push(b']');
    out
}

fn string_array(items: &[String]) -> Vec<u8> {
    let quoted: Vec<Vec<u8>> = items.iter().map(|s| text::quoted(s).to_vec()).collect();
    array(&quoted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_channel_and_items_take_gofeed_shape() {
        let feed = r#"<?xml version="1.0"?><rss version="2.0"><channel>
            <title>showRSS</title><link>http://x</link><description>d</description>
            <managingEditor>ed@x.org (Ed)</managingEditor><category>tv</category>
            <image><url>http://img</url></image>
            <item><title>one</title><guid isPermaLink="false">g1</guid>
              <enclosure url="http://m" length="10" type="video/mp4"/></item>
            <item><title>two</title></item></channel></rss>"#;
        let v: serde_json::Value =
            serde_json::from_slice(&to_json(feed.as_bytes()).unwrap()).unwrap();
        assert_eq!(v["title"], "showRSS");
        assert_eq!(v["type"], "rss");
        assert_eq!(
            v["author"],
            serde_json::json!({"name": "Ed", "email": "ed@x.org"})
        );
        assert_eq!(v["categories"], serde_json::json!(["tv"]));
        assert_eq!(v["custom"], serde_json::Value::Null);
        assert_eq!(v["copyright"], "");
        assert_eq!(v["img_url"], "http://img");
        assert_eq!(
            v["items"],
            serde_json::json!([{"title": "one", "guid": "g1",
                "enclosures": [{"url": "http://m", "length": "10", "type": "video/mp4"}]},
                {"title": "two"}])
        );
    }

    #[test]
    fn atom_feed_maps_entries() {
        let feed = r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title>
            <subtitle>s</subtitle><updated>2024-01-01T00:00:00Z</updated>
            <entry><title>e</title><id>urn:1</id><link href="http://e"/>
            <author><name>N</name></author><summary>sum</summary></entry></feed>"#;
        let v: serde_json::Value =
            serde_json::from_slice(&to_json(feed.as_bytes()).unwrap()).unwrap();
        assert_eq!(v["type"], "atom");
        assert_eq!(v["description"], "s");
        assert_eq!(v["author"], serde_json::Value::Null);
        assert_eq!(
            v["items"],
            serde_json::json!([{"title": "e", "description": "sum", "link": "http://e",
                "author": {"name": "N"}, "guid": "urn:1"}])
        );
    }

    #[test]
    fn a_document_that_is_not_a_feed_is_an_error() {
        assert!(to_json(b"<html></html>").is_err());
    }
}
