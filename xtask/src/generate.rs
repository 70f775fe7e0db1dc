//! `cargo xtask gen [--check]`: files generated from the newest WIT package
//! (`wit/0.2.0/plugin.wit`), so they cannot drift from it.
//!
//! - `plugin-sdk/event.schema.json`: a JSON Schema (draft 2020-12) of the
//!   event as `event.to-json` returns it, built from the records the `event`
//!   resource's getters return. Tests validate what a real plugin receives
//!   against it (`tests/integration/abi.rs`).
//! - `plugin-sdk/js/src/event.d.ts`: the same event as TypeScript types
//!   (`HostEvent`, `HostClient`, …), from which the JavaScript SDK's
//!   `index.d.ts` derives the `event` a plugin sees; `tsc` checks them in CI
//!   (`plugin-sdk/js/tsconfig.json`).
//! - `plugin-sdk/python/tessera_plugin/_host.py`: the same event as Python
//!   `TypedDict`s (`HostEvent`, `HostClient`, …), which the Python SDK's
//!   `_component.py` reads the host's JSON through; `mypy` checks it in CI
//!   (`plugin-sdk/python/pyproject.toml`).
//! - `plugin-sdk/python/tessera_plugin/_views.py`: the Python SDK's view
//!   classes of the event's parts (`Client`, `ApiInfo`, …) and the functions
//!   that make them from that JSON, so a new field reaches Python plugins
//!   without an edit to the SDK.
//!
//! The mapping from WIT to the JSON the host writes: a record is an object
//! with every field required, named in snake_case; `option<T>` is `T` or
//! `null`; `list<tuple<string, value>>` (metadata and claims, whose names are
//! unique) is an object; other lists are arrays, tuples fixed-length arrays;
//! an enum is its case name in snake_case; `value` is any JSON value.
//!
//! `--check` regenerates in memory and fails when a file differs, naming it:
//! CI runs it, so a WIT change without `cargo xtask gen` does not land.

use std::path::Path;

use serde_json::{Map, Value, json};
use wit_parser::{Docs, FunctionKind, Resolve, Type, TypeDefKind, TypeId};

/// The WIT package the generated files describe.
const WIT: &str = "wit/0.2.0/plugin.wit";
/// The event schema.
const SCHEMA: &str = "plugin-sdk/event.schema.json";
/// The event's TypeScript types.
const TYPESCRIPT: &str = "plugin-sdk/js/src/event.d.ts";
/// The event's Python types.
const PYTHON: &str = "plugin-sdk/python/tessera_plugin/_host.py";
/// The Python SDK's views of the event's parts, and their readers.
const PYTHON_VIEWS: &str = "plugin-sdk/python/tessera_plugin/_views.py";
/// Python view classes named otherwise than their WIT record (`Api` is the
/// SDK's `api` object).
const PYTHON_VIEW_NAMES: &[(&str, &str)] = &[("api", "ApiInfo")];

/// Writes every generated file, or with `check` compares them.
pub fn run(root: &Path, check: bool) -> Result<(), String> {
    let event = Event::read(&root.join(WIT))?;
    let files = [
        (SCHEMA, event_schema(&event)?),
        (TYPESCRIPT, typescript(&event)),
        (PYTHON, python(&event)),
        (PYTHON_VIEWS, python_views(&event)?),
    ];
    let mut stale = Vec::new();
    for (path, contents) in files {
        let file = root.join(path);
        let current = std::fs::read_to_string(&file).unwrap_or_default();
        if current == contents {
            continue;
        }
        if check {
            stale.push(path);
        } else {
            std::fs::write(&file, contents).map_err(|e| format!("{}: {e}", file.display()))?;
            println!("wrote {path}");
        }
    }
    if stale.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} out of date with {WIT}; run `cargo xtask gen` and commit the result",
            stale.join(", ")
        ))
    }
}

/// The `event` resource of a WIT package: its getters (name, result type,
/// docs), in WIT order, with the resolved package.
struct Event {
    resolve: Resolve,
    package: String,
    getters: Vec<(String, Type, Docs)>,
}

