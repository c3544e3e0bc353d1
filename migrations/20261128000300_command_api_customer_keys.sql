-- Crypto-shredding of personal data (152-FZ, GDPR; command_api::pii): one data key per customer,
-- kept outside the log. The personal fields of a customer's events are encrypted with it; erasing
-- the customer sets `key` to NULL (who, when and why stay), after which those fields never decrypt
-- again while the events themselves, and the audit chain over them, stay as they were.
-- `key` is stored wrapped (ChaCha20-Poly1305 under a key derived from VELKA_PII_SECRET).
-- Writer: command-api (the codec creates keys, the erasure destroys them).
CREATE TABLE customer_keys (
    customer_id uuid PRIMARY KEY,
    key         bytea,
    created_at  timestamptz NOT NULL,
    erased_at   timestamptz,
    erased_by   text,
    reason      text,
    CHECK ((key IS NULL) = (erased_at IS NOT NULL))
);
