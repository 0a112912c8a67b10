//! Just enough HTTP/1.1 for the health endpoints (feature `health`): read
//! a request's head (parsed by `httparse`), skip its body, write a
//! response with a length, keep the connection alive when the client
//! may. Not a general HTTP server: that is axum's job (machina-tokio's
//! `http` feature).

use std::io;

use futures::{AsyncReadExt, AsyncWriteExt};

use crate::rt::Connection;

/// The largest request head read (a probe's is a few hundred bytes).
const MAX_HEAD: usize = 8 * 1024;
/// The largest request body skipped.
const MAX_BODY: u64 = 64 * 1024;

/// A request's head, as far as the endpoints care.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    /// Whether the connection may serve another request afterwards.
    pub(crate) keep_alive: bool,
}

/// A response to write.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) body: String,
}

impl Response {
    pub(crate) fn text(status: u16, body: impl Into<String>) -> Self {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Reads requests off one connection: bytes read past a request's end
/// belong to the next.
pub(crate) struct RequestReader {
    buf: Vec<u8>,
}

/// Why no request could be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The client closed the connection between requests.
    Closed,
    /// A request the endpoints answer with this status, then close.
    Bad(u16),
    Io(io::Error),
}

impl From<io::Error> for ReadError {
    fn from(error: io::Error) -> Self {
        ReadError::Io(error)
    }
}

impl RequestReader {
    pub(crate) fn new() -> Self {
        RequestReader { buf: Vec::new() }
    }

    /// The next request's head (its body read and dropped).
    pub(crate) async fn next(&mut self, conn: &mut Connection) -> Result<Request, ReadError> {
        let mut chunk = [0u8; 1024];
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut parsed = httparse::Request::new(&mut headers);
            match parsed.parse(&self.buf) {
                Ok(httparse::Status::Complete(head_len)) => {
                    let request = request_from(&parsed);
                    let body = content_length(&parsed)?;
                    self.buf.drain(..head_len);
                    self.skip_body(conn, body).await?;
                    return request;
                }
                Ok(httparse::Status::Partial) => {}
                Err(httparse::Error::TooManyHeaders) => return Err(ReadError::Bad(431)),
                Err(_) => return Err(ReadError::Bad(400)),
            }
            if self.buf.len() >= MAX_HEAD {
                return Err(ReadError::Bad(431));
            }
            let n = conn.read(&mut chunk).await?;
            if n == 0 {
                return Err(if self.buf.is_empty() {
                    ReadError::Closed
                } else {
                    ReadError::Io(io::ErrorKind::UnexpectedEof.into())
                });
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn skip_body(&mut self, conn: &mut Connection, len: u64) -> Result<(), ReadError> {
        let buffered = (self.buf.len() as u64).min(len);
        self.buf.drain(..buffered as usize);
        let rest = len - buffered;
        if rest > 0 {
            let copied = futures::io::copy(conn.take(rest), &mut futures::io::sink()).await?;
            if copied < rest {
                return Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
        }
        Ok(())
    }
}

fn request_from(parsed: &httparse::Request<'_, '_>) -> Result<Request, ReadError> {
    let (Some(method), Some(path), Some(version)) = (parsed.method, parsed.path, parsed.version)
    else {
        return Err(ReadError::Bad(400));
    };
    let connection = header(parsed, "connection").map(str::to_ascii_lowercase);
    let keep_alive = match connection.as_deref() {
        Some(v) if v.contains("close") => false,
        Some(v) if v.contains("keep-alive") => true,
        _ => version == 1,
    };
    // The path without its query: probes sometimes add one.
    let path = path.split('?').next().unwrap_or(path).to_owned();
    Ok(Request {
        method: method.to_owned(),
        path,
        keep_alive,
    })
}

fn header<'a>(parsed: &'a httparse::Request<'_, '_>, name: &str) -> Option<&'a str> {
    parsed
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .and_then(|h| std::str::from_utf8(h.value).ok())
}

fn content_length(parsed: &httparse::Request<'_, '_>) -> Result<u64, ReadError> {
    if header(parsed, "transfer-encoding").is_some() {
        // No endpoint takes a body; a chunked one is not worth parsing.
        return Err(ReadError::Bad(400));
    }
    match header(parsed, "content-length") {
        None => Ok(0),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(len) if len <= MAX_BODY => Ok(len),
            _ => Err(ReadError::Bad(400)),
        },
    }
}

/// Writes `response`; `keep_alive` says whether the connection stays
/// open after it.
pub(crate) async fn write_response(
    conn: &mut Connection,
    response: &Response,
    head_only: bool,
    keep_alive: bool,
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: {}\r\ncontent-length: {}\r\ncache-control: no-store\r\nconnection: {}\r\n\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len(),
        if keep_alive { "keep-alive" } else { "close" },
    );
    conn.write_all(head.as_bytes()).await?;
    if !head_only {
        conn.write_all(response.body.as_bytes()).await?;
    }
    conn.flush().await
}
