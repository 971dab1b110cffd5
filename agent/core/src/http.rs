//! The one way meshmon makes an HTTP client (self-update, webhooks, HTTP checks): reqwest is
//! built without a default TLS provider, so the ring provider is installed first (else
//! `Client::builder().build()` panics), and requests carry `meshmon/VERSION` or
//! `meshmon-<role>/VERSION` as user agent. Callers add their own timeouts and TLS options.

/// A client builder with the TLS provider installed and the user agent set; `role` names the
/// caller in the user agent (`None`: plain `meshmon/VERSION`).
pub fn builder(role: Option<&str>) -> reqwest::ClientBuilder {
    // A second install (another caller, another thread) is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let version = env!("CARGO_PKG_VERSION");
    let agent = match role {
        Some(r) => format!("meshmon-{r}/{version}"),
        None => format!("meshmon/{version}"),
    };
    reqwest::Client::builder().user_agent(agent)
}
