-- event-store: one checkpoint table for every follower of the log. Owned and written only by
-- the follower module (event-store/src/follower/), through one compare-and-set statement.
--
-- Before, each kind of follower kept its own table with the same statements: projectors,
-- sagas, the NATS relay and the audit sealer. Their rows are carried over as they stand, so
-- each follower carries on exactly where it was: no event is applied twice or skipped.

-- Where each follower is in the log, in delivery order (see event-store/src/log.rs).
--   kind, name      the follower: 'projector' / 'saga' / 'relay' / 'sealer', and its name
--                   within the kind (a projector's name, a saga's name, a relay's or sealer's
--                   configured name).
--   segment of      which hash segment of the follower's streams the row covers; every
--   segments        follower is one segment today (0 of 1).
--   state           what the follower keeps with its checkpoint, moved with it (the sealer: the
--                   chain's head there, {"seq": entries, "hash": hex}); NULL for most.
--   last_error      why the follower's last attempt failed, cleared by its next write (the admin
--                   views show it).
CREATE TABLE follower_checkpoints (
    kind            text NOT NULL,
    name            text NOT NULL,
    segment         integer NOT NULL DEFAULT 0,
    segments        integer NOT NULL DEFAULT 1,
    transaction_id  xid8 NOT NULL,
    position        bigint NOT NULL,
    state           jsonb,
    updated_at      timestamptz NOT NULL,
    last_error      text,
    last_error_at   timestamptz,
    PRIMARY KEY (kind, name, segment),
    CHECK (segment >= 0 AND segment < segments)
);

INSERT INTO follower_checkpoints (kind, name, transaction_id, position, updated_at)
SELECT 'projector', name, transaction_id, position, updated_at FROM projector_checkpoints;

INSERT INTO follower_checkpoints
    (kind, name, transaction_id, position, updated_at, last_error, last_error_at)
SELECT 'saga', saga, transaction_id, position, updated_at, last_error, last_error_at
FROM saga_checkpoints;

INSERT INTO follower_checkpoints (kind, name, transaction_id, position, updated_at)
SELECT 'relay', name, transaction_id, position, updated_at FROM relay_checkpoints;

INSERT INTO follower_checkpoints (kind, name, transaction_id, position, state, updated_at)
SELECT 'sealer', name, transaction_id, position,
       jsonb_build_object('seq', seq, 'hash', encode(hash, 'hex')), updated_at
FROM audit_chain_checkpoints;

DROP TABLE projector_checkpoints;
DROP TABLE saga_checkpoints;
DROP TABLE relay_checkpoints;
DROP TABLE audit_chain_checkpoints;