impl Event {
    fn read(wit: &Path) -> Result<Event, String> {
        let mut resolve = Resolve::new();
        let package = resolve
            .push_file(wit)
            .map_err(|e| format!("{}: {e:#}", wit.display()))?;
        let name = resolve.packages[package].name.to_string();
        let interface = resolve.packages[package]
            .interfaces
            .get("event")
            .copied()
            .ok_or_else(|| format!("{}: no interface `event`", wit.display()))?;
        let interface = &resolve.interfaces[interface];
        let resource = interface
            .types
            .get("event")
            .copied()
            .ok_or_else(|| format!("{}: no resource `event`", wit.display()))?;
        let mut getters = Vec::new();
        for function in interface.functions.values() {
            let FunctionKind::Method(owner) = function.kind else {
                continue;
            };
            let name = function.item_name();
            if owner != resource || name == "to-json" {
                continue;
            }
            if let Some(result) = function.result {
                getters.push((name.to_owned(), result, function.docs.clone()));
            }
        }
        Ok(Event {
            resolve,
            package: name,
            getters,
        })
    }
}

/// The JSON Schema of `event.to-json`, as pretty JSON with a final newline.
fn event_schema(event: &Event) -> Result<String, String> {
    let package_name = &event.package;
    let mut builder = Schema {
        resolve: &event.resolve,
        defs: Map::new(),
    };
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (name, result, docs) in &event.getters {
        let mut schema = builder.ty(result);
        describe(&mut schema, docs);
        let key = snake(name);
        required.push(Value::String(key.clone()));
        properties.insert(key, schema);
    }
    let mut root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("{package_name}/event.schema.json"),
        "title": format!("The event of {package_name}, as `event.to-json` returns it"),
        "$comment": format!("Generated by `cargo xtask gen` from {WIT}; do not edit."),
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    });
    root["$defs"] = Value::Object(builder.defs);
    let mut text = serde_json::to_string_pretty(&root).map_err(|e| e.to_string())?;
    text.push('\n');
    Ok(text)
}

/// The event as TypeScript declarations: one interface per record (named
/// `Host` and the record's name), `AppType` for the enum, `JsonValue` for
/// `value` and `Metadata` for `metadata`, and `HostEvent` for the whole.
fn typescript(event: &Event) -> String {
    let (declarations, fields) = Declarations::of(event, &TypeScript);
    let mut text = format!(
        "// Generated by `cargo xtask gen` from {WIT}; do not edit.\n\
         //\n\
         // The event of {}, as `event.toJson()` returns it\n\
         // (plugin-sdk/event.schema.json). index.d.ts builds the `event` a\n\
         // plugin sees on these types.\n\n\
         /** Any JSON value: metadata and claim values (WIT `value`). */\n\
         export type JsonValue = null | boolean | number | string | JsonValue[] | {{ [key: string]: JsonValue }};\n",
        event.package
    );
    text.push_str(&declarations);
    text.push_str(&format!(
        "\n/** The event of one stage call, as `event.toJson()` returns it. */\nexport interface HostEvent {{\n{fields}}}\n"
    ));
    text
}

/// The event as Python `TypedDict`s: one per record (named `Host` and the
/// record's name), `AppType` for the enum (a `Literal`), `JsonValue` for
/// `value`, `Metadata` for `metadata` and `HostEvent` for the whole.
fn python(event: &Event) -> String {
    let (declarations, fields) = Declarations::of(event, &Python);
    let mut text = format!(
        "# Generated by `cargo xtask gen` from {WIT}; do not edit.\n\
         \"\"\"The event of {}, as ``event.to_json()`` returns it\n\
         (plugin-sdk/event.schema.json), as typed dictionaries. ``_component.py``\n\
         reads the host's JSON through them; ``mypy`` checks that it reads what\n\
         is there.\n\"\"\"\n\n\
         from __future__ import annotations\n\n\
         from typing import Any, Literal, Optional, TypedDict\n\n\
         #: Any JSON value: metadata and claim values (WIT ``value``).\n\
         JsonValue = Any\n",
        event.package
    );
    text.push_str(&declarations);
    text.push_str(&format!(
        "\n\nclass HostEvent(TypedDict):\n    \"\"\"The event of one stage call, as ``event.to_json()`` returns it.\"\"\"\n\n{fields}"
    ));
    text
}

