-- projectors: a car can be in service (out of rotation while fleet staff work on it).
-- The status check is replaced as a whole: it names every status the vehicle decider has,
-- including `reserved` from the reservations work of the same issue, so that whichever of the
-- two migrations runs last leaves every status allowed.
ALTER TABLE vehicles_view DROP CONSTRAINT IF EXISTS vehicles_view_status_check;
ALTER TABLE vehicles_view ADD CONSTRAINT vehicles_view_status_check
    CHECK (status IN ('available', 'in_trip', 'reserved', 'in_service'));
