//! A driver for instruction counts: sends `N` requests of one case through the bare inner
//! service, through the layer, or through the bare service with only its response body
//! wrapped (`body-map`: the floor of any middleware with its own body type), with nothing else in the process worth counting. Run under
//! `valgrind --tool=callgrind` by `benches/instructions.sh`, which subtracts a run with zero
//! requests (start-up and set-up) and divides by `N`. Instruction counts do not depend on
//! the machine's load, so they resolve differences criterion cannot on a noisy machine.
//!
//! ```text
//! cargo bench --bench layer_count --no-run
//! target/release/deps/layer_count-* <bare|layer|body-map> <GET|PUT|PUT-token|PUT-423> <N>
//! ```

#[path = "common/layer_setup.rs"]
mod layer_setup;

use std::hint::black_box;

use http::{Request, Response, StatusCode};
use layer_setup::{inner, store_with_locks, Body};
use tower::{service_fn, Layer, Service, ServiceExt};
use tower_locks::{LockLayer, ResponseBody};

fn request(case: &str, token: &str) -> Request<Body> {
    let b = match case {
        "GET" => Request::get("/docs/a.txt"),
        "PUT" => Request::put("/docs/free.txt"),
        "PUT-token" => Request::put("/docs/locked.txt").header("If", format!("(<{token}>)")),
        "PUT-423" => Request::put("/docs/locked.txt"),
        other => panic!("unknown case {other}"),
    };
    b.body(Body::new()).unwrap()
}

async fn drive<S, B>(mut svc: S, case: &str, token: &str, n: u64, want: StatusCode)
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
{
    for _ in 0..n {
        let req = request(case, token);
        let res = svc.ready().await.unwrap().call(req).await.unwrap();
        assert_eq!(res.status(), want);
        black_box(res);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo bench` runs every bench target with `--bench`: nothing to do then.
    if args.len() != 4 {
        return;
    }
    let (which, case) = (args[1].as_str(), args[2].as_str());
    let n: u64 = args[3].parse().expect("N");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // The same store as `benches/layer.rs`: 1000 locks elsewhere, one on the locked path.
    let (store, token) = rt.block_on(store_with_locks());
    let want = match (which, case) {
        ("layer", "PUT-423") => StatusCode::LOCKED,
        _ => StatusCode::OK,
    };
    match which {
        "bare" => rt.block_on(drive(service_fn(inner), case, &token, n, want)),
        "layer" => {
            let svc = LockLayer::new(store.clone()).layer(service_fn(inner));
            rt.block_on(drive(svc, case, &token, n, want))
        }
        // The floor for any middleware that gives the response its own body type: the bare
        // service with only the body wrapped, as the layer does for everything it forwards.
        "body-map" => {
            let svc = service_fn(inner).map_response(|res| res.map(ResponseBody::passthrough));
            rt.block_on(drive(svc, case, &token, n, want))
        }
        other => panic!("unknown service {other}"),
    }
}
