//! Config files: parsing YAML or JSON into a [`Config`], and printing one.
//!
//! An export holds every object, keys and credentials as their hashes only (the store never
//! has a plaintext key), and certificates *with* their private keys, so that an export
//! imported elsewhere serves the same TLS names: treat export files as secrets.

use policies::Problem;

use crate::spec::Config;
use crate::StoreError;

/// Parses a config file, YAML or JSON (told apart by a leading `{`). Unknown fields are
/// refused. `Err` is [`StoreError::Invalid`] with one problem whose message names the line
/// and column. The result is not validated: see [`crate::validate_config`].
pub fn parse_config(text: &str) -> Result<Config, StoreError> {
    let parsed = if text.trim_start().starts_with('{') {
        serde_json::from_str::<Config>(text).map_err(|e| format!("invalid JSON: {e}"))
    } else if is_blank_yaml(text) {
        Ok(Config::default())
    } else {
        serde_yaml::from_str::<Config>(text).map_err(|e| format!("invalid YAML: {e}"))
    };
    let mut config = parsed.map_err(|message| StoreError::Invalid {
        problems: vec![Problem::new("", message)],
    })?;
    crate::trees::sort(&mut config);
    Ok(config)
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
