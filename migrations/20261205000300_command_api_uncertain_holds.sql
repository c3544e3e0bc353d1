-- command-api: card holds whose outcome the trip start route does not know (the gateway did not
-- answer, or answered 5xx, on every try), so that none outlives the start it was made for.
--
-- A start retried with the same Idempotency-Key asks the gateway again with the same hold key and
-- gets the same hold, so usually the next try settles it. But the next try may be refused before
-- it asks (the customer got blocked meanwhile), or never come. A row here is that hold's only
-- trace: it is deleted once a trip has taken the hold, and the hold is released at once when the
-- key's answer turns out to be a refusal, or by the sweeper (`command_api::holds`) when no trip
-- took it after a while. A released hold's row stays (`released_at`) for two days, because the
-- gateway answers a repeated key with its first answer, a hold, even after the hold was
-- released: a late retry of the start must be refused here, not given a released hold.
-- Writer: command-api.
CREATE TABLE uncertain_holds (
    hold_key        text PRIMARY KEY,
    customer_id     uuid NOT NULL,
    trip_id         uuid NOT NULL,
    amount_kopecks  bigint NOT NULL,
    noted_at        timestamptz NOT NULL,
    released_at     timestamptz
);
