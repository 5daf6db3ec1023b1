use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::*;

fn keys() -> AccessTokenKeys {
    AccessTokenKeys::new("k1", b"0123456789abcdef0123456789abcdef")
}

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

const NOW: u64 = 1_800_000_000;

#[test]
fn an_issued_token_verifies_with_its_claims() {
    let keys = keys();
    let (user, session) = (Uuid::new_v4(), Uuid::new_v4());
    let token = keys.issue(user, session, at(NOW)).unwrap();
    let claims = keys.verify(&token, at(NOW + 1)).unwrap();
    assert_eq!((claims.sub, claims.sid), (user, session));
    assert_eq!(claims.exp - claims.iat, LIFETIME.as_secs());
    assert_eq!(claims.aud, AUDIENCE);
}

#[test]
fn expiry_is_enforced_with_the_leeway_and_no_more() {
    let keys = keys();
    let token = keys.issue(Uuid::new_v4(), Uuid::new_v4(), at(NOW)).unwrap();
    let expiry = NOW + LIFETIME.as_secs();
    assert!(
        keys.verify(&token, at(expiry + LEEWAY.as_secs() - 1))
            .is_ok()
    );
    assert!(matches!(
        keys.verify(&token, at(expiry + LEEWAY.as_secs())),
        Err(TokenError::Invalid(_))
    ));
    // A token from the future (beyond the skew allowed) is refused too.
    assert!(keys.verify(&token, at(NOW - LEEWAY.as_secs() - 1)).is_err());
}

#[test]
fn rotation_keeps_old_tokens_valid_until_the_old_key_is_retired() {
    let mut keys = keys();
    let old = keys.issue(Uuid::new_v4(), Uuid::new_v4(), at(NOW)).unwrap();
    keys.rotate("k2", b"another secret of thirty-two byt");
    let new = keys.issue(Uuid::new_v4(), Uuid::new_v4(), at(NOW)).unwrap();
    let kid = |token: &str| jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    assert_eq!((kid(&old), kid(&new)), ("k1".to_owned(), "k2".to_owned()));
    assert!(keys.verify(&old, at(NOW)).is_ok());
    keys.retire("k1");
    assert_eq!(keys.verify(&old, at(NOW)), Err(TokenError::UnknownKey));
    assert!(keys.verify(&new, at(NOW)).is_ok());
    keys.retire("k2");
    assert!(
        keys.verify(&new, at(NOW)).is_ok(),
        "the active key cannot be retired"
    );
}

#[test]
fn the_server_chooses_the_algorithm() {
    let keys = keys();
    let token = keys.issue(Uuid::new_v4(), Uuid::new_v4(), at(NOW)).unwrap();
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    // `alg: none` with the signature stripped.
    parts[0] = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT","kid":"k1"}"#);
    let unsigned = format!("{}.{}.", parts[0], parts[1]);
    assert!(keys.verify(&unsigned, at(NOW)).is_err());
    // The same claims under HS512 with the right secret: still refused.
    let mut header = Header::new(Algorithm::HS512);
    header.kid = Some("k1".to_owned());
    let claims = keys.verify(&token, at(NOW)).unwrap();
    let hs512 = jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
    )
    .unwrap();
    assert!(matches!(
        keys.verify(&hs512, at(NOW)),
        Err(TokenError::Invalid(_))
    ));
}

#[test]
fn tampered_foreign_and_unkeyed_tokens_are_refused() {
    let keys = keys();
    let token = keys.issue(Uuid::new_v4(), Uuid::new_v4(), at(NOW)).unwrap();
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    assert!(keys.verify(&tampered, at(NOW)).is_err());
    let foreign = AccessTokenKeys::new("k1", b"a different secret, same key id!")
        .issue(Uuid::new_v4(), Uuid::new_v4(), at(NOW))
        .unwrap();
    assert!(keys.verify(&foreign, at(NOW)).is_err());
    let mut header = Header::new(ALGORITHM);
    header.kid = None;
    let claims = keys.verify(&token, at(NOW)).unwrap();
    let unkeyed = jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
    )
    .unwrap();
    assert_eq!(keys.verify(&unkeyed, at(NOW)), Err(TokenError::UnknownKey));
    let mut wrong_audience = claims;
    wrong_audience.aud = "someone-else".to_owned();
    let mut header = Header::new(ALGORITHM);
    header.kid = Some("k1".to_owned());
    let other = jsonwebtoken::encode(
        &header,
        &wrong_audience,
        &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
    )
    .unwrap();
    assert!(keys.verify(&other, at(NOW)).is_err());
}
