//! The async forms on Windows: a call's loop (see `running/windows.rs`) runs on tokio's
//! blocking pool, one thread per call in flight. The future (or the
//! [`AsyncRunning`](super::AsyncRunning) handle) holds a flag that the loop checks: dropping
//! it makes the loop terminate the call's Job Object.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::sync::{mpsc, oneshot};

use super::super::{CommandError, Output, Running};

enum Request {
    Line(oneshot::Sender<Option<Result<String, CommandError>>>),
    Wait(oneshot::Sender<Result<Output, CommandError>>),
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Line(_) => "Line",
            Self::Wait(_) => "Wait",
        })
    }
}

/// A call in progress on the blocking pool, and the requests sent to its thread.
#[derive(Debug)]
pub(super) struct Engine {
    requests: mpsc::UnboundedSender<Request>,
    pending: Option<oneshot::Receiver<Option<Result<String, CommandError>>>>,
    cancel: Option<CancelOnDrop>,
}

impl Engine {
    pub(super) fn new(mut running: Running) -> Result<Self, CommandError> {
        let cancel = CancelOnDrop(Arc::default());
        running.imp.cancel_on(Arc::clone(&cancel.0));
        let (requests, mut inbox) = mpsc::unbounded_channel();
        tokio::task::spawn_blocking(move || {
            while let Some(request) = inbox.blocking_recv() {
                match request {
                    Request::Line(reply) => {
                        let _ = reply.send(running.next_line());
                    }
                    Request::Wait(reply) => {
                        let _ = reply.send(running.wait());
                        return;
                    }
                }
            }
            // The handle is gone: `running` is dropped here, which kills and reaps it.
        });
        Ok(Self {
            requests,
            pending: None,
            cancel: Some(cancel),
        })
    }

    pub(super) fn poll_line(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<String, CommandError>>> {
        if self.pending.is_none() {
            let (reply, answer) = oneshot::channel();
            if self.requests.send(Request::Line(reply)).is_err() {
                return Poll::Ready(None);
            }
            self.pending = Some(answer);
        }
        let answer = self.pending.as_mut().expect("just set");
        match Pin::new(answer).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(line) => {
                self.pending = None;
                Poll::Ready(line.unwrap_or(None))
            }
        }
    }

    pub(super) fn kill(&mut self) {
        self.cancel = None;
    }

    pub(super) async fn wait(mut self) -> Result<Output, CommandError> {
        if let Some(pending) = self.pending.take() {
            // A line asked for and not taken: the request is answered before `Wait`.
            drop(pending);
        }
        let (reply, answer) = oneshot::channel();
        let gone = || CommandError::Io {
            program: std::path::PathBuf::new(),
            error: io::Error::other("the call's thread ended"),
        };
        self.requests
            .send(Request::Wait(reply))
            .map_err(|_| gone())?;
        let result = answer.await.map_err(|_| gone())?;
        self.cancel = None;
        result
    }
}

/// Sets its flag when dropped: the Windows call's thread checks it.
#[derive(Debug)]
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}
