//! The DNS message format (RFC 1035), only as much as a stub resolver needs: one question out
//! (A, AAAA or SRV, with an EDNS0 OPT record so answers up to 1,232 bytes fit in UDP), and
//! the answer section back (A, AAAA, CNAME, SRV; other types skipped). Sans-io: bytes in,
//! values out, so it unit-tests and fuzzes without a network.

use std::net::{Ipv4Addr, Ipv6Addr};

pub const TYPE_A: u16 = 1;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_SRV: u16 = 33;
const TYPE_OPT: u16 = 41;
const CLASS_IN: u16 = 1;

/// The UDP payload size we announce (the DNS flag day 2020 value: no IP fragmentation).
pub const UDP_SIZE: u16 = 1232;

/// Response codes a caller acts on.
pub const RCODE_NOERROR: u8 = 0;
pub const RCODE_NXDOMAIN: u8 = 3;

/// A parsed response.
#[derive(Debug, Default)]
pub struct Message {
    pub id: u16,
    pub rcode: u8,
    /// TC: the answer did not fit; ask again over TCP.
    pub truncated: bool,
    /// The question as the server echoed it (lower-case, no trailing dot), and its type.
    pub question: Option<(String, u16)>,
    pub answers: Vec<Record>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Owner name, lower-case, no trailing dot.
    pub name: String,
    pub ttl: u32,
    pub data: RData,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// The canonical name, lower-case, no trailing dot.
    Cname(String),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        /// As written in the record, in presentation form with the trailing dot.
        target: String,
    },
    /// Another type, or a record whose data we could not use.
    Other(u16),
}

impl RData {
    pub fn rtype(&self) -> u16 {
        match self {
            RData::A(_) => TYPE_A,
            RData::Aaaa(_) => TYPE_AAAA,
            RData::Cname(_) => TYPE_CNAME,
            RData::Srv { .. } => TYPE_SRV,
            RData::Other(t) => *t,
        }
    }
}

/// A name as compared: lower-case, without the root's trailing dot.
pub fn canonical(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Encode a query for `name` (absolute; a trailing dot is optional) with recursion desired.
pub fn query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(name.len() + 2 + 16 + 11);
    out.extend_from_slice(&id.to_be_bytes());
    // Flags: RD. One question, no answers, no authority, one additional (OPT).
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1]);
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.is_empty() || trimmed.len() > 253 {
        return Err(format!("invalid name {name:?}"));
    }
    for label in trimmed.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(format!("invalid name {name:?}"));
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    // EDNS0 OPT: root name, type 41, class = UDP size, TTL = 0 (rcode/version/flags), no data.
    out.push(0);
    out.extend_from_slice(&TYPE_OPT.to_be_bytes());
    out.extend_from_slice(&UDP_SIZE.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    Ok(out)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn u8(&mut self) -> Result<u8, String> {
        let b = *self.buf.get(self.pos).ok_or("truncated message")?;
        self.pos += 1;
        Ok(b)
    }

    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from(self.u8()?) << 8 | u16::from(self.u8()?))
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from(self.u16()?) << 16 | u32::from(self.u16()?))
    }

    fn bytes(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.pos.checked_add(n).ok_or("truncated message")?;
        let s = self.buf.get(self.pos..end).ok_or("truncated message")?;
        self.pos = end;
        Ok(s)
    }

    /// A possibly compressed name, in presentation form with the trailing dot.
    fn name(&mut self) -> Result<String, String> {
        let (name, next) = read_name(self.buf, self.pos)?;
        self.pos = next;
        Ok(name)
    }
}

/// Read the name at `pos`; returns it (`a.b.` form, `.` for the root) and the position after
/// it in the original stream. Compression pointers may only point backwards, which also
/// bounds the walk.
fn read_name(buf: &[u8], mut pos: usize) -> Result<(String, usize), String> {
    let mut name = String::new();
    let mut after: Option<usize> = None;
    let mut limit = pos;
    loop {
        let len = *buf.get(pos).ok_or("truncated name")?;
        match len & 0xC0 {
            0x00 if len == 0 => {
                let next = after.unwrap_or(pos + 1);
                if name.is_empty() {
                    name.push('.');
                }
                return Ok((name, next));
            }
            0x00 => {
                let label = buf
                    .get(pos + 1..pos + 1 + usize::from(len))
                    .ok_or("truncated name")?;
                for &b in label {
                    if !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'*') {
                        return Err("name with unsupported characters".into());
                    }
                }
                name.extend(label.iter().map(|&b| char::from(b)));
                name.push('.');
                if name.len() > 254 {
                    return Err("name too long".into());
                }
                pos += 1 + usize::from(len);
            }
            0xC0 => {
                let low = *buf.get(pos + 1).ok_or("truncated name")?;
                let target = usize::from(len & 0x3F) << 8 | usize::from(low);
                if target >= limit {
                    return Err("compression pointer does not point backwards".into());
                }
                after.get_or_insert(pos + 2);
                limit = target;
                pos = target;
            }
            _ => return Err("unsupported label type".into()),
        }
    }
}

