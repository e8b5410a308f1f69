//! Structured JSON logs. Every line carries the fields of the request span (request id,
//! function, route). Level from `RUST_LOG`, else Lambda's `AWS_LAMBDA_LOG_LEVEL`, else info.
//! Metric lines (crate::metrics, EMF) go through the same writer.

use tracing_subscriber::EnvFilter;
pub use tracing_subscriber::fmt::MakeWriter;

/// Dependencies are quiet unless asked for: their debug output can carry request details.
const QUIET: &str = "aws_smithy_runtime=warn,aws_config=warn,hyper=warn,rustls=warn,reqwest=warn";

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
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .map(|l| l.to_lowercase().replace("fatal", "error"))
        .unwrap_or_else(|_| "info".to_owned());
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(format!("{level},{QUIET}")))
        .unwrap_or_else(|_| EnvFilter::new("info"));
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
}
