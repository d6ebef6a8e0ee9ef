//! Counting calls and their dependency depth, and the one loop every paginated read goes through.

use super::errors::unreadable_or_fatal;
use super::CollectError;
use crate::model::Fact;
use aws_smithy_async::future::pagination_stream::PaginationStream;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use std::sync::atomic::{AtomicU32, Ordering};

/// What one collection has cost so far: requests, and the longest chain of requests that had to wait
/// for one another (what latency multiplies).
#[derive(Default)]
pub(super) struct Tally {
    calls: AtomicU32,
    depth: AtomicU32,
}

impl Tally {
    pub(super) fn calls(&self) -> u32 {
        self.calls.load(Ordering::Relaxed)
    }
    pub(super) fn rounds(&self) -> u32 {
        self.depth.load(Ordering::Relaxed)
    }
}

/// A place in the chain of dependent calls: a read made `at` a round waits for nothing deeper.
#[derive(Clone, Copy)]
pub(super) struct Round<'a> {
    tally: &'a Tally,
    depth: u32,
}

impl<'a> Round<'a> {
    pub(super) fn first(tally: &'a Tally) -> Self {
        Round { tally, depth: 1 }
    }
    /// The round of reads that need an answer of this one.
    pub(super) fn next(self) -> Self {
        Round {
            depth: self.depth + 1,
            ..self
        }
    }
    /// Counts one request made in this round.
    pub(super) fn call(self) {
        self.tally.calls.fetch_add(1, Ordering::Relaxed);
        self.tally.depth.fetch_max(self.depth, Ordering::Relaxed);
    }
}

/// Every page of a list call, each counted in `at`; `keep` takes a page's items. An error ends the
/// read: `answer` may settle it (`Some`: a resource deleted since it was named has nothing left to
/// judge), else it becomes `Unknown` (denied) or stops the evaluation.
pub(super) async fn every_page<O, E, T>(
    op: &'static str,
    mut pages: PaginationStream<Result<O, SdkError<E, HttpResponse>>>,
    at: Round<'_>,
    mut keep: impl FnMut(O, &mut Vec<T>),
    answer: impl Fn(&SdkError<E, HttpResponse>) -> Option<Fact<Vec<T>>>,
) -> Result<Fact<Vec<T>>, CollectError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        at.call();
        match page {
            Ok(p) => keep(p, &mut out),
            Err(e) => match answer(&e) {
                Some(fact) => return Ok(fact),
                None => return unreadable_or_fatal(op, e),
            },
        }
    }
    Ok(Fact::Known(out))
}

/// No error is special.
pub(super) fn plain<E, T>(_: &SdkError<E, HttpResponse>) -> Option<Fact<Vec<T>>> {
    None
}

/// The resource (the cluster, an access entry) was deleted since it was named: nothing to judge.
pub(super) fn gone_is_empty<E: ProvideErrorMetadata, T>(
    e: &SdkError<E, HttpResponse>,
) -> Option<Fact<Vec<T>>> {
    super::errors::is_not_found(e).then(|| Fact::Known(vec![]))
}
