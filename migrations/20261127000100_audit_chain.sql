-- audit: the hash chain over the log. Owned and written only by the audit crate's sealer.
--
-- The sealer follows the log in delivery order (see event-store/src/log.rs) after the events have
-- committed, so appends never wait for it. Entry `seq` covers the event at `position`:
--   hash = SHA-256("velka-chain-v1" || prev_hash || SHA-256(canonical encoding of the event))
-- with prev_hash the previous entry's hash (32 zero bytes for seq 1). The encoding is described
-- in audit/src/chain.rs; `velka audit verify` recomputes every entry from the events table.
CREATE TABLE event_chain (
    seq         bigint PRIMARY KEY CHECK (seq >= 1),
    position    bigint NOT NULL,
    event_id    uuid NOT NULL,
    hash        bytea NOT NULL CHECK (octet_length(hash) = 32),
    prev_hash   bytea NOT NULL CHECK (octet_length(prev_hash) = 32),
    sealed_at   timestamptz NOT NULL,
    CONSTRAINT event_chain_position_key UNIQUE (position)
);

-- Where the sealer is: the last sealed event in delivery order, and the chain's head there.
-- Moved in the transaction that inserts the entries, by compare-and-set on `seq`, so two sealers
-- of one database never both extend the chain.
CREATE TABLE audit_chain_checkpoints (
    name            text PRIMARY KEY,
    transaction_id  xid8 NOT NULL,
    position        bigint NOT NULL,
    seq             bigint NOT NULL,
    hash            bytea NOT NULL,
    updated_at      timestamptz NOT NULL
);
