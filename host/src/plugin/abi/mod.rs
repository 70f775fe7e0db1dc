//! The plugin ABI: one module per WIT version the host runs, each the only
//! code that sees that version's generated bindings. The rest of the runtime
//! speaks [`super::event`]'s types and holds a version's linked component or
//! instance as a [`Pre`] or an [`Instance`].
//!
//! Adding a version is a new module beside [`v0_1`] and [`v0_2`], a case in [`Version`],
//! [`Pre`] and [`Instance`], and a line in [`add_to_linker`] and [`link`].
//!
//! Capabilities a plugin may import beside its stage ABI have a package and
//! a module of their own: [`cache`] (`tessera:cache@0.1.0`) and [`egress`]
//! (`tessera:egress@0.1.0`).

use wasmtime::Store;
use wasmtime::component::{Component, InstancePre, Linker};

use super::engine::PluginState;
use super::event::{Answer, Event};
use crate::config::Stage;

pub(crate) mod cache;
pub(crate) mod egress;
pub(crate) mod v0_1;
pub(crate) mod v0_2;

/// A version of the `tessera:plugin` WIT package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Version {
    /// `tessera:plugin@0.1.0`: the event as records, copied in whole.
    #[serde(rename = "0.1.0")]
    V0_1,
    /// `tessera:plugin@0.2.0`: the event as a resource the plugin reads from.
    #[serde(rename = "0.2.0")]
    V0_2,
}

impl Version {
    /// `0.1.0`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V0_1 => "0.1.0",
            Version::V0_2 => "0.2.0",
        }
    }

    /// `tessera:plugin@0.1.0`.
    pub fn package(self) -> &'static str {
        match self {
            Version::V0_1 => v0_1::PACKAGE,
            Version::V0_2 => v0_2::PACKAGE,
        }
    }
}

/// The versions a component can be built against, newest first, as users
/// read them in an error.
pub fn supported() -> String {
    [Version::V0_2, Version::V0_1]
        .iter()
        .map(|v| v.package())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A component linked for one stage, ready to instantiate.
#[derive(Clone)]
pub(crate) enum Pre {
    /// Built against 0.1.0.
    V0_1(v0_1::Pre),
    /// Built against 0.2.0.
    V0_2(v0_2::Pre),
}

/// An instance bound to its stage's export.
pub(crate) enum Instance {
    /// Of a 0.1.0 component.
    V0_1(v0_1::Instance),
    /// Of a 0.2.0 component.
    V0_2(v0_2::Instance),
}

/// A component linked for the stages it exports.
pub(crate) struct Linked {
    /// The WIT version it was built against.
    pub version: Version,
    /// Its `on-credentials-exchange`, if exported.
    pub credentials_exchange: Option<Pre>,
    /// Its `on-authorize`, if exported.
    pub authorize: Option<Pre>,
}

/// Adds every version's host interfaces, and the capabilities', to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    v0_1::add_to_linker(linker)?;
    v0_2::add_to_linker(linker)?;
    cache::add_to_linker(linker)?;
    egress::add_to_linker(linker)
}

/// The version `component` was built against: the version of the
/// `tessera:plugin` interfaces it imports (0.1.0 when it imports none: a 0.1.0
/// plugin need not call the host, while a 0.2.0 one always imports the
/// `event` resource its exports take).
pub(crate) fn version_of(component: &Component, linker: &Linker<PluginState>) -> Version {
    let engine = linker.engine();
    for (name, _) in component.component_type().imports(engine) {
        if name.starts_with("tessera:plugin/") && name.ends_with("@0.2.0") {
            return Version::V0_2;
        }
    }
    Version::V0_1
}

