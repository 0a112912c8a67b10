//! The tonic service with a real gRPC client: started and stopped by the
//! entrypoint, the standard health service answering `SERVING`, turning
//! `NOT_SERVING` as the stop begins, and a watch stream that outlives the
//! drain cut off so the stop stays bounded.

use std::time::Duration;

use machina_tokio::grpc::GrpcService;
use machina_tokio::service::Supervisor;
use tonic::service::Routes;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

async fn client_of(addr: std::net::SocketAddr) -> HealthClient<tonic::transport::Channel> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    HealthClient::new(channel)
}

fn check(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_entrypoint_serves_grpc_health() {
    let grpc = GrpcService::builder("127.0.0.1:0", Routes::default())
        .build()
        .unwrap();
    let entrypoint = machina_tokio::entrypoint()
        .unwrap()
        .service("grpc", grpc.clone(), &[])
        .build()
        .unwrap();
    let probe = grpc.clone();
    let outcome = entrypoint
        .run(async move {
            let addr = probe.local_addr().expect("bound before main runs");
            let mut client = client_of(addr).await;
            let whole = client.check(check("")).await.unwrap().into_inner();
            let unknown = client.check(check("no.such.Service")).await.unwrap_err();
            (whole, unknown.code())
        })
        .await;
    let (whole, unknown) = outcome.value.expect("ran");
    assert_eq!(
        whole,
        HealthCheckResponse {
            status: ServingStatus::Serving as i32
        }
    );
    assert_eq!(unknown, tonic::Code::NotFound);
    assert!(outcome.stop_report.is_clean(), "{:?}", outcome.stop_report);
    assert_eq!(grpc.local_addr(), None);
    assert!(grpc.stats().requests >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_sees_not_serving_at_stop_and_is_cut_off_at_the_drain_timeout() {
    let rt = machina_tokio::runtime().unwrap();
    let grpc = GrpcService::builder("127.0.0.1:0", Routes::default())
        .drain_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let stack = Supervisor::builder(&rt)
        .service("grpc", grpc.clone(), &[])
        .build()
        .unwrap();
    stack.start().await.unwrap();
    let addr = grpc.local_addr().unwrap();
    let mut client = client_of(addr).await;
    let mut watch = client.watch(check("")).await.unwrap().into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.status, ServingStatus::Serving as i32);

    let stopping = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let report = stack.stop().await;
        (report.is_clean(), started.elapsed())
    });
    let next = watch.message().await.unwrap().unwrap();
    assert_eq!(
        next.status,
        ServingStatus::NotServing as i32,
        "told as the stop begins"
    );
    let end = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .expect("the stream ends");
    assert!(
        end.is_err() || end.unwrap().is_none(),
        "the watch ended with the server"
    );
    let (clean, took) = stopping.await.unwrap();
    assert!(clean);
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(
        grpc.stats().cut_off,
        0,
        "the watch had its answer; its stream was cut, not the call"
    );
}
