//! Generic object forms: a table of [`Field`]s per kind turns a stored object (as JSON) into
//! form values, posted values back into JSON for the store, and the store's problems into
//! messages next to the field at fault.

use std::collections::BTreeMap;

use leptos::prelude::*;
use serde_json::{Map, Value};
use storage::{Config, Problem};

use super::layout::textarea_text;

/// How a field is typed in and what JSON it becomes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Input {
    /// One line of text; empty: absent.
    Text,
    /// Several lines of text kept as they are (PEM); empty: absent.
    Multiline,
    /// Like `Multiline`, but never shown again; empty on edit keeps the stored value.
    Secret,
    /// A whole number; empty: absent.
    Number,
    /// One string per line (or comma-separated); an array.
    Lines,
    /// `name: value` per line; an object of strings.
    Pairs,
    /// `addr weight` per line; upstream targets.
    Targets,
    /// Any YAML (a policy list, a health check); empty: absent.
    Yaml,
    /// One of a list; empty: absent.
    Select(Options),
    /// A checkbox with its default for new objects.
    Checkbox { default: bool },
}

/// Where a select's choices come from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Options {
    Fixed(&'static [&'static str]),
    Upstreams,
    Plans,
}

/// One field of an object form.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    /// The object's JSON field, and the form field's name.
    pub name: &'static str,
    pub label: &'static str,
    pub input: Input,
    /// Shown under the field.
    pub help: &'static str,
}

pub(crate) const fn field(
    name: &'static str,
    label: &'static str,
    input: Input,
    help: &'static str,
) -> Field {
    Field {
        name,
        label,
        input,
        help,
    }
}

/// The text of every field, by name.
pub(crate) type Values = BTreeMap<String, String>;

/// The form values that show `object` (JSON of a spec). Secrets are left blank.
pub(crate) fn values_of(fields: &[Field], object: &Value) -> Values {
    fields
        .iter()
        .map(|f| {
            let value = object.get(f.name).unwrap_or(&Value::Null);
            (f.name.to_owned(), text_of(f.input, value))
        })
        .collect()
}

/// The values of a new object: checkbox defaults, the rest blank.
pub(crate) fn defaults(fields: &[Field]) -> Values {
    fields
        .iter()
        .map(|f| {
            let text = match f.input {
                Input::Checkbox { default: true } => "true",
                _ => "",
            };
            (f.name.to_owned(), text.to_owned())
        })
        .collect()
}

/// The values of a posted form (`pairs` in order). A checkbox absent from it is off.
pub(crate) fn values_posted(fields: &[Field], pairs: &[(String, String)]) -> Values {
    fields
        .iter()
        .map(|f| {
            let posted = pairs.iter().find(|(k, _)| k == f.name).map(|(_, v)| v);
            let text = match f.input {
                Input::Checkbox { .. } => posted.is_some().to_string(),
                _ => posted.cloned().unwrap_or_default(),
            };
            (f.name.to_owned(), text)
        })
        .collect()
}

