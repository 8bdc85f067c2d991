//! Which role a dashboard user gets at sign-in: the identity pool's role
//! mapping. OpenSearch Service signs users in to Dashboards through an app
//! client it creates in the user pool when the domain is made, so the
//! mapping can only be set once the domain exists (the bootstrap custom
//! resource does it). Each of the domain's providers maps roles by token
//! with ambiguous roles denied: a member of `opensearch-admin` gets the
//! admin role (the group's role, first by precedence), a member of
//! `opensearch-reader` the read-only role, and nobody gets the admin role
//! any other way. The decision is pure ([`desired`], [`plan`]); [`reconcile`]
//! is the Cognito edge.

use aws_sdk_cognitoidentity::types::{AmbiguousRoleResolutionType, RoleMapping, RoleMappingType};
use aws_sdk_cognitoidentity::Client;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A role mapping as the identity pool keeps it (only the parts we set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// `Token` or `Rules`.
    pub kind: String,
    /// `Deny` or `AuthenticatedRole`, when set.
    pub ambiguous: Option<String>,
}

impl Mapping {
    /// Roles from the token's `cognito:roles`/`cognito:preferred_role`,
    /// ambiguous roles denied.
    pub fn by_token() -> Mapping {
        Mapping {
            kind: "Token".into(),
            ambiguous: Some("Deny".into()),
        }
    }
}

/// What an identity pool hands out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolRoles {
    /// The default roles by kind (`authenticated`, `unauthenticated`).
    pub roles: BTreeMap<String, String>,
    /// Mappings by provider key (`cognito-idp.REGION.amazonaws.com/POOL:CLIENT`).
    pub mappings: BTreeMap<String, Mapping>,
}

/// One authentication provider of the identity pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// `cognito-idp.REGION.amazonaws.com/USER_POOL_ID`.
    pub name: String,
    pub client_id: String,
}

impl Provider {
    /// The key a role mapping of this provider has.
    pub fn key(&self) -> String {
        format!("{}:{}", self.name, self.client_id)
    }
}

/// What the role mapping step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The mapping was set; the provider keys it maps.
    Set(Vec<String>),
    /// It was as wanted already.
    Unchanged(Vec<String>),
}

/// Why the mapping could not be set.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("identity pool {pool} has no app client of user pool {user_pool} after {waited} s: the OpenSearch domain adds one when Cognito sign-in is enabled; check the domain's CognitoOptions, then update the stack")]
    NoProvider {
        pool: String,
        user_pool: String,
        waited: u64,
    },
    #[error("Cognito {action} on identity pool {pool}: {message}")]
    Cognito {
        action: &'static str,
        pool: String,
        message: String,
    },
}

/// The providers that sign users of `user_pool_id` in (the domain's app
/// client; more if someone added another client of the same pool).
pub fn providers_of<'a>(providers: &'a [Provider], user_pool_id: &str) -> Vec<&'a Provider> {
    providers
        .iter()
        .filter(|p| p.name.rsplit('/').next() == Some(user_pool_id))
        .collect()
}

/// The roles the pool should hand out: `reader_role` by default, and every
/// provider of `user_pool_id` mapped by token with ambiguous roles denied.
/// Mappings of other providers are kept as they are. `None` when the
/// domain has not added its app client yet.
pub fn desired(
    existing: &PoolRoles,
    providers: &[Provider],
    user_pool_id: &str,
    reader_role: &str,
) -> Option<PoolRoles> {
    let ours = providers_of(providers, user_pool_id);
    if ours.is_empty() {
        return None;
    }
    let mut want = existing.clone();
    want.roles
        .insert("authenticated".into(), reader_role.to_owned());
    for p in ours {
        want.mappings.insert(p.key(), Mapping::by_token());
    }
    Some(want)
}

/// Whether `existing` has to be set to `want`.
pub fn plan(existing: &PoolRoles, want: &PoolRoles) -> bool {
    existing != want
}

/// The identity pool's providers, as Cognito describes the pool.
async fn providers(client: &Client, pool: &str) -> Result<Vec<Provider>, SignInError> {
    let d = client
        .describe_identity_pool()
        .identity_pool_id(pool)
        .send()
        .await
        .map_err(|e| SignInError::Cognito {
            action: "DescribeIdentityPool",
            pool: pool.to_owned(),
            message: crate::aws::error_message(&e),
        })?;
    Ok(d.cognito_identity_providers()
        .iter()
        .filter_map(|p| {
            Some(Provider {
                name: p.provider_name()?.to_owned(),
                client_id: p.client_id()?.to_owned(),
            })
        })
        .collect())
}

