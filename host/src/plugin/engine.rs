//! The one wasmtime `Engine` and everything that configures it: the pooling
//! allocator (with a fallback to on-demand allocation where the address space
//! cannot be reserved), epoch interruption driven by a ticker thread that holds
//! only a weak engine reference, the linker (WASI with nothing granted,
//! wasi:http through the plugin's [`super::egress`], the `tessera:plugin`
//! interfaces and the capabilities), the per-call store state (with the
//! plugin's cache and egress), and the on-disk cache of compiled components.
//!
//! This is the only module with `unsafe`: deserializing a compiled component is
//! unsafe because wasmtime trusts the bytes. The cache folder holds only files
//! this process wrote; operators must keep it writable by Tessera alone.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{
    Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ProfilingStrategy, Store,
    StoreLimits, StoreLimitsBuilder,
};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::cache::{Cache, Caches, Role};
use super::egress::Egress;
use crate::config::{MAX_PLUGIN_MEMORY_MB, PluginConfig, PluginSecret};
use crate::metrics::{PluginMetrics, PoolReading};

/// How often the epoch advances; the granularity of plugin deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);
/// Plugin instances that can be alive at once (pooling allocator slots).
pub const MAX_CONCURRENT_INSTANCES: u32 = 256;
/// Freed instance slots decommitted together; at most this many slots'
/// memory stays resident after their calls end.
pub const DECOMMIT_BATCH: usize = 8;
/// Bytes of a freed slot's linear memory reset in place (memset, or copied
/// back from the image) rather than released to the kernel.
pub const KEEP_RESIDENT: usize = 2 << 20;
/// Log lines kept per call.
pub const MAX_LOG_LINES: usize = 32;
/// Bytes kept per log line.
pub const MAX_LOG_LINE: usize = 1024;
/// Bytes the host copies out of a plugin in one transfer: a stage's result,
/// or the arguments of one host call (a log line, a config key, a write to
/// standard error). wasmtime counts them while it lifts, before it allocates,
/// so an oversized result, or a list whose entries all point at the same
/// bytes, fails the call instead of growing the host. Far above what passes
/// the claim limits (16 KiB per token).
pub const MAX_TRANSFER_BYTES: usize = 1 << 20;

/// The plugin runtime shared by every snapshot: one engine, one linker.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<PluginState>,
    pooling: bool,
    fuel: bool,
    /// One permit per instance slot ([`MAX_CONCURRENT_INSTANCES`]); a store
    /// made for a call holds one until it is dropped.
    slots: Arc<Semaphore>,
    /// Plugin calls and waits for a slot, for `/metrics`.
    metrics: PluginMetrics,
    /// Every plugin's host-side cache, kept across reloads.
    caches: Caches,
}

