use super::*;
use crate::spec::{Per, PlanRateSpec, QuotaPeriod, QuotaSpec};

fn consumer(id: &str, plan: Option<&str>) -> ConsumerSpec {
    ConsumerSpec {
        id: id.into(),
        plan: plan.map(Into::into),
        groups: vec!["partners".into()],
        metadata: Default::default(),
    }
}

fn key(id: &str, consumer: &str, raw: &str) -> KeyRecord {
    KeyRecord {
        id: id.into(),
        consumer: consumer.into(),
        hash: KeyHash::of(raw.as_bytes()),
        prefix: raw.chars().take(7).collect(),
        label: None,
        created: 0,
        expires: None,
        revoked: false,
    }
}

#[test]
fn an_index_entry_takes_64_bytes() {
    // Hash and entry side by side in the table: 100,000 keys take 131,072 of them.
    assert_eq!(std::mem::size_of::<(KeyHash, KeyEntry)>(), 64);
}

#[test]
fn indexes_keys_by_raw_digest() {
    let counters = Counters::default();
    let dir = Directory::compile(
        &[consumer("acme", None)],
        &[],
        &[key("k1", "acme", "tg_secret")],
        &[],
        &[],
        &counters,
    )
    .expect("valid");
    let entry = dir.key(&KeyHash::of(b"tg_secret")).expect("indexed");
    assert_eq!(entry.consumer.id(), "acme");
    assert!(entry.consumer.is_named("partners"));
    assert!(dir.key(&KeyHash::of(b"tg_other")).is_none());
}

const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

#[test]
fn key_hash_reads_and_writes_lowercase_hex_only() {
    let hash = KeyHash::of(b"abc");
    assert_eq!(hash.to_string(), ABC);
    assert_eq!(hash, *ABC);
    assert_eq!(ABC.parse::<KeyHash>(), Ok(hash));
    assert_eq!(
        serde_json::to_string(&hash).expect("serializes"),
        format!("\"{ABC}\"")
    );
    let back: KeyHash = serde_json::from_str(&format!("\"{ABC}\"")).expect("parses");
    assert_eq!(back, hash);
    for bad in [&ABC.to_uppercase(), &ABC[..62], "zz", ""] {
        assert_eq!(bad.parse::<KeyHash>(), Err(KeyHashError), "{bad:?}");
        let err = serde_json::from_str::<KeyHash>(&format!("\"{bad}\"")).expect_err(bad);
        assert!(err.to_string().contains("hex sha256"), "{err}");
    }
    assert!(serde_json::from_str::<KeyHash>("42").is_err());
}

#[test]
fn key_record_keeps_its_stored_form() {
    let mut record = key("k1", "acme", "abc");
    record.expires = Some(1_900_000_000);
    let json = serde_json::to_value(&record).expect("serializes");
    assert_eq!(
        json,
        serde_json::json!({"id": "k1", "consumer": "acme", "hash": ABC, "prefix": "abc",
                           "created": 0, "expires": 1_900_000_000u64, "revoked": false})
    );
    let back: KeyRecord = serde_json::from_value(json).expect("parses");
    assert_eq!(back, record);
    let yaml = serde_yaml::to_string(&record).expect("serializes");
    assert!(yaml.contains(&format!("hash: {ABC}")), "{yaml}");
    assert_eq!(
        serde_yaml::from_str::<KeyRecord>(&yaml).expect("parses"),
        record
    );
}

#[test]
fn compiles_revocation_and_expiry() {
    let mut revoked = key("k1", "acme", "tg_revoked");
    revoked.revoked = true;
    let mut expiring = key("k2", "acme", "tg_expiring");
    expiring.expires = Some(1_900_000_000);
    let dir = Directory::compile(
        &[consumer("acme", None)],
        &[],
        &[revoked, expiring],
        &[],
        &[],
        &Counters::default(),
    )
    .expect("valid");
    let revoked = dir.key(&KeyHash::of(b"tg_revoked")).expect("indexed");
    assert!(revoked.revoked);
    assert_eq!(revoked.expires, None);
    let expiring = dir.key(&KeyHash::of(b"tg_expiring")).expect("indexed");
    assert!(!expiring.revoked);
    assert_eq!(expiring.expires, Some(1_900_000_000));
    assert_eq!(dir.key_count(), 2);
}

#[test]
fn last_use_carries_over_to_the_next_revision_but_never_back() {
    let counters = Counters::default();
    let compile = |keys: &[KeyRecord]| {
        Directory::compile(&[consumer("acme", None)], &[], keys, &[], &[], &counters)
            .expect("valid")
    };
    let (kept, gone, new) = (b"tg_kept", b"tg_gone", b"tg_new1");
    let first = compile(&[key("k1", "acme", "tg_kept"), key("k2", "acme", "tg_gone")]);
    let used =
        |dir: &Directory, raw: &[u8]| dir.key(&KeyHash::of(raw)).expect("indexed").last_use();
    let touch = |dir: &Directory, raw: &[u8], at| {
        crate::key_usage::touch(&dir.key(&KeyHash::of(raw)).expect("indexed").last_used, at)
    };
    touch(&first, kept, 100);
    touch(&first, gone, 100);
    let second = compile(&[key("k1", "acme", "tg_kept"), key("k3", "acme", "tg_new1")]);
    assert_eq!(used(&second, kept), None, "compiled fresh");
    second.carry_last_used(&first);
    assert_eq!(used(&second, kept), Some(100));
    assert_eq!(used(&second, new), None);
    assert!(second.key(&KeyHash::of(gone)).is_none());
    // A use the old directory saw after the first carry, then a later one on the new.
    touch(&first, kept, 200);
    second.carry_last_used(&first);
    assert_eq!(used(&second, kept), Some(200));
    touch(&second, kept, 300);
    second.carry_last_used(&first);
    assert_eq!(used(&second, kept), Some(300));
}

