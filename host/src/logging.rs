//! The process's log as a `tracing` subscriber: lines to standard error in
//! `[log] format`, filtered by `TESSERA_LOG`, and audit events
//! ([`crate::audit::TARGET`]) where `[log] audit` says (docs/operations.md,
//! "Logs" and "The audit log"). `tessera` installs it at start; the
//! benchmarks build the same one over a sink.

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{FilterExt as _, Targets, filter_fn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::config::LogFormat;

/// Where audit events go, once any file is open.
pub enum Audit<A> {
    /// With the rest of the log.
    Main,
    /// Nowhere.
    Off,
    /// To this writer, one JSON object per line, whatever the filter says.
    Writer(A),
}

/// The subscriber: `format` lines through `filter` to `main` (in colour
/// when `ansi`), and audit events where `audit` says.
pub fn subscriber<M, A>(
    format: LogFormat,
    filter: EnvFilter,
    ansi: bool,
    main: M,
    audit: Audit<A>,
) -> Box<dyn Subscriber + Send + Sync>
where
    M: for<'w> MakeWriter<'w> + Send + Sync + 'static,
    A: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let main = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(main)
            .with_ansi(ansi)
            .boxed(),
        // One object per line: timestamp, level, target, the event's fields
        // (`message` among them) and the request span's (`request_id`, …).
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(main)
            .boxed(),
    };
    let not_audit = filter_fn(|meta| meta.target() != crate::audit::TARGET);
    let registry = tracing_subscriber::registry();
    match audit {
        Audit::Main => Box::new(registry.with(main.with_filter(filter))),
        Audit::Off => Box::new(registry.with(main.with_filter(filter.and(not_audit)))),
        Audit::Writer(writer) => {
            let audit_layer = tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .with_writer(writer)
                // Audit events, and the request span they happen in (its
                // module logs no events of its own).
                .with_filter(
                    Targets::new()
                        .with_target(crate::audit::TARGET, tracing::Level::INFO)
                        .with_target("tessera::http::observe", tracing::Level::INFO),
                );
            Box::new(
                registry
                    .with(main.with_filter(filter.and(not_audit)))
                    .with(audit_layer),
            )
        }
    }
}
