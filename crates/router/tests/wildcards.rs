//! Wildcard groups and tag filtering, through the router's public face.

use sluice_router::{Ctx, Deployment, Router, Settings};

fn dep(id: &str, group: &str) -> Deployment<()> {
    Deployment::new(id, group, ())
}

fn resolved(r: &Router<()>, model: &str) -> Option<String> {
    r.resolve(model).map(|g| g.name.clone())
}

#[test]
fn exact_names_first_then_the_most_specific_pattern() {
    let r = Router::new(
        vec![
            dep("all", "*"),
            dep("anthropic", "anthropic/*"),
            dep("sonnet", "anthropic/claude-3-5-*"),
            dep("exact", "anthropic/claude-3-5-sonnet"),
            dep("prefix", "claude-3-5-*"),
        ],
        Settings::default(),
    );
    assert!(r.has_wildcards());
    assert_eq!(resolved(&r, "anthropic/claude-3-5-sonnet").as_deref(), Some("anthropic/claude-3-5-sonnet"));
    assert_eq!(resolved(&r, "anthropic/claude-3-5-haiku").as_deref(), Some("anthropic/claude-3-5-*"));
    assert_eq!(resolved(&r, "anthropic/claude-3-opus").as_deref(), Some("anthropic/*"));
    assert_eq!(resolved(&r, "claude-3-5-haiku").as_deref(), Some("claude-3-5-*"));
    assert_eq!(resolved(&r, "gpt-4o").as_deref(), Some("*"));
    let g = r.resolve("anthropic/claude-3-opus").unwrap();
    assert_eq!(
        g.pattern.as_ref().unwrap().upstream("anthropic/*", "anthropic/claude-3-opus").unwrap(),
        "anthropic/claude-3-opus"
    );
}

#[test]
fn without_a_catch_all_unknown_names_resolve_to_nothing() {
    let r = Router::new(vec![dep("a", "anthropic/*"), dep("g", "gpt-4o")], Settings::default());
    assert_eq!(resolved(&r, "openai/gpt-4o"), None);
    assert_eq!(resolved(&r, "anthropic/"), Some("anthropic/*".into()), "an empty segment still matches, as in LiteLLM");
    assert_eq!(resolved(&r, "gpt-4o").as_deref(), Some("gpt-4o"));
    let plain = Router::new(vec![dep("g", "gpt-4o")], Settings::default());
    assert!(!plain.has_wildcards());
}

#[tokio::test]
async fn tag_filtering_picks_deployments_and_refuses_unmatched_tags() {
    let mut free = dep("free", "g");
    free.tags = vec!["free".into()];
    let mut paid = dep("paid", "g");
    paid.tags = vec!["paid".into()];
    let settings = Settings { enable_tag_filtering: true, seed: Some(7), ..Settings::default() };
    let r = Router::new(vec![free, paid], settings);
    let g = r.group("g").unwrap();
    let tags = vec!["paid".to_string()];
    for _ in 0..20 {
        let a = r.select(g, &Ctx { input_tokens: None, tags: &tags, region: None }).await.unwrap();
        assert_eq!(a.deployment.id, "paid");
    }
    let gold = vec!["gold".to_string()];
    let refused = r.select(g, &Ctx { input_tokens: None, tags: &gold, region: None }).await.err().unwrap();
    assert_eq!(refused.status(), 400);
    assert!(
        refused.message().starts_with("Not allowed to access model due to tags configuration"),
        "{}",
        refused.message()
    );
    // Untagged: any deployment (none is tagged `default`).
    assert!(r.select(g, &Ctx::default()).await.is_ok());

    // The same request with filtering off goes anywhere.
    let mut free = dep("free", "g");
    free.tags = vec!["free".into()];
    let off = Router::new(vec![free], Settings::default());
    assert!(off.select(off.group("g").unwrap(), &Ctx { input_tokens: None, tags: &gold, region: None }).await.is_ok());
}
