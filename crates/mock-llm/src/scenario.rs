//! Scenario files: hand-written scripts, loaded from JSON, for prompts the markers cannot
//! express.
//!
//! The file looks like `{"default": SCRIPT, "scripts": {"NAME": SCRIPT}}`. `default` answers
//! prompts without markers; a prompt with `[[scenario:NAME]]` gets the script `NAME`. Unknown
//! fields are rejected, so a typo in a hand-written file fails loudly at start-up instead of
//! silently changing what the mock does.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::MockError;
use crate::script::Script;

/// The contents of a scenario file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// The script for prompts without markers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Script>,
    /// Named scripts, chosen with `[[scenario:NAME]]`.
    #[serde(default)]
    pub scripts: BTreeMap<String, Script>,
}

impl ScenarioFile {
    /// Reads and parses a scenario file.
    pub fn load(path: &Path) -> Result<Self, MockError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| MockError::ScenarioRead { path: path.to_owned(), source })?;
        serde_json::from_str(&text)
            .map_err(|source| MockError::ScenarioParse { path: path.to_owned(), source })
    }
}
