//! `trailwatch users`: dashboard users in a Cognito user pool, against
//! moto_server's cognito-idp.

use crate::util::node::block_on;
use crate::util::{run_trailwatch, stderr, stdout, trailwatch_aws, Server};

/// A user pool with the admin and reader groups, made directly in moto
/// (its CloudFormation skips Cognito).
fn pool(moto: &Server) -> String {
    pool_with(moto, &["opensearch-admin", "opensearch-reader"])
}

fn pool_with(moto: &Server, groups: &[&str]) -> String {
    let config = aws_sdk_cognitoidentityprovider::config::Builder::new()
        .behavior_version(aws_sdk_cognitoidentityprovider::config::BehaviorVersion::latest())
        .region(aws_sdk_cognitoidentityprovider::config::Region::new(
            "us-east-1",
        ))
        .endpoint_url(&moto.url)
        .credentials_provider(aws_sdk_cognitoidentityprovider::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .build();
    let client = aws_sdk_cognitoidentityprovider::Client::from_conf(config);
    block_on(async {
        let pool = client
            .create_user_pool()
            .pool_name("trailwatch-users")
            .send()
            .await
            .unwrap();
        let id = pool.user_pool().unwrap().id().unwrap().to_owned();
        for group in groups {
            client
                .create_group()
                .user_pool_id(&id)
                .group_name(*group)
                .send()
                .await
                .unwrap();
        }
        id
    })
}

fn users(moto: &Server, args: &[&str]) -> std::process::Output {
    let mut all = vec!["users"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--endpoint-url", &moto.url]);
    trailwatch_aws(&all, None)
}

#[test]
fn users_are_created_listed_reset_and_deleted() {
    let moto = Server::moto();
    let id = pool(&moto);
    let o = users(
        &moto,
        &["create", "Alice@Example.com", "--user-pool-id", &id],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "created alice@example.com in opensearch-reader; Cognito emails them a temporary password"
        ),
        "{}",
        stderr(&o)
    );
    let o = users(
        &moto,
        &[
            "create",
            "bob@example.com",
            "--admin",
            "--user-pool-id",
            &id,
        ],
    );
    assert!(
        stderr(&o).contains("created bob@example.com in opensearch-admin"),
        "{}",
        stderr(&o)
    );

    // Again: said, and nothing changed.
    let o = users(
        &moto,
        &[
            "create",
            "alice@example.com",
            "--admin",
            "--user-pool-id",
            &id,
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "alice@example.com exists already (FORCE_CHANGE_PASSWORD, groups opensearch-reader); nothing was changed"
        ),
        "{}",
        stderr(&o)
    );

    let o = users(&moto, &["list", "--user-pool-id", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<Vec<String>> = stdout(&o)
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect();
    assert_eq!(
        lines,
        vec![
            vec![
                "alice@example.com",
                "FORCE_CHANGE_PASSWORD",
                "opensearch-reader"
            ],
            vec![
                "bob@example.com",
                "FORCE_CHANGE_PASSWORD",
                "opensearch-admin"
            ],
        ],
        "alice was not made an admin by the second create: {}",
        stdout(&o)
    );

    let o = users(
        &moto,
        &["reset", "alice@example.com", "--user-pool-id", &id],
    );
    assert!(
        stderr(&o)
            .contains("alice@example.com: sent the invitation with a new temporary password again"),
        "{}",
        stderr(&o)
    );

    // Deleting asks, as every destructive command does; no is no.
    let delete = |answer: &str| {
        trailwatch_aws(
            &[
                "users",
                "delete",
                "alice@example.com",
                "--user-pool-id",
                &id,
                "--endpoint-url",
                &moto.url,
            ],
            Some(answer.as_bytes()),
        )
    };
    let o = delete("n\n");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "Delete dashboard user alice@example.com from user pool {id}? They can no longer sign in. [y/N] declined: nothing was deleted"
        )),
        "{}",
        stderr(&o)
    );
    let o = users(&moto, &["list", "--user-pool-id", &id]);
    assert!(stdout(&o).contains("alice@example.com"), "{}", stdout(&o));
    let o = delete("y\n");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("deleted alice@example.com"),
        "{}",
        stderr(&o)
    );
    let o = users(
        &moto,
        &[
            "delete",
            "alice@example.com",
            "--user-pool-id",
            &id,
            "--yes",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(&format!("no user alice@example.com in user pool {id}")),
        "{}",
        stderr(&o)
    );
    let o = users(
        &moto,
        &["reset", "carol@example.com", "--user-pool-id", &id],
    );
    assert!(
        stderr(&o).contains("no user carol@example.com"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_bad_address_is_refused_before_any_aws_call() {
    // No region and no credentials: the address is refused first.
    let o = run_trailwatch(
        &[
            "users",
            "create",
            "alice at example.com",
            "--user-pool-id",
            "us-east-1_x",
        ],
        None,
        &[
            ("AWS_REGION", ""),
            ("AWS_DEFAULT_REGION", ""),
            ("AWS_ACCESS_KEY_ID", ""),
            ("AWS_CONFIG_FILE", "/nonexistent"),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o).trim(),
        "error: \"alice at example.com\" is not an email address; users sign in with their email, like alice@example.com"
    );
}

#[test]
fn a_missing_pool_or_stack_is_named() {
    let moto = Server::moto();
    let o = users(&moto, &["list", "--user-pool-id", "us-east-1_doesnotexist"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no user pool us-east-1_doesnotexist here"),
        "{}",
        stderr(&o)
    );
    let o = users(&moto, &["list", "--prefix", "nosuchstack"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(
            "no stack named nosuchstack here to find the user pool in; pass --user-pool-id"
        ),
        "{}",
        stderr(&o)
    );
}

/// A stack from before readers had a group of their own: a reader made
/// there could not sign in, and the error says how to mend it.
#[test]
fn a_reader_in_a_pool_without_the_reader_group_is_told_how_to_mend_it() {
    let moto = Server::moto();
    let id = pool_with(&moto, &["opensearch-admin"]);
    let o = users(
        &moto,
        &["create", "dana@example.com", "--user-pool-id", &id],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(&format!(
            "user pool {id} has no group opensearch-reader, so dana@example.com was created in no group and cannot sign in; run trailwatch deploy"
        )),
        "{}",
        stderr(&o)
    );
    let o = users(&moto, &["list", "--user-pool-id", &id]);
    assert!(stdout(&o).contains("- (cannot sign in)"), "{}", stdout(&o));
}
