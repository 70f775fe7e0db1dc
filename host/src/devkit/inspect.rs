//! `tessera plugin inspect`: what a component file is, without running it:
//! size and hash, the stages and WIT version it implements, what it imports
//! and exports, the language and tools that made it, and whether Tessera can
//! load it (and if not, why).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wasmtime::component::types::ComponentItem;

use crate::config::PluginConfig;
use crate::plugin::Runtime;
use crate::plugin::metadata::{BuildInfo, Metadata};
use crate::plugin::signature::{read_beside, signature_path};

/// What `inspect` found.
#[derive(Debug, serde::Serialize)]
pub struct Inspection {
    /// The file.
    pub file: PathBuf,
    /// Bytes.
    pub size: u64,
    /// SHA-256, hex.
    pub sha256: String,
    /// `tessera:plugin@…` as the component imports it, if it does.
    pub wit: Option<String>,
    /// Stages it exports with the right signature.
    pub stages: Vec<&'static str>,
    /// Whether `tessera serve` can load it.
    pub loads: bool,
    /// Why not, when it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_error: Option<String>,
    /// Imports (interfaces and functions), by name.
    pub imports: Vec<String>,
    /// Exports, by name.
    pub exports: Vec<String>,
    /// The `tessera-plugin` section written by `tessera plugin build`.
    pub build: Option<BuildInfo>,
    /// The interpreter a JavaScript or Python component carries inside it.
    pub runtime: Option<&'static str>,
    /// Languages named by `producers` sections: for a component that embeds
    /// an interpreter, the language the interpreter is written in.
    pub languages: Vec<String>,
    /// Tools named by `producers` sections.
    pub processed_by: Vec<String>,
    /// Compiling (or loading the compiled cache), in milliseconds.
    pub compile_ms: f64,
    /// Whether the compiled component came from the cache.
    pub from_cache: bool,
    /// The signature beside the file (`FILE.wasm.sig`), if there is one.
    pub signature: Option<SignatureFound>,
}

/// A signature file found beside a component.
#[derive(Debug, serde::Serialize)]
pub struct SignatureFound {
    /// The signature file.
    pub file: PathBuf,
    /// Who it says signed, when it can be read.
    pub signer: Option<String>,
    /// Whether it is a valid signature of this file by that signer.
    pub valid: bool,
    /// What is wrong with it, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Reads and checks the signature beside `file` (whose SHA-256 is
/// `sha256`) against the signer it names: whether a plugin listing that
/// signer would load this file.
fn signature_of(file: &Path, sha256: &[u8; 32]) -> Option<SignatureFound> {
    let (signer, problem) = match read_beside(file) {
        Ok(None) => return None,
        Err(why) => (None, Some(why)),
        Ok(Some(signature)) => (
            Some(signature.signer.to_string()),
            signature
                .check(sha256, &[signature.signer])
                .err()
                .map(|refusal| refusal.to_string()),
        ),
    };
    Some(SignatureFound {
        file: signature_path(file),
        signer,
        valid: problem.is_none(),
        problem,
    })
}

/// Inspects `file`, compiling it (through `cache_dir`) to list its types.
pub fn inspect(file: &Path, cache_dir: &Path) -> anyhow::Result<Inspection> {
    let bytes = std::fs::read(file)
        .map_err(|e| anyhow::anyhow!("{}: cannot read the file: {e}", file.display()))?;
    crate::plugin::registry::check_header(&bytes)
        .map_err(|why| anyhow::anyhow!("{}: {why}", file.display()))?;
    let hash = crate::plugin::signature::sha256(&bytes);
    let sha256 = hex::encode(hash);
    let signature = signature_of(file, &hash);
    let metadata = Metadata::read(&bytes);
    let runtime = Runtime::new().map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let started = Instant::now();
    let (component, from_cache) = runtime
        .compile_cached(&bytes, &sha256, cache_dir, Duration::from_secs(120))
        .map_err(|e| anyhow::anyhow!("{}: does not compile: {e:#}", file.display()))?;
    let compile_ms = (started.elapsed().as_secs_f64() * 100_000.0).round() / 100.0;
    let ty = component.component_type();
    let engine = runtime.engine();
    let imports: Vec<String> = ty
        .imports(engine)
        .map(|(name, item)| describe(name, &item.ty))
        .collect();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, item)| describe(name, &item.ty))
        .collect();
    // A component that does not load may still name the version it meant.
    let imported = ty
        .imports(engine)
        .map(|(name, _)| name)
        .find_map(|name| name.strip_prefix("tessera:plugin/"))
        .and_then(|rest| rest.split_once('@'))
        .map(|(_, version)| format!("tessera:plugin@{version}"));

    let config = PluginConfig::standalone("inspect".into(), file.to_owned());
    let settings = super::runtime_settings(cache_dir);
    let (stages, wit, load_error) =
        match crate::plugin::registry::load(&runtime, &config, &settings, &[]) {
            Ok(p) => (p.exports.names(), Some(p.abi.package().to_owned()), None),
            Err(e) => (Vec::new(), imported, Some(e.reason)),
        };
    let runtime = metadata
        .build
        .as_ref()
        .and_then(|b| embedded_runtime(&b.language));
    Ok(Inspection {
        runtime,
        file: file.to_owned(),
        size: bytes.len() as u64,
        sha256,
        wit,
        stages,
        loads: load_error.is_none(),
        load_error,
        imports,
        exports,
        build: metadata.build,
        languages: metadata.languages,
        processed_by: metadata.processed_by,
        compile_ms,
        from_cache,
        signature,
    })
}

