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
    /// The function's Azure Functions target only.
    AzureFunctions,
    /// The function's Cloud Run target only.
    Gcp,
    /// Edge nodes first; the function's cloud target when no edge node can take the call.
    Auto,
}

impl PlacementMode {
    /// The name the API and the store use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Edge => "edge",
            Self::AwsLambda => "aws-lambda",
            Self::AzureFunctions => "azure-functions",
            Self::Gcp => "gcp",
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
    #[error("unknown placement `{0}`: use edge, aws-lambda, azure-functions, gcp or auto")]
    Unknown(String),
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
            "azure-functions" => Ok(Self::AzureFunctions),
            "gcp" => Ok(Self::Gcp),
            "auto" => Ok(Self::Auto),
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

/// A function's Azure Functions target: a function app running `nexus-edge azure` with a
/// bundle of this function's app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AzurePlacement {
    /// The function app's base URL (`https://`; `http://` only on loopback).
    #[schema(example = "https://shop-checkout.azurewebsites.net")]
    pub url: String,
    /// The secret holding the app's function key (`NEXUS_SECRET_<NAME>` on the coordinator).
    #[schema(example = "shop-azure-key")]
    pub key_secret: String,
    /// The secret holding the handler's `NEXUS_INVOKE_TOKEN`.
    #[schema(example = "shop-azure-token")]
    pub invoke_token_secret: String,
}

/// A function's Cloud Run (or Cloud Functions 2nd gen) target: a service running
/// `nexus-edge cloud-run` with a bundle of this function's app, called with an ID token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GcpPlacement {
    /// The service's base URL (`https://`; `http://` only on loopback).
    #[schema(example = "https://shop-checkout-abc123-ew.a.run.app")]
    pub url: String,
    /// The audience the ID token is for; the URL when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// The secret holding the JSON key of a service account allowed to invoke the service.
    #[schema(example = "shop-gcp-invoker")]
    pub service_account_secret: String,
    /// The secret holding the service's `NEXUS_INVOKE_TOKEN`.
    #[schema(example = "shop-gcp-token")]
    pub invoke_token_secret: String,
}

/// The clouds a function may run in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloudTargets {
    /// An AWS Lambda function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_lambda: Option<LambdaPlacement>,
    /// An Azure function app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_functions: Option<AzurePlacement>,
    /// A Cloud Run service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcp: Option<GcpPlacement>,
}