/// The Python SDK's view of each record an event getter returns: a frozen
/// dataclass (the record's name in PascalCase, or [`PYTHON_VIEW_NAMES`]),
/// and a function `NAME_view` that makes one from the host's JSON, typed by
/// `_host.py`. A list of string pairs (the request's parameters) is a
/// `dict` keeping each name's first value; every other field is the JSON
/// value as it is. Fields are keyword-only; every field but an enum's has
/// its type's empty value as default, so tests build a view from the
/// fields they need.
fn python_views(event: &Event) -> Result<String, String> {
    let resolve = &event.resolve;
    let mut classes = String::new();
    let mut readers = String::new();
    let mut done: Vec<TypeId> = Vec::new();
    let mut hosts: Vec<String> = Vec::new();
    let mut enums: Vec<String> = Vec::new();
    for (getter, result, _) in &event.getters {
        let Some(id) = record_of(resolve, result) else {
            return Err(format!(
                "{WIT}: event.{getter} returns no record (or option of one); the Python views know records only"
            ));
        };
        if done.contains(&id) {
            continue;
        }
        done.push(id);
        let def = &resolve.types[id];
        let TypeDefKind::Record(record) = &def.kind else {
            unreachable!("record_of")
        };
        let wit_name = def.name.as_deref().unwrap_or("record");
        let name = PYTHON_VIEW_NAMES
            .iter()
            .find(|(w, _)| *w == wit_name)
            .map_or_else(|| pascal(wit_name), |(_, n)| (*n).to_owned());
        let host = host_record(wit_name);
        hosts.push(host.clone());
        let doc = first_paragraph(&def.docs)
            .map(|d| docstring(&d, "    "))
            .unwrap_or_default();
        classes.push_str(&format!(
            "\n\n@dataclass(frozen=True, kw_only=True)\nclass {name}:\n{doc}"
        ));
        let mut arguments = String::new();
        for field in &record.fields {
            let field_name = snake(&field.name);
            let view = PyView::of(resolve, &field.ty).map_err(|what| {
                format!(
                    "{WIT}: {wit_name}.{}: {what}; the Python views cannot show it",
                    field.name
                )
            })?;
            if let PyView::Enum(e) = &view
                && !enums.contains(e)
            {
                enums.push(e.clone());
            }
            let mut docs = field.docs.clone();
            if matches!(view, PyView::Pairs) {
                let note = " In the view, a `dict` keeping each name's first value.";
                docs.contents =
                    Some(docs.contents.unwrap_or_default().trim_end().to_owned() + note);
            }
            classes.push_str(&py_comment(&docs, "    "));
            classes.push_str(&format!(
                "    {field_name}: {}{}\n",
                view.annotation(),
                view.default()
            ));
            let value = format!("data[\"{field_name}\"]");
            let value = match view {
                PyView::Pairs => format!("_first_values({value})"),
                _ => value,
            };
            arguments.push_str(&format!("        {field_name}={value},\n"));
        }
        let reader = snake(wit_name);
        readers.push_str(&format!(
            "\n\ndef {reader}_view(data: {host}) -> {name}:\n    \"\"\"The ``{name}`` of the host's ``{reader}``.\"\"\"\n    return {name}(\n{arguments}    )\n"
        ));
    }
    let mut imports: Vec<String> = vec!["JsonValue".into()];
    imports.extend(enums);
    imports.extend(hosts);
    Ok(format!(
        "# Generated by `cargo xtask gen` from {WIT}; do not edit.\n\
         \"\"\"The Python SDK's views of the parts of an event of\n\
         {}, and the functions that make them from the host's\n\
         JSON (``_host.py``). Fields are keyword-only; every field but an enum's\n\
         has its type's empty value as default, so a test builds a view from the\n\
         fields it needs. ``tessera_plugin`` exports the classes.\n\"\"\"\n\n\
         from __future__ import annotations\n\n\
         from dataclasses import dataclass, field\n\
         from typing import Optional\n\n\
         from ._host import (\n{}\n)\n{classes}\n\n\
         def _first_values(pairs: list[tuple[str, str]]) -> dict[str, str]:\n\
         \x20   values: dict[str, str] = {{}}\n\
         \x20   for name, value in pairs:\n\
         \x20       values.setdefault(name, value)\n\
         \x20   return values\n{readers}",
        event.package,
        imports
            .iter()
            .map(|i| format!("    {i},"))
            .collect::<Vec<_>>()
            .join("\n"),
    ))
}

