//! One delivery over HTTP: checked target, signed body, bounded time, no redirects followed.
//! A 2xx answer is a success; anything else (another status, a timeout, a refused connection,
//! a target no longer allowed) is a failure with its reason.

use std::time::Duration;

use crate::model::Delivery;
use crate::sign::sign;
use crate::target;

#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    pub timeout: Duration,
    pub allow_private_targets: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Delivered { status: u16 },
    Failed { status: Option<u16>, reason: String },
}

pub async fn deliver(
    delivery: &Delivery,
    url: &str,
    secret: &str,
    options: &DeliveryOptions,
    now_seconds: i64,
) -> Attempt {
    let checked = match target::check(url, options.allow_private_targets).await {
        Ok(checked) => checked,
        Err(refused) => {
            return Attempt::Failed {
                status: None,
                reason: refused.to_string(),
            };
        }
    };
    // Connect to the address that was checked, whatever the name resolves to by now.
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(options.timeout)
        .resolve(&checked.host, checked.address)
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            return Attempt::Failed {
                status: None,
                reason: format!("http client: {error}"),
            };
        }
    };
    let target_uri = checked.url.to_string();
    let body = delivery.payload.as_bytes().to_vec();
    let signed = sign(
        secret,
        delivery.subscription_id.as_str(),
        &target_uri,
        delivery.id.as_str(),
        &body,
        now_seconds,
    );
    let response = client
        .post(checked.url)
        .header("content-type", "application/json")
        .header("content-digest", signed.content_digest)
        .header("webhook-id", delivery.id.as_str())
        .header("signature-input", signed.signature_input)
        .header("signature", signed.signature)
        .header("user-agent", "weir-webhooks")
        .body(body)
        .send()
        .await;
    match response {
        Ok(response) if response.status().is_success() => Attempt::Delivered {
            status: response.status().as_u16(),
        },
        Ok(response) => Attempt::Failed {
            status: Some(response.status().as_u16()),
            reason: format!("HTTP {}", response.status()),
        },
        Err(error) => Attempt::Failed {
            status: None,
            reason: if error.is_timeout() {
                format!("no answer within {:?}", options.timeout)
            } else {
                format!("cannot reach the target: {error}")
            },
        },
    }
}
