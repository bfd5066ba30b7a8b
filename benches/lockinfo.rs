//! The LOCK body parser on hostile shapes against plain text of the same size: parsing must
//! cost about the same per byte whatever the shape.
//!
//! ```text
//! cargo bench --bench lockinfo
//! ```
//!
//! - `text`: 53 KB of character data in one ignored element;
//! - `wide`: 53 KB of ignored elements with 32 attributes each (the most one element may carry);
//! - `elements`: 53 KB of empty ignored elements;
//! - `deep-ns`: 53 KB of ignored elements under 31 namespace declarations, each element using a
//!   declared prefix;
//! - `6000-attributes`: one ignored element with 6 000 attributes (refused as too complex).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tower_locks::dav::parse_lockinfo;

const HEAD: &str = r#"<D:lockinfo xmlns:D="DAV:""#;
const BODY: &str = "<D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>";
const SIZE: usize = 53_000;

fn text() -> String {
    format!(
        "{HEAD}>{BODY}<D:ignored>{}</D:ignored></D:lockinfo>",
        "x".repeat(SIZE)
    )
}

fn elements(decls: usize, element: &str) -> String {
    let mut s = String::from(HEAD);
    for i in 0..decls {
        s.push_str(&format!(r#" xmlns:n{i}="urn:x:{i}""#));
    }
    s.push('>');
    s.push_str(BODY);
    while s.len() < SIZE {
        s.push_str(element);
    }
    s + "</D:lockinfo>"
}

fn wide() -> String {
    let attrs: String = (0..32).map(|i| format!(r#" a{i}="v""#)).collect();
    elements(0, &format!("<D:ignored{attrs}/>"))
}

fn attributes_6000() -> String {
    let attrs: String = (0..6000).map(|i| format!(r#" a{i}="v""#)).collect();
    format!("{HEAD}>{BODY}<D:ignored{attrs}/></D:lockinfo>")
}

/// An owner whose one child holds thousands of elements, each with a prefix of its own (an
/// owner's children keep the prefixes they use, to declare them when the owner is stored).
fn owner_prefixes() -> String {
    let mut s = format!("{HEAD}>{BODY}<D:owner><c>");
    let mut i = 0;
    while s.len() < SIZE {
        s.push_str(&format!(r#"<p{i}:a xmlns:p{i}="u"/>"#));
        i += 1;
    }
    s + "</c></D:owner></D:lockinfo>"
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("lockinfo");
    let cases = [
        ("text", text()),
        ("wide", wide()),
        ("elements", elements(0, "<D:ignored/>")),
        ("deep-ns", elements(31, "<n30:ignored n30:a=\"v\"/>")),
        ("6000-attributes", attributes_6000()),
        ("owner-prefixes", owner_prefixes()),
    ];
    for (name, body) in &cases {
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), body, |b, body| {
            b.iter(|| parse_lockinfo(body.as_bytes(), 4096))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