/// The name `_host.py` and `event.d.ts` give WIT record `wit_name`.
fn host_record(wit_name: &str) -> String {
    format!("Host{}", pascal(wit_name))
}

/// The record `ty` is, or is an option of.
fn record_of(resolve: &Resolve, ty: &Type) -> Option<TypeId> {
    let Type::Id(id) = ty else { return None };
    match &resolve.types[*id].kind {
        TypeDefKind::Record(_) => Some(*id),
        TypeDefKind::Option(inner) => record_of(resolve, inner),
        TypeDefKind::Type(inner) => record_of(resolve, inner),
        _ => None,
    }
}

/// How a record field looks in a Python view.
enum PyView {
    /// A WIT scalar, spelled as `_host.py` spells it.
    Scalar(Type),
    /// An enum, by its `_host.py` alias.
    Enum(String),
    Optional(Box<PyView>),
    List(Box<PyView>),
    /// Metadata or claims: a JSON object.
    Metadata,
    /// A list of string pairs, shown as a `dict` of first values.
    Pairs,
}

impl PyView {
    fn of(resolve: &Resolve, ty: &Type) -> Result<PyView, String> {
        let Type::Id(id) = ty else {
            return match ty {
                Type::ErrorContext => Err("an error context".into()),
                scalar => Ok(PyView::Scalar(*scalar)),
            };
        };
        let def = &resolve.types[*id];
        Ok(match &def.kind {
            TypeDefKind::Type(inner) => PyView::of(resolve, inner)?,
            TypeDefKind::Option(inner) => PyView::Optional(Box::new(PyView::of(resolve, inner)?)),
            TypeDefKind::List(item) if metadata_value(resolve, item).is_some() => PyView::Metadata,
            TypeDefKind::List(Type::Id(item)) if matches!(&resolve.types[*item].kind, TypeDefKind::Tuple(t) if t.types == [Type::String, Type::String]) => {
                PyView::Pairs
            }
            TypeDefKind::List(item) => PyView::List(Box::new(PyView::of(resolve, item)?)),
            TypeDefKind::Enum(_) => PyView::Enum(pascal(def.name.as_deref().unwrap_or("enum"))),
            _ => {
                return Err(
                    "a type the views do not know (a record, tuple or variant field)".into(),
                );
            }
        })
    }

    fn annotation(&self) -> String {
        match self {
            PyView::Scalar(ty) => Python.scalar(ty),
            PyView::Enum(name) => name.clone(),
            PyView::Optional(inner) => Python.option(&inner.annotation()),
            PyView::List(item) => Python.list(&item.annotation()),
            PyView::Metadata => Python.map().into(),
            PyView::Pairs => "dict[str, str]".into(),
        }
    }

    /// ` = DEFAULT`, or nothing for an enum.
    fn default(&self) -> &'static str {
        match self {
            PyView::Scalar(Type::Bool) => " = False",
            PyView::Scalar(Type::String | Type::Char) => " = \"\"",
            PyView::Scalar(Type::F32 | Type::F64) => " = 0.0",
            PyView::Scalar(_) => " = 0",
            PyView::Enum(_) => "",
            PyView::Optional(_) => " = None",
            PyView::List(_) => " = field(default_factory=list)",
            PyView::Metadata | PyView::Pairs => " = field(default_factory=dict)",
        }
    }
}

/// The declarations of a language's event types (the records, enums and
/// aliases the event reaches, each once, nested ones first) and the
/// `HostEvent` fields, walked from the WIT once for every language.
struct Declarations<'r> {
    resolve: &'r Resolve,
    syntax: &'r dyn Syntax,
    declared: Vec<String>,
    out: String,
}

impl<'r> Declarations<'r> {
    /// The declarations and the rendered fields of `HostEvent`.
    fn of(event: &'r Event, syntax: &'r dyn Syntax) -> (String, String) {
        let mut declarations = Declarations {
            resolve: &event.resolve,
            syntax,
            declared: Vec::new(),
            out: String::new(),
        };
        let mut fields = String::new();
        for (name, result, docs) in &event.getters {
            let ty = declarations.ty(result);
            fields.push_str(&syntax.field(&snake(name), &ty, docs));
        }
        (declarations.out, fields)
    }

