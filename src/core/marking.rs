//! Marking the records of revoked subjects.
//!
//! A revocation by subject commits its `subject_revocations` row and returns. Every instance
//! rejects the subject from its snapshot from then on. This module marks the subject's ID-JAG
//! and access-token records as revoked afterwards, and moves the statistics counters, in
//! chunks with one short transaction each. A chunk is sized to take about 20 ms, and
//! exchanges are written between chunks, so a subject with a hundred thousand records does
//! not hold the store for seconds. Introspection and token listings check the snapshot's
//! subject revocations, so a record is reported as revoked before it is marked.
//!
//! A revocation that covers at most [`MARK_AT_ONCE`] records is marked before the call
//! returns, so the statistics are exact when the operator reads them. One-shot commands have
//! no background task, so they mark every revocation before they return.
//!
//! Every instance with background tasks marks pending revocations: after it records one,
//! after a reload finds one recorded elsewhere, and at start-up, which resumes marking that a
//! stopped instance left unfinished. Instances that mark the same revocation at once split
//! the work, and each record is marked once.

use std::time::{Duration, Instant};

use crate::core::model::SubjectRevocation;
use crate::core::{Core, CoreResult};

/// Most records a revocation may cover to be marked before the call returns.
pub const MARK_AT_ONCE: u32 = 500;
/// Records in the first chunk of a background marking.
const FIRST_CHUNK: u32 = 100;
/// Bounds of the chunk size.
const MIN_CHUNK: u32 = 25;
const MAX_CHUNK: u32 = 2_000;
/// Time one chunk should take. Exchanges wait behind at most one chunk in the SQLite
/// writer's queue, so this bounds the delay marking adds to them.
const CHUNK_TARGET: Duration = Duration::from_millis(20);
/// Pause between chunks, so writes queued behind one go first.
const PAUSE: Duration = Duration::from_millis(5);
/// Pause before walking a revocation again when another instance held some of its records.
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// Walks of one revocation in one call before it is left to the next round.
const MAX_WALKS: u32 = 10;
/// Rounds a caller that waits for the marking spends before leaving it to a later one.
const MAX_ROUNDS_NOW: u32 = 3;

impl Core {
    /// Marks the records of every pending subject revocation in the current snapshot; returns
    /// the number of ID-JAG records marked.
    pub async fn mark_pending_subject_revocations(&self) -> CoreResult<u64> {
        let pending = self.snapshot().pending_subject_revocations.clone();
        if pending.is_empty() {
            return Ok(0);
        }
        let mut marked = 0;
        let mut finished = false;
        for revocation in &pending {
            let (count, done) = self.mark_subject(revocation, FIRST_CHUNK).await?;
            marked += count;
            finished |= done;
        }
        if finished {
            self.reload().await?;
        }
        Ok(marked)
    }

    /// Marks the records of one revocation before it returns, then reloads the snapshot.
    /// Records that other instances keep busy for longer are left to a later round.
    pub(crate) async fn mark_subject_now(&self, revocation: &SubjectRevocation) -> CoreResult<()> {
        for _ in 0..MAX_ROUNDS_NOW {
            let (_, done) = self.mark_subject(revocation, MARK_AT_ONCE).await?;
            if done {
                return self.reload().await;
            }
        }
        tracing::warn!(
            idp_provider_id = revocation.idp_provider_id,
            "records of a revoked subject are still held elsewhere; marking them later"
        );
        Ok(())
    }

    /// Marks the records of one revocation, starting with chunks of `chunk` records and
    /// sizing the next ones so that each takes about [`CHUNK_TARGET`]; returns how many it
    /// marked and whether none is left.
    async fn mark_subject(
        &self,
        revocation: &SubjectRevocation,
        mut chunk: u32,
    ) -> CoreResult<(u64, bool)> {
        let mut marked = 0;
        let mut after_id = 0;
        let mut walks = 1;
        loop {
            let started = Instant::now();
            let progress = self
                .store()
                .mark_subject_revocation(revocation, after_id, chunk)
                .await?;
            chunk = next_chunk(chunk, started.elapsed());
            marked += progress.marked;
            if progress.done {
                tracing::info!(
                    idp_provider_id = revocation.idp_provider_id,
                    marked,
                    "records of a revoked subject marked"
                );
                return Ok((marked, true));
            }
            if progress.last_id < after_id || progress.last_id == 0 {
                walks += 1;
                if walks > MAX_WALKS {
                    return Ok((marked, false));
                }
                tokio::time::sleep(RETRY_PAUSE).await;
            } else {
                tokio::time::sleep(PAUSE).await;
            }
            after_id = progress.last_id;
        }
    }
}

/// Sizes the next chunk from the time the last one took: half as many records when it took
/// over twice the target, twice as many when it took under half.
fn next_chunk(chunk: u32, took: Duration) -> u32 {
    let next = if took > CHUNK_TARGET * 2 {
        chunk / 2
    } else if took < CHUNK_TARGET / 2 {
        chunk.saturating_mul(2)
    } else {
        chunk
    };
    next.clamp(MIN_CHUNK, MAX_CHUNK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_size_follows_the_time_taken() {
        assert_eq!(next_chunk(100, Duration::from_millis(100)), 50);
        assert_eq!(next_chunk(100, Duration::from_millis(20)), 100);
        assert_eq!(next_chunk(100, Duration::from_millis(2)), 200);
        assert_eq!(next_chunk(MIN_CHUNK, Duration::from_secs(1)), MIN_CHUNK);
        assert_eq!(next_chunk(MAX_CHUNK, Duration::ZERO), MAX_CHUNK);
    }
}