fn text_of(input: Input, value: &Value) -> String {
    match (input, value) {
        (Input::Secret, _) | (_, Value::Null) => String::new(),
        (Input::Checkbox { .. }, Value::Bool(b)) => b.to_string(),
        (Input::Lines, Value::Array(items)) => {
            items.iter().map(scalar_text).collect::<Vec<_>>().join("\n")
        }
        (Input::Pairs, Value::Object(map)) => map
            .iter()
            .map(|(k, v)| format!("{k}: {}", scalar_text(v)))
            .collect::<Vec<_>>()
            .join("\n"),
        (Input::Targets, Value::Array(items)) => items
            .iter()
            .map(|t| {
                let addr = t.get("addr").map(scalar_text).unwrap_or_default();
                match t.get("weight").and_then(Value::as_u64) {
                    Some(w) if w != 1 => format!("{addr} {w}"),
                    _ => addr,
                }
            })
            .collect::<Vec<_>>()
            .join("\n"),
        (Input::Yaml, v) => serde_yaml::to_string(v).unwrap_or_default(),
        (_, v) => scalar_text(v),
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The JSON object the values describe, or the problems of fields that could not be read
/// (a number that is not one, YAML that does not parse). `stored` is the object being
/// edited, whose secrets are kept when left blank.
pub(crate) fn to_json(
    fields: &[Field],
    values: &Values,
    stored: Option<&Value>,
) -> Result<Value, Vec<Problem>> {
    let mut object = Map::new();
    let mut problems = Vec::new();
    for f in fields {
        let text = values.get(f.name).map(String::as_str).unwrap_or("");
        let trimmed = text.trim();
        let value = match f.input {
            Input::Text | Input::Select(_) if trimmed.is_empty() => None,
            Input::Text | Input::Select(_) => Some(Value::String(trimmed.to_owned())),
            Input::Multiline if trimmed.is_empty() => None,
            Input::Multiline => Some(Value::String(text.replace("\r\n", "\n"))),
            Input::Secret if trimmed.is_empty() => stored.and_then(|s| s.get(f.name)).cloned(),
            Input::Secret => Some(Value::String(text.replace("\r\n", "\n"))),
            Input::Number if trimmed.is_empty() => None,
            Input::Number => match trimmed.parse::<i64>() {
                Ok(n) => Some(Value::from(n)),
                Err(_) => {
                    problems.push(Problem::new(f.name, "must be a whole number"));
                    None
                }
            },
            Input::Checkbox { .. } => Some(Value::Bool(trimmed == "true")),
            Input::Lines => Some(Value::Array(
                items(text).map(|s| Value::String(s.to_owned())).collect(),
            )),
            Input::Pairs => match pairs(text) {
                Ok(map) => Some(Value::Object(map)),
                Err(message) => {
                    problems.push(Problem::new(f.name, message));
                    None
                }
            },
            Input::Targets => match targets(text) {
                Ok(list) => Some(Value::Array(list)),
                Err(message) => {
                    problems.push(Problem::new(f.name, message));
                    None
                }
            },
            Input::Yaml if trimmed.is_empty() => None,
            Input::Yaml => match serde_yaml::from_str::<Value>(text) {
                Ok(v) => Some(v),
                Err(e) => {
                    problems.push(Problem::new(f.name, format!("invalid YAML: {e}")));
                    None
                }
            },
        };
        if let Some(value) = value {
            object.insert(f.name.to_owned(), value);
        }
    }
    if problems.is_empty() {
        Ok(Value::Object(object))
    } else {
        Err(problems)
    }
}

/// Non-empty items, one per line or separated by commas.
fn items(text: &str) -> impl Iterator<Item = &str> {
    text.split(['\n', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn pairs(text: &str) -> Result<Map<String, Value>, String> {
    let mut map = Map::new();
    for (n, line) in text.lines().map(str::trim).enumerate() {
        if line.is_empty() {
            continue;
        }
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| format!("line {}: write `name: value`", n + 1))?;
        map.insert(k.trim().to_owned(), Value::String(v.trim().to_owned()));
    }
    Ok(map)
}

fn targets(text: &str) -> Result<Vec<Value>, String> {
    let mut list = Vec::new();
    for (n, line) in text.lines().map(str::trim).enumerate() {
        let mut words = line.split_whitespace();
        let Some(addr) = words.next() else { continue };
        let mut target = Map::new();
        target.insert("addr".to_owned(), Value::String(addr.to_owned()));
        if let Some(weight) = words.next() {
            let weight: u32 = weight
                .parse()
                .map_err(|_| format!("line {}: the weight must be a whole number", n + 1))?;
            target.insert("weight".to_owned(), Value::from(weight));
        }
        if words.next().is_some() {
            return Err(format!("line {}: write `host:port [weight]`", n + 1));
        }
        list.push(Value::Object(target));
    }
    Ok(list)
}

/// The field a problem path names (`policies[1].burst` -> `policies`), if it is one of
/// `fields`; problems of no field are shown above the form.
pub(crate) fn field_of<'a>(fields: &'a [Field], path: &str) -> Option<&'a Field> {
    let head = path.split(['.', '[']).next().unwrap_or("");
    fields.iter().find(|f| f.name == head)
}

/// A serde error turned into a problem: `missing field `x`` names field `x`.
pub(crate) fn serde_problem(path: String, message: String) -> Problem {
    let path = if path == "." || path.is_empty() {
        message
            .split('`')
            .nth(1)
            .filter(|_| message.starts_with("missing field"))
            .unwrap_or("")
            .to_owned()
    } else {
        path
    };
    Problem::new(path, message)
}

/// The form of an object: one labelled input per field, each followed by its problems.
/// `id_fixed` makes the `id` field read-only (editing). Problems of no field go on top.
pub(crate) fn form_view(
    fields: &[Field],
    values: &Values,
    problems: &[Problem],
    config: &Config,
    id_fixed: bool,
) -> AnyView {
    let general: Vec<String> = problems
        .iter()
        .filter(|p| field_of(fields, &p.path).is_none())
        .map(|p| match p.path.as_str() {
            "" => p.message.clone(),
            path => format!("{path}: {}", p.message),
        })
        .collect();
    let general = (!general.is_empty()).then(|| {
        view! {
            <div class="flash err" role="alert">
                <ul>{general.into_iter().map(|m| view! { <li>{m}</li> }).collect_view()}</ul>
            </div>
        }
    });
    let rows = fields
        .iter()
        .map(|f| {
            let mine: Vec<String> = problems
                .iter()
                .filter(|p| field_of(fields, &p.path).is_some_and(|g| g.name == f.name))
                .map(|p| match p.path.strip_prefix(f.name) {
                    Some("") | None => p.message.clone(),
                    Some(rest) => format!("{}: {}", rest.trim_start_matches('.'), p.message),
                })
                .collect();
            let value = values.get(f.name).cloned().unwrap_or_default();
            let readonly = id_fixed && f.name == "id";
            field_row(f, value, mine, config, readonly)
        })
        .collect_view();
    view! {
        {general}
        <div class="fields">{rows}</div>
    }
    .into_any()
}

fn field_row(
    f: &Field,
    value: String,
    problems: Vec<String>,
    config: &Config,
    readonly: bool,
) -> AnyView {
    let name = f.name;
    let id = format!("field-{name}");
    let invalid = !problems.is_empty();
    let class = if invalid { "field invalid" } else { "field" };
    let input = match f.input {
        Input::Text | Input::Number => view! {
            <input id=id.clone() name=name value=value readonly=readonly aria-invalid=invalid.to_string()/>
        }
        .into_any(),
        Input::Checkbox { .. } => view! {
            <input id=id.clone() name=name type="checkbox" checked=value == "true"/>
        }
        .into_any(),
        Input::Select(options) => {
            let choices = match options {
                Options::Fixed(list) => list.iter().map(|s| (*s).to_owned()).collect(),
                Options::Upstreams => config.upstreams.iter().map(|u| u.id.clone()).collect(),
                Options::Plans => config.plans.iter().map(|p| p.id.clone()).collect::<Vec<_>>(),
            };
            let options = std::iter::once(String::new())
                .chain(choices)
                .map(|c| {
                    let selected = c == value;
                    let label = if c.is_empty() { "—".to_owned() } else { c.clone() };
                    view! { <option value=c selected=selected>{label}</option> }
                })
                .collect_view();
            view! { <select id=id.clone() name=name>{options}</select> }.into_any()
        }
        Input::Secret => view! {
            <textarea id=id.clone() name=name rows="4" placeholder="leave blank to keep the stored one" class="mono"></textarea>
        }
        .into_any(),
        _ => {
            let rows = value.lines().count().clamp(2, 14).to_string();
            view! { <textarea id=id.clone() name=name rows=rows class="mono">{textarea_text(&value)}</textarea> }
                .into_any()
        }
    };
    let errors = problems
        .into_iter()
        .map(|m| view! { <p class="problem" role="alert">{m}</p> })
        .collect_view();
    let help = (!f.help.is_empty()).then(|| {
        // `backticks` in help texts mark what is typed literally.
        let parts = f
            .help
            .split('`')
            .enumerate()
            .map(|(i, part)| {
                if i % 2 == 1 {
                    view! { <code>{part}</code> }.into_any()
                } else {
                    part.into_any()
                }
            })
            .collect_view();
        view! { <p class="help">{parts}</p> }
    });
    view! {
        <div class=class data-field=name>
            <label for=id>{f.label}</label>
            {input}
            {errors}
            {help}
        </div>
    }
    .into_any()
}
