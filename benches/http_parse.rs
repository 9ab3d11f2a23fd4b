//! Question: what does parsing a typical request head cost, all validation included
//! (`proxy::http::request::parse_request`: httparse + smuggling checks + zero-copy fields)?
//!
//! Inputs: a 5-header curl-like head (~130 bytes) and a 20-header browser-like head
//! (~1.1 KB). The buffer copy that stands in for the socket read is done in the untimed setup.
//! Decision it informs: whether head parsing matters next to routing and the backend call,
//! i.e. whether a hand-rolled parser or caching of validated heads would ever pay.
use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use proxy::http::request::parse_request;
use proxy::http::Limits;

const CURL: &[u8] = b"GET /api/v1/users/42?fields=name,email HTTP/1.1\r\n\
Host: api.example.com\r\n\
User-Agent: curl/8.5.0\r\n\
Accept: */*\r\n\
Accept-Encoding: gzip\r\n\
X-Request-Id: 7f3c1e2a-9b4d-4c6e-8a1f-2d3e4f5a6b7c\r\n\
\r\n";

const BROWSER: &[u8] = b"GET /api/v1/catalog/products?category=shoes&page=2&sort=price HTTP/1.1\r\n\
Host: shop.example.com\r\n\
Connection: keep-alive\r\n\
sec-ch-ua: \"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n\
sec-ch-ua-mobile: ?0\r\n\
sec-ch-ua-platform: \"Linux\"\r\n\
Upgrade-Insecure-Requests: 1\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
Accept: application/json, text/plain, */*\r\n\
Sec-Fetch-Site: same-origin\r\n\
Sec-Fetch-Mode: cors\r\n\
Sec-Fetch-Dest: empty\r\n\
Referer: https://shop.example.com/catalog/shoes?page=1\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-GB,en-US;q=0.9,en;q=0.8,de;q=0.7\r\n\
Cookie: session=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U; theme=dark; consent=1\r\n\
Authorization: Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTQyIiwicm9sZXMiOlsidXNlciJdfQ.c2lnbmF0dXJl\r\n\
If-None-Match: W/\"5e15153d-120f\"\r\n\
Cache-Control: max-age=0\r\n\
X-Requested-With: XMLHttpRequest\r\n\
Origin: https://shop.example.com\r\n\
\r\n";

fn bench_parse(c: &mut Criterion) {
    let limits = Limits::default();
    let mut group = c.benchmark_group("parse_request");
    for (name, head, fields) in [
        ("curl_5_headers", CURL, 5),
        ("browser_20_headers", BROWSER, 20),
    ] {
        // Measure the success path, not an early rejection.
        let parsed = parse_request(&mut BytesMut::from(head), &limits);
        assert!(
            matches!(parsed, Ok(Some(ref h)) if h.headers.len() == fields),
            "{name}: {parsed:?}"
        );
        group.throughput(Throughput::Bytes(head.len() as u64));
        group.bench_function(name, |b| {
            b.iter_batched(
                || BytesMut::from(head),
                |mut buf| parse_request(&mut buf, &limits),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench_parse);
criterion_main!(benches);
