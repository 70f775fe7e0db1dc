//! `tessera plugin new`: a plugin folder that builds and passes its own test
//! out of the box, and the SDK files every plugin folder carries.
//!
//! The SDKs travel inside the binary. `new` writes the SDK for the plugin's
//! language into the folder (`tessera-plugin-sdk/` for Rust, `tessera/` for
//! JavaScript, `tessera_plugin/` for Python) and `build` refreshes it, so a
//! plugin is always built against the WIT package of the Tessera that builds
//! it, and needs nothing from this repository.

use std::fmt;
use std::path::{Path, PathBuf};

/// The WIT package every SDK builds plugins against
/// (`tessera:plugin@0.2.0`).
pub const WIT: &str = include_str!("../../../wit/0.2.0/plugin.wit");
/// `tessera:cache@0.1.0`, which the JavaScript and Python SDKs' components
/// import.
pub const CACHE_WIT: &str = include_str!("../../../wit/cache/0.1.0/cache.wit");
/// `tessera:egress@0.1.0`, which the JavaScript and Python SDKs' components
/// import.
pub const EGRESS_WIT: &str = include_str!("../../../wit/egress/0.1.0/egress.wit");
/// The SDK version written into components' `tessera-plugin` section.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A language `tessera plugin new` and `build` know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Rust, with the `tessera-plugin-sdk` crate.
    Rust,
    /// JavaScript, with componentize-qjs.
    Js,
    /// Python, with componentize-py.
    Python,
}