/// Parse a response. Records we cannot use are kept as [`RData::Other`]; a malformed message
/// is an error.
pub fn parse(buf: &[u8]) -> Result<Message, String> {
    let mut r = Reader { buf, pos: 0 };
    let id = r.u16()?;
    let flags = r.u16()?;
    if flags & 0x8000 == 0 {
        return Err("not a response".into());
    }
    let (qd, an) = (r.u16()?, r.u16()?);
    let _ns_ar = r.u32()?;
    let mut msg = Message {
        id,
        rcode: (flags & 0x000F) as u8,
        truncated: flags & 0x0200 != 0,
        question: None,
        answers: Vec::new(),
    };
    for _ in 0..qd {
        let name = r.name()?;
        let qtype = r.u16()?;
        let _class = r.u16()?;
        msg.question.get_or_insert((canonical(&name), qtype));
    }
    if msg.truncated {
        // The answer section of a truncated message may be cut anywhere.
        return Ok(msg);
    }
    for _ in 0..an {
        let name = r.name()?;
        let rtype = r.u16()?;
        let class = r.u16()?;
        let ttl = r.u32()?;
        let len = usize::from(r.u16()?);
        let start = r.pos;
        let rdata = r.bytes(len)?;
        let data = match (rtype, class) {
            (TYPE_A, CLASS_IN) => match <[u8; 4]>::try_from(rdata) {
                Ok(b) => RData::A(Ipv4Addr::from(b)),
                Err(_) => RData::Other(rtype),
            },
            (TYPE_AAAA, CLASS_IN) => match <[u8; 16]>::try_from(rdata) {
                Ok(b) => RData::Aaaa(Ipv6Addr::from(b)),
                Err(_) => RData::Other(rtype),
            },
            (TYPE_CNAME, CLASS_IN) => match read_name(buf, start) {
                Ok((n, _)) => RData::Cname(canonical(&n)),
                Err(_) => RData::Other(rtype),
            },
            (TYPE_SRV, CLASS_IN) if len >= 7 => {
                let mut s = Reader { buf, pos: start };
                let priority = s.u16()?;
                let weight = s.u16()?;
                let port = s.u16()?;
                // Go refuses SRV targets that are not valid domain names; such a record is
                // dropped here.
                match s.name() {
                    Ok(target) => RData::Srv {
                        priority,
                        weight,
                        port,
                        target,
                    },
                    Err(_) => RData::Other(rtype),
                }
            }
            _ => RData::Other(rtype),
        };
        msg.answers.push(Record {
            name: canonical(&name),
            ttl,
            data,
        });
    }
    Ok(msg)
}

