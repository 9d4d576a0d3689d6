//! The signer against AWS's published vectors: the SigV4 test suite (service `service`) and the
//! S3 examples of the S3 API reference ("Signature Calculations for the Authorization Header"),
//! whose canonical URI is the path encoded once, not normalized.

use sluice_sigv4::{sign, sign_service, Credentials, PathRule};

fn example_creds() -> Credentials {
    Credentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        session_token: None,
    }
}

/// 2015-08-30T12:36:00Z, the time of AWS's SigV4 test suite.
const SUITE_TIME: u64 = 1_440_938_160;

fn suite_auth(signed_headers: &str, signature: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
         SignedHeaders={signed_headers}, Signature={signature}"
    )
}

#[test]
fn sigv4_aws_test_suite_vectors() {
    let sign = |method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]| {
        sign_service("service", method, url, headers, body, "us-east-1", &example_creds(), SUITE_TIME).unwrap()
    };
    // get-vanilla
    assert_eq!(
        sign("GET", "https://example.amazonaws.com/", &[], b""),
        suite_auth("host;x-amz-date", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
    );
    // get-vanilla-query-order-key-case
    assert_eq!(
        sign("GET", "https://example.amazonaws.com/?Param2=value2&Param1=value1", &[], b""),
        suite_auth("host;x-amz-date", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500")
    );
    // post-vanilla
    assert_eq!(
        sign("POST", "https://example.amazonaws.com/", &[], b""),
        suite_auth("host;x-amz-date", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b")
    );
    // post-x-www-form-urlencoded
    assert_eq!(
        sign(
            "POST",
            "https://example.amazonaws.com/",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            b"Param1=value1"
        ),
        suite_auth("content-type;host;x-amz-date", "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a")
    );
}

fn s3_example_creds() -> Credentials {
    Credentials {
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        session_token: None,
    }
}

/// 2013-05-24T00:00:00Z, the time of the S3 examples.
const S3_EXAMPLE_TIME: u64 = 1_369_353_600;

fn s3_auth(signed_headers: &str, signature: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
         SignedHeaders={signed_headers}, Signature={signature}"
    )
}

/// S3's "GET Object" and "PUT Object" examples: the `$` of the PUT's key is signed as `%24`,
/// whether the URL carries it raw or already encoded.
#[test]
fn sigv4_s3_examples() {
    let get = sign(
        "s3",
        PathRule::S3,
        "GET",
        "https://examplebucket.s3.amazonaws.com/test.txt",
        &[("range", "bytes=0-9")],
        b"",
        "us-east-1",
        &s3_example_creds(),
        S3_EXAMPLE_TIME,
    )
    .unwrap();
    assert_eq!(
        get[0],
        (
            "authorization",
            s3_auth(
                "host;range;x-amz-content-sha256;x-amz-date",
                "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
            )
        )
    );
    let put = |url: &str| {
        sign(
            "s3",
            PathRule::S3,
            "PUT",
            url,
            &[("date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-storage-class", "REDUCED_REDUNDANCY")],
            b"Welcome to Amazon S3.",
            "us-east-1",
            &s3_example_creds(),
            S3_EXAMPLE_TIME,
        )
        .unwrap()
    };
    let expected = s3_auth(
        "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
        "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
    );
    assert_eq!(put("https://examplebucket.s3.amazonaws.com/test$file.text")[0].1, expected);
    assert_eq!(put("https://examplebucket.s3.amazonaws.com/test%24file.text")[0].1, expected);
    let put = put("https://examplebucket.s3.amazonaws.com/test%24file.text");
    let get = |k: &str| put.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("x-amz-date"), Some("20130524T000000Z"));
    assert_eq!(get("x-amz-content-sha256"), Some("44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"));

    // S3 keeps the path as it is: `a//b` is another key than `a/b`, and is signed so.
    let signed = |url: &str| {
        sign("s3", PathRule::S3, "PUT", url, &[], b"", "us-east-1", &s3_example_creds(), S3_EXAMPLE_TIME).unwrap()
    };
    assert_ne!(signed("http://127.0.0.1:9/b/a//b")[0], signed("http://127.0.0.1:9/b/a/b")[0]);
}

/// The signing key is kept for the day (per secret, region and service): a second request, one
/// after the secret rotated, and one after another day still sign as AWS's vectors say.
#[test]
fn kept_signing_keys_still_sign_as_the_vectors_say() {
    let vanilla = |creds: &Credentials, time: u64| {
        sign_service("service", "GET", "https://example.amazonaws.com/", &[], b"", "us-east-1", creds, time).unwrap()
    };
    let expected = suite_auth("host;x-amz-date", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    for _ in 0..3 {
        assert_eq!(vanilla(&example_creds(), SUITE_TIME), expected);
    }
    // The same key id with another secret (a rotation): another signature, and the first
    // secret's own once it is back.
    let rotated = Credentials { secret_access_key: "another-secret".into(), ..example_creds() };
    let other = vanilla(&rotated, SUITE_TIME);
    assert_ne!(other, expected);
    assert_eq!(vanilla(&rotated, SUITE_TIME), other);
    assert_eq!(vanilla(&example_creds(), SUITE_TIME), expected);
    // The S3 example's GET, its day's key derived between two suite signatures.
    let s3_get = || {
        sign(
            "s3",
            PathRule::S3,
            "GET",
            "https://examplebucket.s3.amazonaws.com/test.txt",
            &[("range", "bytes=0-9")],
            b"",
            "us-east-1",
            &s3_example_creds(),
            S3_EXAMPLE_TIME,
        )
        .unwrap()[0]
            .1
            .clone()
    };
    let s3_expected = s3_auth(
        "host;range;x-amz-content-sha256;x-amz-date",
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    );
    assert_eq!(s3_get(), s3_expected);
    assert_eq!(vanilla(&example_creds(), SUITE_TIME), expected);
    assert_eq!(s3_get(), s3_expected);
    // A day later the scope and the key change.
    let next_day = vanilla(&example_creds(), SUITE_TIME + 86_400);
    assert!(next_day.contains("/20150831/us-east-1/service/aws4_request"), "{next_day}");
    assert_eq!(vanilla(&example_creds(), SUITE_TIME), expected);
}
