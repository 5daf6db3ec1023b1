//! What a guest writes to stdout and stderr: kept per invocation, each stream capped at
//! [`MAX_LOG_BYTES`] (a guest that writes more loses the rest, and is never failed for it:
//! Rust's `println!` panics when a write fails), and handed at the instance's end to the
//! [`LogSink`] its request carried, or else written to this process's own stdout and stderr
//! (as `spin up` shows a guest's output).

use std::io::Write as _;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWrite;
use tokio::sync::oneshot;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// The most a guest keeps of each of stdout and stderr in one invocation.
pub const MAX_LOG_BYTES: usize = 64 * 1024;

/// One invocation's guest output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestLog {
    /// What the guest wrote to stdout, up to [`MAX_LOG_BYTES`].
    pub stdout: Bytes,
    /// What the guest wrote to stderr, up to [`MAX_LOG_BYTES`].
    pub stderr: Bytes,
    /// Whether either stream was cut at the cap.
    pub truncated: bool,
}

impl GuestLog {
    /// Whether the guest wrote nothing.
    pub fn is_empty(&self) -> bool {
        self.stdout.is_empty() && self.stderr.is_empty()
    }
}

/// Where an invocation's guest output goes: put it in the request's extensions, and the
/// receiver of [`LogSink::channel`] gets the output once the instance has ended.
#[derive(Clone)]
pub struct LogSink(Arc<Mutex<Option<oneshot::Sender<GuestLog>>>>);

impl std::fmt::Debug for LogSink {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("LogSink")
    }
}

impl LogSink {
    /// A sink and the receiver of what reaches it.
    pub fn channel() -> (Self, oneshot::Receiver<GuestLog>) {
        let (sender, receiver) = oneshot::channel();
        (Self(Arc::new(Mutex::new(Some(sender)))), receiver)
    }

    /// Hands `log` over; only the first call counts.
    pub fn deliver(&self, log: GuestLog) {
        let sender = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(sender) = sender {
            let _ = sender.send(log);
        }
    }
}

/// An instance's output so far.
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Buffers>>);

#[derive(Default)]
struct Buffers {
    stdout: BytesMut,
    stderr: BytesMut,
    truncated: bool,
}

impl Captured {
    /// The stream a guest's stdout (or, with `stderr`, its stderr) writes into.
    pub(crate) fn stream(&self, stderr: bool) -> CapturedStream {
        CapturedStream {
            captured: self.clone(),
            stderr,
        }
    }

    /// Everything written so far, which is then forgotten.
    pub(crate) fn take(&self) -> GuestLog {
        let mut buffers = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        GuestLog {
            stdout: buffers.stdout.split().freeze(),
            stderr: buffers.stderr.split().freeze(),
            truncated: std::mem::take(&mut buffers.truncated),
        }
    }

    fn append(&self, stderr: bool, bytes: &[u8]) {
        let mut buffers = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let buffers = &mut *buffers;
        let buffer = if stderr {
            &mut buffers.stderr
        } else {
            &mut buffers.stdout
        };
        let room = MAX_LOG_BYTES.saturating_sub(buffer.len());
        buffer.extend_from_slice(&bytes[..bytes.len().min(room)]);
        buffers.truncated |= bytes.len() > room;
    }
}

/// Writes `log` to this process's stdout and stderr: for an invocation nobody collects.
pub(crate) fn write_to_process(log: &GuestLog) {
    if !log.stdout.is_empty() {
        let _ = std::io::stdout().lock().write_all(&log.stdout);
    }
    if !log.stderr.is_empty() {
        let _ = std::io::stderr().lock().write_all(&log.stderr);
    }
}

/// A guest's stdout or stderr, kept in memory.
pub(crate) struct CapturedStream {
    captured: Captured,
    stderr: bool,
}

impl IsTerminal for CapturedStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedStream {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(Self {
            captured: self.captured.clone(),
            stderr: self.stderr,
        })
    }
}

impl AsyncWrite for CapturedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _context: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.captured.append(self.stderr, bytes);
        // Taken whole, past the cap too: the guest never sees its output refused.
        Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _context: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: Pin<&mut Self>,
        _context: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_stream_keeps_up_to_the_cap_and_says_it_was_cut() {
        let captured = Captured::default();
        captured.append(false, b"hello\n");
        captured.append(true, &vec![b'x'; MAX_LOG_BYTES + 10]);
        let log = captured.take();
        assert_eq!(log.stdout, Bytes::from_static(b"hello\n"));
        assert_eq!(log.stderr.len(), MAX_LOG_BYTES);
        assert!(log.truncated);
        assert_eq!(captured.take(), GuestLog::default());
    }

    #[tokio::test]
    async fn a_sink_delivers_once() {
        let (sink, receiver) = LogSink::channel();
        let log = GuestLog {
            stdout: Bytes::from_static(b"a"),
            ..GuestLog::default()
        };
        sink.deliver(log.clone());
        sink.deliver(GuestLog::default());
        assert_eq!(receiver.await.ok(), Some(log));
    }
}
