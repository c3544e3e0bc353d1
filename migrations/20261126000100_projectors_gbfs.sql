-- projectors: how many trips each car has finished, for the public GBFS feed. The feed shows a
-- car under an id derived from (secret, vehicle id, trips_ended), so the id a car is published
-- under changes after every trip, as GBFS asks for privacy, and stays the same between trips.
-- Written by the vehicles projector on `VehicleReturned`, under the same stream-version guard as
-- every other column, so a replay never counts a trip twice.
ALTER TABLE vehicles_view ADD COLUMN trips_ended bigint NOT NULL DEFAULT 0 CHECK (trips_ended >= 0);