/// A free instance slot, held by the store of one call (or of an idle warm
/// instance) until it is dropped.
pub struct Slot(#[allow(dead_code, reason = "held, not read")] OwnedSemaphorePermit);

/// Every instance slot stayed busy for as long as a call could wait.
#[derive(Debug)]
pub struct NoFreeSlot {
    /// How long the call waited.
    pub waited: Duration,
}

impl Runtime {
    /// Builds the engine (without fuel counting) and linker and starts the
    /// epoch ticker.
    pub fn new() -> wasmtime::Result<Runtime> {
        Runtime::with_fuel(false)
    }

    /// Like [`Runtime::new`], counting fuel when `fuel` is set
    /// (`[runtime] fuel`), so plugins can have a per-call `fuel` budget.
    pub fn with_fuel(fuel: bool) -> wasmtime::Result<Runtime> {
        let scan = !swap_in_use(std::fs::read_to_string("/proc/swaps"));
        if !scan {
            tracing::info!(
                "swap is on: freed plugin slots are reset whole, not by scanning for written pages \
                 (a written page swapped out would escape the scan)"
            );
        }
        let profiler =
            profiler(std::env::var(PROFILER_VAR).ok().as_deref()).map_err(wasmtime::Error::msg)?;
        let (engine, pooling) = match Engine::new(&engine_config(true, fuel, scan, profiler)) {
            Ok(e) => (e, true),
            Err(e) => {
                tracing::warn!(error = %e, "pooling allocator unavailable; using on-demand allocation");
                (
                    Engine::new(&engine_config(false, fuel, scan, profiler))?,
                    false,
                )
            }
        };
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        super::abi::add_to_linker(&mut linker)?;
        spawn_ticker(&engine);
        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                linker,
                pooling,
                fuel,
                slots: Arc::new(Semaphore::new(MAX_CONCURRENT_INSTANCES as usize)),
                metrics: PluginMetrics::default(),
                caches: Caches::default(),
            }),
        })
    }

    /// An instance slot: at once when one is free, else the first to come
    /// free within `within` (a call's deadline), so a burst of calls above
    /// [`MAX_CONCURRENT_INSTANCES`] queues instead of failing. Waits are
    /// timed into the pool's metrics.
    pub async fn slot(&self, within: Duration) -> Result<Slot, NoFreeSlot> {
        if let Ok(permit) = self.inner.slots.clone().try_acquire_owned() {
            return Ok(Slot(permit));
        }
        let started = Instant::now();
        let acquired = tokio::time::timeout(within, self.inner.slots.clone().acquire_owned()).await;
        let waited = started.elapsed();
        self.inner.metrics.slot_waits.observe(waited.as_secs_f64());
        match acquired {
            Ok(Ok(permit)) => Ok(Slot(permit)),
            // The semaphore is never closed; a timeout is the only way here.
            Ok(Err(_)) | Err(_) => {
                self.inner.metrics.slot_wait_timeouts.inc();
                Err(NoFreeSlot { waited })
            }
        }
    }

    /// How many instance slots there are and how many hold an instance.
    pub fn pool_reading(&self) -> PoolReading {
        let slots = MAX_CONCURRENT_INSTANCES as usize;
        PoolReading {
            slots,
            in_use: slots - self.inner.slots.available_permits(),
        }
    }

    /// What plugin calls record (their durations and outcomes, waits for a
    /// slot), for [`crate::metrics::Metrics::new`].
    pub fn metrics(&self) -> &PluginMetrics {
        &self.inner.metrics
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The linker every plugin is instantiated with.
    pub fn linker(&self) -> &Linker<PluginState> {
        &self.inner.linker
    }

    /// The host-side cache of the plugin `name` in `role`.
    pub fn cache(&self, name: &str, role: Role) -> Arc<Cache> {
        self.inner.caches.of(name, role)
    }

    /// Whether the pooling allocator is in use.
    pub fn pooling(&self) -> bool {
        self.inner.pooling
    }

    /// Whether the engine counts fuel.
    pub fn fuel(&self) -> bool {
        self.inner.fuel
    }

    /// Gives `store` the plugin's fuel for one call (unlimited without a
    /// budget); a no-op when the engine does not count fuel.
    pub fn refuel(&self, store: &mut Store<PluginState>, plugin: &PluginConfig) {
        if self.inner.fuel {
            // Setting fuel fails only when the engine does not count it.
            let _ = store.set_fuel(plugin.fuel.unwrap_or(u64::MAX));
        }
    }

    /// A fresh store for one call of `plugin`, with its host-side `cache`,
    /// holding `slot` (calls served outside the issuer, such as `tessera
    /// plugin test`, have none).
    pub fn store(
        &self,
        plugin: &PluginConfig,
        cache: Arc<Cache>,
        slot: Option<Slot>,
    ) -> Store<PluginState> {
        let state = PluginState {
            wasi: None,
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(plugin.memory_bytes)
                .instances(64)
                .tables(64)
                .memories(16)
                .trap_on_grow_failure(false)
                .build(),
            config: plugin.config.clone(),
            secrets: plugin.secrets.clone(),
            cache,
            egress: Egress::new(plugin.egress.clone()),
            http: WasiHttpCtx::new(),
            logs: Vec::new(),
            dropped_logs: 0,
            _slot: slot,
        };
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_hostcall_fuel(MAX_TRANSFER_BYTES);
        self.refuel(&mut store, plugin);
        store
    }

    /// Compiles a component, or loads it from `cache_dir` when this engine
    /// compiled the same bytes before. Returns the component and whether it came
    /// from the cache.
    pub fn compile_cached(
        &self,
        bytes: &[u8],
        sha256_hex: &str,
        cache_dir: &Path,
        timeout: Duration,
    ) -> wasmtime::Result<(Component, bool)> {
        let path = self.cache_path(sha256_hex, cache_dir);
        if path.is_file() {
            // SAFETY: files in the cache folder are written only by
            // `write_cache` below from `Component::serialize` of this engine
            // configuration (the file name carries the engine's compatibility
            // hash), and the folder is the operator's, like the binary itself.
            match unsafe { Component::deserialize_file(&self.inner.engine, &path) } {
                Ok(c) => return Ok((c, true)),
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "ignoring unusable compiled-plugin cache entry");
                }
            }
        }
        let component = self.compile_within(bytes, timeout)?;
        if let Err(e) = write_cache(&path, &component) {
            tracing::warn!(file = %path.display(), error = %e, "could not write the compiled-plugin cache");
        }
        Ok((component, false))
    }

    /// Compiles on a thread of its own and gives up after `timeout`.
    /// Compilation cannot be interrupted: an abandoned compile finishes in the
    /// background and its result is dropped; what matters is that a hostile
    /// or oversized component never holds up a reload or a start.
    ///
    /// The compile runs at a lower scheduling priority ([`COMPILE_NICE`]), on
    /// the calling thread and on Cranelift's parallel workers alike, so a
    /// reload under load takes idle CPU first and requests keep theirs.
    fn compile_within(&self, bytes: &[u8], timeout: Duration) -> wasmtime::Result<Component> {
        let (tx, rx) = std::sync::mpsc::channel();
        let engine = self.inner.engine.clone();
        let bytes = bytes.to_vec();
        std::thread::Builder::new()
            .name("tessera-compile".into())
            .spawn(move || {
                lower_priority();
                let compile = || Component::new(&engine, &bytes);
                let _ = tx.send(match compile_pool() {
                    Some(pool) => pool.install(compile),
                    None => compile(),
                });
            })
            .map_err(|e| wasmtime::Error::msg(format!("cannot start a compile thread: {e}")))?;
        match rx.recv_timeout(timeout) {
            Ok(result) => result,
            Err(_) => Err(wasmtime::Error::msg(format!(
                "compiling took longer than {} ms ([runtime] compile_timeout_ms)",
                timeout.as_millis()
            ))),
        }
    }

    fn cache_path(&self, sha256_hex: &str, cache_dir: &Path) -> PathBuf {
        let mut h = DefaultHasher::new();
        self.inner
            .engine
            .precompile_compatibility_hash()
            .hash(&mut h);
        cache_dir.join(format!("{sha256_hex}-{:016x}.cwasm", h.finish()))
    }
}

