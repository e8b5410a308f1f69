//! The warnings and errors of what the bench runs, on its stderr. The functions log JSON
//! lines to stdout (as Lambda captures them) and the in-process runs (the fanned-out
//! cleanup) through `telemeet::telemetry`; a run that misses its figures must say why, so
//! their `WARN` and `ERROR` lines are shown (they carry ids, never names, links or tokens:
//! guarantee 6), everything else (info, metric lines) is dropped.

use std::io::Write;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Lines shown per process: a failure repeated on every call shows its cause in a few.
const SHOWN_PER_PROCESS: usize = 20;

fn is_problem(line: &[u8]) -> bool {
    let text = String::from_utf8_lossy(line);
    text.contains("\"level\":\"ERROR\"") || text.contains("\"level\":\"WARN\"")
}

/// A `MakeWriter` for [`telemeet::telemetry::init_with_writer`]: each log line (one write
/// per event) is kept in a [`Line`] and printed on stderr when it is a problem.
#[derive(Debug, Clone, Copy, Default)]
pub struct Problems;

/// One log line being written.
#[derive(Debug, Default)]
pub struct Line(Vec<u8>);

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if is_problem(&self.0) {
            let _ = std::io::stderr().write_all(&self.0);
        }
    }
}

impl<'a> telemeet::telemetry::MakeWriter<'a> for Problems {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line::default()
    }
}

/// Shows the problem lines of a child's stdout on stderr, prefixed by `name`, until it
/// closes (at most `SHOWN_PER_PROCESS`, then how many more there were).
pub fn forward(name: String, stdout: tokio::process::ChildStdout) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        let mut shown = 0usize;
        while let Ok(Some(line)) = lines.next_line().await {
            if !is_problem(line.as_bytes()) {
                continue;
            }
            shown += 1;
            if shown <= SHOWN_PER_PROCESS {
                eprintln!("[{name}] {line}");
            }
        }
        if shown > SHOWN_PER_PROCESS {
            eprintln!(
                "[{name}] … {} more warning or error lines",
                shown - SHOWN_PER_PROCESS
            );
        }
    });
}
