//! `[[trigger.http]]`: Spin's normalization (generated trigger ids, inline components moved to
//! top-level components) and the checks `spin up` would make when starting the HTTP trigger.

use std::collections::{BTreeMap, BTreeSet};

use nexus_proto::app::{HttpRoute, HttpTrigger};
use nexus_proto::route;

use super::Loader;
use crate::error::{Error, Result};
use crate::ids::validate_component_id;
use crate::schema::{RawComponent, RawComponentSpec, RawHttpTrigger, RawRoute};

/// How errors name a trigger: its position, and its id when the manifest gives one.
fn trigger_name(index: usize, id: &str) -> String {
    let number = index + 1;
    if id.is_empty() {
        format!("`[[trigger.http]]` #{number}")
    } else {
        format!("`[[trigger.http]]` #{number} (id `{id}`)")
    }
}

/// A public route already accepted, for duplicate detection.
struct AcceptedRoute {
    trigger: String,
    route: String,
    segments: Vec<route::Segment>,
}

impl Loader {
    /// Resolves the HTTP triggers in manifest order, moving inline components into
    /// `components`.
    pub(super) fn resolve_triggers(
        &self,
        mut raw_triggers: Vec<RawHttpTrigger>,
        components: &mut BTreeMap<String, RawComponent>,
    ) -> Result<Vec<HttpTrigger>> {
        let names: Vec<String> = raw_triggers
            .iter()
            .enumerate()
            .map(|(index, trigger)| trigger_name(index, &trigger.id))
            .collect();
        for (trigger, name) in raw_triggers.iter().zip(&names) {
            self.check_trigger_fields(trigger, name)?;
        }
        let trigger_ids = normalized_trigger_ids(&raw_triggers);

        // Spin moves every inline component to the top level before anything refers to it.
        let component_refs: Vec<Option<String>> = raw_triggers
            .iter_mut()
            .zip(&trigger_ids)
            .map(|(trigger, trigger_id)| match trigger.component.take()? {
                RawComponentSpec::Reference(id) => Some(id.into_string()),
                RawComponentSpec::Inline(inline) => {
                    let id = inline_component_id(trigger_id, components);
                    components.insert(id.clone(), *inline);
                    Some(id)
                }
            })
            .collect();

        let mut accepted: Vec<AcceptedRoute> = Vec::new();
        let mut http_triggers = Vec::with_capacity(raw_triggers.len());
        for ((trigger, name), component) in raw_triggers.iter().zip(&names).zip(component_refs) {
            let Some(component) = component else {
                return Err(Error::MissingComponent {
                    manifest: self.manifest.clone(),
                    trigger: name.clone(),
                });
            };
            if !components.contains_key(&component) {
                return Err(Error::UnknownComponent {
                    manifest: self.manifest.clone(),
                    trigger: name.clone(),
                    component,
                });
            }
            let route = match &trigger.route {
                RawRoute::Private(true) => HttpRoute::Private,
                RawRoute::Private(false) => {
                    // Spin's `Router::build` refuses `{ private = false }` the same way.
                    return Err(Error::InvalidRoute {
                        manifest: self.manifest.clone(),
                        trigger: name.clone(),
                        route: "{ private = false }".to_owned(),
                        reason: "a route must be a string pattern or `{ private = true }`"
                            .to_owned(),
                    });
                }
                RawRoute::Path(pattern) => {
                    accepted.push(self.check_route(name, pattern, &accepted)?);
                    HttpRoute::Path(pattern.clone())
                }
            };
            http_triggers.push(HttpTrigger { route, component });
        }
        Ok(http_triggers)
    }

    /// Refuses the trigger fields the runtime does not implement.
    fn check_trigger_fields(&self, trigger: &RawHttpTrigger, name: &str) -> Result<()> {
        let unsupported = |field: &'static str| Error::UnsupportedField {
            manifest: self.manifest.clone(),
            owner: name.to_owned(),
            field,
        };
        if trigger.static_response.is_some() {
            return Err(unsupported("static_response"));
        }
        if !trigger.components.is_empty() {
            return Err(unsupported("components"));
        }
        if !trigger.dependencies.is_empty() {
            return Err(unsupported("dependencies"));
        }
        if let Some(executor) = &trigger.executor {
            // `HttpExecutorType`: `http`, its alias `spin`, or `wagi`.
            match executor.kind.as_str() {
                "http" | "spin" => {
                    if executor.entrypoint.is_some() {
                        return Err(unsupported("executor.entrypoint"));
                    }
                    if executor.argv.is_some() {
                        return Err(unsupported("executor.argv"));
                    }
                }
                other => {
                    return Err(Error::UnsupportedExecutor {
                        manifest: self.manifest.clone(),
                        trigger: name.to_owned(),
                        executor: other.to_owned(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Checks a route the way the edge node's router will: it must parse, be matchable, and
    /// not match exactly the same paths as an earlier route.
    fn check_route(
        &self,
        name: &str,
        pattern: &str,
        accepted: &[AcceptedRoute],
    ) -> Result<AcceptedRoute> {
        let segments =
            route::parse(&route::based_route(pattern)).map_err(|error| Error::InvalidRoute {
                manifest: self.manifest.clone(),
                trigger: name.to_owned(),
                route: pattern.to_owned(),
                reason: error.to_string(),
            })?;
        if let Some(previous) = accepted
            .iter()
            .find(|previous| route::same_shape(&previous.segments, &segments))
        {
            return Err(Error::DuplicateRoute {
                manifest: self.manifest.clone(),
                trigger: name.to_owned(),
                route: pattern.to_owned(),
                previous_trigger: previous.trigger.clone(),
                previous_route: previous.route.clone(),
            });
        }
        Ok(AcceptedRoute {
            trigger: name.to_owned(),
            route: pattern.to_owned(),
            segments,
        })
    }
}

/// Trigger ids as Spin's `normalize_trigger_ids` assigns them (`spin-manifest`,
/// `src/normalize.rs`): the id given, else `<component>-http-trigger` for a trigger that names
/// its component, else the first free `http-trigger<N>`. They only matter for naming inline
/// components.
fn normalized_trigger_ids(triggers: &[RawHttpTrigger]) -> Vec<String> {
    let mut taken: BTreeSet<String> = triggers.iter().map(|t| t.id.clone()).collect();
    let mut counter = 1;
    triggers
        .iter()
        .map(|trigger| {
            if !trigger.id.is_empty() {
                return trigger.id.clone();
            }
            if let Some(RawComponentSpec::Reference(component)) = &trigger.component {
                let natural = format!("{component}-http-trigger");
                if taken.insert(natural.clone()) {
                    return natural;
                }
            }
            loop {
                let candidate = format!("http-trigger{counter}");
                if taken.insert(candidate.clone()) {
                    return candidate;
                }
                counter += 1;
            }
        })
        .collect()
}

/// The id Spin's `normalize_inline_components` gives an inline component: `<trigger id>-component`
/// when that is a valid, unused component id, else the first free `inline-component<N>`.
fn inline_component_id(trigger_id: &str, components: &BTreeMap<String, RawComponent>) -> String {
    let natural = format!("{trigger_id}-component");
    if validate_component_id(&natural).is_ok() && !components.contains_key(&natural) {
        return natural;
    }
    (1..)
        .map(|counter| format!("inline-component{counter}"))
        .find(|candidate| !components.contains_key(candidate))
        .unwrap_or_default()
}