fn write_cache(path: &Path, component: &Component) -> anyhow::Result<()> {
    let bytes = component.serialize()?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("cache"),
        std::process::id()
    ));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// The nice value plugin compiles run at, unless the process already runs
/// at a lower priority: the scheduler then gives a busy request thread about
/// ten times the CPU of a compile thread, and an idle machine still compiles
/// at full speed.
pub const COMPILE_NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority to [`COMPILE_NICE`] (on
/// Linux the nice value is per thread). Failing to is harmless: the compile
/// runs at the process's priority.
fn lower_priority() {
    let current = rustix::process::getpriority_process(None).unwrap_or(COMPILE_NICE);
    if current < COMPILE_NICE {
        let _ = rustix::process::setpriority_process(None, COMPILE_NICE);
    }
}

/// The worker threads Cranelift's parallel compilation runs on, at lowered
/// priority; `None` if they cannot be started, and the compile then runs on
/// rayon's global pool at normal priority.
fn compile_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("tessera-compile-{i}"))
            .start_handler(|_| lower_priority())
            .build()
            .map_err(|e| tracing::warn!(error = %e, "no niced compile workers; compiling at normal priority"))
            .ok()
    })
    .as_ref()
}

/// Whether the machine swaps, from `/proc/swaps` (a header line, then one
/// line per swap area). A freed slot's memory is reset by asking the kernel
/// which pages were written (`PAGEMAP_SCAN`), and the kernel reports present
/// pages only: a written page that was swapped out would keep its data into
/// the next call in that slot. With swap on, the scan is off and freed slots
/// are reset whole (docs/reliability.md, case 34). Without the file there is
/// no swap (and no `PAGEMAP_SCAN`); an unreadable one counts as swap.
fn swap_in_use(swaps: std::io::Result<String>) -> bool {
    match swaps {
        Ok(text) => text.lines().skip(1).any(|l| !l.trim().is_empty()),
        Err(e) => e.kind() != std::io::ErrorKind::NotFound,
    }
}

