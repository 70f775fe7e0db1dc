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

use std::sync::Mutex;

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

/// The idle instances of one plugin, one list per stage.
pub(crate) struct Pool {
    warm: Warm,
    credentials_exchange: Mutex<Vec<Idle>>,
    authorize: Mutex<Vec<Idle>>,
}

impl Pool {
    pub fn new(warm: Warm) -> Pool {
        Pool {
            warm,
            credentials_exchange: Mutex::new(Vec::new()),
            authorize: Mutex::new(Vec::new()),
        }
    }

    pub fn warm(&self) -> Warm {
        self.warm
    }

    fn list(&self, stage: Stage) -> &Mutex<Vec<Idle>> {
        match stage {
            Stage::CredentialsExchange => &self.credentials_exchange,
            Stage::Authorize => &self.authorize,
        }
    }

    /// An idle instance for `stage`, if one is kept.
    pub fn take(&self, stage: Stage) -> Option<Idle> {
        if self.warm.instances == 0 {
            return None;
        }
        self.list(stage)
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop()
    }

    /// Keeps `idle` for a later call unless the plugin keeps no instances,
    /// it has served its calls or the pool is full; otherwise it is dropped
    /// here.
    pub fn give_back(&self, stage: Stage, idle: Idle) {
        if self.warm.instances == 0 || idle.calls >= self.warm.max_calls {
            return;
        }
        let mut list = self
            .list(stage)
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if list.len() < self.warm.instances as usize {
            list.push(idle);
        }
    }

    /// Idle instances kept right now, for both stages.
    pub fn idle(&self) -> usize {
        [Stage::CredentialsExchange, Stage::Authorize]
            .into_iter()
            .map(|s| {
                self.list(s)
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .len()
            })
            .sum()
    }
}
