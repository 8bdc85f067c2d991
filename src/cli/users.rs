//! `trailwatch users create|list|delete|reset`: the people who sign in to
//! Dashboards, in the stack's Cognito user pool (found from the stack's
//! outputs, or `--user-pool-id`).

use super::deploy::{prepare, StackArgs};
use super::runtime;
use super::EXIT_OK;
use crate::deploy::outputs::StackOutputs;
use crate::deploy::stack::Stacks;
use crate::users::{Created, Users};
use anyhow::Context;
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a dashboard user (a reader, or with --admin an administrator);
    /// Cognito emails a temporary password.
    #[command(
        after_help = "Examples:\n  trailwatch users create alice@example.com\n  trailwatch users create bob@example.com --admin --prefix acme"
    )]
    Create(CreateArgs),
    /// List the dashboard users with their status and groups.
    List(PoolArgs),
    /// Delete a dashboard user (asks first, unless --yes).
    #[command(
        after_help = "Examples:\n  trailwatch users delete alice@example.com\n  trailwatch users delete alice@example.com --yes --prefix acme"
    )]
    Delete(DeleteArgs),
    /// Send a user a new temporary password (or the invitation again).
    Reset(EmailArgs),
}

/// Which user pool.
#[derive(Debug, Args)]
pub struct PoolArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    /// The Cognito user pool [default: the stack's UserPoolId output].
    #[arg(long, value_name = "ID")]
    pub user_pool_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The user's email address (their sign-in name).
    pub email: String,
    /// Add the user to the opensearch-admin group (full access) instead of
    /// opensearch-reader (read-only dashboards).
    #[arg(long)]
    pub admin: bool,
    #[command(flatten)]
    pub pool: PoolArgs,
}

#[derive(Debug, Args)]
pub struct EmailArgs {
    /// The user's email address.
    pub email: String,
    #[command(flatten)]
    pub pool: PoolArgs,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub user: EmailArgs,
    /// Delete without asking.
    #[arg(long)]
    pub yes: bool,
}

async fn users(args: &PoolArgs) -> anyhow::Result<Users> {
    let (_, sdk, _) = prepare(&args.stack.aws).await?;
    let pool = match &args.user_pool_id {
        Some(id) => id.clone(),
        None => {
            let stacks = Stacks::new(&sdk, &args.stack.prefix);
            let stack = stacks.describe().await?.with_context(|| {
                format!(
                    "no stack named {} here to find the user pool in; pass --user-pool-id, or --prefix and --region",
                    args.stack.prefix
                )
            })?;
            StackOutputs::of(&stack).user_pool_id.with_context(|| {
                format!(
                    "stack {} has no user pool (it uses an existing domain); pass --user-pool-id",
                    stack.name
                )
            })?
        }
    };
    let users = Users {
        client: aws_sdk_cognitoidentityprovider::Client::new(&sdk),
        pool,
    };
    users.check_pool().await?;
    Ok(users)
}

pub fn run(command: UsersCommand) -> anyhow::Result<i32> {
    // A bad address is refused before any AWS call.
    if let UsersCommand::Create(CreateArgs { email, .. })
    | UsersCommand::Delete(DeleteArgs {
        user: EmailArgs { email, .. },
        ..
    })
    | UsersCommand::Reset(EmailArgs { email, .. }) = &command
    {
        crate::users::check_email(email)?;
    }
    runtime()?.block_on(async {
        match command {
            UsersCommand::Create(args) => {
                let users = users(&args.pool).await?;
                match users.create(&args.email, args.admin).await? {
                    Created::Created { group } => eprintln!(
                        "created {} in {group}; Cognito emails them a temporary password",
                        args.email.trim().to_ascii_lowercase(),
                    ),
                    Created::Exists(user) => eprintln!(
                        "{} exists already ({}{}); nothing was changed",
                        user.email,
                        user.status,
                        if user.groups.is_empty() {
                            String::new()
                        } else {
                            format!(", groups {}", user.groups.join(", "))
                        }
                    ),
                }
            }
            UsersCommand::List(args) => {
                let users = users(&args).await?;
                let all = users.list().await?;
                let width = all.iter().map(|u| u.email.len()).max().unwrap_or(5).max(5);
                println!("{:<width$}  {:<22}  groups", "email", "status");
                for u in &all {
                    let status = if u.enabled {
                        u.status.clone()
                    } else {
                        format!("{} (disabled)", u.status)
                    };
                    println!(
                        "{:<width$}  {:<22}  {}",
                        u.email,
                        status,
                        if u.groups.is_empty() {
                            "- (cannot sign in)".to_owned()
                        } else {
                            u.groups.join(", ")
                        }
                    );
                }
                eprintln!("{} user(s) in {}", all.len(), users.pool);
            }
            UsersCommand::Delete(DeleteArgs { user, yes }) => {
                let users = users(&user.pool).await?;
                let email = user.email.trim().to_ascii_lowercase();
                let question = format!(
                    "Delete dashboard user {email} from user pool {}? They can no longer sign in.",
                    users.pool
                );
                if !yes && !super::deploy::confirm(&question).context(
                    "cannot read the answer from standard input; pass --yes to skip the question",
                )? {
                    eprintln!("declined: nothing was deleted");
                    return Ok(EXIT_OK);
                }
                users.delete(&user.email).await?;
                eprintln!("deleted {email}");
            }
            UsersCommand::Reset(args) => {
                let users = users(&args.pool).await?;
                let what = users.reset(&args.email).await?;
                eprintln!("{}: {what}", args.email.trim().to_ascii_lowercase());
            }
        }
        Ok(EXIT_OK)
    })
}
