//! `pikachu listen`: a tiny webhook receiver for trying pikachu out. It prints each
//! webhook it receives and verifies Standard Webhooks signatures.
//!
//! It owns only its own socket and its output stream. It must never print the secret,
//! never panic on what a client sends (any bytes, any headers), and never reorder or
//! round what it prints: the body is re-indented, not re-encoded, so that numbers such as
//! `18446744073709551615` and the column order appear exactly as pikachu sent them.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::IgnoredAny;
use tiny_http::{Header, Method, Request, Response, Server};

use crate::clock::rfc3339;
use crate::signature::{SignatureError, SigningKey};

/// The replay window of the Standard Webhooks reference libraries: a timestamp further
/// than this from our clock is rejected there, so it is rejected here too, and the
/// receiver people later write with those libraries behaves the same.
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 5 * 60;

/// Bodies above this are refused (413): a try-out receiver must not be made to buffer
/// without bound. pikachu's largest batches stay far below it.
pub const MAX_BODY_BYTES: u64 = 32 * 1024 * 1024;

/// Non-JSON bodies are printed up to this many bytes; the rest is summarised.
const MAX_RAW_PRINT_BYTES: usize = 64 * 1024;

pub struct ListenOptions {
    pub port: u16,
    /// `whsec_…`: when given, unsigned or badly signed webhooks are answered 401.
    pub secret: Option<String>,
    /// Address to bind, default `127.0.0.1` (only this machine can send).
    pub bind: String,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions {
            port: 3000,
            secret: None,
            bind: "127.0.0.1".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// `--secret` is not a Standard Webhooks secret.
    #[error("--secret: {0}")]
    BadSecret(#[source] SignatureError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {}", bind_problem(source))]
    Bind {
        addr: String,
        #[source]
        source: io::Error,
    },
    /// The server socket could not be set up after binding.
    #[error("cannot start the receiver: {0}")]
    Server(String),
    /// Standard output is gone (e.g. the pipe reader exited): nothing left to do.
    #[error("cannot write to standard output: {0}")]
    Output(#[source] io::Error),
}

/// What to do about a failed bind, where there is something to do.
fn bind_problem(e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::AddrInUse {
        "the port is already in use (is another `pikachu listen` running?); choose another \
         with --port"
            .to_owned()
    } else {
        e.to_string()
    }
}

/// Binds `bind:port`, prints where it listens, and serves until the process is killed.
pub fn run(opts: &ListenOptions, out: &mut dyn Write) -> Result<(), ListenError> {
    // The secret is checked before binding: a typo must not leave a receiver running
    // that rejects everything.
    let key = opts
        .secret
        .as_deref()
        .map(SigningKey::parse)
        .transpose()
        .map_err(ListenError::BadSecret)?;
    let addr = if opts.bind.contains(':') {
        format!("[{}]:{}", opts.bind, opts.port)
    } else {
        format!("{}:{}", opts.bind, opts.port)
    };
    let listener =
        TcpListener::bind((opts.bind.as_str(), opts.port)).map_err(|source| ListenError::Bind {
            addr: addr.clone(),
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| ListenError::Bind {
        addr: addr.clone(),
        source,
    })?;
    let server =
        Server::from_listener(listener, None).map_err(|e| ListenError::Server(e.to_string()))?;
    let checking = if key.is_some() {
        "signatures are verified; unsigned or badly signed webhooks get 401"
    } else {
        "signatures are not checked (no --secret given)"
    };
    writeln!(
        out,
        "pikachu listen: waiting for webhooks on http://{bound}/ (any path); {checking}"
    )
    .and_then(|()| out.flush())
    .map_err(ListenError::Output)?;
    serve(&server, key.as_ref(), out)
}

/// Answers every request of `server` until it is unblocked (`Server::unblock`), printing
/// each webhook to `out` and flushing after each one (people pipe it into `jq`, `tee`).
pub fn serve(
    server: &Server,
    key: Option<&SigningKey>,
    out: &mut dyn Write,
) -> Result<(), ListenError> {
    for mut request in server.incoming_requests() {
        let received = read_request(&mut request);
        let outcome = inspect(&received, key, SystemTime::now());
        out.write_all(sanitize(&outcome.printed).as_bytes())
            .and_then(|()| out.flush())
            .map_err(ListenError::Output)?;
        let mut response =
            Response::from_data(outcome.response_body).with_status_code(outcome.status);
        let mut headers = vec![("Content-Type", outcome.content_type)];
        if outcome.status == 405 {
            headers.push(("Allow", "POST"));
        }
        for (name, value) in headers {
            // Static ASCII: cannot fail, and a missing header is better than a panic.
            if let Ok(h) = Header::from_bytes(name.as_bytes(), value.as_bytes()) {
                response.add_header(h);
            }
        }
        // A client that hung up before reading the answer is not our problem.
        let _ = request.respond(response);
    }
    Ok(())
}

/// What a request carried, read fully (or the reason it could not be).
struct Received {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Result<Vec<u8>, BodyError>,
}

enum BodyError {
    TooLarge,
    Read(io::Error),
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn read_request(request: &mut Request) -> Received {
    let headers = request
        .headers()
        .iter()
        .map(|h| {
            (
                h.field.as_str().as_str().to_owned(),
                h.value.as_str().to_owned(),
            )
        })
        .collect();
    let mut body = Vec::new();
    let body = match request
        .as_reader()
        .take(MAX_BODY_BYTES + 1)
        .read_to_end(&mut body)
    {
        Ok(n) if n as u64 > MAX_BODY_BYTES => Err(BodyError::TooLarge),
        Ok(_) => Ok(body),
        Err(e) => Err(BodyError::Read(e)),
    };
    Received {
        method: request.method().clone(),
        url: request.url().to_owned(),
        headers,
        body,
    }
}

/// The result of looking at one request: what to print and what to answer.
struct Outcome {
    status: u16,
    content_type: &'static str,
    response_body: String,
    printed: String,
}

#[derive(Debug, PartialEq, Eq)]
enum SigStatus {
    Valid,
    Invalid(String),
    NotSigned,
    /// Signed, but we have no secret to check it with.
    NoSecret,
}

impl fmt::Display for SigStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SigStatus::Valid => f.write_str("valid"),
            SigStatus::Invalid(why) => write!(f, "INVALID ({why})"),
            SigStatus::NotSigned => f.write_str("not signed"),
            SigStatus::NoSecret => f.write_str("no secret given"),
        }
    }
}

fn check_signature(
    r: &Received,
    body: &[u8],
    key: Option<&SigningKey>,
    now: SystemTime,
) -> SigStatus {
    let signature = r.header("webhook-signature");
    let Some(key) = key else {
        return if signature.is_some() {
            SigStatus::NoSecret
        } else {
            SigStatus::NotSigned
        };
    };
    let Some(signature) = signature else {
        return SigStatus::NotSigned;
    };
    let (Some(id), Some(ts)) = (r.header("webhook-id"), r.header("webhook-timestamp")) else {
        return SigStatus::Invalid(
            "webhook-signature without webhook-id and webhook-timestamp".into(),
        );
    };
    let Ok(ts) = ts.trim().parse::<i64>() else {
        return SigStatus::Invalid("webhook-timestamp is not unix seconds".into());
    };
    if !key.verify(id, ts, body, signature) {
        return SigStatus::Invalid("does not match the secret, id, timestamp and body".into());
    }
    let now = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let skew = now.saturating_sub(ts);
    if skew > TIMESTAMP_TOLERANCE_SECS {
        return SigStatus::Invalid(format!(
            "timestamp is {skew} s old, over the {TIMESTAMP_TOLERANCE_SECS} s tolerance"
        ));
    }
    if skew < -TIMESTAMP_TOLERANCE_SECS {
        return SigStatus::Invalid(format!(
            "timestamp is {} s in the future, over the {TIMESTAMP_TOLERANCE_SECS} s tolerance",
            -skew
        ));
    }
    SigStatus::Valid
}

fn inspect(r: &Received, key: Option<&SigningKey>, now: SystemTime) -> Outcome {
    let time = rfc3339(now, false);
    let json_answer = |status: u16, body: String, printed: String| Outcome {
        status,
        content_type: "application/json",
        response_body: body,
        printed,
    };
    if r.method != Method::Post {
        return Outcome {
            status: 405,
            content_type: "text/plain; charset=utf-8",
            response_body: "pikachu listen accepts webhooks as POST requests\n".into(),
            printed: format!(
                "[{time}] {} {} -> 405 (only POST is accepted)\n\n",
                r.method, r.url
            ),
        };
    }
    let body = match &r.body {
        Ok(body) => body.as_slice(),
        Err(BodyError::TooLarge) => {
            return json_answer(
                413,
                r#"{"ok":false,"error":"body too large"}"#.into(),
                format!(
                    "[{time}] POST {} -> 413 rejected: body larger than {MAX_BODY_BYTES} bytes\n\n",
                    r.url
                ),
            )
        }
        Err(BodyError::Read(e)) => {
            return json_answer(
                400,
                r#"{"ok":false,"error":"could not read the body"}"#.into(),
                format!(
                    "[{time}] POST {} -> 400: could not read the body: {e}\n\n",
                    r.url
                ),
            )
        }
    };

    let sig = check_signature(r, body, key, now);
    let rejected = key.is_some() && sig != SigStatus::Valid;
    let task = r.header("X-Pikachu-Task-Id").unwrap_or("-");
    let event_id = r
        .header("X-Pikachu-Event-Id")
        .or_else(|| r.header("webhook-id"))
        .unwrap_or("-");
    let rendered = render_body(body);

    let mut printed = format!("[{time}] POST {}  task={task}  id={event_id}", r.url);
    if let Some(n) = rendered.batch_len {
        printed.push_str(&format!("  batch={n}"));
    }
    printed.push_str(&format!("  signature: {sig}"));
    if rejected {
        printed.push_str("  -> 401 rejected");
    }
    printed.push('\n');
    printed.push_str(&rendered.text);
    printed.push_str("\n\n");

    if rejected {
        let error = serde_json::json!({"ok": false, "error": format!("signature {sig}")});
        json_answer(401, error.to_string(), printed)
    } else {
        json_answer(200, r#"{"ok":true}"#.into(), printed)
    }
}

struct RenderedBody {
    text: String,
    /// Elements when the body is a JSON array (a batch).
    batch_len: Option<usize>,
}

fn render_body(body: &[u8]) -> RenderedBody {
    if body.iter().all(u8::is_ascii_whitespace) {
        return RenderedBody {
            text: "(empty body)".into(),
            batch_len: None,
        };
    }
    let parsed = std::str::from_utf8(body)
        .map_err(|e| format!("not UTF-8: {e}"))
        .and_then(|text| {
            serde_json::from_str::<IgnoredAny>(text)
                .map(|_| text)
                .map_err(|e| e.to_string())
        });
    match parsed {
        Ok(text) => RenderedBody {
            text: reindent(text),
            batch_len: serde_json::from_str::<Vec<IgnoredAny>>(text)
                .ok()
                .map(|v| v.len()),
        },
        Err(why) => {
            let shown = &body[..body.len().min(MAX_RAW_PRINT_BYTES)];
            let mut text = format!("(body is not JSON: {why}; shown as received)\n");
            text.push_str(&String::from_utf8_lossy(shown));
            if body.len() > shown.len() {
                text.push_str(&format!(
                    "\n… ({} more bytes not shown)",
                    body.len() - shown.len()
                ));
            }
            RenderedBody {
                text,
                batch_len: None,
            }
        }
    }
}

/// Pretty-prints valid JSON text with two-space indents, keeping every token as sent
/// (key order, number spelling, string escapes): parsing into a `Value` keeps key order
/// (`preserve_order`) but could round numbers and re-escape strings.
fn reindent(json: &str) -> String {
    let mut out = String::with_capacity(json.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = json.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n("  ", depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                // Skip whitespace to see whether the container is empty: `{}` stays `{}`.
                while chars.peek().is_some_and(|n| n.is_ascii_whitespace()) {
                    chars.next();
                }
                if matches!(chars.peek(), Some('}') | Some(']')) {
                    if let Some(close) = chars.next() {
                        out.push(close);
                    }
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_ascii_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// Escapes control characters other than newline and tab: what a client sends must not
/// drive the terminal (ANSI escape sequences in a header, a path or a raw body).
fn sanitize(text: &str) -> String {
    if !text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread::JoinHandle;
    use std::time::Duration;

    use parking_lot::Mutex;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    /// The output, as the terminal would see it, plus how often it was flushed.
    #[derive(Clone, Default)]
    struct Captured {
        bytes: Arc<Mutex<Vec<u8>>>,
        flushes: Arc<Mutex<usize>>,
    }

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.bytes.lock().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            *self.flushes.lock() += 1;
            Ok(())
        }
    }

    impl Captured {
        /// Takes what was printed since the last call.
        fn take(&self) -> String {
            String::from_utf8(std::mem::take(&mut *self.bytes.lock())).unwrap()
        }
    }

    struct Running {
        server: Arc<Server>,
        thread: JoinHandle<Result<(), ListenError>>,
        base: String,
        out: Captured,
    }

    impl Running {
        fn start(secret: Option<&str>) -> Running {
            let server = Arc::new(Server::http("127.0.0.1:0").unwrap());
            let base = format!("http://{}", server.server_addr().to_ip().unwrap());
            let key = secret.map(|s| SigningKey::parse(s).unwrap());
            let out = Captured::default();
            let (serving, mut sink) = (Arc::clone(&server), out.clone());
            let thread = std::thread::spawn(move || serve(&serving, key.as_ref(), &mut sink));
            Running {
                server,
                thread,
                base,
                out,
            }
        }

        fn stop(self) {
            self.server.unblock();
            self.thread.join().unwrap().unwrap();
        }
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into()
    }

    fn now() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    /// POSTs `body` the way pikachu does, optionally signed with `sign_with` at `ts`.
    fn post(
        base: &str,
        body: &str,
        sign_with: Option<&str>,
        ts: i64,
        tamper: Option<&str>,
    ) -> (u16, String) {
        let id = "mysql-bin.000003:18825:0";
        let mut req = agent()
            .post(format!("{base}/webhook/user"))
            .header("Content-Type", "application/json")
            .header("X-Pikachu-Task-Id", "user_monitor")
            .header("X-Pikachu-Event-Id", id);
        if let Some(secret) = sign_with {
            let sig = SigningKey::parse(secret)
                .unwrap()
                .sign(id, ts, body.as_bytes());
            req = req
                .header("webhook-id", id)
                .header("webhook-timestamp", ts.to_string())
                .header("webhook-signature", sig);
        }
        let sent = tamper.unwrap_or(body);
        let resp = req.send(sent).unwrap();
        let status = resp.status().as_u16();
        (status, resp.into_body().read_to_string().unwrap())
    }

    const ENVELOPE: &str = r#"{"id":"mysql-bin.000003:18825:0","task_id":"user_monitor","event":"update","table":"users","primary_id":18446744073709551615,"old_data":{"name":"Ann"},"new_data":{"name":"Ann B","tags":[],"price":"1234.50"}}"#;

    #[test]
    fn unsigned_webhook_without_secret_is_printed_pretty_and_accepted() {
        let r = Running::start(None);
        let (status, body) = post(&r.base, ENVELOPE, None, 0, None);
        assert_eq!((status, body.as_str()), (200, r#"{"ok":true}"#));
        let printed = r.out.take();
        let header = printed.lines().next().unwrap();
        assert!(header.contains("POST /webhook/user"), "{header}");
        assert!(header.contains("task=user_monitor"), "{header}");
        assert!(header.contains("id=mysql-bin.000003:18825:0"), "{header}");
        assert!(header.ends_with("signature: not signed"), "{header}");
        // Pretty-printed, in the order sent, numbers untouched.
        let expected_body = r#"{
  "id": "mysql-bin.000003:18825:0",
  "task_id": "user_monitor",
  "event": "update",
  "table": "users",
  "primary_id": 18446744073709551615,
  "old_data": {
    "name": "Ann"
  },
  "new_data": {
    "name": "Ann B",
    "tags": [],
    "price": "1234.50"
  }
}"#;
        assert!(printed.contains(expected_body), "{printed}");
        assert!(*r.out.flushes.lock() >= 1, "flushed after the webhook");
        r.stop();
    }

    #[test]
    fn signed_webhook_with_secret_is_valid() {
        let r = Running::start(Some(SECRET));
        let (status, _) = post(&r.base, ENVELOPE, Some(SECRET), now(), None);
        assert_eq!(status, 200);
        assert!(r
            .out
            .take()
            .lines()
            .next()
            .unwrap()
            .ends_with("signature: valid"));
        r.stop();
    }

    #[test]
    fn with_a_secret_bad_or_missing_signatures_get_401_and_are_printed_as_rejected() {
        let r = Running::start(Some(SECRET));

        let (status, body) = post(&r.base, ENVELOPE, None, 0, None);
        assert_eq!(status, 401, "{body}");
        let line = r.out.take();
        assert!(
            line.contains("signature: not signed  -> 401 rejected"),
            "{line}"
        );

        let tampered = ENVELOPE.replace("Ann B", "Mallory");
        let (status, body) = post(&r.base, ENVELOPE, Some(SECRET), now(), Some(&tampered));
        assert_eq!(status, 401);
        assert!(body.contains("INVALID"), "{body}");
        let printed = r.out.take();
        assert!(printed.contains("signature: INVALID ("), "{printed}");
        assert!(printed.contains("-> 401 rejected"), "{printed}");
        assert!(
            printed.contains("Mallory"),
            "the rejected body is still shown: {printed}"
        );

        let (status, _) = post(&r.base, ENVELOPE, Some("whsec_b3RoZXIta2V5"), now(), None);
        assert_eq!(status, 401);
        r.out.take();

        let (status, _) = post(&r.base, ENVELOPE, Some(SECRET), now() - 3600, None);
        assert_eq!(status, 401);
        assert!(r.out.take().contains("s old, over the 300 s tolerance"));

        r.stop();
    }

    #[test]
    fn without_a_secret_signed_webhooks_are_accepted_and_say_so() {
        let r = Running::start(None);
        let (status, _) = post(&r.base, ENVELOPE, Some(SECRET), now(), None);
        assert_eq!(status, 200);
        assert!(r.out.take().contains("signature: no secret given"));
        r.stop();
    }

    #[test]
    fn a_batch_is_printed_as_an_array_with_its_size() {
        let r = Running::start(Some(SECRET));
        let batch = format!("[{ENVELOPE},{}]", ENVELOPE.replace(":0\"", ":1\""));
        let (status, _) = post(&r.base, &batch, Some(SECRET), now(), None);
        assert_eq!(status, 200);
        let printed = r.out.take();
        assert!(
            printed.lines().next().unwrap().contains("batch=2"),
            "{printed}"
        );
        assert!(
            printed.contains("\n[\n  {\n    \"id\": \"mysql-bin.000003:18825:0\","),
            "{printed}"
        );
        assert!(
            printed.contains("\"id\": \"mysql-bin.000003:18825:1\""),
            "{printed}"
        );
        r.stop();
    }

    #[test]
    fn non_json_bodies_are_printed_raw_with_a_note_and_control_characters_escaped() {
        let r = Running::start(None);
        let (status, _) = post(&r.base, "hello \u{1b}[31mred", None, 0, None);
        assert_eq!(status, 200);
        let printed = r.out.take();
        assert!(printed.contains("(body is not JSON: "), "{printed}");
        assert!(printed.contains("hello \\u{1b}[31mred"), "{printed}");
        assert!(!printed.contains('\u{1b}'));

        let (status, _) = post(&r.base, "", None, 0, None);
        assert_eq!(status, 200);
        assert!(r.out.take().contains("(empty body)"));
        r.stop();
    }

    #[test]
    fn other_methods_get_405_and_garbage_does_not_stop_the_receiver() {
        let r = Running::start(None);
        let resp = agent().get(format!("{}/", r.base)).call().unwrap();
        assert_eq!(resp.status().as_u16(), 405);
        assert_eq!(resp.headers().get("allow").unwrap(), "POST");
        assert!(r.out.take().contains("GET / -> 405"));

        {
            let mut s = std::net::TcpStream::connect(r.base.trim_start_matches("http://")).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(b"\xff\xfe garbage\r\n\r\n").unwrap();
            let _ = s.read_to_end(&mut Vec::new());
        }
        // Invalid UTF-8 in a JSON-looking body.
        let resp = agent()
            .post(format!("{}/x", r.base))
            .send(&b"{\"a\":\"\xff\"}"[..])
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert!(r.out.take().contains("(body is not JSON: not UTF-8"));

        let (status, _) = post(&r.base, ENVELOPE, None, 0, None);
        assert_eq!(status, 200);
        r.stop();
    }

    #[test]
    fn reindent_keeps_tokens_and_handles_escapes() {
        assert_eq!(
            reindent(r#"{ "a" : [ ] , "b":{}}"#),
            "{\n  \"a\": [],\n  \"b\": {}\n}"
        );
        assert_eq!(
            reindent(r#"["x,y:{", "q\"[", 1.50e3]"#),
            "[\n  \"x,y:{\",\n  \"q\\\"[\",\n  1.50e3\n]"
        );
        assert_eq!(reindent("42"), "42");
    }

    #[test]
    fn run_refuses_a_bad_secret_without_printing_it() {
        let opts = ListenOptions {
            port: 0,
            secret: Some("whsec_s3cr3t$value".into()),
            bind: "127.0.0.1".into(),
        };
        let err = run(&opts, &mut Vec::new()).unwrap_err();
        assert!(matches!(err, ListenError::BadSecret(_)), "{err:?}");
        let shown = err.to_string();
        assert!(
            shown.starts_with("--secret: invalid webhook secret"),
            "{shown}"
        );
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }

    #[test]
    fn run_prints_where_it_listens_and_serves() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let out = Captured::default();
        let mut sink = out.clone();
        let opts = ListenOptions {
            port,
            secret: Some(SECRET.into()),
            bind: "127.0.0.1".into(),
        };
        // `run` serves until the process ends; the thread is left behind on purpose.
        std::thread::spawn(move || run(&opts, &mut sink));
        let base = format!("http://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let status = loop {
            match agent().post(format!("{base}/w")).send(ENVELOPE) {
                Ok(resp) => break resp.status().as_u16(),
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => panic!("run did not start serving: {e}"),
            }
        };
        assert_eq!(
            status, 401,
            "a secret was given and the request is unsigned"
        );
        let printed = out.take();
        assert!(
            printed.starts_with(&format!(
                "pikachu listen: waiting for webhooks on http://127.0.0.1:{port}/ (any path); \
                 signatures are verified"
            )),
            "{printed}"
        );
        assert!(!printed.contains("MfKQ9r8"), "the secret is never printed");
    }

    #[test]
    fn run_reports_a_taken_port() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let opts = ListenOptions {
            port,
            secret: None,
            bind: "127.0.0.1".into(),
        };
        let err = run(&opts, &mut Vec::new()).unwrap_err();
        let shown = err.to_string();
        assert!(shown.contains(&format!("127.0.0.1:{port}")), "{shown}");
        assert!(shown.contains("already in use"), "{shown}");
        assert!(shown.contains("--port"), "{shown}");
    }
}
