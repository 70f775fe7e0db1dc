//! What a component file says about itself, read from its custom sections
//! without compiling it: the `tessera-plugin` section that `tessera plugin
//! build` writes (language, SDK, toolchain), and the standard `producers`
//! sections of the component and the core modules inside it.
//!
//! The binary format is small enough to walk by hand: after the 8-byte
//! preamble come sections, each an id byte, a LEB128 size and the payload. A
//! custom section (id 0) starts with its name. Core modules (id 1) and nested
//! components (id 4) are walked the same way.

use std::collections::BTreeSet;

/// Name of the custom section `tessera plugin build` appends.
pub const SECTION: &str = "tessera-plugin";

const CUSTOM: u8 = 0;
const CORE_MODULE: u8 = 1;
const COMPONENT: u8 = 4;
const MAX_DEPTH: usize = 4;

/// The `tessera-plugin` custom section.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BuildInfo {
    /// `rust`, `javascript`, `python`, `c`, `go`.
    pub language: String,
    /// The SDK version the plugin was built with.
    #[serde(default)]
    pub sdk: String,
    /// The tool that made the component, with its version.
    #[serde(default)]
    pub toolchain: String,
}

/// What the custom sections say.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Metadata {
    /// From the `tessera-plugin` section, if present and well formed.
    pub build: Option<BuildInfo>,
    /// `language` entries of every `producers` section, deduplicated.
    pub languages: Vec<String>,
    /// `processed-by` entries (tool and version), deduplicated.
    pub processed_by: Vec<String>,
}

impl Metadata {
    /// Reads the custom sections of a component or module. Malformed input
    /// yields whatever was read before the damage; the compiler reports the
    /// damage itself.
    pub fn read(bytes: &[u8]) -> Metadata {
        let mut out = Metadata::default();
        let mut languages = BTreeSet::new();
        let mut tools = BTreeSet::new();
        walk(bytes, 0, &mut |name, payload| match name {
            SECTION if out.build.is_none() => {
                out.build = serde_json::from_slice(payload).ok();
            }
            "producers" => {
                let _ = read_producers(payload, &mut languages, &mut tools);
            }
            _ => {}
        });
        out.languages = languages.into_iter().collect();
        out.processed_by = tools.into_iter().collect();
        out
    }

    /// The language the build section names.
    pub fn language(&self) -> Option<&str> {
        self.build.as_ref().map(|b| b.language.as_str())
    }
}

/// Returns `component` with a `tessera-plugin` custom section appended (a
/// custom section may follow any section of a component).
pub fn append_build_info(component: &[u8], info: &BuildInfo) -> Vec<u8> {
    let mut payload = Vec::new();
    write_name(&mut payload, SECTION);
    // Serializing a struct of strings cannot fail.
    payload.extend(serde_json::to_vec(info).unwrap_or_default());
    let mut out = Vec::with_capacity(component.len() + payload.len() + 8);
    out.extend_from_slice(component);
    out.push(CUSTOM);
    write_leb(&mut out, payload.len() as u32);
    out.extend(payload);
    out
}

fn walk(bytes: &[u8], depth: usize, visit: &mut dyn FnMut(&str, &[u8])) {
    if depth > MAX_DEPTH || bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return;
    }
    let mut r = Reader { bytes, pos: 8 };
    while let Some(id) = r.byte() {
        let Some(size) = r.leb() else { return };
        let Some(payload) = r.take(size as usize) else {
            return;
        };
        match id {
            CUSTOM => {
                let mut p = Reader {
                    bytes: payload,
                    pos: 0,
                };
                if let Some(name) = p.name() {
                    visit(name, &payload[p.pos..]);
                }
            }
            CORE_MODULE | COMPONENT => walk(payload, depth + 1, visit),
            _ => {}
        }
    }
}

fn read_producers(
    payload: &[u8],
    languages: &mut BTreeSet<String>,
    tools: &mut BTreeSet<String>,
) -> Option<()> {
    let mut r = Reader {
        bytes: payload,
        pos: 0,
    };
    for _ in 0..r.leb()? {
        let field = r.name()?;
        for _ in 0..r.leb()? {
            let name = r.name()?;
            let version = r.name()?;
            match field {
                "language" => {
                    languages.insert(name.to_owned());
                }
                "processed-by" => {
                    tools.insert(format!("{name} {version}").trim().to_owned());
                }
                _ => {}
            }
        }
    }
    Some(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn leb(&mut self) -> Option<u32> {
        let mut value: u32 = 0;
        for shift in (0..35).step_by(7) {
            let b = self.byte()?;
            value |= u32::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let slice = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(slice)
    }

    fn name(&mut self) -> Option<&'a str> {
        let n = self.leb()? as usize;
        std::str::from_utf8(self.take(n)?).ok()
    }
}

fn write_leb(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn write_name(out: &mut Vec<u8>, name: &str) {
    write_leb(out, name.len() as u32);
    out.extend_from_slice(name.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    fn custom(name: &str, payload: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        write_name(&mut body, name);
        body.extend_from_slice(payload);
        let mut out = vec![CUSTOM];
        write_leb(&mut out, body.len() as u32);
        out.extend(body);
        out
    }

    fn producers(entries: &[(&str, &str, &str)]) -> Vec<u8> {
        let mut p = Vec::new();
        write_leb(&mut p, entries.len() as u32);
        for (field, name, version) in entries {
            write_name(&mut p, field);
            write_leb(&mut p, 1);
            write_name(&mut p, name);
            write_name(&mut p, version);
        }
        p
    }

    #[test]
    fn build_info_round_trips_through_an_appended_section() {
        let info = BuildInfo {
            language: "javascript".into(),
            sdk: "0.1.0".into(),
            toolchain: "componentize-qjs 0.4.5".into(),
        };
        let bytes = append_build_info(EMPTY_COMPONENT, &info);
        let meta = Metadata::read(&bytes);
        assert_eq!(meta.build, Some(info));
        assert_eq!(meta.language(), Some("javascript"));
    }

    #[test]
    fn producers_of_nested_modules_are_collected() {
        let mut module = b"\0asm\x01\0\0\0".to_vec();
        module.extend(custom(
            "producers",
            &producers(&[
                ("language", "Rust", ""),
                ("processed-by", "rustc", "1.95.0"),
            ]),
        ));
        let mut component = EMPTY_COMPONENT.to_vec();
        component.push(CORE_MODULE);
        write_leb(&mut component, module.len() as u32);
        component.extend(&module);
        component.extend(custom(
            "producers",
            &producers(&[("processed-by", "wit-component", "0.239.0")]),
        ));

        let meta = Metadata::read(&component);
        assert_eq!(meta.languages, ["Rust"]);
        assert_eq!(meta.processed_by, ["rustc 1.95.0", "wit-component 0.239.0"]);
        assert_eq!(meta.build, None);
    }

    #[test]
    fn damaged_input_reads_what_came_before_the_damage() {
        let mut bytes = append_build_info(
            EMPTY_COMPONENT,
            &BuildInfo {
                language: "c".into(),
                ..BuildInfo::default()
            },
        );
        bytes.extend([CUSTOM, 0xff, 0xff, 0xff, 0xff, 0x7f]);
        assert_eq!(Metadata::read(&bytes).language(), Some("c"));
        assert_eq!(Metadata::read(b"\0asm"), Metadata::default());
        assert_eq!(Metadata::read(b"garbage!"), Metadata::default());
    }
}
