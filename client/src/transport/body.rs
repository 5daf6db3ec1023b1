//! The body of a request: bytes, handed to the connection in chunks with progress reported
//! when someone follows it.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// How much of an upload is handed to the connection at a time, so progress moves smoothly.
pub(crate) const UPLOAD_CHUNK_BYTES: usize = 64 * 1024;

/// Called with (bytes sent, bytes in all) as an upload goes out.
pub(crate) type Progress = Box<dyn FnMut(u64, u64) + Send>;

/// A request body: bytes, handed to the connection in chunks when someone follows progress.
pub(crate) struct RequestBody {
    rest: Bytes,
    total: u64,
    sent: u64,
    progress: Option<Progress>,
}

impl RequestBody {
    pub(crate) fn new(bytes: Bytes, progress: Option<Progress>) -> Self {
        Self {
            total: bytes.len() as u64,
            rest: bytes,
            sent: 0,
            progress,
        }
    }

    /// Reports progress to `progress` from now on.
    pub(crate) fn report_to(&mut self, progress: Progress) {
        self.progress = Some(progress);
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let body = self.get_mut();
        if body.rest.is_empty() {
            return Poll::Ready(None);
        }
        let take = match body.progress {
            Some(_) => body.rest.len().min(UPLOAD_CHUNK_BYTES),
            None => body.rest.len(),
        };
        let chunk = body.rest.split_to(take);
        body.sent += chunk.len() as u64;
        if let Some(progress) = &mut body.progress {
            progress(body.sent, body.total);
        }
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.rest.len() as u64)
    }
}
