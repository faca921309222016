//! A tiny HTTP/1.1 server on loopback for the test endpoints (OIDC tokens, AWS container
//! credentials): one request per connection, answered with JSON.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::thread;

/// One request as an endpoint sees it.
pub struct Request {
    /// Header names in lower case, values trimmed.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Request {
    /// The value of header `name` (lower case), if it was sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Field `name` of an `application/x-www-form-urlencoded` body, as sent.
    pub fn form_field(&self, name: &str) -> Option<String> {
        self.body
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .map(str::to_string)
    }
}

/// Serves on a free loopback port (returned) until the test process ends, answering each
/// request with the (status line, JSON body) that `answer` gives.
pub fn serve_json(
    what: &str,
    answer: impl Fn(&Request) -> (&'static str, String) + Send + 'static,
) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect(what);
    let port = listener.local_addr().expect("address").port();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let request = read_request(&mut reader);
            let (status, json) = answer(&request);
            reply_json(&mut reader.into_inner(), status, &json);
        }
    });
    port
}

/// Reads the request line, the headers and a body of the length they give.
fn read_request(reader: &mut impl BufRead) -> Request {
    let mut headers = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let mut request = Request {
        headers,
        body: String::new(),
    };
    let length = request
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    request.body = String::from_utf8_lossy(&body).into_owned();
    request
}

/// Answers an HTTP request with `status` and a JSON body, and closes the connection (the test
/// endpoints serve one request per connection).
pub fn reply_json(stream: &mut impl Write, status: &str, json: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{json}",
        json.len()
    );
}