/// Links `component` (already checked against the linker as `pre`) for the
/// stages it exports. `Err` says what does not match, to follow the file's
/// name.
pub(crate) fn link(
    component: &Component,
    pre: &InstancePre<PluginState>,
    version: Version,
) -> Result<Linked, String> {
    let (credentials_exchange, authorize) = match version {
        Version::V0_1 => {
            let (ce, authz) = v0_1::link(component, pre)?;
            (ce.map(Pre::V0_1), authz.map(Pre::V0_1))
        }
        Version::V0_2 => {
            let (ce, authz) = v0_2::link(component, pre)?;
            (ce.map(Pre::V0_2), authz.map(Pre::V0_2))
        }
    };
    Ok(Linked {
        version,
        credentials_exchange,
        authorize,
    })
}

impl Pre {
    /// A new instance in `store`.
    pub async fn instantiate(&self, store: &mut Store<PluginState>) -> wasmtime::Result<Instance> {
        match self {
            Pre::V0_1(p) => Ok(Instance::V0_1(p.instantiate(store).await?)),
            Pre::V0_2(p) => Ok(Instance::V0_2(p.instantiate(store).await?)),
        }
    }
}

impl Instance {
    /// Calls the instance's stage with `event` (which a 0.2.0 call hands to
    /// the store as it is, without a copy).
    pub async fn call(
        &self,
        store: &mut Store<PluginState>,
        event: Event,
    ) -> wasmtime::Result<Answer> {
        match self {
            Instance::V0_1(i) => i.call(store, &event).await,
            Instance::V0_2(i) => i.call(store, event).await,
        }
    }
}

/// A version's linked stages, `(credentials-exchange, authorize)`: each
/// stage's `bind()` result when `component` exports it, `None` when it does
/// not, or why an export's signature is not the one `package` gives it.
/// Every version module's `link` is this with its own bindings.
fn stages<P>(
    component: &Component,
    package: &str,
    credentials_exchange: impl FnOnce() -> wasmtime::Result<P>,
    authorize: impl FnOnce() -> wasmtime::Result<P>,
) -> Result<(Option<P>, Option<P>), String> {
    Ok((
        export(
            component,
            Stage::CredentialsExchange.export_name(),
            package,
            credentials_exchange,
        )?,
        export(
            component,
            Stage::Authorize.export_name(),
            package,
            authorize,
        )?,
    ))
}

/// `bind()`'s result when `component` exports `name`, `None` when it does
/// not, or why its signature is not the one `package` gives it.
fn export<P>(
    component: &Component,
    name: &str,
    package: &str,
    bind: impl FnOnce() -> wasmtime::Result<P>,
) -> Result<Option<P>, String> {
    if component.get_export_index(None, name).is_none() {
        return Ok(None);
    }
    bind().map(Some).map_err(|e| {
        format!(
            "exports {name} with another signature ({}); rebuild it against {package}",
            first_line(&e)
        )
    })
}

fn first_line(e: &wasmtime::Error) -> String {
    let text = format!("{e:#}");
    text.lines().next().unwrap_or("").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::Runtime;

    /// A component whose `on-credentials-exchange` takes nothing: the name of
    /// a stage with the wrong signature.
    const WRONG_SIGNATURE: &str = r#"
        (component
          (core module $m (func (export "f")))
          (core instance $i (instantiate $m))
          (func (export "on-credentials-exchange") (canon lift (core func $i "f"))))
    "#;

    #[test]
    fn a_stage_export_with_another_signature_is_refused_by_name() {
        let runtime = Runtime::new().unwrap();
        let component =
            Component::new(runtime.engine(), wat::parse_str(WRONG_SIGNATURE).unwrap()).unwrap();
        let pre = runtime.linker().instantiate_pre(&component).unwrap();
        let version = version_of(&component, runtime.linker());
        assert_eq!(version, Version::V0_1, "no tessera import: 0.1.0");
        let Err(reason) = link(&component, &pre, version) else {
            panic!("a wrong signature linked");
        };
        assert!(
            reason.starts_with("exports on-credentials-exchange with another signature")
                && reason.ends_with("rebuild it against tessera:plugin@0.1.0"),
            "{reason}"
        );
    }
}