/// One cloud target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloudTarget<'a> {
    /// An AWS Lambda function.
    Lambda(&'a LambdaPlacement),
    /// An Azure function app.
    Azure(&'a AzurePlacement),
    /// A Cloud Run service.
    Gcp(&'a GcpPlacement),
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
        if let Some(azure) = &targets.azure_functions {
            check_url("azure_functions", &azure.url)?;
            check_secrets(
                "azure_functions",
                &[
                    ("key_secret", &azure.key_secret),
                    ("invoke_token_secret", &azure.invoke_token_secret),
                ],
            )?;
        }
        if let Some(gcp) = &targets.gcp {
            check_url("gcp", &gcp.url)?;
            if gcp
                .audience
                .as_ref()
                .is_some_and(|audience| audience.is_empty() || audience.len() > 512)
            {
                return Err(PlacementError::Targets(
                    "cloud.gcp.audience is empty or too long".to_owned(),
                ));
            }
            check_secrets(
                "gcp",
                &[
                    ("service_account_secret", &gcp.service_account_secret),
                    ("invoke_token_secret", &gcp.invoke_token_secret),
                ],
            )?;
        }
        let placement = Self { mode, targets };
        if mode != PlacementMode::Edge && placement.cloud().is_none() {
            let needed = match mode {
                PlacementMode::AwsLambda => "cloud.aws_lambda",
                PlacementMode::AzureFunctions => "cloud.azure_functions",
                PlacementMode::Gcp => "cloud.gcp",
                PlacementMode::Edge | PlacementMode::Auto => {
                    "cloud.aws_lambda, cloud.azure_functions or cloud.gcp"
                }
            };
            return Err(PlacementError::Targets(format!(
                "placement `{mode}` needs a cloud target: give {needed}"
            )));
        }
        Ok(placement)
    }

    /// The cloud target invocations go to when they go to a cloud: the placement's own, or
    /// for `auto` the first of the Lambda, Azure and Cloud Run targets it has.
    pub fn cloud(&self) -> Option<CloudTarget<'_>> {
        let lambda = self.targets.aws_lambda.as_ref().map(CloudTarget::Lambda);
        let azure = self
            .targets
            .azure_functions
            .as_ref()
            .map(CloudTarget::Azure);
        let gcp = self.targets.gcp.as_ref().map(CloudTarget::Gcp);
        match self.mode {
            PlacementMode::Edge => None,
            PlacementMode::AwsLambda => lambda,
            PlacementMode::AzureFunctions => azure,
            PlacementMode::Gcp => gcp,
            PlacementMode::Auto => lambda.or(azure).or(gcp),
        }
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

/// A base URL the coordinator may send credentials to: `https://`, or `http://` on loopback,
/// without credentials, path, query or fragment.
fn check_url(target: &str, url: &str) -> Result<(), PlacementError> {
    let acceptable = url::Url::parse(url).is_ok_and(|url| {
        let loopback = matches!(
            url.host(),
            Some(url::Host::Domain("localhost"))
                | Some(url::Host::Ipv4(std::net::Ipv4Addr::LOCALHOST))
                | Some(url::Host::Ipv6(std::net::Ipv6Addr::LOCALHOST))
        );
        (url.scheme() == "https" || (url.scheme() == "http" && loopback))
            && url.host().is_some()
            && url.username().is_empty()
            && url.password().is_none()
            && url.query().is_none()
            && url.fragment().is_none()
            && matches!(url.path(), "" | "/")
    });
    if acceptable {
        Ok(())
    } else {
        Err(PlacementError::Targets(format!(
            "cloud.{target}.url is not an https:// base URL (http:// only on loopback), without path, query or credentials"
        )))
    }
}

/// Secret names, by field.
fn check_secrets(target: &str, names: &[(&str, &String)]) -> Result<(), PlacementError> {
    for (field, name) in names {
        if let Err(error) = crate::secrets::check_name(name) {
            return Err(PlacementError::Targets(format!(
                "cloud.{target}.{field}: {error}"
            )));
        }
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
            azure_functions: None,
            gcp: None,
        }
    }

    fn azure(url: &str) -> CloudTargets {
        CloudTargets {
            aws_lambda: None,
            azure_functions: Some(AzurePlacement {
                url: url.to_owned(),
                key_secret: "shop-key".to_owned(),
                invoke_token_secret: "shop-token".to_owned(),
            }),
            gcp: None,
        }
    }

    #[test]
    fn azure_targets_need_https_and_secret_names() {
        for good in [
            "https://shop.azurewebsites.net",
            "https://shop.azurewebsites.net/",
            "http://127.0.0.1:7071",
        ] {
            let placed = Placement::new(PlacementMode::AzureFunctions, azure(good)).unwrap();
            assert!(matches!(placed.cloud(), Some(CloudTarget::Azure(_))));
        }
        for bad in [
            "http://shop.example",
            "https://u:p@shop.example",
            "https://shop.example/api",
            "not a url",
        ] {
            assert!(
                Placement::new(PlacementMode::AzureFunctions, azure(bad)).is_err(),
                "{bad}"
            );
        }
        let mut targets = azure("https://shop.example");
        if let Some(azure) = &mut targets.azure_functions {
            azure.key_secret = "Not A Name".to_owned();
        }
        assert!(Placement::new(PlacementMode::AzureFunctions, targets).is_err());
        // `auto` prefers Lambda when both are given.
        let both = CloudTargets {
            azure_functions: azure("https://shop.example").azure_functions,
            ..lambda("f")
        };
        let auto = Placement::new(PlacementMode::Auto, both).unwrap();
        assert!(matches!(auto.cloud(), Some(CloudTarget::Lambda(_))));
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
    fn names_parse_and_each_cloud_placement_finds_its_target() {
        for mode in [
            PlacementMode::Edge,
            PlacementMode::AwsLambda,
            PlacementMode::AzureFunctions,
            PlacementMode::Gcp,
            PlacementMode::Auto,
        ] {
            assert_eq!(mode.as_str().parse::<PlacementMode>(), Ok(mode));
        }
        let gcp = CloudTargets {
            gcp: Some(GcpPlacement {
                url: "https://shop-abc-ew.a.run.app".to_owned(),
                audience: None,
                service_account_secret: "shop-invoker".to_owned(),
                invoke_token_secret: "shop-token".to_owned(),
            }),
            ..CloudTargets::default()
        };
        let placed = Placement::new(PlacementMode::Gcp, gcp.clone()).unwrap();
        assert!(matches!(placed.cloud(), Some(CloudTarget::Gcp(_))));
        let auto = Placement::new(PlacementMode::Auto, gcp).unwrap();
        assert!(matches!(auto.cloud(), Some(CloudTarget::Gcp(_))));
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
