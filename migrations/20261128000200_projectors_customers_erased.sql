-- An erased customer (CustomerErased) keeps their row, for their trips and money, without their
-- personal data: the columns holding it become NULL and `erased_at` says when.
ALTER TABLE customers_view
    ALTER COLUMN name DROP NOT NULL,
    ALTER COLUMN phone DROP NOT NULL,
    ALTER COLUMN email DROP NOT NULL,
    ALTER COLUMN birth_date DROP NOT NULL,
    ALTER COLUMN licence_number DROP NOT NULL,
    ADD COLUMN erased_at timestamptz;
