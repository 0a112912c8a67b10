//! The axum service, with a real HTTP client (reqwest): started and
//! stopped by the entrypoint, and drained at stop — a slow request
//! finishes, a hung one and an endless stream are cut off at the drain
//! timeout.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use machina_tokio::http::HttpService;
use machina_tokio::service::Supervisor;

fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "hello" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                "slow but done"
            }),
        )
        .route("/hung", get(std::future::pending::<&'static str>))
        .route(
            "/stream",
            get(|| async {
                let first =
                    futures::stream::once(async { Ok::<_, std::io::Error>("first chunk\n") });
                axum::body::Body::from_stream(futures::StreamExt::chain(
                    first,
                    futures::stream::pending(),
                ))
            }),
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_entrypoint_starts_and_stops_an_axum_service() {
    let web = HttpService::builder("127.0.0.1:0", app()).build().unwrap();
    let entrypoint = machina_tokio::entrypoint()
        .unwrap()
        .service("web", web.clone(), &[])
        .build()
        .unwrap();
    let probe = web.clone();
    let outcome = entrypoint
        .run(async move {
            let addr = probe.local_addr().expect("bound before main runs");
            let body = reqwest::get(format!("http://{addr}/"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let missing = reqwest::get(format!("http://{addr}/nope"))
                .await
                .unwrap()
                .status();
            (addr, body, missing)
        })
        .await;
    let (addr, body, missing) = outcome.value.expect("ran");
    assert_eq!(body, "hello");
    assert_eq!(missing, 404);
    assert!(outcome.stop_report.is_clean(), "{:?}", outcome.stop_report);
    assert_eq!(web.local_addr(), None);
    assert!(
        reqwest::get(format!("http://{addr}/")).await.is_err(),
        "stopped"
    );
    let stats = web.stats();
    assert_eq!(
        (stats.requests, stats.active, stats.server_errors),
        (2, 0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_lets_a_slow_request_finish_and_cuts_off_a_hung_one() {
    let rt = machina_tokio::runtime().unwrap();
    let web = HttpService::builder("127.0.0.1:0", app())
        .drain_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let stack = Arc::new(
        Supervisor::builder(&rt)
            .service("web", web.clone(), &[])
            .build()
            .unwrap(),
    );
    stack.start().await.unwrap();
    let addr = web.local_addr().unwrap();
    let client = reqwest::Client::new();
    let slow = tokio::spawn(client.get(format!("http://{addr}/slow")).send());
    let hung = tokio::spawn(client.get(format!("http://{addr}/hung")).send());
    let mut stream = client
        .get(format!("http://{addr}/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        &stream.chunk().await.unwrap().unwrap()[..],
        b"first chunk\n"
    );
    while web.stats().active < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = std::time::Instant::now();
    let report = stack.stop().await;
    let took = started.elapsed();
    assert!(report.is_clean(), "{report:?}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    let slow = slow.await.unwrap().unwrap();
    assert_eq!(slow.status(), 200);
    assert_eq!(slow.text().await.unwrap(), "slow but done");
    let hung = hung.await.unwrap().unwrap();
    assert_eq!(hung.status(), 503);
    let stats = web.stats();
    assert_eq!(
        (stats.cut_off, stats.server_errors, stats.active),
        (1, 1, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_info_gives_handlers_the_peer_address() {
    use axum::extract::ConnectInfo;
    let rt = machina_tokio::runtime().unwrap();
    let app =
        Router::new().route(
            "/peer",
            get(
                |ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>| async move {
                    peer.ip().to_string()
                },
            ),
        );
    let web = HttpService::builder("127.0.0.1:0", app)
        .connect_info(true)
        .build()
        .unwrap();
    let stack = Supervisor::builder(&rt)
        .service("web", web.clone(), &[])
        .build()
        .unwrap();
    stack.start().await.unwrap();
    let addr = web.local_addr().unwrap();
    let body = reqwest::get(format!("http://{addr}/peer"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "127.0.0.1");
    assert!(stack.stop().await.is_clean());
}
