-- projectors: a fine's three times, for auditors (issue 7, bitemporal fines). Owned and written
-- only by the projectors crate (FinesProjector).
--
-- `occurred_at` is when the offence happened (valid time, from the resolution); `received_at`
-- is when Velka learned of it (transaction time: the `FineReceived` event's time); `decided_at`
-- is when it was matched to a trip (and charged) or assigned to the fleet. A fine that arrives
-- in December for a November trip shows November in the first and December in the others.
ALTER TABLE fines_view ADD COLUMN decided_at timestamptz;