/// The interpreter a component built from `language` embeds, if any.
fn embedded_runtime(language: &str) -> Option<&'static str> {
    match language {
        "javascript" => Some("QuickJS"),
        "python" => Some("CPython"),
        _ => None,
    }
}

fn describe(name: &str, item: &ComponentItem) -> String {
    let kind = match item {
        ComponentItem::ComponentFunc(_) | ComponentItem::CoreFunc(_) => "func",
        ComponentItem::ComponentInstance(_) => "interface",
        ComponentItem::Module(_) => "module",
        ComponentItem::Component(_) => "component",
        ComponentItem::Type(_) => "type",
        ComponentItem::Resource(_) => "resource",
    };
    format!("{name} ({kind})")
}

impl Inspection {
    /// The human-readable form.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let line = |out: &mut String, k: &str, v: &str| {
            out.push_str(&format!("{k:<13} {v}\n"));
        };
        line(&mut out, "file", &self.file.display().to_string());
        line(
            &mut out,
            "size",
            &format!("{} bytes ({:.1} KiB)", self.size, self.size as f64 / 1024.0),
        );
        line(&mut out, "sha256", &self.sha256);
        line(
            &mut out,
            "wit",
            self.wit
                .as_deref()
                .unwrap_or("(imports nothing of tessera:plugin)"),
        );
        line(
            &mut out,
            "stages",
            &if self.stages.is_empty() {
                "(none)".to_owned()
            } else {
                self.stages.join(", ")
            },
        );
        match &self.load_error {
            None => line(&mut out, "loads", "yes"),
            Some(why) => line(&mut out, "loads", &format!("no: {why}")),
        }
        let signature = match &self.signature {
            None => format!(
                "none ({} does not exist)",
                signature_path(&self.file).display()
            ),
            Some(found) => {
                let by = found.signer.as_deref().unwrap_or("an unreadable signer");
                match &found.problem {
                    None => format!("by {by}, valid for this file"),
                    Some(why) => format!("{} {why}", found.file.display()),
                }
            }
        };
        line(&mut out, "signature", &signature);
        if let Some(b) = &self.build {
            line(&mut out, "language", &b.language);
            line(
                &mut out,
                "built",
                &format!(
                    "with {} (SDK {})",
                    if b.toolchain.is_empty() {
                        "an unnamed tool"
                    } else {
                        &b.toolchain
                    },
                    if b.sdk.is_empty() { "?" } else { &b.sdk }
                ),
            );
        }
        if let Some(runtime) = self.runtime {
            line(
                &mut out,
                "runtime",
                &format!("{runtime}, embedded in the component with the plugin's source"),
            );
        }
        if !self.languages.is_empty() {
            // What the producers sections say is the language of the code
            // compiled to WebAssembly: with an embedded interpreter, that is
            // the interpreter's, not the plugin's.
            let said = self.languages.join(", ");
            line(
                &mut out,
                "producers",
                &match self.runtime {
                    Some(runtime) => format!("language {said} (the {runtime} runtime's)"),
                    None => format!("language {said}"),
                },
            );
        }
        if !self.processed_by.is_empty() {
            line(&mut out, "processed by", &self.processed_by.join(", "));
        }
        line(
            &mut out,
            "compile",
            &format!(
                "{} ms{}",
                self.compile_ms,
                if self.from_cache {
                    " (from the compiled cache)"
                } else {
                    ""
                }
            ),
        );
        out.push_str(&format!("imports ({})\n", self.imports.len()));
        for i in &self.imports {
            out.push_str(&format!("  {i}\n"));
        }
        out.push_str(&format!("exports ({})\n", self.exports.len()));
        for e in &self.exports {
            out.push_str(&format!("  {e}\n"));
        }
        out
    }
}