    fn ty(&mut self, ty: &Type) -> String {
        match ty {
            Type::Id(id) => self.id(*id),
            scalar => self.syntax.scalar(scalar),
        }
    }

    fn id(&mut self, id: TypeId) -> String {
        let def = &self.resolve.types[id];
        match &def.kind {
            TypeDefKind::Type(Type::Id(used)) if self.resolve.types[*used].name.is_some() => {
                self.id(*used)
            }
            TypeDefKind::Type(inner) => self.ty(inner),
            TypeDefKind::Option(inner) => {
                let inner = self.ty(inner);
                self.syntax.option(&inner)
            }
            TypeDefKind::List(item) if metadata_value(self.resolve, item).is_some() => {
                let ty = self.syntax.map();
                match def.name.as_deref().map(pascal) {
                    Some(name) => {
                        let declaration = self.syntax.alias(&name, &def.docs, ty);
                        self.declare(&name, declaration)
                    }
                    None => ty.to_owned(),
                }
            }
            TypeDefKind::List(item) => {
                let item = self.ty(item);
                self.syntax.list(&item)
            }
            TypeDefKind::Tuple(tuple) => {
                let items: Vec<String> = tuple.types.iter().map(|t| self.ty(t)).collect();
                self.syntax.tuple(&items)
            }
            TypeDefKind::Record(record) => {
                let name = host_record(def.name.as_deref().unwrap_or("record"));
                if self.declared.contains(&name) {
                    return name;
                }
                self.declared.push(name.clone());
                let mut fields = String::new();
                for field in &record.fields {
                    let ty = self.ty(&field.ty);
                    fields.push_str(&self.syntax.field(&snake(&field.name), &ty, &field.docs));
                }
                let declaration = self.syntax.record(&name, &def.docs, &fields);
                self.out.push_str(&declaration);
                name
            }
            TypeDefKind::Enum(e) => {
                let name = pascal(def.name.as_deref().unwrap_or("enum"));
                let cases: Vec<String> = e.cases.iter().map(|c| snake(&c.name)).collect();
                let ty = self.syntax.cases(&cases);
                let declaration = self.syntax.alias(&name, &def.docs, &ty);
                self.declare(&name, declaration)
            }
            TypeDefKind::Variant(_) => "JsonValue".into(),
            _ => self.syntax.unknown().into(),
        }
    }

    /// Adds `declaration` of `name` once; returns the name.
    fn declare(&mut self, name: &str, declaration: String) -> String {
        if !self.declared.iter().any(|d| d == name) {
            self.declared.push(name.to_owned());
            self.out.push_str(&declaration);
        }
        name.to_owned()
    }
}

/// How a language spells the event's types. Declarations start with the
/// blank line(s) that separate them.
trait Syntax {
    /// A WIT scalar (`bool`, `string`, the numbers).
    fn scalar(&self, ty: &Type) -> String;
    fn option(&self, inner: &str) -> String;
    fn list(&self, item: &str) -> String;
    fn tuple(&self, items: &[String]) -> String;
    /// Names to JSON values: metadata and claims.
    fn map(&self) -> &'static str;
    /// A type the JSON has no form for.
    fn unknown(&self) -> &'static str;
    /// The union of an enum's case names.
    fn cases(&self, cases: &[String]) -> String;
    /// `name` declared as another name for `ty`.
    fn alias(&self, name: &str, docs: &Docs, ty: &str) -> String;
    /// A record (or `HostEvent`) field, with its docs.
    fn field(&self, name: &str, ty: &str, docs: &Docs) -> String;
    /// A record of already rendered `fields`.
    fn record(&self, name: &str, docs: &Docs, fields: &str) -> String;
}

/// `event.d.ts`: read-only interfaces, JSDoc comments.
struct TypeScript;

impl Syntax for TypeScript {
    fn scalar(&self, ty: &Type) -> String {
        match ty {
            Type::Bool => "boolean",
            Type::String | Type::Char => "string",
            Type::ErrorContext => "unknown",
            _ => "number",
        }
        .into()
    }

    fn option(&self, inner: &str) -> String {
        format!("{inner} | null")
    }

