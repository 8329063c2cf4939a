//! A response body that holds an activity guard until it is fully sent (or
//! dropped), so a long stream (SSE) counts as traffic while it lasts.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use crate::error_page::Body as BoxBody;

pub(crate) struct Guarded {
    inner: BoxBody,
    _guard: Box<dyn Send + Sync>,
}

impl Guarded {
    pub(crate) fn new(inner: BoxBody, guard: Box<dyn Send + Sync>) -> Self {
        Self { inner, _guard: guard }
    }
}

impl Body for Guarded {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