#[test]
fn last_uses_are_listed_since_a_time_and_restored() {
    let counters = Counters::default();
    let compile = || {
        Directory::compile(
            &[consumer("acme", None)],
            &[],
            &[key("k1", "acme", "tg_one"), key("k2", "acme", "tg_two")],
            &[],
            &[],
            &counters,
        )
        .expect("valid")
    };
    let (one, two) = (KeyHash::of(b"tg_one"), KeyHash::of(b"tg_two"));
    let dir = compile();
    assert!(dir.key_uses_since(0).is_empty(), "no key used yet");
    crate::key_usage::touch(&dir.key(&one).expect("indexed").last_used, 100);
    crate::key_usage::touch(&dir.key(&two).expect("indexed").last_used, 105);
    let mut since_0 = dir.key_uses_since(0);
    since_0.sort_by_key(|(_, secs)| *secs);
    assert_eq!(since_0, vec![(one, 100), (two, 105)]);
    assert_eq!(dir.key_uses_since(101), vec![(two, 105)]);
    assert_eq!(
        dir.key_uses_since(105),
        vec![(two, 105)],
        "the second itself"
    );
    assert!(dir.key_uses_since(106).is_empty());

    let next = compile();
    crate::key_usage::touch(&next.key(&two).expect("indexed").last_used, 110);
    let gone = KeyHash::of(b"tg_gone");
    let unknown = next.restore_key_uses(&[(one, 100), (two, 105), (gone, 90)]);
    assert_eq!(unknown, vec![gone]);
    assert_eq!(next.key(&one).expect("indexed").last_use(), Some(100));
    assert_eq!(
        next.key(&two).expect("indexed").last_use(),
        Some(110),
        "a later use wins over the saved one"
    );
}

#[test]
fn reports_every_dangling_reference() {
    let problems = Directory::compile(
        &[consumer("acme", Some("gold"))],
        &[],
        &[
            key("k1", "ghost", "tg_secret"),
            key("k2", "acme", "tg_dup"),
            key("k3", "acme", "tg_dup"),
        ],
        &[],
        &[],
        &Counters::default(),
    )
    .expect_err("dangling");
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        ["consumers[acme].plan", "keys[k1].consumer", "keys[k3].hash"]
    );
}

#[test]
fn plan_limits_survive_recompile() {
    let counters = Counters::default();
    let plan = PlanSpec {
        id: "gold".into(),
        rate_limit: Some(PlanRateSpec {
            requests: 2,
            per: Per::Minute,
            burst: None,
        }),
        quota: Some(QuotaSpec {
            requests: 100,
            per: QuotaPeriod::Day,
        }),
    };
    let compile = || {
        Directory::compile(
            &[consumer("acme", Some("gold"))],
            std::slice::from_ref(&plan),
            &[],
            &[],
            &[],
            &counters,
        )
        .expect("valid")
    };
    let now = Duration::from_secs(1_800_000_000);
    let first = compile();
    let acme = Arc::clone(first.consumer("acme").expect("acme"));
    assert!(acme.check_plan(now).is_ok());
    let second = compile();
    let acme2 = second.consumer("acme").expect("acme");
    assert!(acme2.check_plan(now).is_ok());
    let r = acme2.check_plan(now).expect_err("third in the minute");
    assert_eq!(r.status, http::StatusCode::TOO_MANY_REQUESTS);
    // The refused request did not use quota: 2 counted.
    assert_eq!(
        counters
            .quotas
            .usage("acme", plan.quota.as_ref().expect("quota"), now)
            .used,
        2
    );
}

#[test]
fn hashes_that_differ_only_in_their_last_bytes_spread_over_buckets() {
    use std::collections::HashSet;
    use std::hash::{BuildHasher, BuildHasherDefault};
    // Counters in the last bytes, as imported test data has them: the index's buckets
    // are chosen by the low bits, its tags by the top seven.
    let build = BuildHasherDefault::<DigestHasher>::default();
    let hashes: Vec<u64> = (0u32..4096)
        .map(|i| {
            let mut digest = [0u8; 32];
            digest[28..].copy_from_slice(&i.to_be_bytes());
            build.hash_one(KeyHash(digest))
        })
        .collect();
    let low: HashSet<u64> = hashes.iter().map(|h| h & 0xfff).collect();
    let top: HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
    assert!(low.len() > 2048, "{} of 4096 low-bit buckets", low.len());
    assert_eq!(top.len(), 128, "every tag used");
}
