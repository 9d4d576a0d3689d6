//! The `Cookie` header parser faces every browser: whatever the header holds, reading it never
//! panics, and the session cookie is found among any others, wherever it stands.

use proptest::prelude::*;
use sluice_ui::session::{cookie_value, COOKIE};

proptest! {
    #[test]
    fn any_header_is_read_without_panicking(header in "\\PC*") {
        let _ = cookie_value(&header);
    }

    #[test]
    fn the_session_cookie_is_found_among_others(
        before in prop::collection::vec(("[a-z_]{1,8}", "[A-Za-z0-9]{0,12}"), 0..4),
        after in prop::collection::vec(("[a-z_]{1,8}", "[A-Za-z0-9]{0,12}"), 0..4),
        id in "[0-9a-f]{64}",
    ) {
        let others = |v: &[(String, String)]| -> Vec<String> {
            v.iter().filter(|(k, _)| k != COOKIE).map(|(k, val)| format!("{k}={val}")).collect()
        };
        let mut pairs = others(&before);
        pairs.push(format!("{COOKIE}={id}"));
        pairs.extend(others(&after));
        let header = pairs.join("; ");
        prop_assert_eq!(cookie_value(&header), Some(id.as_str()));
    }
}
