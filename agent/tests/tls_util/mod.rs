//! A test PKI (rcgen): a CA and a leaf certificate it signs, for the TLS tests (HTTP checks,
//! email over STARTTLS). Each test uses part of it.
#![allow(dead_code)]

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// A CA and one leaf signed by it.
pub struct Pki {
    /// The CA's certificate, PEM (what a client's `ca_file` holds).
    pub ca_pem: String,
    /// The leaf's certificate, DER and PEM.
    pub leaf_der: Vec<u8>,
    pub leaf_pem: String,
    /// The leaf's private key (PKCS#8), DER and PEM.
    pub key_der: Vec<u8>,
    pub key_pem: String,
}

/// A CA and a leaf for `names` (DNS names or IP addresses), valid from an hour ago for
/// `days` days.
pub fn test_pki(names: &[&str], days: i64) -> Pki {
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "meshmon test CA");
    let ca_cert = ca.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("leaf key");
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut leaf = CertificateParams::new(names).expect("leaf params");
    let now = time::OffsetDateTime::now_utc();
    leaf.not_before = now - time::Duration::hours(1);
    leaf.not_after = now + time::Duration::days(days);
    let cert = leaf.signed_by(&key, &issuer).expect("leaf cert");
    Pki {
        ca_pem: ca_cert.pem(),
        leaf_der: cert.der().to_vec(),
        leaf_pem: cert.pem(),
        key_der: key.serialize_der(),
        key_pem: key.serialize_pem(),
    }
}
