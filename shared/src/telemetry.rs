//! Structured JSON logs. Every line carries the fields of the request span (request id,
//! function, route). Level from `RUST_LOG`, else Lambda's `AWS_LAMBDA_LOG_LEVEL`, else info.
//! Metric lines (crate::metrics, EMF) go through the same writer.

use tracing_subscriber::EnvFilter;
pub use tracing_subscriber::fmt::MakeWriter;

/// Dependencies are quiet unless asked for: their debug output can carry request details.
const QUIET: &str = "aws_smithy_runtime=warn,aws_config=warn,hyper=warn,rustls=warn,reqwest=warn";
/// Quiet whatever is asked for: the Lambda runtime logs each raw event (Authorization
/// header, bodies) at trace level, and its debug lines carry request details.
const ALWAYS_QUIET: [&str; 3] = [
    "lambda_runtime=info",
    "lambda_runtime_api_client=info",
    "lambda_http=info",
];

/// The log filter: `RUST_LOG` if set, else Lambda's level; the runtime's event logging off
/// at every level.
fn filter(rust_log: Option<&str>, lambda_level: Option<&str>) -> EnvFilter {
    let level = lambda_level
        .map(|l| l.to_lowercase().replace("fatal", "error"))
        .unwrap_or_else(|| "info".to_owned());
    let mut filter = rust_log
        .and_then(|r| EnvFilter::try_new(r).ok())
        .or_else(|| EnvFilter::try_new(format!("{level},{QUIET}")).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    for d in ALWAYS_QUIET {
        if let Ok(d) = d.parse() {
            filter = filter.add_directive(d);
        }
    }
    filter
}

/// Logs to stdout (what Lambda and the local gateway capture).
pub fn init() {
    let _ = init_with_writer(std::io::stdout);
}

/// Logs to `writer`, e.g. a test's capture buffer. A second call keeps the first subscriber
/// and answers `false`.
pub fn init_with_writer<W>(writer: W) -> bool
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let rust_log = std::env::var("RUST_LOG").ok();
    let lambda_level = std::env::var("AWS_LAMBDA_LOG_LEVEL").ok();
    let filter = filter(rust_log.as_deref(), lambda_level.as_deref());
    // The same writer carries the metric lines (crate::metrics), so they land in the log.
    let writer = Shared(std::sync::Arc::new(writer));
    let for_metrics = Shared(writer.0.clone());
    crate::metrics::install(Box::new(move |line: &[u8]| {
        use std::io::Write as _;
        let _ = for_metrics.make_writer().write_all(line);
    }));
    tracing_subscriber::fmt()
        .json()
        .with_writer(writer)
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .with_ansi(false)
        .try_init()
        .is_ok()
}

/// One writer for the log subscriber and the metric lines.
struct Shared<W>(std::sync::Arc<W>);

impl<'a, W: MakeWriter<'a>> MakeWriter<'a> for Shared<W> {
    type Writer = W::Writer;

    fn make_writer(&'a self) -> Self::Writer {
        self.0.make_writer()
    }
}

/// An error and every source under it, `: `-separated: the one `cause` field of a log line.
pub fn cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        // Some errors repeat their source in their own message: say it once.
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cause_names_the_whole_chain_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("the store failed")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("connection reset"));
        assert_eq!(super::cause(&e), "the store failed: connection reset");
    }

    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::ErrorKind::Other)?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_runtimes_raw_event_is_never_logged_even_at_trace() {
        for (rust_log, lambda) in [
            (Some("trace"), None),
            (Some("lambda_runtime=trace,trace"), None),
            (None, Some("TRACE")),
            (None, Some("DEBUG")),
        ] {
            let out = Capture::default();
            let writer = out.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(move || writer.clone())
                .with_env_filter(filter(rust_log, lambda))
                .finish();
            tracing::subscriber::with_default(subscriber, || {
                tracing::trace!(target: "lambda_runtime::layers::api_response", body = "Bearer eyJ", "raw JSON event received from Lambda");
                tracing::debug!(target: "lambda_http::request", "request details");
                tracing::debug!("our own debug line");
            });
            let text = String::from_utf8(out.0.lock().map(|v| v.clone()).unwrap_or_default())
                .unwrap_or_default();
            assert!(
                !text.contains("raw JSON event") && !text.contains("eyJ"),
                "{rust_log:?} {lambda:?}"
            );
            assert!(!text.contains("request details"));
            assert!(
                text.contains("our own debug line"),
                "the app's own level still applies"
            );
        }
    }
}
