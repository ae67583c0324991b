//! Generic JSON webhook: POST the message's JSON (see README for the shape)
//! with the configured extra headers.

use super::message::Message;
use super::{classify_status, network_error, retry_after_header, Provider, SendFuture};

pub struct Webhook {
    pub client: reqwest::Client,
    pub url: String,
    pub headers: Vec<(String, String)>,
}

impl Provider for Webhook {
    fn send<'a>(&'a self, msg: &'a Message) -> SendFuture<'a> {
        Box::pin(async move {
            let mut req = self.client.post(&self.url).json(&msg.json());
            for (k, v) in &self.headers {
                req = req.header(k.as_str(), v.as_str());
            }
            let resp = req.send().await.map_err(network_error)?;
            let status = resp.status().as_u16();
            let after = retry_after_header(resp.headers());
            let body = resp.text().await.unwrap_or_default();
            classify_status("HTTP", status, &body, after)
        })
    }
}
