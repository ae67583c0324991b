//! SMTP with lettre on rustls: STARTTLS (required) by default, implicit TLS
//! with `--tls`, plain only with `--starttls=false`; optional auth; dial and
//! exchange bounded by a timeout. Mail carries Date and a Message-ID derived
//! from the delivery id, so a resend of the same page is recognisable.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::message::Message;
use super::{Provider, SendError, SendFuture, SEND_TIMEOUT};
use qu_raft::model::AlertKind;

pub struct Smtp {
    pub config: AlertKind,
}

fn permanent(e: impl std::fmt::Display) -> SendError {
    SendError::Permanent(e.to_string())
}

/// `<delivery-id@qu>`, restricted to characters valid in a Message-ID.
pub fn message_id(delivery_id: &str) -> String {
    let clean: String = delivery_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("<{clean}@qu.invalid>")
}

impl Smtp {
    async fn deliver(&self, msg: &Message) -> Result<(), SendError> {
        let AlertKind::Smtp {
            host,
            port,
            from,
            to,
            user,
            password,
            starttls,
            tls,
        } = &self.config
        else {
            return Err(permanent("not an SMTP alert"));
        };
        let mut builder = lettre::Message::builder()
            .from(
                from.parse::<Mailbox>()
                    .map_err(|e| permanent(format!("--from: {e}")))?,
            )
            .subject(msg.title(super::template::Markup::Plain))
            .date_now()
            .message_id(Some(message_id(&msg.delivery_id)))
            .header(ContentType::TEXT_PLAIN);
        for addr in to {
            builder = builder.to(addr
                .parse::<Mailbox>()
                .map_err(|e| permanent(format!("--to {addr}: {e}")))?);
        }
        let email = builder
            .body(msg.body(super::template::Markup::Plain))
            .map_err(permanent)?;

        let tls_mode = if *tls || *starttls {
            let params = TlsParameters::new(host.clone()).map_err(permanent)?;
            if *tls {
                Tls::Wrapper(params)
            } else {
                Tls::Required(params)
            }
        } else {
            Tls::None
        };
        let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
            .port(*port)
            .tls(tls_mode)
            .timeout(Some(SEND_TIMEOUT));
        if let (Some(u), Some(p)) = (user, password) {
            transport = transport.credentials(Credentials::new(u.clone(), p.clone()));
        }
        let transport = transport.build();
        let sent = tokio::time::timeout(SEND_TIMEOUT * 2, transport.send(email)).await;
        match sent {
            Err(_) => Err(SendError::Retry {
                reason: format!("SMTP exchange with {host}:{port} timed out"),
                after: None,
            }),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) if e.is_permanent() => {
                Err(SendError::Permanent(format!("SMTP {host}:{port}: {e}")))
            }
            Ok(Err(e)) => Err(SendError::Retry {
                reason: format!("SMTP {host}:{port}: {e}"),
                after: if e.is_transient() {
                    Some(Duration::from_secs(5))
                } else {
                    None
                },
            }),
        }
    }
}

impl Provider for Smtp {
    fn send<'a>(&'a self, msg: &'a Message) -> SendFuture<'a> {
        Box::pin(self.deliver(msg))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn message_ids_are_safe() {
        assert_eq!(super::message_id("c1-2-a1"), "<c1-2-a1@qu.invalid>");
        assert_eq!(super::message_id("a b>\r\n"), "<a-b---@qu.invalid>");
    }
}
