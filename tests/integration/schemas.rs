//! The JSON Schemas in `schemas/` against the code that defines each contract: the audit-event
//! decoder (`event`), the alert struct (`alert`, the detectors' baseline facts) and the
//! detector-file loader (`definition`, `inline_test`, `schedule`).
//!
//! [`Validator`] below is the `jsonschema` crate set up for these contracts (formats asserted,
//! integer literals only), and a strict meta-schema rejects any keyword that is not draft
//! 2020-12, so no assertion is silently skipped. Field lists are compared with the code both ways:
//! against a hard-coded list for the decoder, against the serialized [`Alert`], and against the
//! field lists serde reports in the loader's own "unknown field" errors. Value rules are
//! compared by feeding the same documents to the schema and to the decoder or loader.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use auditwatch::detection::alert::{alert_id, Alert, Evidence};
use auditwatch::detection::definition::{self, Category, DetectorKind, DetectorType, Severity};
use auditwatch::detection::engine::{Engine, EngineOptions};
use auditwatch::input::event::{decode, Outcome, DEFAULT_MAX_EVENT_BYTES};
use auditwatch::synthetic::gen::{generate, GenOptions};

// ---------------------------------------------------------------------------------------------
// Helpers: files, the JSON Schema validator, walking schemas.
// ---------------------------------------------------------------------------------------------

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const SCHEMA_FILES: [&str; 3] = ["audit-event.schema.json", "alert.schema.json", "detector.schema.json"];

fn schema(file: &str) -> Value {
    let path = manifest_dir().join("schemas").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap_or_else(|| panic!("not an object: {v}")).keys().cloned().collect()
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().expect("a string").to_string())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// `schema["$defs"][name]`, panicking with the name when it is missing.
fn def<'a>(schema: &'a Value, name: &str) -> &'a Value {
    schema["$defs"].get(name).unwrap_or_else(|| panic!("$defs/{name} is missing"))
}

/// The `then` of the `allOf` entry whose `if` is `{properties: {field: {const: value}}}`.
fn branch<'a>(schema: &'a Value, field: &str, value: &str) -> &'a Value {
    let found: Vec<&Value> = schema["allOf"]
        .as_array()
        .expect("allOf")
        .iter()
        .filter(|entry| entry["if"]["properties"][field]["const"] == value && entry["if"]["required"] == json!([field]))
        .collect();
    assert_eq!(found.len(), 1, "expected one allOf branch for {field} = {value}");
    &found[0]["then"]
}

/// Resolve a local `$ref` (`#/$defs/name`).
fn resolve<'a>(root: &'a Value, reference: &str) -> &'a Value {
    let pointer = reference.strip_prefix('#').unwrap_or_else(|| panic!("only local $refs are used: {reference}"));
    root.pointer(pointer).unwrap_or_else(|| panic!("$ref {reference} does not resolve"))
}

/// Draft 2020-12 validation with the `jsonschema` crate, stricter than the spec in two ways, both
/// what the code the schemas describe does: `format` is asserted (ipv4 and ipv6 with std's
/// parsers, which the decoder uses too; an unknown format is an error), and `integer` means an
/// integer literal (`2.0` and `1e3` are not one), which is what serde's integer types accept.
struct Validator<'a> {
    root: &'a Value,
    whole: jsonschema::Validator,
}

impl<'a> Validator<'a> {
    fn new(root: &'a Value) -> Self {
        Validator { root, whole: compile(root) }
    }

    fn errors(&self, value: &Value) -> Vec<String> {
        self.whole.iter_errors(value).map(|e| format!("{}: {e}", e.instance_path())).collect()
    }

    /// Whether `value` is valid against the subschema at `pointer` (`/$defs/name`), its `$ref`s
    /// resolved in the root.
    fn valid_at(&self, pointer: &str, value: &Value) -> bool {
        self.root.pointer(pointer).unwrap_or_else(|| panic!("{pointer} does not resolve"));
        let mut at = Map::new();
        for key in ["$schema", "$id", "$defs"] {
            if let Some(v) = self.root.get(key) {
                at.insert(key.to_string(), v.clone());
            }
        }
        at.insert("$ref".to_string(), json!(format!("#{pointer}")));
        compile(&Value::Object(at)).is_valid(value)
    }
}

fn compile(schema: &Value) -> jsonschema::Validator {
    build(schema).unwrap_or_else(|e| panic!("not a valid schema: {e}"))
}

fn build(schema: &Value) -> Result<jsonschema::Validator, jsonschema::ValidationError<'static>> {
    jsonschema::options()
        .should_validate_formats(true)
        .should_ignore_unknown_formats(false)
        .with_keyword("type", |_, types, _| Ok(Box::new(LiteralIntegerType::new(types)?)))
        .build(schema)
}

/// The `type` keyword, with `integer` matching integer literals only: the crate's own `type`,
/// except that a number serde_json holds as a float matches only when `number` is listed.
struct LiteralIntegerType {
    standard: jsonschema::Validator,
    number_listed: bool,
}

impl LiteralIntegerType {
    fn new(types: &Value) -> Result<Self, jsonschema::ValidationError<'static>> {
        let standard = jsonschema::validator_for(&json!({ "type": types }))?;
        let number_listed = match types {
            Value::Array(ts) => ts.iter().any(|t| t == "number"),
            t => t == "number",
        };
        Ok(LiteralIntegerType { standard, number_listed })
    }
}

impl<'i> jsonschema::Keyword<'i> for LiteralIntegerType {
    fn validate(&self, instance: &'i Value) -> Result<(), jsonschema::ValidationError<'i>> {
        self.standard.validate(instance)?;
        if self.is_valid(instance) {
            Ok(())
        } else {
            Err(jsonschema::ValidationError::custom(format!("{instance} is not an integer literal")))
        }
    }

    fn is_valid(&self, instance: &'i Value) -> bool {
        self.standard.is_valid(instance) && (self.number_listed || !instance.as_number().is_some_and(|n| n.is_f64()))
    }
}

/// The draft 2020-12 meta-schema with `unevaluatedProperties: false` at every schema level
/// (through `$dynamicAnchor`), so a misspelt or made-up keyword is an error, not an annotation
/// that silently checks nothing.
fn strict_meta_schema() -> jsonschema::Validator {
    jsonschema::validator_for(&json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://auditwatch.dev/schemas/test/strict-meta",
        "$dynamicAnchor": "meta",
        "$ref": "https://json-schema.org/draft/2020-12/schema",
        "unevaluatedProperties": false,
    }))
    .expect("the strict meta-schema compiles")
}

/// Every `$ref` anywhere in a schema.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, sub) in o {
                match (k.as_str(), sub) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(sub, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| refs(i, out)),
        _ => {}
    }
}

