//! Dashboard users: the people who sign in to OpenSearch Dashboards, kept in
//! the stack's Cognito user pool. Users are admin-created with an emailed
//! temporary password, in the `opensearch-reader` group (read-only), or
//! with `--admin` in `opensearch-admin` (full access): at sign-in the
//! identity pool gives each the role of its group and nobody anything else
//! ([`sign_in`]). The email check is pure; the rest is the Cognito edge.

pub mod sign_in;

use aws_sdk_cognitoidentityprovider::types::{
    AttributeType, DeliveryMediumType, MessageActionType,
};
use aws_sdk_cognitoidentityprovider::Client;

/// The Cognito group whose members administer the cluster.
pub const ADMIN_GROUP: &str = "opensearch-admin";
/// The Cognito group whose members read the dashboards. A user in no group
/// gets no role at sign-in (the mapping by token denies it).
pub const READER_GROUP: &str = "opensearch-reader";

/// The group a new user joins.
pub fn group_for(admin: bool) -> &'static str {
    if admin {
        ADMIN_GROUP
    } else {
        READER_GROUP
    }
}

/// A Cognito call that failed, or a user that is not as asked.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error(
        "{0:?} is not an email address; users sign in with their email, like alice@example.com"
    )]
    InvalidEmail(String),
    #[error("no user {email} in user pool {pool}; `trailwatch users list` shows who is there")]
    Unknown { email: String, pool: String },
    #[error("no user pool {pool} here ({message}); check --user-pool-id, --region and --profile, or deploy the stack first")]
    NoPool { pool: String, message: String },
    #[error("user pool {pool} has no group {group}, so {email} was created in no group and cannot sign in; run trailwatch deploy to update the stack (it adds the group), then `trailwatch users delete {email}` and create them again")]
    NoGroup {
        group: &'static str,
        email: String,
        pool: String,
    },
    #[error("Cognito {action} for {email} in user pool {pool}: {message}")]
    Cognito {
        action: &'static str,
        email: String,
        pool: String,
        message: String,
    },
}

/// Checks an email address the way Cognito's `email` attribute wants one:
/// one `@`, a local part, a domain with a dot, no spaces, at most 254
/// characters. Returns it lowercased (Cognito compares emails so).
pub fn check_email(email: &str) -> Result<String, UserError> {
    let bad = || UserError::InvalidEmail(email.to_owned());
    let email = email.trim();
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if local.is_empty()
        || local.len() > 64
        || domain.contains('@')
        || labels.len() < 2
        || !labels.iter().all(label_ok)
    {
        return Err(bad());
    }
    Ok(email.to_ascii_lowercase())
}

/// One user as `list` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub email: String,
    /// Cognito's status: FORCE_CHANGE_PASSWORD until the first sign-in, then CONFIRMED.
    pub status: String,
    pub enabled: bool,
    pub groups: Vec<String>,
}

/// What `create` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    /// Created, in this group.
    Created { group: &'static str },
    /// The user was there already; nothing was changed.
    Exists(User),
}

/// The users of one pool.
pub struct Users {
    pub client: Client,
    pub pool: String,
}

fn code<E, R>(err: &aws_sdk_cognitoidentityprovider::error::SdkError<E, R>) -> Option<String>
where
    E: aws_sdk_cognitoidentityprovider::error::ProvideErrorMetadata,
{
    err.as_service_error()
        .and_then(|s| s.code())
        .map(str::to_owned)
}

impl Users {
    fn failed<E>(
        &self,
        action: &'static str,
        email: &str,
        err: &aws_sdk_cognitoidentityprovider::error::SdkError<E>,
    ) -> UserError
    where
        E: aws_sdk_cognitoidentityprovider::error::ProvideErrorMetadata
            + std::error::Error
            + 'static,
    {
        match code(err).as_deref() {
            Some("UserNotFoundException") => UserError::Unknown {
                email: email.to_owned(),
                pool: self.pool.clone(),
            },
            Some("ResourceNotFoundException") => UserError::NoPool {
                pool: self.pool.clone(),
                message: crate::aws::error_message(err),
            },
            _ => UserError::Cognito {
                action,
                email: email.to_owned(),
                pool: self.pool.clone(),
                message: crate::aws::error_message(err),
            },
        }
    }

