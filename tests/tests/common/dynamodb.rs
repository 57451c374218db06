//! DynamoDB clients for a test's own `moto_server`.

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use iniesta_tests::servers::moto::MotoServer;

/// The configuration of a DynamoDB client for the moto_server at
/// `endpoint`: its region and dummy credentials. Add to it before building.
pub fn config(endpoint: &str) -> aws_sdk_dynamodb::config::Builder {
    aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(MotoServer::REGION))
        .credentials_provider(Credentials::new(
            MotoServer::ACCESS_KEY_ID,
            MotoServer::SECRET_ACCESS_KEY,
            None,
            None,
            "moto",
        ))
        .endpoint_url(endpoint)
}

/// A DynamoDB client for the moto_server at `endpoint`.
pub fn client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(config(endpoint).build())
}
