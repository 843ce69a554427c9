//! A minimal HTTP/1.1 server on 127.0.0.1:0 for the model-download and
//! results-upload tests: GET of a known path answers the file, PUT answers
//! the status the test chose, anything else 404; every request (method,
//! path, `Authorization`, body) is sent on a channel.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;

/// One request the server received.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub body: Vec<u8>,
}

/// Serves `files` (path, bytes) to GET, answers PUT with `put_status`;
/// returns its base URL and the channel of the requests it received.
pub fn http_server(
    files: Vec<(String, Vec<u8>)>,
    put_status: u16,
) -> (String, mpsc::Receiver<Request>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let Some(request) = read_request(&mut stream) else {
                continue;
            };
            let found = files
                .iter()
                .find(|(p, _)| *p == request.path)
                .map(|(_, b)| b.clone());
            let response = match (request.method.as_str(), found) {
                ("GET", Some(bytes)) => answer(200, &bytes),
                ("PUT", _) => answer(put_status, &[]),
                _ => answer(404, &[]),
            };
            let _ = stream.write_all(&response);
            let _ = tx.send(request);
        }
    });
    (base, rx)
}

/// Reads one request: its line, headers and a `Content-Length` body.
fn read_request(stream: &mut std::net::TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let (mut length, mut authorization) = (0usize, None);
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().ok()?,
                "authorization" => authorization = Some(value.trim().to_owned()),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        authorization,
        body,
    })
}

/// A whole response with `status` and `body`, closing the connection.
fn answer(status: u16, body: &[u8]) -> Vec<u8> {
    let mut response = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(body);
    response
}
