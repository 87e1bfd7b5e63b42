//! Config files: parsing YAML or JSON into a [`Config`], and printing one.
//!
//! An export holds every object, keys and credentials as their hashes only (the store never
//! has a plaintext key); a full export (`tollgate export --with-secrets`) also holds
//! certificates' private keys and JWT HMAC secrets, so that it restores a new store on its
//! own: treat such files as secrets.

use crate::spec::Config;
use crate::StoreError;

mod shape;

/// Parses a config file, YAML or JSON (told apart by a leading `{`). Unknown fields are
/// refused. The result is not validated: see [`crate::validate_config`].
///
/// `Err` is [`StoreError::Invalid`] with every problem the file's shape has, each with its
/// path (`upstreams[0].balancing`): the first one met also with its line and column, then
/// those of every other object that does not read (found object by object, so one bad
/// field does not hide the next). A syntax error gives that one problem only.
pub fn parse_config(text: &str) -> Result<Config, StoreError> {
    let json = text.trim_start().starts_with('{');
    if !json && is_blank_yaml(text) {
        return Ok(Config::default());
    }
    let parsed = if json {
        let mut de = serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize::<_, Config>(&mut de).map_err(|e| {
            let (path, inner) = (e.path().to_string(), e.into_inner());
            let at = format!("line {}, column {}", inner.line(), inner.column());
            let message = shape::bare_message(&inner.to_string(), &path);
            (
                shape::located(path, "JSON", &at, &message),
                inner.is_syntax() || inner.is_eof(),
            )
        })
    } else {
        let de = serde_yaml::Deserializer::from_str(text);
        serde_path_to_error::deserialize::<_, Config>(de).map_err(|e| {
            let (path, inner) = (e.path().to_string(), e.into_inner());
            let at = inner.location().map_or_else(String::new, |l| {
                format!("line {}, column {}", l.line(), l.column())
            });
            let message = shape::bare_message(&inner.to_string(), &path);
            (shape::located(path, "YAML", &at, &message), false)
        })
    };
    match parsed {
        Ok(mut config) => {
            crate::trees::sort(&mut config);
            Ok(config)
        }
        Err((first, syntax)) => Err(StoreError::Invalid {
            problems: if syntax {
                vec![first]
            } else {
                shape::every_problem(text, first)
            },
        }),
    }
}

/// An empty document (only blank lines and comments) means an empty config.
fn is_blank_yaml(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .all(|l| l.is_empty() || l.starts_with('#') || l == "---")
}

/// The config as YAML. Serializing these types cannot fail; were it ever to, the text
/// is an error message that does not parse as a config (so it cannot be imported as one).
pub(crate) fn to_yaml(config: &Config) -> String {
    serde_yaml::to_string(config).unwrap_or_else(|e| format!("export failed: {e}\n"))
}

/// The config as pretty JSON; the same contract as [`to_yaml`].
pub(crate) fn to_json(config: &Config) -> String {
    serde_json::to_string_pretty(config).unwrap_or_else(|e| format!("export failed: {e}\n"))
}
