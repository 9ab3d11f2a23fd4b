#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
//! Question: what does `security/bot-detector` cost per request with a realistic rule set
//! (50 patterns, 20 exact deny entries), for a browser User-Agent that matches nothing?
//!
//! Cases: a miss classified from scratch (hash lookups, then one `RegexSet` scan of the
//! 130-byte User-Agent for all 50 patterns; what every request pays without `cache_size`),
//! the same User-Agent answered from the per-core verdict cache (`cache_size` > 0, the common
//! case: few distinct User-Agents), and a bot caught by a pattern. Decision it informs:
//! whether the cache is worth its memory, and whether a service-level detector stays within
//! 3% of the CPU of a request (~10 µs).
use criterion::{criterion_group, criterion_main, Criterion};
use proxy::guard::botdetector::BotDetector;
use serde_json::json;
use std::hint::black_box;

const BROWSER: &[u8] = b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0";

fn rules(cache_size: usize) -> BotDetector {
    let names = [
        "Googlebot",
        "bingbot",
        "Slurp",
        "DuckDuckBot",
        "Baiduspider",
        "YandexBot",
        "Sogou",
        "Exabot",
        "facebot",
        "ia_archiver",
        "AhrefsBot",
        "SemrushBot",
        "MJ12bot",
        "DotBot",
        "PetalBot",
        "Bytespider",
        "GPTBot",
        "ClaudeBot",
        "CCBot",
        "Applebot",
        "PingdomBot",
        "UptimeRobot",
        "Site24x7",
        "HeadlessChrome",
        "PhantomJS",
        "Selenium",
        "Puppeteer",
        "Playwright",
        "Wget",
        "curl",
        "python-requests",
        "python-urllib",
        "Go-http-client",
        "Java/",
        "Apache-HttpClient",
        "okhttp",
        "node-fetch",
        "axios",
        "Scrapy",
        "libwww-perl",
        "HTTrack",
        "Nutch",
        "heritrix",
        "archive.org_bot",
        "SeznamBot",
        "Qwantify",
        "MojeekBot",
        "linkdexbot",
        "BLEXBot",
        "DataForSeoBot",
    ];
    let patterns: Vec<String> = names.iter().map(|n| format!("(?i){n}[/ ;)]?.*")).collect();
    assert_eq!(patterns.len(), 50);
    let deny: Vec<String> = (0..20).map(|i| format!("bad-agent/{i}")).collect();
    BotDetector::compile(&json!({
        "patterns": patterns,
        "deny": deny,
        "allow": ["MyAndroidClient/1.0"],
        "cache_size": cache_size,
    }))
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let uncached = rules(0);
    assert!(!uncached.classify(BROWSER));
    c.bench_function("botdetector_50_patterns_miss_uncached", |b| {
        b.iter(|| black_box(uncached.is_bot(Some(black_box(BROWSER)))))
    });
    let cached = rules(1000);
    cached.is_bot(Some(BROWSER));
    c.bench_function("botdetector_50_patterns_miss_cached_hit", |b| {
        b.iter(|| black_box(cached.is_bot(Some(black_box(BROWSER)))))
    });
    let bot = b"Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)";
    assert!(uncached.classify(bot));
    c.bench_function("botdetector_50_patterns_bot_uncached", |b| {
        b.iter(|| black_box(uncached.is_bot(Some(black_box(&bot[..])))))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
