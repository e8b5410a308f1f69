//! One TLS configuration for every outbound HTTPS client: the providers', the event
//! deliveries' and the AWS SDK's (through [`aws`]). Its roots are Mozilla's, compiled into
//! the binary (`webpki-roots`, already parsed): a cold start opens no certificate file and
//! parses no certificate, where each client used to read and parse the system store
//! (`/etc/ssl/certs`, about 150 files) at init.

pub mod aws;

use std::sync::{Arc, LazyLock};

static CONFIG: LazyLock<Result<rustls::ClientConfig, String>> = LazyLock::new(build);

fn build() -> Result<rustls::ClientConfig, String> {
    let roots: rustls::RootCertStore = webpki_roots::TLS_SERVER_ROOTS.iter().cloned().collect();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// The process's TLS client configuration. Clones share its verifier, roots and session
/// cache (reqwest takes the configuration by value).
pub fn client_config() -> Result<rustls::ClientConfig, String> {
    CONFIG.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_roots_are_compiled_in_and_shared() {
        let a = client_config().expect("config");
        let b = client_config().expect("config");
        assert!(Arc::ptr_eq(
            &a.crypto_provider().clone(),
            &b.crypto_provider().clone()
        ));
        assert!(webpki_roots::TLS_SERVER_ROOTS.len() > 100);
    }
}
