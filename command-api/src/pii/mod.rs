//! Personal data (152-FZ, GDPR) by crypto-shredding: each customer's personal fields (name,
//! phone, e-mail, birth date, licence and passport details) are encrypted in the events with a
//! key of that customer's own, kept outside the log in `customer_keys`; erasing the customer
//! destroys the key, so those fields can never be read again while every event — and so the
//! audit hash chain, trips and money — stays exactly as it was.
//!
//! - [`PiiCodec`] is the event store's [`event_store::EventCodec`]: it encrypts before an append
//!   and decrypts after a read, so projectors, sagas and the command side see plaintext while the
//!   key exists and the placeholders of [`fields`] (with `"pii_erased": true` in the event's data)
//!   once it is gone. It also replaces uniqueness claims on phone and e-mail by keyed hashes.
//! - [`erase`] records `CustomerErased`, releases the claims and destroys the key in one
//!   transaction (the HTTP route and `velka customer erase`).
//!
//! The domain never sees ciphertext or keys: all of this happens at the edge.

mod codec;
pub mod erase;
pub mod fields;
mod keys;

pub use codec::{PiiCodec, PiiSecret};
