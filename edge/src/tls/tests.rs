use super::*;

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509NameBuilder, X509};

/// A self-signed P-256 certificate for `names`: (cert PEM, key PEM).
fn self_signed(names: &[&str]) -> (String, String) {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("curve");
    let key = PKey::from_ec_key(EcKey::generate(&group).expect("ec key")).expect("pkey");
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", names[0]).expect("cn");
    let name = name.build();
    let mut b = X509::builder().expect("builder");
    b.set_version(2).expect("version");
    let serial = BigNum::from_u32(rand::random::<u32>())
        .and_then(|n| n.to_asn1_integer())
        .expect("serial");
    b.set_serial_number(&serial).expect("serial");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(&name).expect("issuer");
    b.set_pubkey(&key).expect("pubkey");
    b.set_not_before(&Asn1Time::days_from_now(0).expect("now"))
        .expect("not before");
    b.set_not_after(&Asn1Time::days_from_now(1).expect("later"))
        .expect("not after");
    let mut san = SubjectAlternativeName::new();
    for n in names {
        san.dns(n);
    }
    let san = san.build(&b.x509v3_context(None, None)).expect("san");
    b.append_extension(san).expect("extension");
    b.sign(&key, MessageDigest::sha256()).expect("sign");
    let cert = b.build().to_pem().expect("cert pem");
    let key = key.private_key_to_pem_pkcs8().expect("key pem");
    (
        String::from_utf8(cert).expect("pem is ascii"),
        String::from_utf8(key).expect("pem is ascii"),
    )
}

fn spec(id: &str, snis: &[&str]) -> storage::CertificateSpec {
    let (cert, key) = self_signed(snis);
    storage::CertificateSpec {
        id: id.to_owned(),
        snis: snis.iter().map(|s| (*s).to_owned()).collect(),
        cert,
        key,
    }
}

fn picked(index: &CertIndex, sni: Option<&str>) -> Option<String> {
    index.select(sni).map(|c| c.id().to_owned())
}

#[test]
fn picks_exact_name_then_wildcard_then_default() {
    let specs = [
        spec("a", &["a.test"]),
        spec("b", &["b.test", "B2.test"]),
        spec("wild", &["*.example.com"]),
        spec("www", &["www.example.com"]),
    ];
    let (index, errors) = CertIndex::compile(&specs);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(index.len(), 4);
    assert_eq!(picked(&index, Some("b.test")).as_deref(), Some("b"));
    assert_eq!(picked(&index, Some("B.Test.")).as_deref(), Some("b"));
    assert_eq!(picked(&index, Some("b2.test")).as_deref(), Some("b"));
    assert_eq!(
        picked(&index, Some("www.example.com")).as_deref(),
        Some("www")
    );
    assert_eq!(
        picked(&index, Some("api.example.com")).as_deref(),
        Some("wild")
    );
    // A wildcard covers exactly one label.
    assert_eq!(
        picked(&index, Some("x.api.example.com")).as_deref(),
        Some("a")
    );
    assert_eq!(picked(&index, Some("example.com")).as_deref(), Some("a"));
    assert_eq!(picked(&index, Some("unknown.test")).as_deref(), Some("a"));
    assert_eq!(picked(&index, None).as_deref(), Some("a"));
}

#[test]
fn first_certificate_by_order_wins_a_shared_name() {
    let (index, _) = CertIndex::compile(&[spec("one", &["a.test"]), spec("two", &["a.test"])]);
    assert_eq!(picked(&index, Some("a.test")).as_deref(), Some("one"));
}

#[test]
fn empty_index_selects_nothing() {
    let (index, errors) = CertIndex::compile(&[]);
    assert!(errors.is_empty());
    assert!(index.is_empty());
    assert!(index.select(Some("a.test")).is_none());
}

#[test]
fn leaves_out_unparsable_certificates_and_serves_the_rest() {
    let good = spec("good", &["good.test"]);
    let mut mismatched = spec("mismatched", &["m.test"]);
    mismatched.key = spec("other", &["m.test"]).key;
    let mut garbage = spec("garbage", &["g.test"]);
    garbage.cert = "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n".into();
    let mut bad_key = spec("bad-key", &["k.test"]);
    bad_key.key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into();
    let (index, errors) = CertIndex::compile(&[garbage, bad_key, good, mismatched]);
    assert_eq!(index.len(), 1);
    assert_eq!(picked(&index, Some("m.test")).as_deref(), Some("good"));
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(
        matches!(&errors[0], CertError::BadChain { id, .. } | CertError::EmptyChain { id } if id == "garbage")
    );
    assert!(matches!(&errors[1], CertError::BadKey { id, .. } if id == "bad-key"));
    assert!(matches!(&errors[2], CertError::KeyMismatch { id } if id == "mismatched"));
}

