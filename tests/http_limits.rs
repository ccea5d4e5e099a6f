//! Connection-level limits of both listeners, over raw TCP.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::server::TestServer;

/// Sends `partial` and waits (at most `limit`) for the server to close the connection.
fn closed_within(addr: &str, partial: &[u8], limit: Duration) -> bool {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.write_all(partial).expect("send partial request");
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("set read timeout");
    let started = Instant::now();
    let mut buffer = [0_u8; 512];
    while started.elapsed() < limit {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(error) if error.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path(), |config| {
        config.server.header_read_timeout_secs = 1;
    })
    .await;
    let public = server.public_url.trim_start_matches("http://").to_owned();
    let admin = server.admin_url.trim_start_matches("http://").to_owned();

    let results = tokio::task::spawn_blocking(move || {
        let partial = b"POST /proxies/1/oauth2/token HTTP/1.1\r\nHost: x\r\n";
        [
            closed_within(&public, partial, Duration::from_secs(8)),
            closed_within(&admin, b"GET /healthz HTTP/1.1\r\n", Duration::from_secs(8)),
            closed_within(&public, b"", Duration::from_secs(8)),
        ]
    })
    .await
    .unwrap();
    assert!(
        results[0],
        "public listener kept a connection with incomplete headers open"
    );
    assert!(
        results[1],
        "admin listener kept a connection with incomplete headers open"
    );
    assert!(results[2], "public listener kept an idle connection open");

    // Complete requests still work.
    let health = server
        .http
        .get(format!("{}/healthz", server.admin_url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    server.stop().await;
}