/// Names the environment variable that makes plugin code visible to a
/// profiler: `perfmap` writes `/tmp/perf-PID.map`, where `perf report`
/// finds the name of each compiled plugin function (docs/operations.md,
/// "Profiling plugins").
pub const PROFILER_VAR: &str = "TESSERA_PLUGIN_PROFILER";

/// The profiling strategy `value` of [`PROFILER_VAR`] names (none when it is
/// unset or empty).
fn profiler(value: Option<&str>) -> Result<ProfilingStrategy, String> {
    match value.map(str::trim) {
        None | Some("" | "none") => Ok(ProfilingStrategy::None),
        Some("perfmap") => Ok(ProfilingStrategy::PerfMap),
        Some(other) => Err(format!(
            "{PROFILER_VAR}: {other:?} is not a profiler Tessera knows; use perfmap, or unset it"
        )),
    }
}

fn engine_config(
    pooling: bool,
    fuel: bool,
    scan: bool,
    profiler: ProfilingStrategy,
) -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config.profiler(profiler);
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.consume_fuel(fuel);
    config.max_wasm_stack(512 * 1024);
    if pooling {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(MAX_CONCURRENT_INSTANCES)
            .total_core_instances(MAX_CONCURRENT_INSTANCES * 8)
            .total_memories(MAX_CONCURRENT_INSTANCES * 2)
            .total_tables(MAX_CONCURRENT_INSTANCES * 4)
            .total_stacks(MAX_CONCURRENT_INSTANCES)
            .max_memory_size((MAX_PLUGIN_MEMORY_MB as usize) << 20)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(64 * 1024)
            .pagemap_scan(if scan {
                wasmtime::Enabled::Auto
            } else {
                wasmtime::Enabled::No
            })
            // Decommitting every freed slot at once costs a TLB-shootdown IPI
            // per call (the top kernel symbol in a profile under load);
            // batching them cut CPU per token with one Rust plugin from ≈270
            // to ≈239 µs on this machine, the same with batches of 8 as of 64.
            // The batch bounds memory too: freed slots keep their pages until
            // it is decommitted, so a batch of 64 let 30 memory-bomb calls
            // (16 MiB each) leave the process at 466 MiB resident; with 8 at
            // most 8 slots' worth stays. A slot is reused only after its batch
            // is decommitted, so no data crosses calls. Within KEEP_RESIDENT
            // nothing is decommitted: PAGEMAP_SCAN finds the dirtied pages and
            // only those are reset (bench/README.md), unless swap is on
            // (`swap_in_use`).
            .decommit_batch_size(DECOMMIT_BATCH)
            .max_unused_warm_slots(64);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until the engine is gone.
fn spawn_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("tessera-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "could not start the epoch ticker; plugin deadlines rely on the async timeout only");
    }
}

/// One log line written by a plugin.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LogLine {
    /// `trace` … `error`.
    pub level: &'static str,
    /// The message, truncated to [`MAX_LOG_LINE`] bytes.
    pub message: String,
}

/// What a plugin call's store holds: an empty WASI context (made when first
/// used), limits, the plugin's config and secrets, and the logs it wrote.
pub struct PluginState {
    /// The WASI context and the pipe behind its standard error, made the
    /// first time the guest calls into WASI: a component that imports none,
    /// or never calls what it imports, does not pay for one.
    wasi: Option<(WasiCtx, MemoryOutputPipe)>,
    table: ResourceTable,
    limits: StoreLimits,
    config: Arc<std::collections::HashMap<String, String>>,
    secrets: Arc<std::collections::HashMap<String, PluginSecret>>,
    /// The plugin's host-side cache (`tessera:cache`).
    cache: Arc<Cache>,
    /// What outgoing HTTP the plugin may send (`egress`), until when.
    egress: Egress,
    /// wasi:http's settings.
    http: WasiHttpCtx,
    /// Lines logged during the call.
    pub logs: Vec<LogLine>,
    /// Lines dropped past [`MAX_LOG_LINES`].
    pub dropped_logs: u32,
    /// The instance slot this store holds, freed with it.
    _slot: Option<Slot>,
}