    /// Checks that the pool exists.
    pub async fn check_pool(&self) -> Result<(), UserError> {
        self.client
            .describe_user_pool()
            .user_pool_id(&self.pool)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| match code(&e).as_deref() {
                Some("ResourceNotFoundException") | None => UserError::NoPool {
                    pool: self.pool.clone(),
                    message: crate::aws::error_message(&e),
                },
                _ => self.failed("DescribeUserPool", "", &e),
            })
    }

    /// One user, or `None`.
    pub async fn get(&self, email: &str) -> Result<Option<User>, UserError> {
        match self
            .client
            .admin_get_user()
            .user_pool_id(&self.pool)
            .username(email)
            .send()
            .await
        {
            Ok(u) => {
                let groups = self.groups(email).await?;
                Ok(Some(User {
                    email: email.to_owned(),
                    status: u
                        .user_status()
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_default(),
                    enabled: u.enabled(),
                    groups,
                }))
            }
            Err(e) if code(&e).as_deref() == Some("UserNotFoundException") => Ok(None),
            Err(e) => Err(self.failed("AdminGetUser", email, &e)),
        }
    }

    async fn groups(&self, email: &str) -> Result<Vec<String>, UserError> {
        let answer = self
            .client
            .admin_list_groups_for_user()
            .user_pool_id(&self.pool)
            .username(email)
            .send()
            .await
            .map_err(|e| self.failed("AdminListGroupsForUser", email, &e))?;
        Ok(answer
            .groups()
            .iter()
            .filter_map(|g| g.group_name().map(str::to_owned))
            .collect())
    }

    /// Creates a user with an emailed temporary password, in the admin
    /// group with `admin`, else in the reader group. A user already there
    /// is left as is.
    pub async fn create(&self, email: &str, admin: bool) -> Result<Created, UserError> {
        let email = check_email(email)?;
        if let Some(user) = self.get(&email).await? {
            return Ok(Created::Exists(user));
        }
        let attribute = |name: &str, value: &str| {
            AttributeType::builder()
                .name(name)
                .value(value)
                .build()
                .expect("name is set")
        };
        self.client
            .admin_create_user()
            .user_pool_id(&self.pool)
            .username(&email)
            .user_attributes(attribute("email", &email))
            .user_attributes(attribute("email_verified", "true"))
            .desired_delivery_mediums(DeliveryMediumType::Email)
            .send()
            .await
            .map_err(|e| self.failed("AdminCreateUser", &email, &e))?;
        let group = group_for(admin);
        self.client
            .admin_add_user_to_group()
            .user_pool_id(&self.pool)
            .username(&email)
            .group_name(group)
            .send()
            .await
            .map_err(|e| match code(&e).as_deref() {
                // A stack from before the reader group: say how to mend it.
                Some("ResourceNotFoundException") => UserError::NoGroup {
                    group,
                    email: email.clone(),
                    pool: self.pool.clone(),
                },
                _ => self.failed("AdminAddUserToGroup", &email, &e),
            })?;
        Ok(Created::Created { group })
    }

    /// Every user, with status and groups, sorted by email.
    pub async fn list(&self) -> Result<Vec<User>, UserError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_users()
                .user_pool_id(&self.pool)
                .set_pagination_token(token.clone())
                .send()
                .await
                .map_err(|e| self.failed("ListUsers", "", &e))?;
            for u in page.users() {
                let name = u.username().unwrap_or_default().to_owned();
                let email = u
                    .attributes()
                    .iter()
                    .find(|a| a.name() == "email")
                    .and_then(|a| a.value())
                    .unwrap_or(&name)
                    .to_owned();
                out.push(User {
                    groups: self.groups(&name).await?,
                    email,
                    status: u
                        .user_status()
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_default(),
                    enabled: u.enabled(),
                });
            }
            token = page.pagination_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        out.sort_by(|a, b| a.email.cmp(&b.email));
        Ok(out)
    }

    /// Deletes a user.
    pub async fn delete(&self, email: &str) -> Result<(), UserError> {
        let email = check_email(email)?;
        self.client
            .admin_delete_user()
            .user_pool_id(&self.pool)
            .username(&email)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.failed("AdminDeleteUser", &email, &e))
    }

    /// Sends a new temporary password: the invitation again for a user who
    /// never signed in, a password reset for one who did. Returns which.
    pub async fn reset(&self, email: &str) -> Result<&'static str, UserError> {
        let email = check_email(email)?;
        let user = self.get(&email).await?.ok_or_else(|| UserError::Unknown {
            email: email.clone(),
            pool: self.pool.clone(),
        })?;
        if user.status == "FORCE_CHANGE_PASSWORD" {
            self.client
                .admin_create_user()
                .user_pool_id(&self.pool)
                .username(&email)
                .message_action(MessageActionType::Resend)
                .desired_delivery_mediums(DeliveryMediumType::Email)
                .send()
                .await
                .map_err(|e| self.failed("AdminCreateUser (resend)", &email, &e))?;
            Ok("sent the invitation with a new temporary password again")
        } else {
            self.client
                .admin_reset_user_password()
                .user_pool_id(&self.pool)
                .username(&email)
                .send()
                .await
                .map_err(|e| self.failed("AdminResetUserPassword", &email, &e))?;
            Ok("reset the password; Cognito emails a code to choose a new one")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_and_lowercased() {
        assert_eq!(
            check_email(" Alice@Example.COM ").unwrap(),
            "alice@example.com"
        );
        assert_eq!(
            check_email("a.b+ops@sub.example.org").unwrap(),
            "a.b+ops@sub.example.org"
        );
        for bad in [
            "alice",
            "alice@",
            "@example.com",
            "alice@example",
            "a b@example.com",
            "a@b@example.com",
            "alice@-x.com",
            "alice@example..com",
        ] {
            let err = check_email(bad).unwrap_err().to_string();
            assert!(err.contains("is not an email address"), "{bad}: {err}");
        }
    }
}
