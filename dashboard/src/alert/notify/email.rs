//! Email over SMTP (lettre, rustls): plain text plus HTML (`multipart/alternative`). The
//! firing notice of an alert has `Message-ID: <IDENT.firing@meshmon>`; its reminders and its
//! resolved notice carry `In-Reply-To` and `References` naming it, so mail clients thread
//! them. A group's message references the firing notices of its alerts (at most 20).
//! STARTTLS is required unless the target says `starttls = false`; the server's certificate
//! is checked against the system's roots, plus the target's `ca_file` when it has one.
//!
//! Not here: the shared helpers (`text`).

use super::send::{Delivered, SendError};
use super::text::html_escape;
use super::{Notice, headline, lines};
use crate::alert::engine::EventKind;
use crate::config::{Smtp, Target};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

const REFERENCES_MAX: usize = 20;

/// `<IDENT.EVENT@meshmon>`.
fn message_id(ident: &str, event: EventKind) -> String {
    format!("<{ident}.{}@meshmon>", event.tag())
}

/// The message of `notices` from and to what `smtp` says.
pub fn message(smtp: &Smtp, ns: &[Notice]) -> Result<Message, SendError> {
    let bad = |e: String| SendError::permanent(e);
    let from: Mailbox = smtp
        .from
        .parse()
        .map_err(|e| bad(format!("from '{}': {e}", smtp.from)))?;
    let mut b = Message::builder().from(from).subject(headline(ns));
    for to in &smtp.to {
        let to: Mailbox = to.parse().map_err(|e| bad(format!("to '{to}': {e}")))?;
        b = b.to(to);
    }
    b = match ns {
        [one] => b.message_id(Some(message_id(&one.alert.ident, one.event))),
        [first, ..] => b.message_id(Some(format!(
            "<group.{}.{}@meshmon>",
            first.alert.ident,
            first.event.tag()
        ))),
        [] => b,
    };
    let threaded: Vec<String> = ns
        .iter()
        .filter(|n| n.event != EventKind::Firing)
        .take(REFERENCES_MAX)
        .map(|n| message_id(&n.alert.ident, EventKind::Firing))
        .collect();
    if !threaded.is_empty() {
        b = b
            .in_reply_to(threaded.join(" "))
            .references(threaded.join(" "));
    }
    let mut plain = headline(ns) + "\n\n";
    let mut html = format!("<p><b>{}</b></p>\n<ul>\n", html_escape(&headline(ns)));
    for line in lines(ns) {
        plain.push_str(&format!("- {line}\n"));
        html.push_str(&format!("<li>{}</li>\n", html_escape(&line)));
    }
    let source = ns.first().map_or("", |n| n.source.as_str());
    plain.push_str(&format!("\n-- \nmeshmon, from {source}\n"));
    html.push_str(&format!(
        "</ul>\n<p><small>meshmon, from {}</small></p>\n",
        html_escape(source)
    ));
    b.multipart(MultiPart::alternative_plain_html(plain, html))
        .map_err(|e| bad(format!("message: {e}")))
}

/// Sends `notices` to the target's recipients.
pub async fn send(target: &Target, ns: &[Notice]) -> Result<Delivered, SendError> {
    let Some(smtp) = &target.smtp else {
        return Err(SendError::permanent("no SMTP settings".into()));
    };
    let msg = message(smtp, ns)?;
    let builder = if let (true, Some(pem)) = (smtp.starttls, &smtp.ca_pem) {
        // STARTTLS required, trusting the target's CA besides the system's.
        let tls = Certificate::from_pem(pem)
            .and_then(|ca| {
                TlsParameters::builder(smtp.host.clone())
                    .add_root_certificate(ca)
                    .build_rustls()
            })
            .map_err(|e| SendError::permanent(format!("smtp {}: ca_file: {e}", smtp.host)))?;
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host).tls(Tls::Required(tls))
    } else if smtp.starttls {
        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
            .map_err(|e| SendError::permanent(format!("smtp {}: {e}", smtp.host)))?
    } else {
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
    };
    let mut builder = builder
        .port(smtp.port)
        .timeout(Some(Duration::from_secs(10)));
    if let Some((user, password)) = &smtp.credentials {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    let mailer = builder.build();
    match mailer.send(msg).await {
        Ok(resp) => {
            let text: Vec<&str> = resp.message().collect();
            Ok(Delivered(format!(
                "SMTP {} {}",
                resp.code(),
                text.join(" ")
            )))
        }
        Err(e) => Err(SendError {
            message: format!("smtp {}:{}: {e}", smtp.host, smtp.port),
            permanent: e.is_permanent(),
            retry_after: None,
        }),
    }
}
