//! Scheduling of background jobs: one running load per [`JobKey`] plus at most one waiting,
//! where a newer request replaces the waiting one. A burst of refresh requests (key repeat,
//! tab switches, ticks during a slow store) therefore costs at most two queries per kind.
//! Actions are never merged or dropped.

use std::collections::{HashMap, HashSet};

use super::{Job, JobKey};

/// Bookkeeping of running and waiting loads. The runtime spawns the jobs it returns.
#[derive(Debug, Default)]
pub struct JobSlots {
    running: HashSet<JobKey>,
    waiting: HashMap<JobKey, Job>,
}

impl JobSlots {
    /// Takes a request and returns the job to start now, if any.
    pub fn submit(&mut self, job: Job) -> Option<Job> {
        let key = job.key();
        if key == JobKey::Action {
            return Some(job);
        }
        if self.running.contains(&key) {
            self.waiting.insert(key, job);
            return None;
        }
        self.running.insert(key);
        Some(job)
    }

    /// Notes that a job of `key` finished and returns the waiting one to start, if any.
    pub fn finish(&mut self, key: JobKey) -> Option<Job> {
        if key == JobKey::Action {
            return None;
        }
        let next = self.waiting.remove(&key);
        if next.is_none() {
            self.running.remove(&key);
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(proxy_id: i64) -> Job {
        Job::LoadStats { proxy_id }
    }

    fn proxy_of(job: Option<&Job>) -> Option<i64> {
        match job {
            Some(Job::LoadStats { proxy_id }) => Some(*proxy_id),
            _ => None,
        }
    }

    #[test]
    fn newer_load_replaces_the_waiting_one() {
        let mut slots = JobSlots::default();
        assert_eq!(proxy_of(slots.submit(stats(1)).as_ref()), Some(1));
        assert!(slots.submit(stats(2)).is_none());
        assert!(slots.submit(stats(3)).is_none());
        assert_eq!(proxy_of(slots.finish(JobKey::Stats).as_ref()), Some(3));
        assert!(slots.finish(JobKey::Stats).is_none());
        assert_eq!(proxy_of(slots.submit(stats(4)).as_ref()), Some(4));
    }

    #[test]
    fn actions_start_at_once() {
        let mut slots = JobSlots::default();
        let revoke = || Job::RevokeToken {
            jti: "a".into(),
            reason: None,
            revoked_by: None,
        };
        assert!(slots.submit(revoke()).is_some());
        assert!(slots.submit(revoke()).is_some());
    }

    #[test]
    fn kinds_do_not_block_each_other() {
        let mut slots = JobSlots::default();
        assert!(slots.submit(stats(1)).is_some());
        assert!(slots.submit(Job::LoadProxies).is_some());
    }
}
