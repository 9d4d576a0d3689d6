//! Unit tests of the management API's pure helpers: key generation, body parsing, merging of
//! update fields, and the metadata fields LiteLLM keeps inside `metadata`.

use super::keys::apply_key_fields;
use super::teams::{parse_members, Member};
use super::*;
use chrono::TimeZone;
use serde_json::json;
use sluice_store::{KeyRecord, ModelRecord};

/// `unwrap` for handler results (`ErrorResponse` has no `Debug`).
trait Must<T> {
    fn must(self) -> T;
    fn must_err(self) -> ErrorResponse;
}

impl<T> Must<T> for Result<T> {
    fn must(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => panic!("unexpected error: {}", e.0),
        }
    }
    fn must_err(self) -> ErrorResponse {
        match self {
            Ok(_) => panic!("expected an error"),
            Err(e) => e,
        }
    }
}

fn fields(v: Value) -> Fields {
    match v {
        Value::Object(m) => Fields(m),
        _ => panic!("not an object"),
    }
}

fn status(e: ErrorResponse) -> (u16, String, Option<String>) {
    (e.0.status, e.0.message, e.0.param)
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

#[test]
fn generated_keys_look_like_litellm_keys() {
    let a = new_raw_key();
    let b = new_raw_key();
    assert_ne!(a, b);
    assert!(a.starts_with("sk-"));
    // 16 bytes in URL-safe base64 without padding: 22 characters.
    assert_eq!(a.len(), 3 + 22, "{a}");
    assert!(a[3..].chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{a}");
    assert_eq!(key_name("sk-abcdefgh1234"), "sk-...1234");
    assert_eq!(key_name("sk-"), "sk-...sk-");
}

#[test]
fn keys_are_hashed_unless_already_a_hash() {
    assert_eq!(token_of("sk-1234"), sluice_access::hash_key("sk-1234"));
    let hash = sluice_access::hash_key("sk-1234");
    assert_eq!(token_of(&hash), hash);
}

#[test]
fn user_ids_are_masked_like_litellm() {
    assert_eq!(mask_user_id("abc"), "***");
    assert_eq!(mask_user_id("unknown"), "unknown");
    assert_eq!(mask_user_id("81ce69aa00000000a8"), "81ce69**********a8");
}

#[test]
fn raw_keys_are_redacted_from_messages() {
    let m = redact("invalid type: string \"sk-verysecretvalue1234\", expected a sequence");
    assert!(!m.contains("verysecret"), "{m}");
    assert!(m.contains("sk-v****1234"), "{m}");
    assert_eq!(redact("no keys here"), "no keys here");
}

#[test]
fn bodies_tell_absent_null_and_values_apart() {
    let f = fields(json!({"a": null, "b": 3, "c": "4.5", "d": ["x"], "e": true, "g": 2.0}));
    assert_eq!(f.f64("missing").must(), None);
    assert_eq!(f.f64("a").must(), Some(None));
    assert_eq!(f.f64("b").must(), Some(Some(3.0)));
    assert_eq!(f.f64("c").must(), Some(Some(4.5)));
    assert_eq!(f.i64("g").must(), Some(Some(2)));
    assert_eq!(f.strings("d").must(), Some(Some(vec!["x".to_string()])));
    assert_eq!(f.bool("e").must(), Some(Some(true)));
    let (code, msg, param) = status(f.strings("b").must_err());
    assert_eq!((code, param.as_deref()), (422, Some("b")));
    assert!(msg.contains("`b` must be a list of strings"), "{msg}");
    let (code, msg, _) = status(f.required("nope").must_err());
    assert_eq!(code, 422);
    assert!(msg.contains("`nope` is required"), "{msg}");
}

#[test]
fn bodies_must_be_json_objects() {
    assert!(Fields::parse(b"").must().0.is_empty());
    assert!(Fields::parse(b"  \n").must().0.is_empty());
    assert_eq!(status(Fields::parse(b"[1]").must_err()).0, 422);
    let (code, msg, _) = status(Fields::parse(b"{\"key\": \"sk-secretsecret99").must_err());
    assert_eq!(code, 422);
    assert!(!msg.contains("secretsecret"), "{msg}");
}

#[test]
fn metadata_fields_go_inside_metadata_after_it_is_replaced() {
    let mut k = KeyRecord::default();
    k.metadata.insert("old".into(), json!(1));
    let f = fields(json!({
        "metadata": {"app": "x"},
        "model_rpm_limit": {"gpt-4o": 10},
        "model_tpm_limit": {"gpt-4o": 1000},
        "tags": ["team-a"],
    }));
    apply_key_fields(&f, &mut k, now()).must();
    assert_eq!(
        Value::Object(k.metadata.clone()),
        json!({"app": "x", "model_rpm_limit": {"gpt-4o": 10}, "model_tpm_limit": {"gpt-4o": 1000}, "tags": ["team-a"]})
    );
    // Without `metadata`, an update keeps the existing metadata and adds the fields.
    apply_key_fields(&fields(json!({"tags": ["b"]})), &mut k, now()).must();
    assert_eq!(k.metadata["app"], json!("x"));
    assert_eq!(k.metadata["tags"], json!(["b"]));
    let e = apply_key_fields(&fields(json!({"model_rpm_limit": 5})), &mut k, now()).must_err();
    assert_eq!(status(e).0, 422);
    let e = apply_key_fields(&fields(json!({"tags": "x"})), &mut k, now()).must_err();
    assert_eq!(status(e).0, 422);
}

#[test]
fn updates_change_only_the_fields_present() {
    let mut k = KeyRecord {
        token: "t".into(),
        key_alias: Some("a".into()),
        models: vec!["m".into()],
        max_budget: Some(5.0),
        rpm_limit: Some(10),
        ..Default::default()
    };
    apply_key_fields(&fields(json!({"max_budget": 7, "tpm_limit": 100})), &mut k, now()).must();
    assert_eq!(k.max_budget, Some(7.0));
    assert_eq!(k.tpm_limit, Some(100));
    assert_eq!(k.rpm_limit, Some(10));
    assert_eq!(k.models, vec!["m".to_string()]);
    assert_eq!(k.key_alias.as_deref(), Some("a"));
    // `null` clears.
    apply_key_fields(&fields(json!({"max_budget": null, "rpm_limit": null, "models": null})), &mut k, now()).must();
    assert_eq!((k.max_budget, k.rpm_limit), (None, None));
    assert!(k.models.is_empty());
}

#[test]
fn durations_set_expiry_and_budget_resets() {
    let mut k = KeyRecord::default();
    apply_key_fields(&fields(json!({"duration": "30d", "budget_duration": "1h"})), &mut k, now()).must();
    assert_eq!(k.expires, Some(now() + chrono::Duration::days(30)));
    assert_eq!(k.budget_reset_at, Some(now() + chrono::Duration::hours(1)));
    assert_eq!(k.budget_duration.as_deref(), Some("1h"));
    apply_key_fields(&fields(json!({"duration": "-1", "budget_duration": null})), &mut k, now()).must();
    assert_eq!((k.expires, k.budget_reset_at, k.budget_duration.clone()), (None, None, None));
    let e = apply_key_fields(&fields(json!({"duration": "soon"})), &mut k, now()).must_err();
    let (code, msg, param) = status(e);
    assert_eq!((code, param.as_deref()), (400, Some("duration")));
    assert!(msg.contains("30d"), "{msg}");
    apply_key_fields(&fields(json!({"expires": "2030-01-31T00:00:00Z"})), &mut k, now()).must();
    assert_eq!(k.expires, Some(Utc.with_ymd_and_hms(2030, 1, 31, 0, 0, 0).unwrap()));
}

#[test]
fn negative_budgets_and_limits_are_refused() {
    let mut k = KeyRecord::default();
    let e = apply_key_fields(&fields(json!({"max_budget": -1})), &mut k, now()).must_err();
    let (code, msg, _) = status(e);
    assert_eq!(code, 400);
    assert_eq!(msg, "max_budget cannot be negative. Received: -1");
    assert!(apply_key_fields(&fields(json!({"rpm_limit": -5})), &mut k, now()).is_err());
    assert!(apply_key_fields(&fields(json!({"soft_budget": -5})), &mut k, now()).is_err());
}

#[test]
fn members_parse_from_one_object_or_a_list() {
    let one = parse_members(&json!({"role": "admin", "user_id": "u1"}), "member").must();
    assert_eq!(one, vec![Member { user_id: Some("u1".into()), user_email: None, role: "admin".into() }]);
    let many = parse_members(&json!([{"user_email": "a@b.c"}, {"user_id": "u2", "role": "user"}]), "member").must();
    assert_eq!(many.len(), 2);
    assert_eq!(many[0].role, "user");
    assert!(parse_members(&json!({"role": "owner", "user_id": "u"}), "member").is_err());
    assert!(parse_members(&json!({"role": "user"}), "member").is_err());
    assert!(parse_members(&json!("u1"), "member").is_err());
}

#[test]
fn stored_model_params_hide_credentials() {
    let params = json!({
        "model": "openai/gpt-4o",
        "api_key": "sk-upstream",
        "api_base": "http://x",
        "aws_secret_access_key": "s",
        "aws_access_key_id": "a",
        "vertex_credentials": "{}",
        "max_tokens": 10,
        "rpm": 5,
    });
    let public = super::models::public_params(params.as_object().unwrap());
    let mut names: Vec<&str> = public.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(names, ["api_base", "max_tokens", "model", "rpm"]);
}

#[test]
fn stored_models_become_deployments() {
    let m = ModelRecord {
        model_id: "db-1".into(),
        model_name: "stored".into(),
        litellm_params: json!({"model": "openai/gpt-4o", "api_base": "http://127.0.0.1:9/", "mock_response": "hi"})
            .as_object()
            .unwrap()
            .clone(),
        model_info: Map::new(),
        created_at: None,
    };
    let bad = ModelRecord { model_id: "db-2".into(), model_name: String::new(), ..m.clone() };
    let d = super::models::deployments_from_db(&[m, bad], &crate::config::Env::fixed([]));
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].id, "db-1");
    assert_eq!(d[0].model_name, "stored");
}

