//! Reusing instances between calls, for plugins whose runtime is expensive to
//! start.
//!
//! A fresh instance per call is the default for compiled languages: it costs
//! tens of microseconds and guarantees that nothing one request leaves in the
//! plugin's memory reaches the next. A JavaScript or Python component carries
//! its interpreter, and a fresh instance of it costs 20 to 100 times a call on
//! an instance that is already running (README, "Plugins in other
//! languages"). For those, a plugin may keep up to `warm_instances` idle
//! instances and reuse each for up to `warm_max_calls` calls.
//!
//! The trade-off is documented where operators choose it: module state (a
//! global variable, a cache) persists between the requests one instance
//! serves. An instance goes back to the pool only after a call that returned
//! normally (changes or a denial) and wrote nothing to standard error; one that
//! trapped, timed out or hit its memory cap is dropped with its store.
//!
//! The pool also counts the instances out on a call and those being started,
//! so [`super::lease`] can start the warm instances before a version serves
//! and replace one that retired, off the request path.

use std::sync::{Mutex, MutexGuard};

use wasmtime::Store;

use super::abi;
use super::engine::PluginState;
use crate::config::Stage;

/// How a plugin reuses instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Warm {
    /// Idle instances kept for reuse; 0 means a fresh instance per call.
    pub instances: u32,
    /// Calls one instance serves before it is dropped.
    pub max_calls: u32,
}

impl Warm {
    /// Idle instances kept by default for a component in `language` (as the
    /// `tessera-plugin` custom section names it): a few for interpreted
    /// runtimes, none otherwise.
    pub fn default_instances(language: Option<&str>) -> u32 {
        match language {
            Some("javascript" | "python") => 4,
            _ => 0,
        }
    }
}

/// An idle instance, its store, and how many calls it has served.
pub(crate) struct Idle {
    pub store: Store<PluginState>,
    pub instance: abi::Instance,
    pub calls: u32,
}

/// The instances of one plugin at one stage: those idle, and how many more
/// are out serving a call or being started for the pool.
#[derive(Default)]
struct Instances {
    idle: Vec<Idle>,
    /// Leases of this stage that may give an instance back.
    out: u32,
    /// Instances being started ahead of calls ([`Pool::reserve_start`]).
    starting: u32,
}

impl Instances {
    fn live(&self) -> u32 {
        self.idle.len() as u32 + self.out + self.starting
    }
}

/// The idle instances of one plugin, one list per stage.
///
/// Besides the idle instances the pool counts those out on a call and those
/// being started, so it can tell when the plugin holds fewer than
/// `warm_instances` (one retired after `warm_max_calls`, one dropped after a
/// trap) and a replacement should start off the request path, and when it
/// holds enough however many are idle at the moment.
pub(crate) struct Pool {
    warm: Warm,
    credentials_exchange: Mutex<Instances>,
    authorize: Mutex<Instances>,
}

impl Pool {
    pub fn new(warm: Warm) -> Pool {
        Pool {
            warm,
            credentials_exchange: Mutex::default(),
            authorize: Mutex::default(),
        }
    }

    pub fn warm(&self) -> Warm {
        self.warm
    }

    fn list(&self, stage: Stage) -> MutexGuard<'_, Instances> {
        match stage {
            Stage::CredentialsExchange => &self.credentials_exchange,
            Stage::Authorize => &self.authorize,
        }
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes an idle instance for `stage` if one is kept, and counts a lease
    /// out until [`Pool::returned`].
    pub fn take(&self, stage: Stage) -> Option<Idle> {
        if self.warm.instances == 0 {
            return None;
        }
        let mut list = self.list(stage);
        list.out += 1;
        list.idle.pop()
    }

    /// A lease counted by [`Pool::take`] has ended; `idle` is its instance if
    /// the instance may serve again. It is kept for a later call unless it
    /// has served its calls or the pool is full; otherwise it is dropped
    /// here.
    pub fn returned(&self, stage: Stage, idle: Option<Idle>) {
        if self.warm.instances == 0 {
            return;
        }
        let mut list = self.list(stage);
        list.out = list.out.saturating_sub(1);
        if let Some(idle) = idle
            && idle.calls < self.warm.max_calls
            && list.idle.len() < self.warm.instances as usize
        {
            list.idle.push(idle);
        }
    }

    /// Whether the plugin holds fewer instances for `stage` (idle, out on a
    /// call, or starting) than it keeps warm; if so, counts one more as
    /// starting, to be ended with [`Pool::started`].
    pub fn reserve_start(&self, stage: Stage) -> bool {
        let mut list = self.list(stage);
        let short = list.live() < self.warm.instances;
        if short {
            list.starting += 1;
        }
        short
    }

    /// Ends a start reserved with [`Pool::reserve_start`]: keeps the
    /// instance if it started.
    pub fn started(&self, stage: Stage, idle: Option<Idle>) {
        let mut list = self.list(stage);
        list.starting = list.starting.saturating_sub(1);
        if let Some(idle) = idle
            && list.idle.len() < self.warm.instances as usize
        {
            list.idle.push(idle);
        }
    }

    /// Whether `stage` holds fewer instances than it keeps warm.
    pub fn short(&self, stage: Stage) -> bool {
        self.warm.instances > 0 && self.list(stage).live() < self.warm.instances
    }

    /// Idle instances kept right now, for both stages.
    pub fn idle(&self) -> usize {
        [Stage::CredentialsExchange, Stage::Authorize]
            .into_iter()
            .map(|s| self.list(s).idle.len())
            .sum()
    }
}