/// The roles the identity pool hands out now.
async fn current(client: &Client, pool: &str) -> Result<PoolRoles, SignInError> {
    let r = client
        .get_identity_pool_roles()
        .identity_pool_id(pool)
        .send()
        .await
        .map_err(|e| SignInError::Cognito {
            action: "GetIdentityPoolRoles",
            pool: pool.to_owned(),
            message: crate::aws::error_message(&e),
        })?;
    Ok(PoolRoles {
        roles: r
            .roles()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        mappings: r
            .role_mappings()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        let mapping = Mapping {
                            kind: v.r#type().as_str().to_owned(),
                            ambiguous: v.ambiguous_role_resolution().map(|a| a.as_str().to_owned()),
                        };
                        (k.clone(), mapping)
                    })
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// Sets the pool's roles to `want`. The call replaces every mapping, so
/// `want` carries other providers' too; a `Rules` mapping, whose rules
/// trailwatch does not read, is refused rather than lost.
async fn set(client: &Client, pool: &str, want: &PoolRoles) -> Result<(), SignInError> {
    let failed = |message: String| SignInError::Cognito {
        action: "SetIdentityPoolRoles",
        pool: pool.to_owned(),
        message,
    };
    let mut call = client.set_identity_pool_roles().identity_pool_id(pool);
    for (kind, role) in &want.roles {
        call = call.roles(kind, role);
    }
    for (key, m) in &want.mappings {
        if m.kind != "Token" {
            return Err(failed(format!(
                "the mapping of {key} is of type {}, which trailwatch does not rewrite; remove it or map it by token",
                m.kind
            )));
        }
        let mapping = RoleMapping::builder()
            .r#type(RoleMappingType::Token)
            .set_ambiguous_role_resolution(
                m.ambiguous
                    .as_deref()
                    .map(AmbiguousRoleResolutionType::from),
            )
            .build()
            .map_err(|e| failed(e.to_string()))?;
        call = call.role_mappings(key, mapping);
    }
    call.send()
        .await
        .map(|_| ())
        .map_err(|e| failed(crate::aws::error_message(&e)))
}

/// Maps the domain's providers by token, ambiguous roles denied, with
/// `reader_role` as the default. Waits up to `wait` for the domain's app
/// client to appear in the identity pool; sets the roles only when they
/// differ from what is there.
pub async fn reconcile(
    client: &Client,
    identity_pool: &str,
    user_pool: &str,
    reader_role: &str,
    wait: Duration,
) -> Result<Outcome, SignInError> {
    let started = Instant::now();
    let providers = loop {
        let all = providers(client, identity_pool).await?;
        if !providers_of(&all, user_pool).is_empty() {
            break all;
        }
        if started.elapsed() >= wait {
            return Err(SignInError::NoProvider {
                pool: identity_pool.to_owned(),
                user_pool: user_pool.to_owned(),
                waited: started.elapsed().as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_secs(5).min(wait)).await;
    };
    let existing = current(client, identity_pool).await?;
    let want = desired(&existing, &providers, user_pool, reader_role)
        .expect("the providers include the user pool's");
    let keys = providers_of(&providers, user_pool)
        .iter()
        .map(|p| p.key())
        .collect();
    if !plan(&existing, &want) {
        return Ok(Outcome::Unchanged(keys));
    }
    set(client, identity_pool, &want).await?;
    Ok(Outcome::Set(keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER_POOL: &str = "us-east-1_AbCdEf123";
    const READER: &str = "arn:aws:iam::123456789012:role/trailwatch-dashboards-read-only";

    fn domain_client() -> Provider {
        Provider {
            name: format!("cognito-idp.us-east-1.amazonaws.com/{USER_POOL}"),
            client_id: "4kd8a1example0domainclient".into(),
        }
    }

    #[test]
    fn the_domains_client_is_mapped_by_token_with_ambiguous_roles_denied() {
        let existing = PoolRoles {
            roles: [("authenticated".to_owned(), READER.to_owned())].into(),
            mappings: BTreeMap::new(),
        };
        let want = desired(&existing, &[domain_client()], USER_POOL, READER).unwrap();
        assert_eq!(
            want.mappings,
            BTreeMap::from([(
                format!(
                    "cognito-idp.us-east-1.amazonaws.com/{USER_POOL}:4kd8a1example0domainclient"
                ),
                Mapping {
                    kind: "Token".into(),
                    ambiguous: Some("Deny".into())
                }
            )])
        );
        assert_eq!(want.roles["authenticated"], READER);
        assert!(plan(&existing, &want), "the mapping is missing: set it");
        assert!(!plan(&want, &want), "as wanted: leave it alone");
    }

    #[test]
    fn a_mapping_that_falls_back_to_the_default_role_is_corrected() {
        let key = domain_client().key();
        let existing = PoolRoles {
            roles: [("authenticated".to_owned(), READER.to_owned())].into(),
            mappings: [(
                key.clone(),
                Mapping {
                    kind: "Token".into(),
                    ambiguous: Some("AuthenticatedRole".into()),
                },
            )]
            .into(),
        };
        let want = desired(&existing, &[domain_client()], USER_POOL, READER).unwrap();
        assert_eq!(want.mappings[&key], Mapping::by_token());
        assert!(plan(&existing, &want));
    }

    #[test]
    fn other_pools_clients_are_not_ours_and_their_mappings_stay() {
        let other = Provider {
            name: "cognito-idp.us-east-1.amazonaws.com/us-east-1_Other0001".into(),
            client_id: "otherclient".into(),
        };
        let theirs = Mapping {
            kind: "Token".into(),
            ambiguous: Some("AuthenticatedRole".into()),
        };
        let existing = PoolRoles {
            roles: BTreeMap::new(),
            mappings: [(other.key(), theirs.clone())].into(),
        };
        // Only another pool's client: the domain has not added its own yet.
        assert_eq!(
            desired(&existing, std::slice::from_ref(&other), USER_POOL, READER),
            None
        );
        let want = desired(
            &existing,
            &[other.clone(), domain_client()],
            USER_POOL,
            READER,
        )
        .unwrap();
        assert_eq!(want.mappings[&other.key()], theirs);
        assert_eq!(want.mappings[&domain_client().key()], Mapping::by_token());
        // A pool id that only ends like ours is not ours.
        let lookalike = Provider {
            name: format!("cognito-idp.us-east-1.amazonaws.com/x{USER_POOL}"),
            client_id: "c".into(),
        };
        assert!(providers_of(&[lookalike], USER_POOL).is_empty());
    }
}