#[test]
fn numbers_beyond_any_meaning_are_refused_naming_the_field() {
    let cases = [
        (json!({"max_budget": "inf"}), "max_budget"),
        (json!({"max_budget": "NaN"}), "max_budget"),
        (json!({"max_budget": 1e300}), "max_budget"),
        (json!({"soft_budget": -1e300}), "soft_budget"),
        (json!({"rpm_limit": 1e30}), "rpm_limit"),
        (json!({"tpm_limit": "99999999999999999999"}), "tpm_limit"),
        (json!({"max_parallel_requests": 9_007_199_254_740_993u64}), "max_parallel_requests"),
        (json!({"duration": "9223372036854775807s"}), "duration"),
        (json!({"budget_duration": "9223372036854775807s"}), "budget_duration"),
        (json!({"budget_duration": "99999999999w"}), "budget_duration"),
    ];
    for (body, field) in cases {
        let mut k = KeyRecord::default();
        let (code, msg, param) = status(apply_key_fields(&fields(body.clone()), &mut k, now()).must_err());
        assert_eq!((code, param.as_deref()), (400, Some(field)), "{body}: {msg}");
    }
    // A per-model budget or limit that is not a number would leave that model unlimited.
    for (body, field) in [
        (json!({"model_max_budget": {"gpt-4o": "NaN"}}), "model_max_budget"),
        (json!({"model_max_budget": {"gpt-4o": {"budget_limit": "inf"}}}), "model_max_budget"),
        (json!({"model_max_budget": {"gpt-4o": -1}}), "model_max_budget"),
        (json!({"model_max_budget": {"gpt-4o": {"time_period": "1d"}}}), "model_max_budget"),
        (json!({"model_rpm_limit": {"gpt-4o": "10"}}), "model_rpm_limit"),
        (json!({"model_tpm_limit": {"gpt-4o": 1e30}}), "model_tpm_limit"),
        (json!({"model_tpm_limit": {"gpt-4o": -5}}), "model_tpm_limit"),
    ] {
        let mut k = KeyRecord::default();
        let (code, msg, param) = status(apply_key_fields(&fields(body.clone()), &mut k, now()).must_err());
        assert!(matches!(code, 400 | 422) && param.as_deref() == Some(field), "{body}: {code} {msg}");
    }
    let mut k = KeyRecord::default();
    let ok = json!({"model_max_budget": {"a": 5, "b": {"budget_limit": "2.5", "time_period": "1d"}}, "model_rpm_limit": {"a": 10}});
    apply_key_fields(&fields(ok), &mut k, now()).must();
    let mut k = KeyRecord::default();
    apply_key_fields(&fields(json!({"rpm_limit": 9_007_199_254_740_991u64, "max_budget": 1e15})), &mut k, now()).must();
    assert_eq!((k.rpm_limit, k.max_budget), (Some(9_007_199_254_740_991), Some(1e15)));
}

