//! [`PiiCodec`]: encrypts the personal fields of customer events before they are appended and
//! decrypts them after they are read, and keeps claims on phone and e-mail as keyed hashes.
//!
//! A field is sealed as the string `pii:v1:<base64(nonce ‖ ciphertext)>`: ChaCha20-Poly1305 under
//! the customer's key, a random 96-bit nonce per field, the field's JSON as plaintext and its
//! stream, event type and path as associated data (a sealed value moved to another field or
//! customer does not open). Customer keys are stored wrapped under a key derived from the server
//! secret (`VELKA_PII_SECRET`), so the database alone does not reveal them.

use super::fields::{ERASED_MARK, PERSONAL_CLAIM_PREFIXES, personal_fields};
use super::keys;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use event_store::{AppendRequest, EventCodec, RecordedEvent, StoreError};
use futures::future::BoxFuture;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// How a sealed field starts.
const SEALED_PREFIX: &str = "pii:v1:";
/// How a hashed claim value starts.
const HASHED_CLAIM: &str = "hmac-";
const NONCE_LEN: usize = 12;

/// The keys derived from the server secret: one for claim hashes, one to wrap customer keys.
#[derive(Clone)]
pub struct PiiSecret {
    claims: [u8; 32],
    wrapping: Key,
}

impl std::fmt::Debug for PiiSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PiiSecret(..)")
    }
}

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

impl PiiSecret {
    /// Derives the keys from the server secret. Changing the secret makes every key and claim
    /// unreadable: it must stay the same for the life of the database.
    pub fn new(secret: &[u8]) -> Self {
        Self {
            claims: hmac(secret, b"velka pii: claims"),
            wrapping: Key::from(hmac(secret, b"velka pii: customer key wrapping")),
        }
    }

    /// The claim key to store for `claim`: a claim on a person's identifier becomes
    /// `<kind>:hmac-<hex of HMAC-SHA256(claims key, claim)>`; other claims are kept as they are.
    pub fn claim_key(&self, claim: &str) -> String {
        for prefix in PERSONAL_CLAIM_PREFIXES {
            if let Some(value) = claim.strip_prefix(prefix)
                && !value.starts_with(HASHED_CLAIM)
            {
                let digest = hmac(&self.claims, claim.as_bytes());
                let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                return format!("{prefix}{HASHED_CLAIM}{hex}");
            }
        }
        claim.to_owned()
    }

    fn wrap(&self, customer_id: Uuid, key: &Key) -> Result<Vec<u8>, StoreError> {
        seal(&self.wrapping, customer_id.as_bytes(), key.as_slice())
    }

    fn unwrap(&self, customer_id: Uuid, wrapped: &[u8]) -> Result<Key, StoreError> {
        let plain = open(&self.wrapping, customer_id.as_bytes(), wrapped).ok_or_else(|| {
            StoreError::Codec(format!(
                "the key of customer {customer_id} does not unwrap: is VELKA_PII_SECRET the one \
                 it was created with?"
            ))
        })?;
        if plain.len() != 32 {
            return Err(StoreError::Codec(format!(
                "the key of customer {customer_id} is not 32 bytes"
            )));
        }
        Ok(*Key::from_slice(&plain))
    }
}

fn seal(key: &Key, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
    let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
    let sealed = ChaCha20Poly1305::new(key)
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| StoreError::Codec("encryption failed".to_owned()))?;
    let mut out = nonce.to_vec();
    out.extend(sealed);
    Ok(out)
}

fn open(key: &Key, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    ChaCha20Poly1305::new(key)
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .ok()
}

/// What binds a sealed field to its place.
fn field_aad(stream_id: &str, event_type: &str, pointer: &str) -> Vec<u8> {
    format!("{stream_id}\n{event_type}\n{pointer}").into_bytes()
}

/// The customer a stream belongs to, if it is a customer's stream.
fn customer_of(stream_id: &str) -> Option<Uuid> {
    stream_id
        .strip_prefix("customer-")
        .and_then(|id| Uuid::parse_str(id).ok())
}