impl PluginState {
    /// Whether the plugin wrote anything to standard error.
    pub fn wrote_stderr(&self) -> bool {
        self.wasi
            .as_ref()
            .is_some_and(|(_, stderr)| !stderr.contents().is_empty())
    }

    /// What the plugin wrote to standard error (at most [`MAX_LOG_LINE`] bytes).
    pub fn stderr(&self) -> String {
        self.wasi.as_ref().map_or_else(String::new, |(_, stderr)| {
            String::from_utf8_lossy(&stderr.contents())
                .trim_end()
                .to_owned()
        })
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let (ctx, _) = self.wasi.get_or_insert_with(|| {
            // Standard error is captured (bounded) so a panicking plugin's
            // message reaches the trace; everything else WASI offers is
            // empty or denied.
            let stderr = MemoryOutputPipe::new(MAX_LOG_LINE);
            (WasiCtx::builder().stderr(stderr.clone()).build(), stderr)
        });
        WasiCtxView {
            ctx,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for PluginState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            hooks: &mut self.egress,
            table: &mut self.table,
            ctx: &mut self.http,
        }
    }
}

impl PluginState {
    /// Outgoing requests of this call end by `deadline`.
    pub fn set_deadline(&mut self, deadline: Instant) {
        self.egress.set_deadline(deadline);
    }

    /// The plugin's egress, for the `tessera:egress` interface.
    pub fn egress(&self) -> &Egress {
        &self.egress
    }

    /// Keeps a line the plugin logged: at most [`MAX_LOG_LINES`] per call,
    /// each cut to [`MAX_LOG_LINE`] bytes.
    pub fn log(&mut self, level: &'static str, message: String) {
        if self.logs.len() >= MAX_LOG_LINES {
            self.dropped_logs = self.dropped_logs.saturating_add(1);
            return;
        }
        let mut message = message;
        if message.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        self.logs.push(LogLine { level, message });
    }

    /// A value of the plugin's `config` table.
    pub fn config(&self, key: &str) -> Option<String> {
        self.config.get(key).cloned()
    }