impl Lang {
    /// Parses `rust`, `js`/`javascript`, `python`/`py`.
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "rust" | "rs" => Some(Lang::Rust),
            "js" | "javascript" => Some(Lang::Js),
            "python" | "py" => Some(Lang::Python),
            _ => None,
        }
    }

    /// The name written into the `tessera-plugin` section.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Js => "javascript",
            Lang::Python => "python",
        }
    }

    /// Which language a plugin folder is written in, by its files.
    pub fn detect(dir: &Path) -> Option<Lang> {
        if dir.join("Cargo.toml").is_file() {
            Some(Lang::Rust)
        } else if dir.join("plugin.js").is_file() {
            Some(Lang::Js)
        } else if dir.join("plugin.py").is_file() {
            Some(Lang::Python)
        } else {
            None
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A file to write: path relative to the plugin folder, and contents.
type File = (&'static str, &'static str);

const RUST_SDK: &[File] = &[
    (
        "tessera-plugin-sdk/src/lib.rs",
        include_str!("../../../plugin-sdk/rust/src/lib.rs"),
    ),
    (
        "tessera-plugin-sdk/src/allocator.rs",
        include_str!("../../../plugin-sdk/rust/src/allocator.rs"),
    ),
    (
        "tessera-plugin-sdk/src/changes.rs",
        include_str!("../../../plugin-sdk/rust/src/changes.rs"),
    ),
    (
        "tessera-plugin-sdk/src/context.rs",
        include_str!("../../../plugin-sdk/rust/src/context.rs"),
    ),
    (
        "tessera-plugin-sdk/src/convert.rs",
        include_str!("../../../plugin-sdk/rust/src/convert.rs"),
    ),
    (
        "tessera-plugin-sdk/src/event.rs",
        include_str!("../../../plugin-sdk/rust/src/event.rs"),
    ),
    (
        "tessera-plugin-sdk/src/part.rs",
        include_str!("../../../plugin-sdk/rust/src/part.rs"),
    ),
    ("tessera-plugin-sdk/Cargo.toml", RUST_SDK_MANIFEST),
    ("tessera-plugin-sdk/wit/0.2.0/plugin.wit", WIT),
];

/// The SDK crate's manifest outside the Tessera workspace (which sets
/// versions and lints for the in-tree copy).
const RUST_SDK_MANIFEST: &str = r#"# Written by `tessera plugin new` and refreshed by `tessera plugin build`:
# the Rust SDK matching the Tessera that wrote it. Do not edit.
[package]
name = "tessera-plugin-sdk"
version = "0.1.0"
edition = "2024"
publish = false

[features]
default = ["allocator"]
# The SDK's allocator for plugins built without WASI (src/allocator.rs);
# turn it off to bring your own `#[global_allocator]`.
allocator = ["dep:talc"]

[dependencies]
serde = { version = "1", features = ["derive"] }
serde_json = "1"
wit-bindgen = { version = "0.46", default-features = false, features = ["macros", "realloc"] }

[target.'cfg(all(target_family = "wasm", target_os = "unknown"))'.dependencies]
talc = { version = "5.1", default-features = false, optional = true }
"#;

const JS_SDK: &[File] = &[
    (
        "tessera/index.js",
        include_str!("../../../plugin-sdk/js/src/index.js"),
    ),
    (
        "tessera/index.d.ts",
        include_str!("../../../plugin-sdk/js/src/index.d.ts"),
    ),
    (
        "tessera/event.d.ts",
        include_str!("../../../plugin-sdk/js/src/event.d.ts"),
    ),
    (
        "tessera/testing.js",
        include_str!("../../../plugin-sdk/js/src/testing.js"),
    ),
    (
        "tessera/build.mjs",
        include_str!("../../../plugin-sdk/js/src/build.mjs"),
    ),
    (
        "tessera/jobs.js",
        include_str!("../../../plugin-sdk/js/src/jobs.js"),
    ),
    (
        "tessera/fetch.js",
        include_str!("../../../plugin-sdk/js/src/fetch.js"),
    ),
    (
        "tessera/egress.js",
        include_str!("../../../plugin-sdk/js/src/egress.js"),
    ),
    ("tessera/wit/plugin.wit", WIT),
    ("tessera/wit/cache.wit", CACHE_WIT),
    ("tessera/wit/egress.wit", EGRESS_WIT),
];

const PYTHON_SDK: &[File] = &[
    (
        "tessera_plugin/__init__.py",
        include_str!("../../../plugin-sdk/python/tessera_plugin/__init__.py"),
    ),
    (
        "tessera_plugin/_component.py",
        include_str!("../../../plugin-sdk/python/tessera_plugin/_component.py"),
    ),
    (
        "tessera_plugin/_host.py",
        include_str!("../../../plugin-sdk/python/tessera_plugin/_host.py"),
    ),
    (
        "tessera_plugin/_views.py",
        include_str!("../../../plugin-sdk/python/tessera_plugin/_views.py"),
    ),
    (
        "tessera_plugin/testing.py",
        include_str!("../../../plugin-sdk/python/tessera_plugin/testing.py"),
    ),
    (
        "tessera_plugin/build.py",
        include_str!("../../../plugin-sdk/python/tessera_plugin/build.py"),
    ),
    (
        "tessera_plugin/http.py",
        include_str!("../../../plugin-sdk/python/tessera_plugin/http.py"),
    ),
    ("tessera_plugin/wit/plugin.wit", WIT),
    ("tessera_plugin/wit/cache.wit", CACHE_WIT),
    ("tessera_plugin/wit/egress.wit", EGRESS_WIT),
];

const RUST_TEMPLATE: &[File] = &[
    (
        "Cargo.toml",
        include_str!("../../templates/rust/Cargo.toml"),
    ),
    (
        "src/lib.rs",
        include_str!("../../templates/rust/src/lib.rs"),
    ),
    (".gitignore", "target/\n*.wasm\n"),
];

const JS_TEMPLATE: &[File] = &[
    (
        "package.json",
        include_str!("../../templates/js/package.json"),
    ),
    ("plugin.js", include_str!("../../templates/js/plugin.js")),
    (
        "test/plugin.test.mjs",
        include_str!("../../templates/js/test/plugin.test.mjs"),
    ),
    (".gitignore", "node_modules/\n.tessera/\ntessera/\n*.wasm\n"),
];

const PYTHON_TEMPLATE: &[File] = &[
    (
        "plugin.py",
        include_str!("../../templates/python/plugin.py"),
    ),
    (
        "test_plugin.py",
        include_str!("../../templates/python/test_plugin.py"),
    ),
    ("requirements.txt", "componentize-py==0.25.1\n"),
    (
        ".gitignore",
        ".venv/\n__pycache__/\n.tessera/\ntessera_plugin/\n*.wasm\n",
    ),
];

const EVENT: &str = include_str!("../../templates/event.json");

/// The SDK files of `lang`, relative to a plugin folder.
pub fn sdk_files(lang: Lang) -> &'static [File] {
    match lang {
        Lang::Rust => RUST_SDK,
        Lang::Js => JS_SDK,
        Lang::Python => PYTHON_SDK,
    }
}

/// Writes the SDK of `lang` into `dir`, touching only files whose contents
/// differ (so cargo does not rebuild an unchanged SDK). Returns how many files
/// changed.
pub fn vendor_sdk(dir: &Path, lang: Lang) -> anyhow::Result<usize> {
    let mut changed = 0;
    for (rel, contents) in sdk_files(lang) {
        let path = dir.join(rel);
        if std::fs::read(&path).is_ok_and(|old| old == contents.as_bytes()) {
            continue;
        }
        write(&path, contents)?;
        changed += 1;
    }
    Ok(changed)
}

/// Checks a plugin name: lowercase letters, digits and dashes, starting with
/// a letter (it becomes a folder, a package and a file name).
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a usable plugin name: use lowercase letters, digits and dashes, starting with a letter (at most 64), e.g. \"partner-claims\""
        ))
    }
}