    fn list(&self, item: &str) -> String {
        // A union or a read-only tuple is parenthesized as a list's item.
        if item.contains(" | ") || item.starts_with("readonly ") {
            format!("readonly ({item})[]")
        } else {
            format!("readonly {item}[]")
        }
    }

    fn tuple(&self, items: &[String]) -> String {
        format!("readonly [{}]", items.join(", "))
    }

    fn map(&self) -> &'static str {
        "Readonly<Record<string, JsonValue>>"
    }

    fn unknown(&self) -> &'static str {
        "unknown"
    }

    fn cases(&self, cases: &[String]) -> String {
        let quoted: Vec<String> = cases.iter().map(|c| format!("\"{c}\"")).collect();
        quoted.join(" | ")
    }

    fn alias(&self, name: &str, docs: &Docs, ty: &str) -> String {
        format!("\n{}export type {name} = {ty};\n", doc_comment(docs, ""))
    }

    fn field(&self, name: &str, ty: &str, docs: &Docs) -> String {
        format!("{}  readonly {name}: {ty};\n", doc_comment(docs, "  "))
    }

    fn record(&self, name: &str, docs: &Docs, fields: &str) -> String {
        format!(
            "\n{}export interface {name} {{\n{fields}}}\n",
            doc_comment(docs, "")
        )
    }
}

/// `_host.py`: `TypedDict`s, `#:` comments and docstrings.
struct Python;

impl Syntax for Python {
    fn scalar(&self, ty: &Type) -> String {
        match ty {
            Type::Bool => "bool",
            Type::String | Type::Char => "str",
            Type::F32 | Type::F64 => "float",
            Type::ErrorContext => "Any",
            _ => "int",
        }
        .into()
    }

    fn option(&self, inner: &str) -> String {
        format!("Optional[{inner}]")
    }

    fn list(&self, item: &str) -> String {
        format!("list[{item}]")
    }

    fn tuple(&self, items: &[String]) -> String {
        format!("tuple[{}]", items.join(", "))
    }

    fn map(&self) -> &'static str {
        "dict[str, JsonValue]"
    }

    fn unknown(&self) -> &'static str {
        "Any"
    }

    fn cases(&self, cases: &[String]) -> String {
        let quoted: Vec<String> = cases.iter().map(|c| format!("\"{c}\"")).collect();
        format!("Literal[{}]", quoted.join(", "))
    }

    fn alias(&self, name: &str, docs: &Docs, ty: &str) -> String {
        format!("\n{}{name} = {ty}\n", py_comment(docs, ""))
    }

    fn field(&self, name: &str, ty: &str, docs: &Docs) -> String {
        format!("{}    {name}: {ty}\n", py_comment(docs, "    "))
    }

    fn record(&self, name: &str, docs: &Docs, fields: &str) -> String {
        let doc = first_paragraph(docs)
            .map(|d| docstring(&d, "    "))
            .unwrap_or_default();
        format!("\n\nclass {name}(TypedDict):\n{doc}{fields}")
    }
}

/// `docs` as `#:` comments (what Sphinx reads as an attribute's doc) at
/// `indent`, or nothing.
fn py_comment(docs: &Docs, indent: &str) -> String {
    let Some(text) = docs.contents.as_deref().map(str::trim) else {
        return String::new();
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("{indent}#: {}\n", l.trim()))
        .collect()
}