#[test]
fn keeps_the_chain_after_the_leaf() {
    let leaf = spec("leaf", &["a.test"]);
    let (other, _) = self_signed(&["ca.test"]);
    let chained = storage::CertificateSpec {
        cert: format!("{}{}", leaf.cert, other),
        ..leaf.clone()
    };
    let certified = Certified::compile(&chained).expect("compiles");
    let expected = X509::from_pem(leaf.cert.as_bytes()).expect("leaf");
    assert_eq!(
        certified.leaf().to_der().expect("der"),
        expected.to_der().expect("der")
    );
    assert!(format!("{certified:?}").contains("chain_len: 2"));
    assert!(!format!("{certified:?}").contains("PRIVATE"));
}

/// A store in a temporary directory holding `specs`.
fn store_with(specs: &[storage::CertificateSpec]) -> (tempfile::TempDir, storage::Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = storage::Store::open(dir.path()).expect("store");
    for spec in specs {
        create(&store, spec.clone());
    }
    (dir, store)
}

fn create(store: &storage::Store, spec: storage::CertificateSpec) {
    store
        .apply(
            storage::Change::Create(storage::Object::Certificate(spec)),
            "test",
        )
        .expect("stored");
}

#[test]
fn serves_a_stored_change_from_the_next_lookup() {
    let (_dir, store) = store_with(&[spec("a", &["a.test"])]);
    let (certs, errors) = Certs::new(store.clone());
    assert!(errors.is_empty(), "{errors:?}");
    let (first, _) = certs.refresh();
    assert_eq!(picked(&first, Some("a.test")).as_deref(), Some("a"));

    store
        .apply(
            storage::Change::Delete {
                kind: storage::Kind::Certificate,
                id: "a".into(),
            },
            "test",
        )
        .expect("deleted");
    create(&store, spec("b", &["b.test"]));
    // No `follow` task runs here: the lookup itself catches up with the store.
    let (second, errors) = certs.refresh();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(picked(&second, Some("a.test")).as_deref(), Some("b"));
    assert_eq!(second.len(), 1);
}

#[test]
fn keeps_the_parsed_index_when_other_objects_change() {
    let (_dir, store) = store_with(&[spec("a", &["a.test"])]);
    let (certs, _) = Certs::new(store.clone());
    let (before, _) = certs.refresh();
    store
        .apply(
            storage::Change::Create(storage::Object::Upstream(
                serde_json::from_value(serde_json::json!({
                    "id": "svc", "targets": [{"addr": "127.0.0.1:9"}]
                }))
                .expect("upstream spec"),
            )),
            "test",
        )
        .expect("stored");
    let (after, _) = certs.refresh();
    assert!(
        Arc::ptr_eq(&before, &after),
        "no re-parse without a certificate change"
    );
}

#[test]
fn listens_on_the_flag_else_the_default_only_with_certificates() {
    let flag: SocketAddr = "127.0.0.1:9443".parse().expect("addr");
    assert_eq!(listen_addr(Some(flag), false), Some(flag));
    assert_eq!(listen_addr(Some(flag), true), Some(flag));
    assert_eq!(listen_addr(None, false), None);
    assert_eq!(
        listen_addr(None, true),
        Some("0.0.0.0:8443".parse().expect("addr"))
    );
}

#[tokio::test]
async fn handshake_callback_sets_the_certificate_for_the_sni_name() {
    let specs = [spec("a", &["a.test"]), spec("b", &["b.test"])];
    let (_dir, store) = store_with(&specs);
    let (certs, _) = Certs::new(store);
    assert!(settings(certs.clone()).is_ok());
    let ctx = openssl::ssl::SslContext::builder(openssl::ssl::SslMethod::tls())
        .expect("ctx")
        .build();
    let mut ssl = openssl::ssl::Ssl::new(&ctx).expect("ssl");
    // On an unconnected handle, the name set here is what `servername` reports.
    ssl.set_hostname("b.test").expect("sni");
    BySni(certs).certificate_callback(&mut ssl).await;
    let served = ssl.certificate().expect("a certificate was set");
    let expected = X509::from_pem(specs[1].cert.as_bytes()).expect("pem");
    assert_eq!(
        served.to_der().expect("der"),
        expected.to_der().expect("der")
    );
}
