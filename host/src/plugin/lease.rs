//! One plugin call's hold on an instance, from the moment it has one until
//! it is given back or dropped: a fresh store in a free pool slot, or an idle
//! instance the plugin keeps warm; the deadline; the call through the
//! component's ABI version; and, at the end, the logs and the decision
//! whether the instance may serve again.

use std::time::{Duration, Instant};

use wasmtime::{Store, Trap, UpdateDeadline};

use super::abi;
use super::egress;
use super::engine::{self, LogLine, PluginState, Runtime};
use super::event::{Answer, Event};
use super::registry::LoadedPlugin;
use super::warm::{Idle, Pool};
use crate::config::Stage;

/// Extra time past `timeout_ms` before the async backstop drops a call that is
/// blocked in a host function (where epochs are not checked).
const BACKSTOP_GRACE: Duration = Duration::from_millis(50);

/// An instance (or the store for one) held for one call of `plugin` at
/// `stage`. Dropping it drops the store and frees its pool slot; [`Lease::finish`]
/// gives a healthy warm instance back instead.
pub(crate) struct Lease<'p> {
    plugin: &'p LoadedPlugin,
    stage: Stage,
    store: Store<PluginState>,
    /// The instance: taken out for a call and put back only when the call
    /// returned normally, so a lease that still holds one may give it back.
    instance: Option<abi::Instance>,
    /// Calls the instance served before this one.
    calls: u32,
    /// When the call's `timeout_ms` runs out (the wait for a slot counts).
    deadline: Instant,
    /// The lease as the plugin's warm pool counts it.
    counted: Counted<'p>,
}

/// A lease counted out of a plugin's warm pool ([`Pool::take`]); dropping it
/// without [`Counted::give_back`] tells the pool no instance is coming back.
struct Counted<'p> {
    pool: &'p Pool,
    stage: Stage,
    open: bool,
}

impl Counted<'_> {
    fn give_back(mut self, idle: Idle) {
        self.open = false;
        self.pool.returned(self.stage, Some(idle));
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        if self.open {
            self.pool.returned(self.stage, None);
        }
    }
}

impl<'p> Lease<'p> {
    /// An idle instance of `plugin` when it keeps them and one is free,
    /// otherwise a fresh store in the first pool slot to come free within
    /// the plugin's `timeout_ms`.
    pub async fn acquire(
        runtime: &Runtime,
        plugin: &'p LoadedPlugin,
        stage: Stage,
    ) -> Result<Lease<'p>, String> {
        let timeout = plugin.config.timeout;
        let started = Instant::now();
        let taken = plugin.pool.take(stage);
        let counted = Counted {
            pool: &plugin.pool,
            stage,
            open: plugin.warm().instances > 0,
        };
        let (store, instance, calls) = match taken {
            Some(mut idle) => {
                runtime.refuel(&mut idle.store, &plugin.config);
                (idle.store, Some(idle.instance), idle.calls)
            }
            None => match runtime.slot(timeout).await {
                Ok(slot) => (
                    runtime.store(&plugin.config, plugin.cache.clone(), Some(slot)),
                    None,
                    0,
                ),
                Err(busy) => return Err(no_free_slot(&busy)),
            },
        };
        Ok(Lease {
            plugin,
            stage,
            store,
            instance,
            calls,
            deadline: started + timeout,
            counted,
        })
    }

    /// Runs the stage on `event`: instantiates first when the lease holds no
    /// instance yet, interrupts the guest at the deadline. `Err` says why the
    /// call failed, in words for the trace.
    pub async fn call(&mut self, event: Event) -> Result<Answer, String> {
        let timeout = self.plugin.config.timeout;
        let left = self.deadline.saturating_duration_since(Instant::now());
        arm_deadline(&mut self.store, left);
        self.store.data_mut().set_deadline(
            self.deadline
                .checked_sub(egress::margin(timeout))
                .unwrap_or(self.deadline),
        );
        let (plugin, stage, store, held) = (
            self.plugin,
            self.stage,
            &mut self.store,
            self.instance.take(),
        );
        let invoke = async move {
            let instance = match held {
                Some(instance) => instance,
                None => {
                    let pre = plugin.pre(stage).ok_or_else(|| {
                        wasmtime::Error::msg(format!(
                            "does not export the {} stage",
                            stage.as_str()
                        ))
                    })?;
                    pre.instantiate(store).await?
                }
            };
            let answer = instance.call(store, event).await?;
            wasmtime::Result::Ok((answer, instance))
        };
        match tokio::time::timeout(left + BACKSTOP_GRACE, invoke).await {
            Ok(Ok((answer, instance))) => {
                self.instance = Some(instance);
                Ok(answer)
            }
            Ok(Err(e)) => Err(describe_failure(&e, timeout)),
            Err(_) => Err(format!("timed out after {} ms", timeout.as_millis())),
        }
    }

    /// Ends the lease: returns what the plugin logged (also when it
    /// trapped), and gives the instance back to the plugin's warm pool when
    /// the last call returned normally and wrote nothing to standard error;
    /// anything else may be in a broken state and is dropped with its store.
    pub fn finish(mut self) -> Vec<LogLine> {
        let logs = take_logs(&mut self.store);
        if !self.store.data().wrote_stderr()
            && let Some(instance) = self.instance.take()
        {
            self.counted.give_back(Idle {
                store: self.store,
                instance,
                calls: self.calls + 1,
            });
        }
        logs
    }
}