/// `text` as a docstring at `indent`, wrapped at 79 columns, and a blank
/// line.
fn docstring(text: &str, indent: &str) -> String {
    let width = 79 - indent.len();
    let mut lines = vec![String::from("\"\"\"")];
    for word in text.split_whitespace() {
        let line = lines.last_mut().expect("one line at least");
        if line.len() > 3 && line.len() + 1 + word.len() > width {
            lines.push(word.to_owned());
        } else {
            if line.len() > 3 {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    let single = lines.len() == 1;
    let mut out: String = lines.iter().map(|l| format!("{indent}{l}\n")).collect();
    out.pop();
    if single && out.len() + 3 <= 79 {
        out.push_str("\"\"\"\n\n");
    } else {
        out.push_str(&format!("\n{indent}\"\"\"\n\n"));
    }
    out
}

/// The first paragraph of `docs` on one line, if there is one.
fn first_paragraph(docs: &Docs) -> Option<String> {
    let text = docs.contents.as_deref()?;
    let first = text
        .split("\n\n")
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    (!first.is_empty()).then_some(first)
}

/// The `value` variant when `item` is `tuple<string, value>`: a list of
/// those (metadata and claims, whose names are unique) is a JSON object, in
/// the schema and in TypeScript alike.
fn metadata_value(resolve: &Resolve, item: &Type) -> Option<TypeId> {
    let Type::Id(id) = item else { return None };
    let TypeDefKind::Tuple(tuple) = &resolve.types[*id].kind else {
        return None;
    };
    match tuple.types.as_slice() {
        [Type::String, Type::Id(value)]
            if matches!(resolve.types[*value].kind, TypeDefKind::Variant(_)) =>
        {
            Some(*value)
        }
        _ => None,
    }
}

/// `docs` as a JSDoc comment at `indent`, or nothing.
fn doc_comment(docs: &Docs, indent: &str) -> String {
    let Some(text) = docs
        .contents
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    else {
        return String::new();
    };
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() == 1 {
        return format!("{indent}/** {} */\n", lines[0]);
    }
    let mut out = format!("{indent}/**\n");
    for line in lines {
        if line.is_empty() {
            out.push_str(&format!("{indent} *\n"));
        } else {
            out.push_str(&format!("{indent} * {line}\n"));
        }
    }
    out.push_str(&format!("{indent} */\n"));
    out
}

fn pascal(kebab: &str) -> String {
    kebab
        .split('-')
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
                None => String::new(),
            }
        })
        .collect()
}

struct Schema<'r> {
    resolve: &'r Resolve,
    defs: Map<String, Value>,
}

impl Schema<'_> {
    fn ty(&mut self, ty: &Type) -> Value {
        match ty {
            Type::Bool => json!({ "type": "boolean" }),
            Type::String | Type::Char => json!({ "type": "string" }),
            Type::F32 | Type::F64 => json!({ "type": "number" }),
            Type::U8
            | Type::U16
            | Type::U32
            | Type::U64
            | Type::S8
            | Type::S16
            | Type::S32
            | Type::S64 => json!({ "type": "integer" }),
            Type::ErrorContext => json!({}),
            Type::Id(id) => self.id(*id),
        }
    }

    fn id(&mut self, id: TypeId) -> Value {
        let def = &self.resolve.types[id];
        match &def.kind {
            TypeDefKind::Type(inner) => match (def.name.as_deref(), inner) {
                // A type `use`d from another interface: the type itself.
                (_, Type::Id(used)) if self.resolve.types[*used].name.is_some() => self.id(*used),
                // `metadata`: an alias worth a name of its own.
                (Some(name), _) => self.named(name, &def.docs, |s| s.ty(inner)),
                (None, _) => self.ty(inner),
            },
            TypeDefKind::Option(inner) => {
                json!({ "anyOf": [self.ty(inner), { "type": "null" }] })
            }
            TypeDefKind::List(item) => match metadata_value(self.resolve, item) {
                Some(value) => json!({ "type": "object", "additionalProperties": self.id(value) }),
                None => json!({ "type": "array", "items": self.ty(item) }),
            },
            TypeDefKind::Tuple(tuple) => {
                let items: Vec<Value> = tuple.types.iter().map(|t| self.ty(t)).collect();
                json!({
                    "type": "array",
                    "prefixItems": items,
                    "minItems": tuple.types.len(),
                    "maxItems": tuple.types.len(),
                })
            }
            TypeDefKind::Record(record) => {
                let name = def.name.clone().unwrap_or_default();
                let fields = record.fields.clone();
                self.named(&name, &def.docs, |s| {
                    let mut properties = Map::new();
                    let mut required = Vec::new();
                    for field in &fields {
                        let mut schema = s.ty(&field.ty);
                        describe(&mut schema, &field.docs);
                        required.push(Value::String(snake(&field.name)));
                        properties.insert(snake(&field.name), schema);
                    }
                    json!({
                        "type": "object",
                        "properties": properties,
                        "required": required,
                        "additionalProperties": false,
                    })
                })
            }
            TypeDefKind::Enum(e) => {
                let name = def.name.clone().unwrap_or_default();
                let cases: Vec<Value> = e
                    .cases
                    .iter()
                    .map(|c| Value::String(snake(&c.name)))
                    .collect();
                self.named(
                    &name,
                    &def.docs,
                    |_| json!({ "type": "string", "enum": cases }),
                )
            }
            // `value`: any JSON the host holds (the variant is how it crosses
            // the boundary, not how it reads as JSON).
            TypeDefKind::Variant(_) => {
                let name = def.name.clone().unwrap_or_default();
                self.named(&name, &def.docs, |_| json!({}))
            }
            other => json!({ "$comment": format!("{} has no JSON form", other.as_str()) }),
        }
    }

    /// A reference to `$defs/NAME`, defined by `build` the first time.
    fn named(&mut self, name: &str, docs: &Docs, build: impl FnOnce(&mut Self) -> Value) -> Value {
        if !self.defs.contains_key(name) {
            // Reserve the name first: a type never contains itself in WIT,
            // but the entry keeps `$defs` in first-use order.
            self.defs.insert(name.to_owned(), Value::Null);
            let mut schema = build(self);
            describe(&mut schema, docs);
            self.defs.insert(name.to_owned(), schema);
        }
        json!({ "$ref": format!("#/$defs/{name}") })
    }
}