proptest::proptest! {
    /// Any value in any numeric field of a key, user or team is a 4xx naming that field, or a
    /// value within the bounds; never a panic.
    #[test]
    fn any_number_in_a_management_field_is_refused_or_bounded(
        field in proptest::sample::select(&[
            "max_budget", "soft_budget", "tpm_limit", "rpm_limit", "max_parallel_requests", "spend",
        ][..]),
        value in crate::test_numbers::json(),
    ) {
        let f = fields(json!({ field: value }));
        let mut k = KeyRecord::default();
        match apply_key_fields(&f, &mut k, now()) {
            Err(e) => {
                proptest::prop_assert!(matches!(e.0.status, 400 | 422), "{}", e.0.message);
                proptest::prop_assert_eq!(e.0.param.as_deref(), Some(field));
            }
            Ok(()) => {
                for x in [k.max_budget, k.soft_budget].into_iter().flatten() {
                    proptest::prop_assert!((0.0..=MAX_NUMBER).contains(&x), "{x}");
                }
                for n in [k.tpm_limit, k.rpm_limit, k.max_parallel_requests].into_iter().flatten() {
                    proptest::prop_assert!((0..=MAX_NUMBER as i64).contains(&n), "{n}");
                }
            }
        }
        if let Ok(Some(Some(x))) = f.f64(field) {
            proptest::prop_assert!(x.is_finite() && x.abs() <= MAX_NUMBER);
        }
    }

    /// Any text as a key's `duration` or any record's `budget_duration`.
    #[test]
    fn any_duration_field_is_refused_or_bounded(
        field in proptest::sample::select(&["duration", "budget_duration"][..]),
        value in crate::test_numbers::with_unit(),
    ) {
        let mut k = KeyRecord::default();
        if apply_key_fields(&fields(json!({ field: value })), &mut k, now()).is_ok() {
            let limit = now() + chrono::Duration::seconds(sluice_access::duration::MAX_SECONDS);
            for t in [k.expires, k.budget_reset_at].into_iter().flatten() {
                proptest::prop_assert!(t <= limit, "{t}");
            }
        }
    }
}