/// Creates the plugin folder `parent/name`. Refuses a folder that exists and
/// is not empty.
pub fn new_plugin(parent: &Path, name: &str, lang: Lang) -> anyhow::Result<PathBuf> {
    check_name(name).map_err(anyhow::Error::msg)?;
    let dir = parent.join(name);
    if dir
        .read_dir()
        .is_ok_and(|mut entries| entries.next().is_some())
    {
        anyhow::bail!(
            "{} already exists and is not empty; choose another name or remove it",
            dir.display()
        );
    }
    let template = match lang {
        Lang::Rust => RUST_TEMPLATE,
        Lang::Js => JS_TEMPLATE,
        Lang::Python => PYTHON_TEMPLATE,
    };
    for (rel, contents) in template {
        write(&dir.join(rel), &contents.replace("{{name}}", name))?;
    }
    write(&dir.join("event.json"), EVENT)?;
    write(&dir.join("README.md"), &readme(name, lang))?;
    vendor_sdk(&dir, lang)?;
    Ok(dir)
}

fn write(path: &Path, contents: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", parent.display()))?;
    }
    std::fs::write(path, contents)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}

/// The commands to test a plugin natively.
pub fn unit_test_command(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "cargo test",
        Lang::Js => "npm install && npm test",
        Lang::Python => "python3 -m unittest",
    }
}

fn readme(name: &str, lang: Lang) -> String {
    let (source, sdk) = match lang {
        Lang::Rust => ("src/lib.rs", "tessera-plugin-sdk/"),
        Lang::Js => ("plugin.js", "tessera/"),
        Lang::Python => ("plugin.py", "tessera_plugin/"),
    };
    format!(
        "# {name}\n\n\
         A Tessera plugin in {lang}. The code is in `{source}`; `{sdk}` is the SDK \
         matching your Tessera, written by `tessera plugin new` and refreshed by every \
         `tessera plugin build` (do not edit it).\n\n\
         ```sh\n\
         {unit}                # unit tests, natively\n\
         tessera plugin build .                                   # -> {name}.wasm\n\
         tessera plugin test {name}.wasm --stage credentials-exchange --event event.json\n\
         tessera plugin inspect {name}.wasm\n\
         ```\n\n\
         To load it, copy `{name}.wasm` next to your `tessera.toml` and add:\n\n\
         ```toml\n\
         [[plugins]]\n\
         name = \"{name}\"\n\
         path = \"plugins/{name}.wasm\"\n\
         config = {{ namespace = \"https://claims.example.com/\" }}\n\
         ```\n",
        unit = unit_test_command(lang),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("partner-claims").is_ok());
        assert!(check_name("a1").is_ok());
        for bad in ["", "Partner", "1abc", "a_b", "a-", "a b", "../x"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn new_writes_the_template_and_the_sdk_and_refuses_to_overwrite() {
        let parent = tempfile::tempdir().expect("temp dir");
        for lang in [Lang::Rust, Lang::Js, Lang::Python] {
            let name = format!("p-{lang}");
            let dir = new_plugin(parent.path(), &name, lang).expect("created");
            assert_eq!(Lang::detect(&dir), Some(lang));
            for (rel, _) in sdk_files(lang) {
                assert!(dir.join(rel).is_file(), "{lang}: {rel}");
            }
            let readme = std::fs::read_to_string(dir.join("README.md")).expect("readme");
            assert!(readme.contains(&format!("{name}.wasm")));
            assert_eq!(vendor_sdk(&dir, lang).expect("vendored"), 0, "unchanged");
            let err = new_plugin(parent.path(), &name, lang).expect_err("exists");
            assert!(err.to_string().contains("already exists"), "{err}");
        }
        let rust = parent.path().join("p-rust");
        let manifest = std::fs::read_to_string(rust.join("Cargo.toml")).expect("manifest");
        assert!(manifest.contains("name = \"p-rust\""), "{manifest}");
        assert!(!manifest.contains("{{name}}"));
    }

    #[test]
    fn a_changed_sdk_file_is_restored() {
        let parent = tempfile::tempdir().expect("temp dir");
        let dir = new_plugin(parent.path(), "js-plugin", Lang::Js).expect("created");
        std::fs::write(dir.join("tessera/index.js"), "// edited").expect("write");
        assert_eq!(vendor_sdk(&dir, Lang::Js).expect("vendored"), 1);
    }
}