/// Starts the instances `plugin` keeps warm at each stage it runs at (none
/// for a plugin that keeps none), so that its first requests find them idle:
/// called before a loaded version serves.
pub async fn start_warm_instances(runtime: &Runtime, plugin: &LoadedPlugin) {
    for stage in [Stage::CredentialsExchange, Stage::Authorize] {
        if plugin.stages.contains(stage) {
            top_up(runtime, plugin, stage).await;
        }
    }
}

/// [`fill`], with a failure logged: calls then start instances themselves,
/// and fail the way this did.
pub(crate) async fn top_up(runtime: &Runtime, plugin: &LoadedPlugin, stage: Stage) {
    if let Err(reason) = fill(runtime, plugin, stage).await {
        tracing::warn!(
            plugin = %plugin.config.name,
            sha256 = %plugin.sha256,
            stage = stage.as_str(),
            %reason,
            "a warm instance did not start; calls start their own"
        );
    }
}

/// Starts instances of `plugin` for `stage`, each within the plugin's
/// `timeout_ms`, until it holds as many as it keeps warm (idle, out on a
/// call, or starting), and leaves them idle in its pool: at load, before a
/// version serves, and after a call that retired or dropped one, so that a
/// JavaScript or Python plugin's requests seldom wait for an interpreter to
/// start. The first failure ends it.
async fn fill(runtime: &Runtime, plugin: &LoadedPlugin, stage: Stage) -> Result<(), String> {
    while plugin.pool.reserve_start(stage) {
        match start(runtime, plugin, stage).await {
            Ok(idle) => plugin.pool.started(stage, Some(idle)),
            Err(reason) => {
                plugin.pool.started(stage, None);
                return Err(reason);
            }
        }
    }
    Ok(())
}

/// A new instance of `plugin` for `stage` that has served no call.
async fn start(runtime: &Runtime, plugin: &LoadedPlugin, stage: Stage) -> Result<Idle, String> {
    let timeout = plugin.config.timeout;
    let pre = plugin
        .pre(stage)
        .ok_or_else(|| format!("does not export the {} stage", stage.as_str()))?;
    let slot = runtime
        .slot(timeout)
        .await
        .map_err(|busy| no_free_slot(&busy))?;
    let mut store = runtime.store(&plugin.config, plugin.cache.clone(), Some(slot));
    arm_deadline(&mut store, timeout);
    match tokio::time::timeout(timeout + BACKSTOP_GRACE, pre.instantiate(&mut store)).await {
        Ok(Ok(instance)) => Ok(Idle {
            store,
            instance,
            calls: 0,
        }),
        Ok(Err(e)) => Err(describe_failure(&e, timeout)),
        Err(_) => Err(format!("timed out after {} ms", timeout.as_millis())),
    }
}

fn no_free_slot(busy: &engine::NoFreeSlot) -> String {
    format!(
        "no plugin instance slot came free within {} ms (all {} busy)",
        busy.waited.as_millis(),
        engine::MAX_CONCURRENT_INSTANCES
    )
}

#[derive(Debug)]
struct DeadlineExceeded;

impl std::fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("deadline exceeded")
    }
}

impl std::error::Error for DeadlineExceeded {}

/// Interrupts the call at `timeout`, yielding to the executor on every epoch
/// tick before that so a busy plugin never starves other requests.
fn arm_deadline(store: &mut Store<PluginState>, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            Err(wasmtime::Error::new(DeadlineExceeded))
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
}

fn take_logs(store: &mut Store<PluginState>) -> Vec<LogLine> {
    let stderr = store.data().stderr();
    let state = store.data_mut();
    let mut logs = std::mem::take(&mut state.logs);
    let dropped = std::mem::take(&mut state.dropped_logs);
    if dropped > 0 {
        logs.push(LogLine {
            level: "warn",
            message: format!("{dropped} more log lines dropped"),
        });
    }
    if !stderr.is_empty() {
        logs.push(LogLine {
            level: "error",
            message: format!("stderr: {stderr}"),
        });
    }
    logs
}

fn describe_failure(e: &wasmtime::Error, timeout: Duration) -> String {
    if e.downcast_ref::<DeadlineExceeded>().is_some() {
        return format!("timed out after {} ms", timeout.as_millis());
    }
    if let Some(trap) = e.downcast_ref::<Trap>() {
        return match trap {
            Trap::StackOverflow => "trapped: stack overflow".to_owned(),
            Trap::OutOfFuel => "ran out of fuel (its fuel budget per call)".to_owned(),
            Trap::UnreachableCodeReached => {
                "trapped: unreachable (a panic or abort in the plugin)".to_owned()
            }
            // A plugin's stack in linear memory sits below its data, so
            // overflowing it reads or writes below address 0.
            Trap::MemoryOutOfBounds => {
                "trapped: out of bounds memory access (a bad pointer, or the plugin's stack in linear memory overflowed)".to_owned()
            }
            other => format!("trapped: {other}"),
        };
    }
    // A failure inside the guest reads "error while executing at wasm
    // backtrace:" and then frames; the reason is the innermost cause.
    let text = format!("{e:#}");
    let first = text.lines().next().unwrap_or("failed");
    if first.starts_with("too much data is being copied between the host and the guest") {
        return format!(
            "passed the host more than {} bytes at once (its result, or one host call); \
             refused while it was read, before being copied",
            engine::MAX_TRANSFER_BYTES
        );
    }
    if first.starts_with("error while executing") {
        let cause = e.root_cause().to_string();
        if let Some(line) = cause.lines().next().filter(|l| !l.is_empty()) {
            return line.to_owned();
        }
    }
    first.to_owned()
}
