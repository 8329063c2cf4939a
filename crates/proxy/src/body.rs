//! A response body that holds the request's [`Traffic`] guard until it is
//! fully sent (or dropped), so a long stream (SSE) counts as traffic while
//! it lasts, and tells it the bytes of each frame.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use crate::Traffic;
use crate::error_page::Body as BoxBody;

pub(crate) struct Guarded {
    inner: BoxBody,
    guard: std::sync::Arc<dyn Traffic>,
}

impl Guarded {
    pub(crate) fn new(inner: BoxBody, guard: std::sync::Arc<dyn Traffic>) -> Self {
        Self { inner, guard }
    }
}

impl Body for Guarded {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.guard.sent(data.len() as u64);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
