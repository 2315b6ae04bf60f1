//! Environment overrides: `AUDITWATCH_<SECTION>__<KEY>` variables applied to the parsed file
//! before deserializing, typed by the config's own JSON Schema so they follow the structs.

use super::*;

/// The kind of scalar an env override sets, taken from the config's JSON Schema.
enum ScalarKind {
    Integer,
    Float,
    Boolean,
    String,
}

/// Applies `AUDITWATCH_*__*` variables to the parsed document. Their values get a span past the
/// end of the file, so errors about them are recognizable (they have no line to show).
pub(super) fn apply_env<'i>(
    root: &mut DeTable<'i>,
    past_end: usize,
    env: &'i [(String, String)],
) -> (Vec<Problem>, Vec<String>) {
    let secret_vars = secret_env_vars(root);
    let overrides: Vec<&(String, String)> = env
        .iter()
        .filter(|(name, _)| name.starts_with(ENV_PREFIX) && name.contains(ENV_SEPARATOR))
        .filter(|(name, _)| !secret_vars.contains(name))
        .collect();
    if overrides.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let schema = schemars::schema_for!(Config).to_value();
    let span = past_end + 1..past_end + 1;
    let mut problems = Vec::new();
    let mut applied = Vec::new();
    for (name, value) in overrides {
        let segments: Vec<String> =
            name[ENV_PREFIX.len()..].split(ENV_SEPARATOR).map(str::to_ascii_lowercase).collect();
        let result = env_target(&schema, &segments)
            .and_then(|(keys, kind)| Ok((keys, env_value(kind, value)?)))
            .and_then(|(keys, value)| insert_at(root, &keys, value, span.clone()));
        match result {
            Ok(()) => applied.push(name.clone()),
            Err(message) => problems.push(Problem::new(name.clone(), message)),
        }
    }
    (problems, applied)
}

/// Env var names referenced as `{ env = "..." }` under `[kafka.secrets]` in the file.
pub(super) fn secret_env_vars(root: &DeTable<'_>) -> Vec<String> {
    let Some(DeValue::Table(secrets)) =
        root.get("kafka").and_then(|kafka| kafka.get_ref().get("secrets")).map(Spanned::get_ref)
    else {
        return Vec::new();
    };
    secrets
        .values()
        .filter_map(|reference| reference.get_ref().get("env")?.get_ref().as_str().map(str::to_string))
        .collect()
}

/// Walks the JSON Schema of [`Config`] along `segments`: the document keys to set and the kind
/// of value expected there. Using the schema keeps env overrides in step with the structs.
fn env_target(schema: &serde_json::Value, segments: &[String]) -> Result<(Vec<String>, ScalarKind), String> {
    let mut node = resolve_ref(schema, schema);
    let mut keys: Vec<String> = Vec::new();
    for segment in segments {
        let here = if keys.is_empty() { "the configuration".to_string() } else { format!("`{}`", keys.join(".")) };
        if schema_types(node).contains(&"array") {
            return Err(format!("{here} is a list; set it in the config file"));
        }
        if let Some(child) = node.get("properties").and_then(|p| p.get(segment.as_str())) {
            keys.push(segment.clone());
            node = resolve_ref(schema, child);
        } else if let Some(values) = node.get("additionalProperties").filter(|v| v.is_object()) {
            if segment.is_empty() {
                return Err(format!("names an empty key in {here}"));
            }
            // librdkafka property names use dots, which env var names cannot hold.
            keys.push(segment.replace('_', "."));
            node = resolve_ref(schema, values);
        } else if let Some(properties) = node.get("properties").and_then(|p| p.as_object()) {
            let known: Vec<&str> = properties.keys().map(String::as_str).collect();
            return Err(format!(
                "names no configuration field: {here} has no `{segment}` (it has {})",
                known.join(", ")
            ));
        } else {
            return Err(format!("names no configuration field: {here} is not a table"));
        }
    }
    let types = schema_types(node);
    let path = keys.join(".");
    let kind = if types.contains(&"integer") {
        ScalarKind::Integer
    } else if types.contains(&"number") {
        ScalarKind::Float
    } else if types.contains(&"boolean") {
        ScalarKind::Boolean
    } else if types.contains(&"string") {
        ScalarKind::String
    } else if types.contains(&"array") {
        return Err(format!("`{path}` is a list; set it in the config file"));
    } else if !types.contains(&"object") {
        return Err(format!("`{path}` cannot be set from the environment; set it in the config file"));
    } else {
        return Err(format!(
            "`{path}` is a table; set its fields one by one (`{ENV_PREFIX}{}{ENV_SEPARATOR}<FIELD>`)",
            path.replace('.', ENV_SEPARATOR).to_ascii_uppercase()
        ));
    };
    Ok((keys, kind))
}

fn resolve_ref<'s>(root: &'s serde_json::Value, mut node: &'s serde_json::Value) -> &'s serde_json::Value {
    // Bounded: a reference cycle in a generated schema would be a bug, not an endless loop.
    for _ in 0..8 {
        let Some(target) = node
            .get("$ref")
            .and_then(|r| r.as_str())
            .and_then(|r| r.strip_prefix("#/$defs/"))
            .and_then(|name| root.get("$defs")?.get(name))
        else {
            break;
        };
        node = target;
    }
    node
}

fn schema_types(node: &serde_json::Value) -> Vec<&str> {
    match node.get("type") {
        Some(serde_json::Value::String(t)) => vec![t.as_str()],
        Some(serde_json::Value::Array(ts)) => ts.iter().filter_map(|t| t.as_str()).collect(),
        _ => Vec::new(),
    }
}

fn env_value(kind: ScalarKind, value: &str) -> Result<DeValue<'_>, String> {
    let parsed = || DeValue::parse(value.trim()).map(Spanned::into_inner).ok();
    match kind {
        ScalarKind::String => Ok(DeValue::String(Cow::Borrowed(value))),
        ScalarKind::Boolean => match value.trim() {
            "true" => Ok(DeValue::Boolean(true)),
            "false" => Ok(DeValue::Boolean(false)),
            _ => Err(format!("`{value}` is not a boolean (true or false)")),
        },
        ScalarKind::Integer => {
            parsed().filter(DeValue::is_integer).ok_or_else(|| format!("`{value}` is not an integer"))
        }
        ScalarKind::Float => {
            parsed().filter(|v| v.is_integer() || v.is_float()).ok_or_else(|| format!("`{value}` is not a number"))
        }
    }
}

fn insert_at<'i>(
    root: &mut DeTable<'i>,
    keys: &[String],
    value: DeValue<'i>,
    span: Range<usize>,
) -> Result<(), String> {
    let Some((last, parents)) = keys.split_last() else {
        return Err("names no configuration field".to_string());
    };
    let mut table = root;
    for (depth, key) in parents.iter().enumerate() {
        let entry = table
            .entry(Spanned::new(span.clone(), Cow::Owned(key.clone())))
            .or_insert_with(|| Spanned::new(span.clone(), DeValue::Table(DeTable::new())));
        match entry.get_mut() {
            DeValue::Table(inner) => table = inner,
            _ => return Err(format!("`{}` in the file is not a table", keys[..=depth].join("."))),
        }
    }
    table.insert(Spanned::new(span.clone(), Cow::Owned(last.clone())), Spanned::new(span, value));
    Ok(())
}
