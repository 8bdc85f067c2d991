//! An organisation trail's accounts, listed from AWS Organizations when a
//! forwarder starts (`ORG_TRAIL=true`, which `deploy --organization-trail`
//! sets): a snapshot shared with a member account is not shared outside,
//! and an account that joins later counts from the next cold start.

/// Why the organisation's accounts could not be listed.
#[derive(Debug, thiserror::Error)]
#[error("cannot list the organisation's accounts (organizations:ListAccounts): {0}; the rules count only ORG_ACCOUNTS and the accounts each batch shows as the organisation's, so shares with other member accounts may page")]
pub struct ListError(String);

/// The ids of the organisation's active accounts, every page of them.
pub async fn accounts(client: &aws_sdk_organizations::Client) -> Result<Vec<String>, ListError> {
    let mut out = Vec::new();
    let mut pages = client.list_accounts().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| ListError(crate::aws::error_message(&e)))?;
        out.extend(
            page.accounts()
                .iter()
                .filter(|a| {
                    a.state()
                        .is_none_or(|s| *s == aws_sdk_organizations::types::AccountState::Active)
                })
                .filter_map(|a| a.id().map(str::to_owned)),
        );
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Whether this forwarder reads an organisation trail (`ORG_TRAIL`).
pub fn from_env() -> bool {
    std::env::var("ORG_TRAIL").is_ok_and(|v| v == "true")
}
