-- event-store: who owns what (event-store/src/lease.rs), and the fence each follower's
-- checkpoint keeps (event-store/src/follower/checkpoint.rs).
--
-- Any number of worker processes may run; each follower of the log and each singleton worker is
-- run by one of them at a time, the holder of its lease. A lease lasts until `expires_at`; its
-- holder renews it well before then, and anyone may take it once it has lapsed. Every taking
-- draws a new token from one sequence, so tokens only grow.
--   name        'follower:<kind>:<name>#<segment>/<segments>' or 'worker:<name>'
--   holder      the process that holds it ('<host>:<pid>:<random>')
--   token       drawn from lease_tokens when the lease was taken; the fencing token
--   acquired_at when this holder took it
CREATE SEQUENCE lease_tokens;

CREATE TABLE leases (
    name         text PRIMARY KEY,
    holder       text NOT NULL,
    token        bigint NOT NULL,
    expires_at   timestamptz NOT NULL,
    acquired_at  timestamptz NOT NULL
);

-- The fence: the token of the newest owner that claimed the checkpoint. A new owner raises it
-- before its first batch (waiting for any batch of the old owner still open on the row); every
-- checkpoint write of an owner names its token, so a former owner's late write matches no row.
ALTER TABLE follower_checkpoints ADD COLUMN fence bigint NOT NULL DEFAULT 0;