fn sealed_text(value: &Value) -> Option<&str> {
    value.as_str().and_then(|s| s.strip_prefix(SEALED_PREFIX))
}

/// Whether a stored event has a sealed personal field.
fn has_sealed(event: &RecordedEvent) -> bool {
    personal_fields(&event.event_type)
        .iter()
        .any(|(pointer, _)| event.data.pointer(pointer).and_then(sealed_text).is_some())
}

/// The event store codec for personal data (see the module docs).
#[derive(Clone, Debug)]
pub struct PiiCodec {
    pool: PgPool,
    secret: Arc<PiiSecret>,
}

impl PiiCodec {
    /// A codec keeping customer keys in `pool`'s `customer_keys`.
    pub fn new(pool: PgPool, secret: PiiSecret) -> Self {
        Self {
            pool,
            secret: Arc::new(secret),
        }
    }

    /// The secret's derived keys (claim hashes).
    pub fn secret(&self) -> &PiiSecret {
        &self.secret
    }

    async fn encode_request(
        &self,
        request: &AppendRequest,
    ) -> Result<Option<AppendRequest>, StoreError> {
        let personal_event = |stream_id: &str, event_type: &str| {
            customer_of(stream_id).is_some() && !personal_fields(event_type).is_empty()
        };
        let has_events = request.writes.iter().any(|write| {
            write
                .events
                .iter()
                .any(|event| personal_event(&write.stream_id, &event.event_type))
        });
        let has_claims = request
            .claims
            .acquire
            .iter()
            .chain(&request.claims.release)
            .any(|claim| self.secret.claim_key(claim) != *claim);
        if !has_events && !has_claims {
            return Ok(None);
        }
        let mut out = request.clone();
        for write in &mut out.writes {
            let Some(customer_id) = customer_of(&write.stream_id) else {
                continue;
            };
            if !write
                .events
                .iter()
                .any(|event| personal_event(&write.stream_id, &event.event_type))
            {
                continue;
            }
            let fresh = ChaCha20Poly1305::generate_key(&mut OsRng);
            let wrapped_fresh = self.secret.wrap(customer_id, &fresh)?;
            let wrapped =
                keys::get_or_create(&self.pool, customer_id, &wrapped_fresh, request.recorded_at)
                    .await?
                    .ok_or_else(|| {
                        StoreError::Codec(format!(
                            "customer {customer_id} was erased: no personal data may be recorded"
                        ))
                    })?;
            let key = self.secret.unwrap(customer_id, &wrapped)?;
            for event in &mut write.events {
                for (pointer, _) in personal_fields(&event.event_type) {
                    let Some(value) = event.data.pointer_mut(pointer) else {
                        continue;
                    };
                    if value.is_null() || sealed_text(value).is_some() {
                        continue;
                    }
                    let plain =
                        serde_json::to_vec(value).map_err(|e| StoreError::Codec(e.to_string()))?;
                    let aad = field_aad(&write.stream_id, &event.event_type, pointer);
                    let sealed = seal(&key, &aad, &plain)?;
                    *value = Value::String(format!("{SEALED_PREFIX}{}", STANDARD.encode(sealed)));
                }
            }
        }
        let hash = |claims: &[String]| -> Vec<String> {
            claims.iter().map(|c| self.secret.claim_key(c)).collect()
        };
        out.claims.acquire = hash(&request.claims.acquire);
        out.claims.release = hash(&request.claims.release);
        Ok(Some(out))
    }

