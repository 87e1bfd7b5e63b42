//! HTTP/2 with prior knowledge (h2c) on the plain listener: a connection that opens with
//! the HTTP/2 preface is handed to Pingora's HTTP/2 server; every other one is HTTP/1.
//!
//! Pingora's own h2c switch waits for 24 bytes before it decides, so an HTTP/1 request
//! shorter than the preface (`GET / HTTP/1.0` and a blank line is 18 bytes) would hang
//! until the client gave up. Here the decision is made as early as the bytes allow: the
//! first byte (not `P`: HTTP/1), then three (`POST`, `PUT`, `PATCH` are not `PRI`), then
//! the whole preface. What is read is put back for the protocol that follows.

use pingora_core::protocols::Stream;

/// The HTTP/2 connection preface (RFC 9113 3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether the connection starts with the HTTP/2 preface. Reads only what it must and puts
/// it back. `Err`: the client closed or failed before saying enough (a request shorter
/// than its first three bytes is none). Bound it with the header deadline.
pub async fn has_preface(stream: &mut Stream) -> std::io::Result<bool> {
    for len in [1, 3, PREFACE.len()] {
        let mut buf = [0u8; PREFACE.len()];
        stream.try_peek(&mut buf[..len]).await?;
        if buf[..len] != PREFACE[..len] {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// The server side of a loopback connection whose client sent `bytes` (and keeps the
    /// connection open), with the client.
    async fn sent(bytes: &[u8]) -> (Stream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mut client = TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        client.write_all(bytes).await.expect("write");
        let stream: Stream = Box::new(pingora_core::protocols::l4::stream::Stream::from(server));
        (stream, client)
    }

    async fn read_all_sent(stream: &mut Stream, len: usize) -> Vec<u8> {
        let mut got = vec![0u8; len];
        stream.read_exact(&mut got).await.expect("read back");
        got
    }

    #[tokio::test]
    async fn the_preface_is_http2_and_is_put_back() {
        let (mut stream, _client) = sent(PREFACE).await;
        assert!(has_preface(&mut stream).await.expect("decides"));
        assert_eq!(read_all_sent(&mut stream, PREFACE.len()).await, PREFACE);
    }

    #[tokio::test]
    async fn a_short_http1_request_is_decided_without_waiting_for_more() {
        for request in [
            &b"GET / HTTP/1.0\r\n\r\n"[..],
            b"PUT /x HTTP/1.1\r\n",
            b"POST",
        ] {
            let (mut stream, _client) = sent(request).await;
            let decided =
                tokio::time::timeout(std::time::Duration::from_secs(5), has_preface(&mut stream))
                    .await
                    .expect("decided without more bytes");
            assert!(!decided.expect("decides"), "{request:?}");
            assert_eq!(read_all_sent(&mut stream, request.len()).await, request);
        }
    }

    #[tokio::test]
    async fn a_client_that_closes_early_is_an_error() {
        let (mut stream, client) = sent(b"PR").await;
        drop(client);
        assert!(has_preface(&mut stream).await.is_err());
    }
}
