//! Where a function runs: on edge nodes, in a cloud, or `auto` (edge nodes first, the cloud
//! when none can take a call), and the cloud targets it may use.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a function's invocations go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PlacementMode {
    /// Edge nodes only (the default).
    #[default]
    Edge,
    /// The function's AWS Lambda target only.
    AwsLambda,
    /// Edge nodes first; the function's cloud target when no edge node can take the call.
    Auto,
}

impl PlacementMode {
    /// The name the API and the store use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Edge => "edge",
            Self::AwsLambda => "aws-lambda",
            Self::Auto => "auto",
        }
    }
}

impl fmt::Display for PlacementMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A placement name this coordinator does not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// Not a placement at all.
    #[error("unknown placement `{0}`: use edge, aws-lambda or auto")]
    Unknown(String),
    /// A cloud this coordinator cannot dispatch to yet.
    #[error("placement `{0}` is not available yet: use edge, aws-lambda or auto")]
    NotYet(String),
    /// Cloud targets that do not fit the placement or are malformed.
    #[error("{0}")]
    Targets(String),
}

impl FromStr for PlacementMode {
    type Err = PlacementError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "edge" => Ok(Self::Edge),
            "aws-lambda" => Ok(Self::AwsLambda),
            "auto" => Ok(Self::Auto),
            "azure-functions" | "gcp" => Err(PlacementError::NotYet(text.to_owned())),
            other => Err(PlacementError::Unknown(other.to_owned())),
        }
    }
}

/// A function's Lambda target.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LambdaPlacement {
    /// The Lambda function's name or ARN: it runs `nexus-edge lambda` with a bundle of this
    /// function's app (`nexus bundle --for lambda --namespace <project id>`).
    #[schema(example = "shop-checkout")]
    pub function: String,
    /// A version or alias of it; `$LATEST` when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qualifier: Option<String>,
    /// Its region; the coordinator's (`AWS_REGION`, the profile) when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "eu-west-1")]
    pub region: Option<String>,
}

/// The clouds a function may run in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloudTargets {
    /// An AWS Lambda function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_lambda: Option<LambdaPlacement>,
}

/// A function's placement and cloud targets, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    /// Where its invocations go.
    pub mode: PlacementMode,
    /// The clouds it may use.
    pub targets: CloudTargets,
}

impl Placement {
    /// `mode` with `targets`, refused when the mode names a cloud it has no target for or a
    /// target is malformed.
    pub fn new(mode: PlacementMode, targets: CloudTargets) -> Result<Self, PlacementError> {
        if let Some(lambda) = &targets.aws_lambda {
            check_lambda(lambda)?;
        }
        if matches!(mode, PlacementMode::AwsLambda | PlacementMode::Auto)
            && targets.aws_lambda.is_none()
        {
            return Err(PlacementError::Targets(format!(
                "placement `{mode}` needs a cloud target: give cloud.aws_lambda"
            )));
        }
        Ok(Self { mode, targets })
    }

    /// The placement stored for a function. A stored value this coordinator cannot read
    /// keeps the function on the edge, where it ran before it had a placement.
    pub fn of_function(function: &nexus_store::Function) -> Self {
        let targets = serde_json::from_value::<CloudTargets>(serde_json::Value::Object(
            function.cloud_targets.clone(),
        ));
        let placed = function
            .placement
            .parse::<PlacementMode>()
            .map_err(|error| error.to_string())
            .and_then(|mode| {
                let targets = targets.map_err(|error| error.to_string())?;
                Self::new(mode, targets).map_err(|error| error.to_string())
            });
        placed.unwrap_or_else(|error| {
            tracing::warn!(%error, function_id = %function.id, "stored placement unreadable, using the edge");
            Self::default()
        })
    }

    /// The targets as the store keeps them.
    pub fn stored_targets(&self) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::to_value(&self.targets) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        }
    }
}

/// A Lambda function name or ARN, qualifier and region as AWS allows them.
fn check_lambda(lambda: &LambdaPlacement) -> Result<(), PlacementError> {
    let allowed = |text: &str, extra: &[char]| {
        text.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || extra.contains(&c))
    };
    let bad = |what: &str| Err(PlacementError::Targets(format!("cloud.aws_lambda.{what}")));
    if lambda.function.is_empty()
        || lambda.function.len() > 170
        || !allowed(&lambda.function, &[':', '.', '$'])
    {
        return bad("function is not a Lambda function name or ARN");
    }
    if let Some(qualifier) = &lambda.qualifier
        && (qualifier.is_empty() || qualifier.len() > 128 || !allowed(qualifier, &['$']))
    {
        return bad("qualifier is not a version or alias");
    }
    if let Some(region) = &lambda.region
        && (region.is_empty() || region.len() > 32 || !allowed(region, &[]))
    {
        return bad("region is not a region name");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lambda(function: &str) -> CloudTargets {
        CloudTargets {
            aws_lambda: Some(LambdaPlacement {
                function: function.to_owned(),
                qualifier: None,
                region: Some("eu-west-1".to_owned()),
            }),
        }
    }

    #[test]
    fn a_cloud_placement_needs_its_target() {
        assert!(Placement::new(PlacementMode::Edge, CloudTargets::default()).is_ok());
        for mode in [PlacementMode::AwsLambda, PlacementMode::Auto] {
            assert!(matches!(
                Placement::new(mode, CloudTargets::default()),
                Err(PlacementError::Targets(_))
            ));
            assert!(Placement::new(mode, lambda("shop-checkout")).is_ok());
        }
        assert!(
            Placement::new(
                PlacementMode::Auto,
                lambda("arn:aws:lambda:eu-west-1:123456789012:function:shop")
            )
            .is_ok()
        );
        for bad in ["", "has space", "semi;colon", &"x".repeat(171)] {
            assert!(
                Placement::new(PlacementMode::Auto, lambda(bad)).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn names_parse_and_clouds_not_yet_run_say_so() {
        for mode in [
            PlacementMode::Edge,
            PlacementMode::AwsLambda,
            PlacementMode::Auto,
        ] {
            assert_eq!(mode.as_str().parse::<PlacementMode>(), Ok(mode));
        }
        assert!(matches!(
            "gcp".parse::<PlacementMode>(),
            Err(PlacementError::NotYet(_))
        ));
        assert!(matches!(
            "moon".parse::<PlacementMode>(),
            Err(PlacementError::Unknown(_))
        ));
    }

    #[test]
    fn targets_round_trip_through_the_stored_object() {
        let placement = Placement::new(PlacementMode::Auto, lambda("f")).unwrap();
        let stored = placement.stored_targets();
        assert_eq!(stored["aws_lambda"]["function"], "f");
        let back: CloudTargets = serde_json::from_value(serde_json::Value::Object(stored)).unwrap();
        assert_eq!(back, placement.targets);
    }
}
