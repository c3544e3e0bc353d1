-- projectors: payments in the accounts read model (the payment saga's facts).
--
-- `paid_kopecks` is money taken for a charge and kept (captures minus refunds to the card).
-- `open_kopecks` becomes the *balance*: charged − refunded − waived − paid. Positive is still
-- owed; negative (briefly, between a refund of a paid charge and the money going back to the
-- card) is owed to the customer. The sums must still add up, now with what was paid.

ALTER TABLE accounts_view ADD COLUMN paid_kopecks bigint NOT NULL DEFAULT 0;
ALTER TABLE accounts_view DROP CONSTRAINT accounts_view_open_kopecks_check;
ALTER TABLE accounts_view DROP CONSTRAINT accounts_view_check;
ALTER TABLE accounts_view ADD CONSTRAINT accounts_view_sums_check
    CHECK (charged_kopecks = refunded_kopecks + waived_kopecks + paid_kopecks + open_kopecks);

ALTER TABLE account_charges_view
    ADD COLUMN paid_kopecks bigint NOT NULL DEFAULT 0,
    -- A payment for it was refused at least once (it was or is a debt).
    ADD COLUMN payment_failed boolean NOT NULL DEFAULT false,
    -- Its debt went to a collection agency.
    ADD COLUMN with_agency boolean NOT NULL DEFAULT false;