    async fn decode_events(&self, events: &mut [RecordedEvent]) -> Result<(), StoreError> {
        let mut wanted: Vec<Uuid> = events
            .iter()
            .filter(|event| has_sealed(event))
            .filter_map(|event| customer_of(&event.stream_id))
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        wanted.sort_unstable();
        wanted.dedup();
        let mut keys = HashMap::new();
        for (customer_id, wrapped) in keys::existing(&self.pool, &wanted).await? {
            keys.insert(customer_id, self.secret.unwrap(customer_id, &wrapped)?);
        }
        for event in events.iter_mut() {
            if !has_sealed(event) {
                continue;
            }
            let key = customer_of(&event.stream_id).and_then(|id| keys.get(&id));
            let mut erased = false;
            for (pointer, kind) in personal_fields(&event.event_type) {
                let aad = field_aad(&event.stream_id, &event.event_type, pointer);
                let Some(value) = event.data.pointer_mut(pointer) else {
                    continue;
                };
                let Some(text) = sealed_text(value) else {
                    continue;
                };
                match key {
                    Some(key) => {
                        let plain = STANDARD
                            .decode(text)
                            .ok()
                            .and_then(|sealed| open(key, &aad, &sealed))
                            .and_then(|plain| serde_json::from_slice::<Value>(&plain).ok())
                            .ok_or_else(|| StoreError::Corrupt {
                                position: event.position,
                                reason: format!("personal field {pointer} does not decrypt"),
                            })?;
                        *value = plain;
                    }
                    None => {
                        *value = kind.placeholder();
                        erased = true;
                    }
                }
            }
            if erased && let Some(data) = event.data.as_object_mut() {
                data.insert(ERASED_MARK.to_owned(), Value::Bool(true));
            }
        }
        Ok(())
    }
}

impl EventCodec for PiiCodec {
    fn encode<'a>(
        &'a self,
        request: &'a AppendRequest,
    ) -> BoxFuture<'a, Result<Option<AppendRequest>, StoreError>> {
        Box::pin(self.encode_request(request))
    }

    fn decode<'a>(
        &'a self,
        events: &'a mut [RecordedEvent],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.decode_events(events))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_field_opens_only_in_its_place_and_with_its_key() {
        let key = ChaCha20Poly1305::generate_key(&mut OsRng);
        let other = ChaCha20Poly1305::generate_key(&mut OsRng);
        let aad = field_aad("customer-1", "CustomerRegistered", "/phone");
        let sealed = seal(&key, &aad, b"\"+79161234567\"").unwrap();
        assert_eq!(
            open(&key, &aad, &sealed).as_deref(),
            Some(&b"\"+79161234567\""[..])
        );
        let moved = field_aad("customer-1", "CustomerRegistered", "/email");
        assert_eq!(open(&key, &moved, &sealed), None);
        assert_eq!(open(&other, &aad, &sealed), None);
        assert_ne!(
            seal(&key, &aad, b"x").unwrap(),
            seal(&key, &aad, b"x").unwrap(),
            "a fresh nonce per seal"
        );
    }

    #[test]
    fn phone_and_email_claims_are_hashed_by_the_secret_and_others_kept() {
        let secret = PiiSecret::new(b"one");
        let phone = secret.claim_key("customer-phone:+79161234567");
        assert!(phone.starts_with("customer-phone:hmac-"), "{phone}");
        assert!(!phone.contains("79161234567"));
        assert_eq!(secret.claim_key(&phone), phone, "hashing is not repeated");
        assert_ne!(
            PiiSecret::new(b"two").claim_key("customer-phone:+79161234567"),
            phone
        );
        assert_eq!(
            secret.claim_key("vehicle-plate:А123ВС777"),
            "vehicle-plate:А123ВС777"
        );
    }

    #[test]
    fn a_wrapped_key_unwraps_only_with_the_same_secret_and_customer() {
        let key = ChaCha20Poly1305::generate_key(&mut OsRng);
        let customer = Uuid::from_u128(7);
        let wrapped = PiiSecret::new(b"one").wrap(customer, &key).unwrap();
        assert_eq!(
            PiiSecret::new(b"one").unwrap(customer, &wrapped).unwrap(),
            key
        );
        assert!(PiiSecret::new(b"two").unwrap(customer, &wrapped).is_err());
        assert!(
            PiiSecret::new(b"one")
                .unwrap(Uuid::from_u128(8), &wrapped)
                .is_err()
        );
    }
}