    /// The store's resource table (the WASI context's, and the events lent
    /// to `tessera:plugin@0.2.0` calls).
    pub fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// The plugin's host-side cache.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// A secret of the plugin's `secrets` table.
    pub fn secret(&self, name: &str) -> Option<String> {
        self.secrets.get(name).map(|s| s.expose().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use wasmtime::UpdateDeadline;

    use super::*;

    #[test]
    fn compiles_run_at_lowered_priority_without_touching_other_threads() {
        let priority = || rustix::process::getpriority_process(None).unwrap();
        let before = priority();
        let lowered = std::thread::spawn(move || {
            lower_priority();
            priority()
        })
        .join()
        .unwrap();
        assert_eq!(lowered, before.max(COMPILE_NICE));
        assert_eq!(priority(), before, "the nice value must stay per thread");
        let pool = compile_pool().expect("compile workers start");
        assert_eq!(pool.install(priority), before.max(COMPILE_NICE));
        let runtime = Runtime::new().unwrap();
        runtime
            .compile_within(&wat::parse_str(SPINNER).unwrap(), Duration::from_secs(30))
            .expect("a compile on the lowered pool succeeds");
    }

    #[test]
    fn the_page_scan_is_off_where_the_machine_swaps() {
        let header = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";
        assert!(!swap_in_use(Ok(header.to_owned())));
        assert!(swap_in_use(Ok(format!(
            "{header}/swapfile                               file\t\t1048572\t\t0\t\t-2\n"
        ))));
        assert!(swap_in_use(Ok(format!(
            "{header}/dev/zram0                              partition\t4194300\t\t0\t\t100\n"
        ))));
        assert!(!swap_in_use(Err(std::io::ErrorKind::NotFound.into())));
        assert!(swap_in_use(
            Err(std::io::ErrorKind::PermissionDenied.into())
        ));
    }

    #[test]
    fn the_profiler_variable_names_perfmap_or_nothing() {
        assert!(matches!(profiler(None), Ok(ProfilingStrategy::None)));
        assert!(matches!(profiler(Some("")), Ok(ProfilingStrategy::None)));
        assert!(matches!(
            profiler(Some("perfmap")),
            Ok(ProfilingStrategy::PerfMap)
        ));
        let Err(e) = profiler(Some("vtune")) else {
            panic!("vtune was taken")
        };
        assert_eq!(
            e,
            "TESSERA_PLUGIN_PROFILER: \"vtune\" is not a profiler Tessera knows; use perfmap, or unset it"
        );
    }

    /// A component with `spin`, which loops forever, and `ok`, which returns.
    const SPINNER: &str = r#"
        (component
          (core module $m
            (memory 1)
            (func (export "spin") (loop $l (br $l)))
            (func (export "ok")))
          (core instance $i (instantiate $m))
          (func (export "spin") (canon lift (core func $i "spin")))
          (func (export "ok") (canon lift (core func $i "ok"))))
    "#;

    /// With every slot held, a call waits for one: it gets the first that
    /// comes free within its time, or says how long it waited; both waits
    /// are timed, and the timeout counted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_waits_for_a_free_slot_within_its_time() {
        let runtime = Runtime::new().unwrap();
        let mut held = Vec::new();
        for _ in 0..MAX_CONCURRENT_INSTANCES {
            held.push(runtime.slot(Duration::ZERO).await.expect("a free slot"));
        }
        assert_eq!(
            runtime.pool_reading().in_use,
            MAX_CONCURRENT_INSTANCES as usize
        );
        let busy = runtime
            .slot(Duration::from_millis(20))
            .await
            .err()
            .expect("none free");
        assert!(busy.waited >= Duration::from_millis(20), "{busy:?}");
        let freed = held.pop();
        let waiting = {
            let runtime = runtime.clone();
            tokio::spawn(async move { runtime.slot(Duration::from_secs(5)).await.is_ok() })
        };
        drop(freed);
        assert!(
            waiting.await.unwrap(),
            "the freed slot went to the waiting call"
        );
        let m = runtime.metrics();
        assert_eq!(m.slot_wait_timeouts.get(), 1);
        drop(held);
        assert_eq!(runtime.pool_reading().in_use, 0);
    }

    /// docs/reliability.md, case 32: a call dropped while the plugin is
    /// suspended (the pipeline's backstop timeout, or a client that went
    /// away) unwinds the plugin's fiber without a panic, and dropping its
    /// store gives the pooling slot back. More cancelled calls than there are
    /// slots prove no slot leaks.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_call_drops_its_store_and_frees_its_slot() {
        let runtime = Runtime::new().unwrap();
        let component = Component::new(runtime.engine(), wat::parse_str(SPINNER).unwrap()).unwrap();
        let pre = runtime.linker().instantiate_pre(&component).unwrap();
        let plugin = PluginConfig::standalone("spinner".into(), PathBuf::from("spinner.wasm"));
        for _ in 0..MAX_CONCURRENT_INSTANCES + 44 {
            let mut store = runtime.store(&plugin, Arc::default(), None);
            // A deadline that never comes: the plugin yields on every tick
            // and only the timeout below ends the call.
            store.set_epoch_deadline(1);
            store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));
            let call = async {
                let instance = pre.instantiate_async(&mut store).await?;
                let spin = instance.get_typed_func::<(), ()>(&mut store, "spin")?;
                spin.call_async(&mut store, ()).await
            };
            let cancelled = tokio::time::timeout(Duration::from_millis(3), call).await;
            assert!(cancelled.is_err(), "the spinning call returned");
            drop(store);
        }
        let mut store = runtime.store(&plugin, Arc::default(), None);
        store.set_epoch_deadline(1000);
        let instance = pre.instantiate_async(&mut store).await.unwrap();
        let ok = instance.get_typed_func::<(), ()>(&mut store, "ok").unwrap();
        ok.call_async(&mut store, ()).await.unwrap();
    }
}