/// The answers of type `qtype` for `qname`, following CNAMEs in the answer section (a
/// record whose owner is neither the name asked nor an alias of it is ignored, as Go does).
pub fn answers_for<'m>(msg: &'m Message, qname: &str, qtype: u16) -> Vec<&'m RData> {
    let mut names = vec![canonical(qname)];
    // Each pass can add one link of the chain; 8 links is more than any real answer has.
    for _ in 0..8 {
        let before = names.len();
        for rec in &msg.answers {
            if let RData::Cname(to) = &rec.data {
                if names.contains(&rec.name) && !names.contains(to) {
                    names.push(to.clone());
                }
            }
        }
        if names.len() == before {
            break;
        }
    }
    msg.answers
        .iter()
        .filter(|r| r.data.rtype() == qtype && names.contains(&r.name))
        .map(|r| &r.data)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response to `q` (a query we built) with the answers given as raw records.
    fn response(q: &[u8], rcode: u8, answers: &[Vec<u8>]) -> Vec<u8> {
        // Header + question of the query, minus its OPT record (11 bytes at the end).
        let mut out = q[..q.len() - 11].to_vec();
        out[2] = 0x81;
        out[3] = 0x80 | rcode;
        out[6..8].copy_from_slice(&(answers.len() as u16).to_be_bytes());
        out[10..12].copy_from_slice(&[0, 0]);
        for a in answers {
            out.extend_from_slice(a);
        }
        out
    }

    fn rr(owner: &[u8], rtype: u16, data: &[u8]) -> Vec<u8> {
        let mut v = owner.to_vec();
        v.extend_from_slice(&rtype.to_be_bytes());
        v.extend_from_slice(&1u16.to_be_bytes());
        v.extend_from_slice(&30u32.to_be_bytes());
        v.extend_from_slice(&(data.len() as u16).to_be_bytes());
        v.extend_from_slice(data);
        v
    }

    /// A pointer to the question name (always at offset 12).
    const QNAME: &[u8] = &[0xC0, 12];

    #[test]
    fn queries_encode_labels_and_an_edns_record() {
        let q = query(0xBEEF, "_api._tcp.Svc.test.", TYPE_SRV).unwrap();
        assert_eq!(&q[..2], &[0xBE, 0xEF]);
        assert_eq!(&q[12..17], b"\x04_api");
        assert!(q.windows(4).any(|w| w == b"\x03Svc"));
        assert_eq!(q.len(), 12 + 20 + 4 + 11);
        assert!(query(1, "bad name", TYPE_A).is_err());
        assert!(query(1, "a..b", TYPE_A).is_err());
        assert!(query(1, &"a".repeat(64), TYPE_A).is_err());
    }

    #[test]
    fn srv_answers_parse_with_compressed_targets() {
        let q = query(7, "_api._tcp.svc.test", TYPE_SRV).unwrap();
        // Target "a" + pointer to "svc.test" inside the question (offset 12 + 5 + 5 = 22).
        let mut srv = vec![0, 10, 0, 3, 0x1F, 0x90, 1, b'a', 0xC0, 22];
        let first = rr(QNAME, TYPE_SRV, &srv);
        srv[3] = 1;
        srv[7] = b'b';
        let second = rr(QNAME, TYPE_SRV, &srv);
        let msg = parse(&response(&q, 0, &[first, second])).unwrap();
        assert_eq!(msg.id, 7);
        assert_eq!(
            msg.question,
            Some(("_api._tcp.svc.test".to_string(), TYPE_SRV))
        );
        let got = answers_for(&msg, "_api._tcp.svc.test.", TYPE_SRV);
        assert_eq!(
            got,
            vec![
                &RData::Srv {
                    priority: 10,
                    weight: 3,
                    port: 8080,
                    target: "a.svc.test.".into()
                },
                &RData::Srv {
                    priority: 10,
                    weight: 1,
                    port: 8080,
                    target: "b.svc.test.".into()
                }
            ]
        );
    }

    #[test]
    fn address_answers_follow_the_cname_chain_only() {
        let q = query(1, "www.test", TYPE_A).unwrap();
        let cname = rr(QNAME, TYPE_CNAME, b"\x04real\x04test\x00");
        let a = rr(b"\x04real\x04test\x00", TYPE_A, &[10, 0, 0, 1]);
        let stray = rr(b"\x05other\x04test\x00", TYPE_A, &[10, 0, 0, 2]);
        let aaaa = rr(QNAME, TYPE_AAAA, &[0; 16]);
        let msg = parse(&response(&q, 0, &[stray, a, cname, aaaa])).unwrap();
        assert_eq!(
            answers_for(&msg, "WWW.test", TYPE_A),
            vec![&RData::A(Ipv4Addr::new(10, 0, 0, 1))]
        );
        assert_eq!(answers_for(&msg, "www.test", TYPE_AAAA).len(), 1);
    }

    #[test]
    fn nxdomain_and_truncation_are_reported() {
        let q = query(1, "nothing.test", TYPE_A).unwrap();
        let msg = parse(&response(&q, RCODE_NXDOMAIN, &[])).unwrap();
        assert_eq!(msg.rcode, RCODE_NXDOMAIN);
        let mut tc = response(&q, 0, &[]);
        tc[2] |= 0x02;
        assert!(parse(&tc).unwrap().truncated);
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        let q = query(1, "x.test", TYPE_A).unwrap();
        let good = response(&q, 0, &[rr(QNAME, TYPE_A, &[1, 2, 3, 4])]);
        for cut in 0..good.len() {
            let _ = parse(&good[..cut]);
        }
        // A pointer to itself (or forwards) must not loop.
        let mut looped = good.clone();
        let at = 12 + 8 + 4;
        looped[at] = 0xC0;
        looped[at + 1] = at as u8;
        assert!(parse(&looped).is_err());
        // A query (QR = 0) is not an answer.
        assert!(parse(&q).is_err());
    }
}