/// Properties without a description, walking the subschemas that describe document parts
/// (`if`/`then` only restate constraints and are skipped).
fn undescribed(v: &Value, at: &str, out: &mut Vec<String>) {
    let Some(o) = v.as_object() else { return };
    if let Some(props) = o.get("properties").and_then(Value::as_object) {
        for (name, sub) in props {
            if sub["description"].as_str().is_none_or(|d| d.trim().is_empty()) {
                out.push(format!("{at}/properties/{name}"));
            }
            undescribed(sub, &format!("{at}/properties/{name}"), out);
        }
    }
    if let Some(defs) = o.get("$defs").and_then(Value::as_object) {
        for (name, sub) in defs {
            undescribed(sub, &format!("{at}/$defs/{name}"), out);
        }
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(sub) = o.get(key) {
            undescribed(sub, &format!("{at}/{key}"), out);
        }
    }
    for key in ["anyOf", "oneOf"] {
        for (i, sub) in o.get(key).and_then(Value::as_array).into_iter().flatten().enumerate() {
            undescribed(sub, &format!("{at}/{key}/{i}"), out);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// All three schemas.
// ---------------------------------------------------------------------------------------------

#[test]
fn schemas_are_described_draft_2020_12_documents() {
    let strict = strict_meta_schema();
    for file in SCHEMA_FILES {
        let s = schema(file);
        assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema", "{file}");
        assert_eq!(s["$id"], format!("https://auditwatch.dev/schemas/{file}"), "{file}");
        assert!(s["title"].as_str().is_some_and(|t| !t.is_empty()), "{file}: title");
        assert!(s["description"].as_str().is_some_and(|t| !t.is_empty()), "{file}: description");
        assert!(s["properties"].as_object().is_some_and(|p| !p.is_empty()), "{file}: properties");
        let mut missing = Vec::new();
        undescribed(&s, "#", &mut missing);
        assert!(missing.is_empty(), "{file}: properties without a description: {missing:#?}");
        let mut all = Vec::new();
        refs(&s, &mut all);
        for r in all {
            resolve(&s, &r);
        }
        // Every keyword is a draft 2020-12 keyword (a misspelt one would check nothing), and
        // `{}` is not an event, an alert or a detector.
        let unknown: Vec<String> = strict.iter_errors(&s).map(|e| format!("{}: {e}", e.instance_path())).collect();
        assert!(unknown.is_empty(), "{file}: {unknown:#?}");
        assert!(!Validator::new(&s).errors(&json!({})).is_empty(), "{file} accepts an empty object");
    }
}

#[test]
fn the_test_validator_works() {
    // `pattern` with ECMA-262 semantics, for the patterns the schemas use.
    for (pattern, yes, no) in [
        (
            "^[0-9a-f]{32}$",
            vec!["0123456789abcdef0123456789abcdef"],
            vec!["0123456789ABCDEF0123456789abcdef", "0123", "0123456789abcdef0123456789abcdef0"],
        ),
        ("^([0-9]+(ms|s|m|h|d|w))+$", vec!["10m", "1h30m", "500ms", "2w"], vec!["", "10", "10y", "m", "1h30", " 10m"]),
        ("\\S", vec!["x", "  x "], vec!["", " \n\t"]),
        ("^[^*]*\\*?$", vec!["auth.*", "*", "auth.login"], vec!["a*b", "**"]),
        ("^(AS|as)?\\+?[0-9]+$", vec!["AS64500", "as1", "64500", "+5"], vec!["AS", "As64500", "AS-1", "64500 "]),
        ("^a.c$", vec!["abc", "a-c"], vec!["a\nc", "ac"]),
        ("^x{2,3}$", vec!["xx", "xxx"], vec!["x", "xxxx"]),
    ] {
        let s = json!({"type": "string", "pattern": pattern});
        let v = Validator::new(&s);
        for text in yes {
            assert!(v.errors(&json!(text)).is_empty(), "{pattern} should match {text:?}");
        }
        for text in no {
            assert!(!v.errors(&json!(text)).is_empty(), "{pattern} should not match {text:?}");
        }
    }
    let s = json!({
        "type": "object", "required": ["a"], "additionalProperties": false,
        "properties": {"a": {"type": "integer", "minimum": 1, "exclusiveMaximum": 3}, "b": {"oneOf": [{"type": "string"}, {"const": 1}]}},
    });
    let v = Validator::new(&s);
    assert!(v.errors(&json!({"a": 2})).is_empty());
    assert!(v.errors(&json!({"a": 2, "b": "x"})).is_empty());
    for bad in [
        json!({}),
        json!({"a": 3}),
        json!({"a": 0}),
        json!({"a": 2.0}),
        json!({"a": 2, "c": 1}),
        json!({"a": 2, "b": 2}),
        json!([1]),
    ] {
        assert!(!v.errors(&bad).is_empty(), "{bad} should fail");
    }
    // Integer literals only where only `integer` is allowed; a float is still a `number`.
    let s = json!({"properties": {"i": {"type": ["integer", "null"]}, "n": {"type": ["number", "integer"]}}});
    let v = Validator::new(&s);
    assert!(v.errors(&json!({"i": 2, "n": 2.0})).is_empty());
    for bad in [json!({"i": 2.0}), json!({"i": 1e3}), json!({"n": "2"})] {
        assert!(!v.errors(&bad).is_empty(), "{bad} should fail");
    }
    // Formats are asserted, and one the validator does not know is an error.
    let s = json!({"properties": {"ip": {"format": "ipv4"}, "at": {"format": "date-time"}}});
    let v = Validator::new(&s);
    assert!(v.errors(&json!({"ip": "203.0.113.7", "at": "2026-01-19T03:12:45.123Z"})).is_empty());
    for bad in [json!({"ip": "999.1.1.1"}), json!({"ip": "01.2.3.4"}), json!({"at": "2026-02-30T00:00:00Z"})] {
        assert!(!v.errors(&bad).is_empty(), "{bad} should fail");
    }
    assert!(build(&json!({"format": "no-such-format"})).is_err());
    // The subschema check resolves `$ref`s in the root.
    let s = json!({"$defs": {"n": {"$ref": "#/$defs/m"}, "m": {"type": "integer"}}, "type": "string"});
    let v = Validator::new(&s);
    assert!(v.valid_at("/$defs/n", &json!(1)) && !v.valid_at("/$defs/n", &json!("1")));
    // The strict meta-schema catches a misspelt keyword at any depth, and only that.
    let strict = strict_meta_schema();
    assert!(strict.is_valid(&s));
    assert!(!strict.is_valid(&json!({"properties": {"a": {"type": "integer", "minimun": 1}}})));
    assert!(!strict.is_valid(&json!({"$defs": {"x": {"items": {"patern": "^a$"}}}})));
}

// ---------------------------------------------------------------------------------------------
// The audit event.
// ---------------------------------------------------------------------------------------------

/// Every field `event::decode` reads (src/event.rs, `EventVisitor` and the nested visitors).
const EVENT_FIELDS: &[&str] = &[
    "id",
    "time",
    "account",
    "action",
    "outcome",
    "credential",
    "source",
    "target",
    "session",
    "invoked_by",
    "mfa",
    "bytes",
    "records",
    "reason",
    "tenant",
    "attributes",
];
const REQUIRED_EVENT_FIELDS: &[&str] = &["time", "account", "action", "outcome"];
const NESTED_EVENT_FIELDS: &[(&str, &[&str])] = &[
    ("credential", &["id", "type", "owner"]),
    ("source", &["ip", "country", "asn", "as_org", "provider", "user_agent"]),
    ("target", &["system", "resource"]),
    ("session", &["name", "instance"]),
];

fn decodes(json: &str) -> bool {
    decode(json.as_bytes(), DEFAULT_MAX_EVENT_BYTES).is_ok()
}

#[test]
fn audit_event_schema_names_exactly_the_fields_the_decoder_knows() {
    let s = schema("audit-event.schema.json");
    assert_eq!(keys(&s["properties"]), set(EVENT_FIELDS), "top-level properties");
    assert_eq!(strings(&s["required"]), set(REQUIRED_EVENT_FIELDS), "required");
    assert_eq!(s["additionalProperties"], true, "unknown top-level fields are ignored, not rejected");
    for (object, fields) in NESTED_EVENT_FIELDS {
        let nested = &s["properties"][object];
        assert_eq!(keys(&nested["properties"]), set(fields), "{object} properties");
        assert_eq!(nested["additionalProperties"], true, "{object}: unknown keys are ignored");
        assert!(
            nested["description"].as_str().unwrap().contains("Unknown keys inside are ignored"),
            "{object} says so"
        );
    }
    assert_eq!(strings(&s["properties"]["credential"]["required"]), set(&["id"]));
    assert!(s["description"].as_str().unwrap().contains("1 MiB"), "the size limit is documented");
}

#[test]
fn every_documented_event_field_is_read_by_the_decoder() {
    // An array is the wrong type for every field: a field the decoder reads is rejected and
    // named, one it does not know is ignored.
    let s = schema("audit-event.schema.json");
    let base = || json!({"time": 0, "account": "a", "action": "x", "outcome": "success"});
    for name in keys(&s["properties"]) {
        let mut e = base();
        e[&name] = json!([1]);
        let err = decode(e.to_string().as_bytes(), DEFAULT_MAX_EVENT_BYTES).expect_err(&name);
        assert_eq!(err.field.as_deref(), Some(name.as_str()), "{name}: {err}");
    }
    // Each object with its required key, when it has one.
    let minimal = |object: &str| if object == "session" { json!({"name": "s"}) } else { json!({"id": "k"}) };
    for (object, _) in NESTED_EVENT_FIELDS {
        for name in keys(&s["properties"][object]["properties"]) {
            let mut e = base();
            e[object] = minimal(object);
            e[object][&name] = json!([1]);
            let err = decode(e.to_string().as_bytes(), DEFAULT_MAX_EVENT_BYTES).expect_err(&name);
            assert_eq!(err.field, Some(format!("{object}.{name}")), "{err}");
        }
        let mut e = base();
        e[object] = minimal(object);
        e[object]["not_a_field"] = json!([1]);
        assert!(decodes(&e.to_string()), "unknown keys inside {object} are ignored");
    }
    let mut e = base();
    e["not_a_field"] = json!([1]);
    assert!(decodes(&e.to_string()), "unknown top-level fields are ignored");
    assert!(Validator::new(&s).errors(&e).is_empty());
}

#[test]
fn audit_event_schema_accepts_what_the_decoder_accepts() {
    let s = schema("audit-event.schema.json");
    let v = Validator::new(&s);
    let ev = |extra: &str| {
        format!(r#"{{"time":"2026-01-19T03:12:45.123Z","account":"a","action":"x","outcome":"success"{extra}}}"#)
    };
    let with_time = |t: &str| format!(r#"{{"time":{t},"account":"a","action":"x","outcome":"success"}}"#);
    let valid = vec![
        ev(""),
        r#"{"id":"e1","time":"2026-01-19T03:12:45.123Z","account":"svc-crm","action":"contacts.export","outcome":"success",
        "credential":{"id":"AKIA1","type":"api_key","owner":"svc-crm"},"source":{"ip":"203.0.113.7","country":"DE","asn":"AS64500","user_agent":"crm/1.0"},
        "target":{"system":"crm","resource":"contacts"},"bytes":1200,"records":3,"tenant":"acme","attributes":{"k":[1,2]},"extra":true}"#
            .to_string(),
        with_time("0"),
        with_time("1768792365123"),
        with_time("253402300799999"),
        with_time(r#""2026-01-19 03:12:45.5+02:00""#),
        with_time(r#""2026-01-19t03:12:45z""#),
        with_time(r#""2026-01-19T03:12:45.123456789-11:30""#),
        with_time(r#""2016-12-31T23:59:60Z""#),
        format!(r#"{{"time":0,"account":"{}","action":"x","outcome":"failure"}}"#, "a".repeat(256)),
        format!(r#"{{"time":0,"account":"{}","action":"x","outcome":"denied"}}"#, "é".repeat(256)),
        ev(r#","id":"""#),
        ev(r#","credential":null"#),
        ev(r#","credential":{"id":"k","type":null,"owner":null,"extra":[1]}"#),
        ev(r#","source":null"#),
        ev(r#","source":{"ip":"2001:db8::1","asn":"as64500","country":null,"user_agent":"x"}"#),
        ev(r#","source":{"ip":null,"asn":"64500"}"#),
        ev(r#","source":{"asn":"+64500"}"#),
        ev(r#","source":{"asn":4294967295}"#),
        ev(r#","target":{"system":"crm","resource":null,"other":1}"#),
        ev(r#","bytes":0,"records":18446744073709551615"#),
        ev(r#","bytes":null,"records":null,"reason":null,"tenant":null,"attributes":null"#),
        ev(r#","tenant":"","attributes":{}"#),
    ];
    let invalid = vec![
        r#"{"account":"a","action":"x","outcome":"success"}"#.to_string(),
        r#"{"time":0,"action":"x","outcome":"success"}"#.to_string(),
        r#"{"time":0,"account":"a","outcome":"success"}"#.to_string(),
        r#"{"time":0,"account":"a","action":"x"}"#.to_string(),
        "[1,2]".to_string(),
        r#""hello""#.to_string(),
        with_time("true"),
        with_time("null"),
        with_time("-5"),
        with_time("1.5"),
        with_time("1e3"),
        with_time("253402300800000"),
        with_time(r#""last tuesday""#),
        with_time(r#""2026-01-19T03:12:45""#),
        with_time(r#""2026-01-19T03:12:45.1""#),
        with_time(r#""2026-01-19T03:12:45.Z""#),
        with_time(r#""2026-01-19T25:00:00Z""#),
        with_time(r#""2026-13-01T00:00:00Z""#),
        with_time(r#""2026-01-19T03:12:45+2:00""#),
        with_time(r#""2026-01-19T03:12:45+24:00""#),
        with_time(r#"" 2026-01-19T03:12:45Z""#),
        r#"{"time":0,"account":7,"action":"x","outcome":"success"}"#.to_string(),
        r#"{"time":0,"account":"","action":"x","outcome":"success"}"#.to_string(),
        r#"{"time":0,"account":null,"action":"x","outcome":"success"}"#.to_string(),
        format!(r#"{{"time":0,"account":"{}","action":"x","outcome":"success"}}"#, "a".repeat(257)),
        r#"{"time":0,"account":"a","action":"","outcome":"success"}"#.to_string(),
        r#"{"time":0,"account":"a","action":"x","outcome":"ok"}"#.to_string(),
        r#"{"time":0,"account":"a","action":"x","outcome":"SUCCESS"}"#.to_string(),
        r#"{"time":0,"account":"a","action":"x","outcome":null}"#.to_string(),
        ev(r#","id":null"#),
        ev(r#","id":5"#),
        ev(r#","bytes":-1"#),
        ev(r#","bytes":"12""#),
        ev(r#","bytes":1.5"#),
        ev(r#","records":-3"#),
        ev(r#","credential":{}"#),
        ev(r#","credential":{"type":"api_key"}"#),
        ev(r#","credential":{"id":""}"#),
        ev(r#","credential":{"id":null}"#),
        ev(r#","credential":{"id":5}"#),
        ev(r#","credential":{"id":"k","owner":5}"#),
        ev(r#","credential":"AKIA""#),
        ev(&format!(r#","credential":{{"id":"{}"}}"#, "k".repeat(257))),
        ev(r#","source":{"ip":"999.1.1.1"}"#),
        ev(r#","source":{"ip":"1.2.3"}"#),
        ev(r#","source":{"ip":5}"#),
        ev(r#","source":{"asn":"ASX"}"#),
        ev(r#","source":{"asn":"AS"}"#),
        ev(r#","source":{"asn":"AS 64500"}"#),
        ev(r#","source":{"asn":-1}"#),
        ev(r#","source":{"asn":4294967296}"#),
        ev(r#","source":{"asn":1.5}"#),
        ev(r#","source":{"asn":true}"#),
        ev(r#","source":"x""#),
        ev(r#","target":{"system":5}"#),
        ev(r#","target":[]"#),
        ev(r#","attributes":[1]"#),
        ev(r#","attributes":"x""#),
        ev(r#","reason":5"#),
        ev(r#","tenant":5"#),
    ];
    // Where the decoder is stricter than a schema can say; the schema's description lists these.
    let decoder_stricter = vec![
        with_time(r#""2026-02-30T00:00:00Z""#),
        with_time(r#""1969-12-31T23:59:59Z""#),
        with_time(r#""1970-01-01T00:30:00+01:00""#),
        ev(r#","source":{"asn":"AS4294967296"}"#),
        r#"{"time":0,"account":"a","account":"b","action":"x","outcome":"success"}"#.to_string(),
    ];
    let schema_says = |line: &str| v.errors(&serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")));
    for line in valid {
        assert!(decodes(&line), "the decoder rejects {line}");
        let errors = schema_says(&line);
        assert!(errors.is_empty(), "the schema rejects {line}: {errors:?}");
    }
    for line in invalid {
        assert!(!decodes(&line), "the decoder accepts {line}");
        assert!(!schema_says(&line).is_empty(), "the schema accepts {line}");
    }
    for line in decoder_stricter {
        assert!(!decodes(&line), "the decoder accepts {line}");
        assert!(schema_says(&line).is_empty(), "the schema now rejects {line}: drop it from this list");
    }
}

#[test]
fn generated_and_inline_test_events_follow_the_audit_event_schema() {
    let s = schema("audit-event.schema.json");
    let v = Validator::new(&s);
    let documented = keys(&s["properties"]);
    let mut out = Vec::new();
    generate(&GenOptions { seed: 1, accounts: 5, days: 2, ..Default::default() }, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let mut lines = 0;
    for line in text.lines() {
        lines += 1;
        let e: Value = serde_json::from_str(line).unwrap();
        let undocumented: Vec<_> = keys(&e).difference(&documented).cloned().collect();
        assert!(undocumented.is_empty(), "generated event uses undocumented fields {undocumented:?}: {line}");
        for (object, _) in NESTED_EVENT_FIELDS {
            if let Some(nested) = e.get(*object).filter(|n| n.is_object()) {
                let extra: Vec<_> =
                    keys(nested).difference(&keys(&s["properties"][object]["properties"])).cloned().collect();
                assert!(extra.is_empty(), "generated {object} uses undocumented keys {extra:?}: {line}");
            }
        }
        let errors = v.errors(&e);
        assert!(errors.is_empty(), "{line}: {errors:?}");
        assert!(decodes(line), "{line}");
    }
    assert!(lines > 100, "the generator wrote only {lines} events");

    // The explicit events of the shipped detectors' inline tests.
    let mut checked = 0;
    for (path, text) in auditwatch::detection::pack::FILES {
        let table: toml::Table = toml::from_str(text).unwrap();
        for test in table.get("tests").and_then(|t| t.as_array()).into_iter().flatten() {
            for line in test
                .get("events")
                .and_then(|e| e.as_str())
                .unwrap_or("")
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
            {
                let errors = v.errors(&serde_json::from_str(line).unwrap());
                assert!(errors.is_empty(), "{path}: {line}: {errors:?}");
                checked += 1;
            }
        }
    }
    assert!(checked > 50, "only {checked} inline-test events");
}

// ---------------------------------------------------------------------------------------------
// The alert.
// ---------------------------------------------------------------------------------------------

fn alert_with(all_optional: bool) -> Alert {
    let baseline = json!({"owner": "svc-crm-sync-017", "uses": 412});
    Alert {
        id: alert_id("foreign-key-use", "acme/svc-billing", "e1"),
        detector: "foreign-key-use".into(),
        category: Category::CredentialMisuse,
        severity: Severity::High,
        account: "svc-billing".into(),
        tenant: all_optional.then(|| "acme".into()),
        credential_id: all_optional.then(|| "AKIA17".into()),
        source_ip: all_optional.then(|| "2001:db8::7".into()),
        time: 1_768_792_365_123,
        window_start: 1_768_700_000_000,
        window_end: 1_768_792_365_123,
        observed: 1.0,
        expected: 0.0,
        score: 1.0,
        summary: "svc-billing presented key AKIA17, which was issued to svc-crm-sync-017.".into(),
        evidence: Evidence {
            event_ids: vec!["e1".into()],
            baseline: baseline.as_object().unwrap().clone(),
            new: if all_optional { vec!["account svc-billing using this key".into()] } else { Vec::new() },
            sql: "SELECT time FROM events WHERE credential_id = 'AKIA17' ORDER BY time".into(),
            runbook: "Revoke the key.".into(),
        },
        detected_at: all_optional.then(|| "2026-01-19T03:12:46.000Z".into()),
    }
}

#[test]
fn alert_schema_names_exactly_the_serialized_fields() {
    let s = schema("alert.schema.json");
    let v = Validator::new(&s);
    let evidence = &s["properties"]["evidence"];
    let full = serde_json::to_value(alert_with(true)).unwrap();
    assert_eq!(keys(&full), keys(&s["properties"]), "every Alert field is documented, and nothing else");
    assert_eq!(
        keys(&full["evidence"]),
        keys(&evidence["properties"]),
        "every Evidence field is documented, and nothing else"
    );
    assert!(v.errors(&full).is_empty(), "{:?}", v.errors(&full));
    let bare = serde_json::to_value(alert_with(false)).unwrap();
    assert_eq!(keys(&bare), strings(&s["required"]), "what is always present is exactly what is required");
    assert_eq!(keys(&bare["evidence"]), strings(&evidence["required"]), "evidence: always present = required");
    assert!(v.errors(&bare).is_empty(), "{:?}", v.errors(&bare));
    assert_eq!(s["additionalProperties"], false);
    assert_eq!(evidence["additionalProperties"], false);
    // The bounds the code enforces.
    assert_eq!(
        evidence["properties"]["event_ids"]["maxItems"],
        json!(auditwatch::detection::alert::MAX_EVIDENCE_EVENTS)
    );
    assert_eq!(s["properties"]["id"]["pattern"], "^[0-9a-f]{32}$");
    let mut too_many = full.clone();
    too_many["evidence"]["event_ids"] = json!((0..11).map(|i| format!("e{i}")).collect::<Vec<_>>());
    assert!(!v.errors(&too_many).is_empty());
    let mut empty_new = full.clone();
    empty_new["evidence"]["new"] = json!([]);
    assert!(!v.errors(&empty_new).is_empty(), "`evidence.new` is omitted when empty, never []");
    let mut upper = full.clone();
    upper["id"] = json!(upper["id"].as_str().unwrap().to_uppercase().replace(|c: char| c.is_ascii_digit(), "A"));
    assert!(!v.errors(&upper).is_empty(), "{upper}");
}

#[test]
fn alert_enums_match_the_code() {
    let s = schema("alert.schema.json");
    let categories: BTreeSet<String> = Category::ALL.iter().map(|c| c.as_str().to_string()).collect();
    assert_eq!(strings(&s["properties"]["category"]["enum"]), categories);
    assert_eq!(strings(&s["properties"]["category"]["enum"]), serde_variants::<Category>());
    assert_eq!(strings(&s["properties"]["severity"]["enum"]), serde_variants::<Severity>());
    let severities: BTreeSet<String> = Severity::ALL.iter().map(|s| s.as_str().to_string()).collect();
    assert_eq!(strings(&s["properties"]["severity"]["enum"]), severities);
    for category in &categories {
        branch(&s, "category", category);
    }
}

/// The variants serde accepts for a unit enum, read from its "unknown variant" error.
fn serde_variants<T: serde::de::DeserializeOwned + std::fmt::Debug>() -> BTreeSet<String> {
    let err = serde_json::from_value::<T>(json!("no_such_variant")).unwrap_err().to_string();
    listed_after_expected(&err)
}

/// The backticked names after "expected" in a serde error ("unknown field `x`, expected one
/// of `a`, `b`" / "expected `a` or `b`" / "expected `a`").
fn listed_after_expected(message: &str) -> BTreeSet<String> {
    let (_, list) = message.split_once("expected").unwrap_or_else(|| panic!("no list in: {message}"));
    let names: BTreeSet<String> = list.split('`').skip(1).step_by(2).map(str::to_string).collect();
    assert!(!names.is_empty(), "no names in: {message}");
    names
}

/// Check one serialized alert: the schema as a whole, and its baseline against exactly one of
/// the `$defs` of its detector type.
fn check_alert(s: &Value, alert: &Value, detector_type: &str) -> String {
    let v = Validator::new(s);
    let errors = v.errors(alert);
    assert!(errors.is_empty(), "{alert}: {errors:?}");
    let documented = keys(&s["properties"]);
    assert!(keys(alert).is_subset(&documented));
    assert!(strings(&s["required"]).is_subset(&keys(alert)));
    assert!(keys(&alert["evidence"]).is_subset(&keys(&s["properties"]["evidence"]["properties"])));
    let id = alert["id"].as_str().unwrap();
    assert!(id.len() == 32 && id.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')), "{id}");
    assert!(strings(&s["properties"]["category"]["enum"]).contains(alert["category"].as_str().unwrap()));
    assert!(strings(&s["properties"]["severity"]["enum"]).contains(alert["severity"].as_str().unwrap()));
    let prefix = format!("{detector_type}_");
    let candidates: Vec<String> =
        keys(&s["$defs"]).into_iter().filter(|name| name.ends_with("_baseline") && name.starts_with(&prefix)).collect();
    assert!(!candidates.is_empty(), "no $defs/{detector_type}_baseline");
    let baseline = &alert["evidence"]["baseline"];
    let matching: Vec<&String> =
        candidates.iter().filter(|name| v.valid_at(&format!("/$defs/{name}"), baseline)).collect();
    assert_eq!(matching.len(), 1, "{detector_type}: baseline {baseline} matches {matching:?} of {candidates:?}");
    // The category's allOf branch lists that definition.
    let then = branch(s, "category", alert["category"].as_str().unwrap());
    let listed: Vec<String> = then["properties"]["evidence"]["properties"]["baseline"]["anyOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["$ref"].as_str().unwrap().trim_start_matches("#/$defs/").to_string())
        .collect();
    assert!(listed.contains(matching[0]), "{} is not listed under category {}", matching[0], alert["category"]);
    matching[0].to_string()
}

/// `type` of each shipped detector, by name, from the files themselves.
fn shipped_types() -> Vec<(String, String)> {
    auditwatch::detection::pack::FILES
        .iter()
        .map(|(_, text)| {
            let t: toml::Table = toml::from_str(text).unwrap();
            (t["name"].as_str().unwrap().to_string(), t["type"].as_str().unwrap().to_string())
        })
        .collect()
}

#[test]
fn golden_alerts_follow_the_alert_schema() {
    let s = schema("alert.schema.json");
    let types = shipped_types();
    let text = std::fs::read_to_string(manifest_dir().join("tests/golden/replay-seed42-30x21.jsonl")).unwrap();
    let mut seen = BTreeSet::new();
    for line in text.lines() {
        let alert: Value = serde_json::from_str(line).unwrap();
        let name = alert["detector"].as_str().unwrap();
        let (_, detector_type) =
            types.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("unknown detector {name}"));
        seen.insert(check_alert(&s, &alert, detector_type));
    }
    assert!(seen.len() >= 8, "the golden file exercises only {seen:?}");
}

fn kind_type(kind: &DetectorKind) -> &'static str {
    match kind {
        DetectorKind::FailureBurst(_) => "failure_burst",
        DetectorKind::PasswordSpray(_) => "password_spray",
        DetectorKind::VolumeBurst(_) => "volume_burst",
        DetectorKind::SustainedVolume(_) => "sustained_volume",
        DetectorKind::SustainedExcess(_) => "sustained_excess",
        DetectorKind::OffHours { .. } => "off_hours",
        DetectorKind::RevokedCredential(_) => "revoked_credential",
        DetectorKind::ForeignCredential(_) => "foreign_credential",
        DetectorKind::NewNetwork(_) => "new_network",
        DetectorKind::RareAction(_) => "rare_action",
        DetectorKind::CallRate(_) => "call_rate",
        DetectorKind::CredentialCreatedForOther(_) => "credential_created_for_other",
        DetectorKind::SessionOrigin(_) => "session_origin",
        DetectorKind::MfaOmitted(_) => "mfa_omitted",
    }
}

const DECLARED_SCHEDULE: &str = r#"
name = "declared-hours"
category = "off_hours"
type = "off_hours"
severity = "medium"
description = "Activity outside a declared schedule."
runbook = "Ask the owner."
cooldown = "1h"

[params]
max_presence = 0.1
min_events = 3

[[params.schedules]]
accounts = ["svc-payroll*"]
timezone = "Europe/Berlin"
days = "mon-fri"
hours = "07:00-19:00"

[[tests]]
name = "three calls on a Saturday"
events = """
{"time":"2026-01-10T10:00:00Z","account":"svc-payroll-eu","action":"payroll.run","outcome":"success"}
{"time":"2026-01-10T10:01:00Z","account":"svc-payroll-eu","action":"payroll.run","outcome":"success"}
{"time":"2026-01-10T10:02:00Z","account":"svc-payroll-eu","action":"payroll.run","outcome":"success"}
"""
expect = [{ account = "svc-payroll-eu", summary_contains = "declared schedule" }]
"#;

#[test]
fn every_baseline_the_detectors_write_is_documented() {
    // The inline tests of the shipped pack raise alerts of every type; a declared schedule
    // covers off_hours' other baseline. Every `*_baseline` definition must be used.
    let s = schema("alert.schema.json");
    let mut detectors = auditwatch::detection::pack::load().unwrap();
    detectors.push(definition::parse(Path::new("declared.toml"), DECLARED_SCHEDULE).unwrap());
    let mut used = BTreeSet::new();
    for d in &detectors {
        for t in &d.tests {
            for alert in t.run(d).unwrap_or_else(|e| panic!("{} / {}: {e}", d.name, t.name)) {
                let alert = serde_json::to_value(&alert).unwrap();
                used.insert(check_alert(&s, &alert, kind_type(&d.kind)));
            }
        }
    }
    let defined: BTreeSet<String> = keys(&s["$defs"]).into_iter().filter(|n| n.ends_with("_baseline")).collect();
    assert_eq!(used, defined, "a baseline definition no detector writes, or one never exercised");
    let detector_schema = schema("detector.schema.json");
    let as_json = serde_json::to_value(toml::from_str::<toml::Table>(DECLARED_SCHEDULE).unwrap()).unwrap();
    assert!(Validator::new(&detector_schema).errors(&as_json).is_empty());
}

#[test]
fn a_fresh_engine_alert_follows_the_alert_schema() {
    let s = schema("alert.schema.json");
    let mut engine = Engine::new(auditwatch::detection::pack::load().unwrap(), EngineOptions::default());
    let mut alerts = Vec::new();
    for i in 0..12 {
        let line = format!(
            r#"{{"id":"f{i}","time":"2026-01-20T03:10:{:02}.000Z","account":"svc-crm-sync","action":"auth.login","outcome":"failure","source":{{"ip":"203.0.113.50"}}}}"#,
            i * 5
        );
        engine.process(&decode(line.as_bytes(), DEFAULT_MAX_EVENT_BYTES).unwrap(), &mut alerts).unwrap();
    }
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let mut alert = serde_json::to_value(&alerts[0]).unwrap();
    assert!(alert.get("detected_at").is_none(), "the engine does not stamp detected_at: {alert}");
    assert!(
        alert.get("tenant").is_none() && alert.get("credential_id").is_none(),
        "absent optional fields are omitted: {alert}"
    );
    assert_eq!(alert["source_ip"], "203.0.113.50");
    assert_eq!(check_alert(&s, &alert, "failure_burst"), "failure_burst_baseline");
    // Stamped the way the outputs stamp it.
    alert["detected_at"] = json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    check_alert(&s, &alert, "failure_burst");
}

// ---------------------------------------------------------------------------------------------
// The detector definition.
// ---------------------------------------------------------------------------------------------

/// A shipped definition as the JSON its TOML maps to.
fn shipped(file: &str) -> Value {
    let (_, text) = auditwatch::detection::pack::FILES
        .iter()
        .find(|(p, _)| p.ends_with(file))
        .unwrap_or_else(|| panic!("no {file}"));
    serde_json::to_value(toml::from_str::<toml::Table>(text).unwrap()).unwrap()
}

/// Load a JSON document as a definition file, through TOML, the way `detectors check` does.
fn load(doc: &Value) -> Result<(), Vec<String>> {
    let text = toml::to_string(doc).unwrap_or_else(|e| panic!("{doc} as TOML: {e}"));
    definition::parse(Path::new("x.toml"), &text)
        .map(|_| ())
        .map_err(|problems| problems.iter().map(|p| p.to_string()).collect())
}

/// The fields the loader expects at `path` (a JSON pointer to an object in `doc`), read from
/// the "unknown field" error it gives for an extra key there.
fn loader_fields(doc: &Value, path: &str) -> BTreeSet<String> {
    let mut doc = doc.clone();
    doc.pointer_mut(path)
        .unwrap_or_else(|| panic!("{path}"))
        .as_object_mut()
        .unwrap()
        .insert("zz_not_a_field".into(), json!(1));
    let problems = load(&doc).expect_err("an unknown field is rejected");
    let message = problems.iter().find(|p| p.contains("zz_not_a_field")).unwrap_or_else(|| panic!("{problems:?}"));
    listed_after_expected(message.split_once("zz_not_a_field").unwrap().1)
}

fn params_def<'a>(s: &'a Value, detector_type: &str) -> &'a Value {
    let then = branch(s, "type", detector_type);
    resolve(s, then["properties"]["params"]["$ref"].as_str().unwrap())
}

/// The categories the schema allows for `detector_type`: its `const`, or its `enum`.
fn categories_of(s: &Value, detector_type: &str) -> BTreeSet<String> {
    let category = &branch(s, "type", detector_type)["properties"]["category"];
    match category.get("const") {
        Some(one) => set(&[one.as_str().unwrap()]),
        None => strings(&category["enum"]),
    }
}

#[test]
fn detector_files_follow_the_detector_schema() {
    let s = schema("detector.schema.json");
    let v = Validator::new(&s);
    let types = strings(&s["properties"]["type"]["enum"]);
    let mut seen_types = BTreeSet::new();
    let dir = manifest_dir().join("detectors");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 8);
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let doc =
            serde_json::to_value(toml::from_str::<toml::Table>(&std::fs::read_to_string(&path).unwrap()).unwrap())
                .unwrap();
        let extra: Vec<_> = keys(&doc).difference(&keys(&s["properties"])).cloned().collect();
        assert!(extra.is_empty(), "{name}: undocumented top-level keys {extra:?}");
        let detector_type = doc["type"].as_str().unwrap();
        assert!(types.contains(detector_type), "{name}: type {detector_type} is not in the enum");
        seen_types.insert(detector_type.to_string());
        let params = params_def(&s, detector_type);
        let (present, documented, required) =
            (keys(&doc["params"]), keys(&params["properties"]), strings(&params["required"]));
        assert!(
            present.is_subset(&documented),
            "{name}: params {:?} are not documented for {detector_type}",
            present.difference(&documented).collect::<Vec<_>>()
        );
        assert!(
            required.is_subset(&present),
            "{name}: documented required params {:?} are missing",
            required.difference(&present).collect::<Vec<_>>()
        );
        assert!(categories_of(&s, detector_type).contains(doc["category"].as_str().unwrap()), "{name}: category");
        let errors = v.errors(&doc);
        assert!(errors.is_empty(), "{name}: {errors:?}");
    }
    assert_eq!(seen_types, types, "the shipped pack uses every type");
}

#[test]
fn detector_schema_field_lists_match_the_loader() {
    let s = schema("detector.schema.json");
    let props = |schema: &Value| keys(&schema["properties"]);
    let failed_auth = shipped("failed-auth-burst.toml");
    assert_eq!(loader_fields(&failed_auth, ""), props(&s), "top level");
    assert_eq!(loader_fields(&failed_auth, "/select"), props(def(&s, "selection")), "select");
    let bulk = shipped("bulk-export.toml");
    assert_eq!(loader_fields(&bulk, "/tests/0"), props(def(&s, "inline_test")), "tests[]");
    assert_eq!(loader_fields(&bulk, "/tests/0/history/0"), props(def(&s, "history")), "tests[].history[]");
    assert_eq!(loader_fields(&bulk, "/tests/0/expect/0"), props(def(&s, "expected_alert")), "tests[].expect[]");
    let mut off_hours = shipped("off-hours.toml");
    off_hours["params"]["schedules"] =
        json!([{"accounts": ["svc-payroll*"], "timezone": "UTC", "days": "mon-fri", "hours": "07:00-19:00"}]);
    assert_eq!(loader_fields(&off_hours, "/params/schedules/0"), props(def(&s, "schedule")), "params.schedules[]");
    for (_, text) in auditwatch::detection::pack::FILES {
        let doc = serde_json::to_value(toml::from_str::<toml::Table>(text).unwrap()).unwrap();
        let detector_type = doc["type"].as_str().unwrap();
        assert_eq!(loader_fields(&doc, "/params"), props(params_def(&s, detector_type)), "params of {detector_type}");
    }
}

#[test]
fn detector_schema_required_fields_match_the_loader() {
    let s = schema("detector.schema.json");
    // Top level: each required key is needed, each optional one is not.
    let base = shipped("failed-auth-burst.toml");
    assert!(load(&base).is_ok());
    let required = strings(&s["required"]);
    for key in keys(&s["properties"]) {
        let mut doc = base.clone();
        assert!(doc.as_object_mut().unwrap().remove(&key).is_some(), "failed-auth-burst.toml has no `{key}`");
        assert_eq!(
            load(&doc).is_err(),
            required.contains(&key),
            "removing `{key}` (required: {})",
            required.contains(&key)
        );
    }
    // Params: every documented parameter of every type, the same way.
    let mut off_hours = shipped("off-hours.toml");
    off_hours["params"]["schedules"] =
        json!([{"accounts": ["svc-payroll*"], "timezone": "UTC", "days": "mon-fri", "hours": "07:00-19:00"}]);
    let mut docs: Vec<Value> = auditwatch::detection::pack::FILES
        .iter()
        .map(|(p, _)| shipped(p.trim_start_matches("detectors/")))
        .filter(|d| d["type"] != "off_hours")
        .collect();
    docs.push(off_hours.clone());
    for doc in &docs {
        let detector_type = doc["type"].as_str().unwrap();
        let params = params_def(&s, detector_type);
        let required = strings(&params["required"]);
        // Parameters that go together (`dependentRequired`): removing one of a pair that is
        // present is an error too.
        let needed_by_others = |key: &str| {
            params["dependentRequired"].as_object().is_some_and(|pairs| {
                pairs.iter().any(|(other, needs)| {
                    other != key && doc["params"].get(other).is_some() && strings(needs).iter().any(|n| n == key)
                })
            })
        };
        assert!(load(doc).is_ok(), "{detector_type}");
        for key in keys(&params["properties"]) {
            let mut d = doc.clone();
            assert!(
                d["params"].as_object_mut().unwrap().remove(&key).is_some(),
                "{detector_type}: no `{key}` to remove"
            );
            let must_fail = required.contains(&key) || needed_by_others(&key);
            assert_eq!(load(&d).is_err(), must_fail, "{detector_type}: removing params.{key}");
        }
    }
    // Declared schedules, inline tests, histories and expected alerts.
    let full_history = json!({
        "account": "svc-a", "tenant": "acme", "from": "2026-01-05T00:00:00Z", "days": 2, "weekdays": "mon-fri",
        "hours": "09:00-17:00", "timezone": "Europe/Berlin", "every": "1h", "action": "contacts.read", "bytes": 1000,
        "records": 10, "growth_per_day": 0.01, "skip_days": [1], "failure_every": 5, "credential": "AKIA1", "owner": true,
        "ips": ["198.51.100.7"], "asn": 64500, "country": "US",
    });
    let full_test = json!({
        "name": "t", "history": [full_history], "events": "", "judge_from": "2026-01-05T00:00:00Z",
        "expect": [{"account": "svc-a", "credential_id": "AKIA1", "source_ip": "198.51.100.7", "summary_contains": "x"}],
    });
    let mut with_test = base.clone();
    with_test["tests"] = json!([full_test]);
    assert!(load(&with_test).is_ok(), "{:?}", load(&with_test));
    let v = Validator::new(&s);
    assert!(v.errors(&with_test).is_empty(), "{:?}", v.errors(&with_test));
    for (pointer, def_name, doc) in [
        ("/params/schedules/0", "schedule", &off_hours),
        ("/tests/0", "inline_test", &with_test),
        ("/tests/0/history/0", "history", &with_test),
        ("/tests/0/expect/0", "expected_alert", &with_test),
    ] {
        let d = def(&s, def_name);
        let required = d.get("required").map(strings).unwrap_or_default();
        assert_eq!(
            keys(doc.pointer(pointer).unwrap()),
            keys(&d["properties"]),
            "{def_name}: the sample sets every field"
        );
        for key in keys(&d["properties"]) {
            let mut changed = doc.clone();
            changed.pointer_mut(pointer).unwrap().as_object_mut().unwrap().remove(&key);
            assert_eq!(load(&changed).is_err(), required.contains(&key), "{def_name}: removing `{key}`");
        }
    }
}

#[test]
fn detector_enums_and_categories_match_the_code() {
    let s = schema("detector.schema.json");
    let types = strings(&s["properties"]["type"]["enum"]);
    assert_eq!(types, serde_variants::<DetectorType>());
    assert_eq!(strings(&s["properties"]["category"]["enum"]), serde_variants::<Category>());
    assert_eq!(strings(&s["properties"]["severity"]["enum"]), serde_variants::<Severity>());
    assert_eq!(strings(&def(&s, "selection")["properties"]["outcomes"]["items"]["enum"]), serde_variants::<Outcome>());
    for t in &types {
        let code: DetectorType = serde_json::from_value(json!(t)).unwrap();
        let code: BTreeSet<String> = code.categories().iter().map(|c| c.as_str().to_string()).collect();
        assert_eq!(categories_of(&s, t), code, "categories of {t}");
    }
    assert_eq!(s["allOf"].as_array().unwrap().len(), types.len(), "one allOf branch per type");
    let alert = schema("alert.schema.json");
    assert_eq!(s["properties"]["category"]["enum"], alert["properties"]["category"]["enum"]);
    assert_eq!(s["properties"]["severity"]["enum"], alert["properties"]["severity"]["enum"]);
    assert_eq!(s["properties"]["name"]["pattern"], alert["properties"]["detector"]["pattern"]);
    assert_eq!(def(&s, "duration")["pattern"], "^([0-9]+(ms|s|m|h|d|w))+$");
    assert_eq!(def(&s, "duration")["pattern"], def(&alert, "duration")["pattern"]);
    let event = schema("audit-event.schema.json");
    assert_eq!(def(&s, "rfc3339")["pattern"], event["properties"]["time"]["oneOf"][0]["pattern"]);
}

/// Set the value at a JSON pointer (creating object members on the way).
fn set_at(doc: &mut Value, pointer: &str, value: Value) {
    let (parent, last) = pointer.rsplit_once('/').unwrap();
    let mut at = doc;
    for part in parent.split('/').skip(1) {
        at = match at {
            Value::Array(items) => &mut items[part.parse::<usize>().unwrap()],
            Value::Object(o) => o.entry(part).or_insert_with(|| Value::Object(Map::new())),
            other => panic!("cannot descend into {other}"),
        };
    }
    match at {
        Value::Array(items) => items[last.parse::<usize>().unwrap()] = value,
        Value::Object(o) => {
            o.insert(last.to_string(), value);
        }
        other => panic!("cannot set in {other}"),
    }
}

#[test]
fn detector_schema_agrees_with_the_loader_on_values() {
    let s = schema("detector.schema.json");
    let v = Validator::new(&s);
    let schedule = |days: &str, hours: &str, tz: &str| json!([{"accounts": ["svc-*"], "timezone": tz, "days": days, "hours": hours}]);
    // (file, pointer, value, valid?)
    let cases: Vec<(&str, &str, Value, bool)> = vec![
        ("failed-auth-burst.toml", "/name", json!("failed_auth-2"), true),
        ("failed-auth-burst.toml", "/name", json!("failed auth"), false),
        ("failed-auth-burst.toml", "/name", json!(""), false),
        ("failed-auth-burst.toml", "/category", json!("off_hours"), false),
        ("failed-auth-burst.toml", "/type", json!("password_sprays"), false),
        ("failed-auth-burst.toml", "/severity", json!("critical"), true),
        ("failed-auth-burst.toml", "/severity", json!("urgent"), false),
        ("failed-auth-burst.toml", "/runbook", json!(" \n\t"), false),
        ("failed-auth-burst.toml", "/description", json!(""), true),
        ("failed-auth-burst.toml", "/cooldown", json!("1h30m"), true),
        ("failed-auth-burst.toml", "/cooldown", json!("500ms"), true),
        ("failed-auth-burst.toml", "/cooldown", json!("0s"), false),
        ("failed-auth-burst.toml", "/cooldown", json!("0h00m"), false),
        ("failed-auth-burst.toml", "/cooldown", json!("10"), false),
        ("failed-auth-burst.toml", "/cooldown", json!("10y"), false),
        ("failed-auth-burst.toml", "/cooldown", json!(3600), false),
        ("failed-auth-burst.toml", "/warmup", json!("0s"), true),
        ("failed-auth-burst.toml", "/warmup", json!("2w"), true),
        ("failed-auth-burst.toml", "/select/actions", json!(["auth.*", "*", "admin.users.list"]), true),
        ("failed-auth-burst.toml", "/select/actions", json!(["a*b"]), false),
        ("failed-auth-burst.toml", "/select/actions", json!([""]), false),
        ("failed-auth-burst.toml", "/select/outcomes", json!(["failure", "denied"]), true),
        ("failed-auth-burst.toml", "/select/outcomes", json!(["maybe"]), false),
        ("failed-auth-burst.toml", "/params/outcome", json!("denied"), true),
        ("failed-auth-burst.toml", "/params/outcome", json!("success"), false),
        ("failed-auth-burst.toml", "/params/window", json!("0m"), false),
        ("failed-auth-burst.toml", "/params/min_count", json!(2), true),
        ("failed-auth-burst.toml", "/params/min_count", json!(1), false),
        ("failed-auth-burst.toml", "/params/min_count", json!(2.5), false),
        ("failed-auth-burst.toml", "/params/min_count", json!(4294967296u64), false),
        ("failed-auth-burst.toml", "/params/max_p_value", json!(0.5), true),
        ("failed-auth-burst.toml", "/params/max_p_value", json!(1.0), false),
        ("failed-auth-burst.toml", "/params/max_p_value", json!(0.0), false),
        ("failed-auth-burst.toml", "/params/max_p_value", json!("0.5"), false),
        ("password-spray.toml", "/params/min_accounts", json!(19), true),
        ("password-spray.toml", "/params/long_min_accounts", json!(64), true),
        ("password-spray.toml", "/params/long_min_accounts", json!(65), false),
        ("password-spray.toml", "/params/long_window", json!("0s"), false),
        ("failed-auth-burst.toml", "/params/longer_windows/0/min_count", json!(0), false),
        ("password-spray.toml", "/params/min_accounts", json!(65), false),
        ("password-spray.toml", "/params/min_accounts", json!(1), false),
        ("bulk-export.toml", "/params/min_bytes", json!("20 MB"), true),
        ("bulk-export.toml", "/params/min_bytes", json!("1.5GiB"), true),
        ("bulk-export.toml", "/params/min_bytes", json!(" 200kB "), true),
        ("bulk-export.toml", "/params/min_bytes", json!("1."), true),
        ("bulk-export.toml", "/params/min_bytes", json!(".5KB"), true),
        ("bulk-export.toml", "/params/min_bytes", json!("1024"), true),
        ("bulk-export.toml", "/params/min_bytes", json!(1000), true),
        ("bulk-export.toml", "/params/min_bytes", json!(-1), false),
        ("bulk-export.toml", "/params/min_bytes", json!(1.5), false),
        ("bulk-export.toml", "/params/min_bytes", json!("20mb"), false),
        ("bulk-export.toml", "/params/min_bytes", json!("."), false),
        ("bulk-export.toml", "/params/min_bytes", json!("1e6"), false),
        ("bulk-export.toml", "/params/min_bytes", json!("5 parsecs"), false),
        ("bulk-export.toml", "/params/min_ratio", json!(2), true),
        ("bulk-export.toml", "/params/min_ratio", json!(1.0), false),
        ("bulk-export.toml", "/params/min_z", json!(0), true),
        ("bulk-export.toml", "/params/min_z", json!(-1.0), false),
        ("bulk-export.toml", "/params/min_records", json!(-1), false),
        ("slow-exfiltration.toml", "/params/hours", json!(8), true),
        ("slow-exfiltration.toml", "/params/hours", json!(9), false),
        ("slow-exfiltration.toml", "/params/hours", json!(1), false),
        ("slow-exfiltration.toml", "/params/min_z", json!(-1.0), true),
        ("slow-exfiltration.toml", "/params/min_bytes_per_hour", json!("3 TB"), true),
        ("off-hours.toml", "/params/max_presence", json!(0), true),
        ("off-hours.toml", "/params/max_presence", json!(1.0), false),
        ("off-hours.toml", "/params/max_presence", json!(-0.1), false),
        ("off-hours.toml", "/params/min_events", json!(0), false),
        ("off-hours.toml", "/params/schedules", schedule("mon-fri", "07:00-19:00", "Europe/Berlin"), true),
        ("off-hours.toml", "/params/schedules", schedule("sat,sun", "22:00-06:00", "UTC"), true),
        (
            "off-hours.toml",
            "/params/schedules",
            json!([{"accounts": [], "timezone": "UTC", "days": "mon", "hours": "07:00-19:00"}]),
            false,
        ),
        (
            "off-hours.toml",
            "/params/schedules",
            json!([{"accounts": ["a"], "days": "mon", "hours": "07:00-19:00"}]),
            false,
        ),
        ("revoked-key-use.toml", "/params/rotation_grace", json!("0s"), true),
        ("revoked-key-use.toml", "/params/rotation_grace", json!("1d12h"), true),
        ("revoked-key-use.toml", "/params/rotation_grace", json!("1 day"), false),
        ("foreign-key-use.toml", "/params/learn_users_for", json!(60), false),
        ("key-new-network.toml", "/params/min_uses", json!(1), true),
        ("key-new-network.toml", "/params/min_uses", json!(0), false),
        ("key-new-network.toml", "/params/require_new_asn_or_country", json!("yes"), false),
        ("key-new-network.toml", "/params/min_age", json!("7d"), true),
        ("audit-log-tampering.toml", "/category", json!("exfiltration"), true),
        ("audit-log-tampering.toml", "/category", json!("failed_auth"), false),
        ("audit-log-tampering.toml", "/warmup", json!("1d"), true),
        ("audit-log-tampering.toml", "/warmup", json!("0s"), false),
        ("audit-log-tampering.toml", "/select/outcomes", json!(["success"]), false),
        ("audit-log-tampering.toml", "/params/classes", json!(["iam.Create*", "kms.Decrypt"]), true),
        ("audit-log-tampering.toml", "/params/classes", json!([]), false),
        ("audit-log-tampering.toml", "/params/classes", json!(["*"]), false),
        ("audit-log-tampering.toml", "/params/classes", json!(["iam.*Policy"]), false),
        ("audit-log-tampering.toml", "/params/term", json!("service"), true),
        ("audit-log-tampering.toml", "/params/term", json!("verb"), false),
        ("audit-log-tampering.toml", "/params/min_events", json!(1), true),
        ("audit-log-tampering.toml", "/params/min_events", json!(0), false),
        ("credential-for-other.toml", "/category", json!("persistence"), false),
        ("credential-for-other.toml", "/params/usual_after", json!(16), true),
        ("credential-for-other.toml", "/params/usual_after", json!(17), false),
        ("credential-for-other.toml", "/params/usual_after", json!(0), false),
        ("credential-for-other.toml", "/params/target_actions", json!(["iam.*LoginProfile"]), false),
        ("credential-for-other.toml", "/params/target_actions", json!([]), true),
        ("credential-for-other.toml", "/select/actions", json!(["credential.*"]), false),
        ("failed-auth-burst.toml", "/tests/2/judge_from", json!("2026-01-20T00:00:00+01:00"), true),
        ("failed-auth-burst.toml", "/tests/2/judge_from", json!("2026-01-20"), false),
        ("failed-auth-burst.toml", "/tests/2/judge_from", json!("2026-01-20T24:00:00Z"), false),
        ("failed-auth-burst.toml", "/tests/2/history/0/from", json!("2026-01-19T00:00:00.5Z"), true),
        ("failed-auth-burst.toml", "/tests/2/history/0/from", json!("yesterday"), false),
        ("failed-auth-burst.toml", "/tests/2/history/0/every", json!("0s"), false),
        ("failed-auth-burst.toml", "/tests/2/history/0/days", json!(-1), false),
        ("failed-auth-burst.toml", "/tests/2/history/0/skip_days", json!([0, 3]), true),
        ("failed-auth-burst.toml", "/tests/2/history/0/skip_days", json!([-1]), false),
        ("failed-auth-burst.toml", "/tests/2/history/0/owner", json!("yes"), false),
        ("failed-auth-burst.toml", "/tests/2/expect", json!([{"account": "a"}, {}]), true),
        ("failed-auth-burst.toml", "/tests/2/expect", json!("none"), false),
        ("failed-auth-burst.toml", "/tests/2/name", json!(5), false),
    ];
    for (file, pointer, value, valid) in cases {
        let mut doc = shipped(file);
        set_at(&mut doc, pointer, value.clone());
        let loaded = load(&doc);
        assert_eq!(loaded.is_ok(), valid, "{file} {pointer} = {value}: the loader says {loaded:?}");
        let errors = v.errors(&doc);
        assert_eq!(errors.is_empty(), valid, "{file} {pointer} = {value}: the schema says {errors:?}");
    }
    // Where the loader is stricter than the schema: names that must resolve (time zones),
    // day and hour ranges it parses, event lines that must decode, and floors that must rise
    // with the window (a longer window's floor above the shorter one's).
    let stricter: Vec<(&str, &str, Value)> = vec![
        ("password-spray.toml", "/params/min_accounts", json!(64)),
        ("failed-auth-burst.toml", "/params/longer_windows/0/min_count", json!(5)),
        ("failed-auth-burst.toml", "/params/longer_windows/0/window", json!("90m")),
        ("off-hours.toml", "/params/schedules", schedule("mon-fry", "07:00-19:00", "UTC")),
        ("off-hours.toml", "/params/schedules", schedule("mon-fri", "7am-7pm", "UTC")),
        ("off-hours.toml", "/params/schedules", schedule("mon-fri", "07:00-07:00", "UTC")),
        ("off-hours.toml", "/params/schedules", schedule("mon-fri", "07:00-19:00", "Mars/Olympus")),
        ("failed-auth-burst.toml", "/tests/2/history/0/weekdays", json!("weekdays")),
        ("failed-auth-burst.toml", "/tests/2/events", json!("{\"time\":0}\n")),
    ];
    for (file, pointer, value) in stricter {
        let mut doc = shipped(file);
        set_at(&mut doc, pointer, value.clone());
        assert!(load(&doc).is_err(), "{file} {pointer} = {value}: the loader accepts it");
        assert!(
            v.errors(&doc).is_empty(),
            "{file} {pointer} = {value}: the schema now rejects it, drop it from this list"
        );
    }
}
