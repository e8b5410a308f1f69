//! The benchmark's floor: a Lambda bootstrap that does nothing but poll the runtime API and
//! answer `{}` (std only: no runtime crate, no TLS, no AWS client). Its init under the same
//! emulator, in the same run, is what any function's init is measured above.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

fn main() {
    let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        return;
    };
    loop {
        let Some(id) = next(&api) else {
            return;
        };
        let path = format!("/2018-06-01/runtime/invocation/{id}/response");
        if request(&api, "POST", &path, b"{}").is_none() {
            return;
        }
    }
}

/// The next invocation's request id.
fn next(api: &str) -> Option<String> {
    let head = request(api, "GET", "/2018-06-01/runtime/invocation/next", b"")?;
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("lambda-runtime-aws-request-id")
            .then(|| v.trim().to_owned())
    })
}

/// One HTTP/1.1 exchange on its own connection; the answer's head (the body is read and
/// dropped).
fn request(api: &str, method: &str, path: &str, body: &[u8]) -> Option<String> {
    let mut stream = TcpStream::connect(api).ok()?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {api}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(body).ok()?;
    let mut reader = BufReader::new(stream);
    let mut answer = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 || line == "\r\n" {
            break;
        }
        answer.push_str(&line);
    }
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).ok()?;
    Some(answer)
}