/// Sets `schema`'s description to the first paragraph of `docs`.
fn describe(schema: &mut Value, docs: &Docs) {
    let Some(text) = &docs.contents else { return };
    let first = text
        .split("\n\n")
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if first.is_empty() {
        return;
    }
    if let Value::Object(map) = schema {
        if map.contains_key("$ref") {
            // A reference's own description sits beside it.
            map.insert("description".into(), Value::String(first));
        } else {
            map.entry("description").or_insert(Value::String(first));
        }
    }
}

fn snake(kebab: &str) -> String {
    kebab.replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What item 3 of the plugin ABI issue asks: a field the WIT gains reaches
    /// every generated file, the Python SDK's views and readers included,
    /// with no hand edit.
    #[test]
    fn a_new_event_field_reaches_every_generated_file() {
        let root = crate::root();
        let wit = std::fs::read_to_string(root.join(WIT)).expect("read the WIT");
        let anchor = "    record client {\n";
        assert!(wit.contains(anchor), "the WIT's client record moved");
        let grown = wit.replacen(
            anchor,
            &format!(
                "{anchor}        /// Where the client runs.\n        home-region: option<string>,\n"
            ),
            1,
        );
        let file = std::env::temp_dir().join(format!("tessera-gen-{}.wit", std::process::id()));
        std::fs::write(&file, grown).expect("write the grown WIT");
        let event = Event::read(&file);
        let _ = std::fs::remove_file(&file);
        let event = event.expect("the grown WIT reads");

        let views = python_views(&event).expect("views");
        let client = views
            .split("class Client:")
            .nth(1)
            .and_then(|rest| rest.split("\n\n\n").next())
            .expect("a Client view");
        assert!(
            client.contains("#: Where the client runs.\n    home_region: Optional[str] = None\n"),
            "{client}"
        );
        assert!(
            views.contains("        home_region=data[\"home_region\"],\n"),
            "{views}"
        );
        assert!(python(&event).contains("    home_region: Optional[str]\n"));
        assert!(typescript(&event).contains("home_region"));
        assert!(
            event_schema(&event)
                .expect("schema")
                .contains("\"home_region\"")
        );
    }

    /// A record field the views cannot show is refused by name.
    #[test]
    fn a_field_the_python_views_cannot_show_is_named() {
        let root = crate::root();
        let wit = std::fs::read_to_string(root.join(WIT)).expect("read the WIT");
        let grown = wit.replacen(
            "    record client {\n",
            "    record client {\n        pair: tuple<u32, u32>,\n",
            1,
        );
        let file = std::env::temp_dir().join(format!("tessera-gen-bad-{}.wit", std::process::id()));
        std::fs::write(&file, grown).expect("write");
        let event = Event::read(&file);
        let _ = std::fs::remove_file(&file);
        let Err(e) = python_views(&event.expect("reads")) else {
            panic!("a tuple field was taken")
        };
        assert!(e.contains("client.pair:"), "{e}");
    }
}
