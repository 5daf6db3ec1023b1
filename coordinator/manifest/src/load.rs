//! Turns a parsed manifest into a [`ResolvedApp`], checking everything a node would otherwise
//! discover at run time.

mod components;
#[cfg(test)]
mod tests;
mod triggers;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nexus_proto::ResolvedApp;
use nexus_proto::app::VariableDefinition;

use crate::error::{Error, Result};
use crate::schema::{RawManifest, RawVariable, VersionProbe};
use crate::{LoadedApp, ids::VariableName};

/// Loads the Spin manifest at `manifest_path` (manifest version 2).
///
/// Component `source` paths are relative to the manifest's directory; each source file is read
/// to compute its digest. Fails on the first problem found, naming the file and the component,
/// trigger, variable or field at fault.
pub fn load(manifest_path: &Path) -> Result<LoadedApp> {
    Loader {
        manifest: manifest_path.to_path_buf(),
        confined: false,
    }
    .load()
}

/// [`load`] for a manifest nobody vouches for (an upload): every component `source` must be a
/// relative path that stays inside the manifest's directory, checked on the text before any
/// file is read. Otherwise a source such as `/dev/zero` or a FIFO would be read (forever) by
/// whoever loads it, and the error for a missing file would tell which host files exist.
/// The directory must hold no symbolic links leading out of it.
pub fn load_confined(manifest_path: &Path) -> Result<LoadedApp> {
    Loader {
        manifest: manifest_path.to_path_buf(),
        confined: true,
    }
    .load()
}

/// Carries the manifest path into every error.
pub(crate) struct Loader {
    pub(crate) manifest: PathBuf,
    /// Whether sources must stay inside the manifest's directory ([`load_confined`]).
    confined: bool,
}

impl Loader {
    fn load(self) -> Result<LoadedApp> {
        let read_error = |source| Error::ReadManifest {
            manifest: self.manifest.clone(),
            source,
        };
        let text = std::fs::read_to_string(&self.manifest).map_err(read_error)?;
        let manifest_dir = std::path::absolute(&self.manifest)
            .map_err(read_error)?
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        self.check_version(&text)?;
        let raw: RawManifest = toml::from_str(&text).map_err(|source| self.toml_error(source))?;
        self.resolve(raw, &manifest_dir)
    }

    fn toml_error(&self, source: toml::de::Error) -> Error {
        Error::Toml {
            manifest: self.manifest.clone(),
            source: Box::new(source),
        }
    }

    /// Spin reads the version before the rest (`ManifestVersion::detect`): `"1"` (a string) is
    /// version 1, the integer `2` is version 2. Only version 2 is supported.
    fn check_version(&self, text: &str) -> Result<()> {
        let probe: VersionProbe = toml::from_str(text).map_err(|source| self.toml_error(source))?;
        let found = match probe.spin_manifest_version {
            Some(toml::Value::Integer(2)) => return Ok(()),
            Some(toml::Value::String(version)) if version == "1" => {
                "version 1 (`spin_manifest_version = \"1\"`)".to_owned()
            }
            Some(other) => format!("`spin_manifest_version = {other}`"),
            None => "no `spin_manifest_version`".to_owned(),
        };
        Err(Error::UnsupportedManifestVersion {
            manifest: self.manifest.clone(),
            found,
        })
    }

    fn resolve(&self, raw: RawManifest, manifest_dir: &Path) -> Result<LoadedApp> {
        if let Some(trigger_type) = raw.triggers.other_types.first() {
            return Err(Error::UnsupportedTriggerType {
                manifest: self.manifest.clone(),
                trigger_type: trigger_type.clone(),
            });
        }
        // `validate_app` in spin-trigger-http: only the default base is accepted.
        if let Some(base) = raw
            .application
            .trigger_settings
            .http
            .and_then(|settings| settings.base)
            .filter(|base| base != "/")
        {
            return Err(Error::UnsupportedBase {
                manifest: self.manifest.clone(),
                base,
            });
        }

        let variables = self.resolve_variables(raw.variables)?;
        let mut raw_components: BTreeMap<String, _> = raw
            .components
            .into_iter()
            .map(|(id, component)| (id.into_string(), component))
            .collect();
        let raw_triggers = raw.triggers.http.unwrap_or_default();
        let http_triggers = self.resolve_triggers(raw_triggers, &mut raw_components)?;
        let (components, artifacts) =
            self.resolve_components(raw_components, &variables, manifest_dir)?;

        let version = Some(raw.application.version).filter(|version| !version.is_empty());
        let app = ResolvedApp {
            name: raw.application.name,
            version,
            variables,
            components,
            http_triggers,
        };
        Ok(LoadedApp { app, artifacts })
    }

    /// Application variables: a variable is `required` or has a `default`, exactly one of the
    /// two (`locked_variable` in spin-loader's `local.rs`).
    fn resolve_variables(
        &self,
        raw_variables: BTreeMap<VariableName, RawVariable>,
    ) -> Result<BTreeMap<String, VariableDefinition>> {
        raw_variables
            .into_iter()
            .map(|(name, variable)| {
                let problem = match (variable.required, &variable.default) {
                    (true, Some(_)) => Some("not both"),
                    (false, None) => Some("not neither"),
                    _ => None,
                };
                if let Some(problem) = problem {
                    return Err(Error::InvalidVariable {
                        manifest: self.manifest.clone(),
                        variable: name.into_string(),
                        problem,
                    });
                }
                let definition = VariableDefinition {
                    default: variable.default,
                    required: variable.required,
                    secret: variable.secret,
                };
                Ok((name.into_string(), definition))
            })
            .collect()
    }
}
