"""Orders: placed and changed in one call each (place_order_v1, change_order_status_v1 on
PostgreSQL); expired idempotency keys found by their expiry.

Revision ID: 57926acec1c8
Revises: c4a7e2b91d53
Created: 2026-12-05 15:00:00.000000

The functions hold the mechanics only: the rules (prices, amounts, which changes are allowed)
are decided by the caller, app.domains.orders.repository.postgres, which names the version
it calls. A new version is a new function in a new migration; this one is never edited.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "57926acec1c8"
down_revision: str | None = "c4a7e2b91d53"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Locks checked by scripts.migration_lint, and why this revision may take them.
squawk_exceptions = {
    "require-concurrent-index-creation": "idempotency keys live a day and are purged hourly, "
    "so the table is small and the build short; orders with a key wait for it",
}

PLACE_ORDER_V1 = r"""
CREATE FUNCTION place_order_v1(
    p_user_id bigint,
    p_item_ids bigint[],
    p_quantities integer[],
    p_unit_prices numeric[],
    p_line_totals numeric[],
    p_shipping text,
    p_shipping_cost numeric,
    p_subtotal numeric,
    p_total numeric,
    p_street text,
    p_city text,
    p_country text,
    p_order jsonb,
    p_event_topic text,
    p_event jsonb,
    p_email_topic text,
    p_email jsonb,
    p_audit_action text,
    p_audit_details jsonb,
    p_request_id text,
    p_ip text,
    p_key text,
    p_fingerprint text,
    p_key_ttl interval,
    OUT outcome text,
    OUT placed_id bigint,
    OUT placed_at timestamptz,
    OUT short_line integer,
    OUT info jsonb
)
LANGUAGE plpgsql AS $$
-- Claims the idempotency key, takes every line's stock at the prices the caller priced the
-- order with, and records the order, its lines, its audit event, its two job log messages
-- and the key's answer; or, refusing, writes nothing and says why:
--   placed         placed_id, placed_at
--   replay         info = {"status": ..., "body": the stored answer}
--   in_flight      another transaction holds the key
--   key_reused     the key was used with another request (fingerprint)
--   unknown        info = [[line index, item id], ...]: not in the catalog (or deleted since)
--   short          short_line: the first line short of stock, in ascending item id order
--   price_changed  info = {"<item id>": "<price now>", ...}: price again and call again
-- Refusals return rather than raise: nothing was written, so nothing is rolled back, and a
-- sold-out flash sale logs no errors.
DECLARE
    stored record;
    checked record;
    body jsonb;
BEGIN
    IF p_key IS NOT NULL THEN
        -- One request per key at a time, and the others refused at once (409, retry)
        -- instead of queued behind it. Released when this transaction ends.
        IF NOT pg_try_advisory_xact_lock(
            hashtextextended('idempotency_keys:' || p_user_id || ':' || p_key, 0)
        ) THEN
            outcome := 'in_flight';
            RETURN;
        END IF;
        -- A statement of its own, so a snapshot taken after the lock: a request that held
        -- the key has committed (locks outlive the commit), and its answer is seen.
        SELECT k.fingerprint, k.status, k.response_status, k.response_body, k.expires_at
          INTO stored
          FROM idempotency_keys k
         WHERE k.user_id = p_user_id AND k.key = p_key;
        IF FOUND THEN
            IF stored.expires_at <= now() THEN
                -- An expired key is used afresh: its row is written again below.
                DELETE FROM idempotency_keys k WHERE k.user_id = p_user_id AND k.key = p_key;
            ELSIF stored.fingerprint IS DISTINCT FROM p_fingerprint THEN
                outcome := 'key_reused';
                RETURN;
            ELSIF stored.status <> 'completed' OR stored.response_body IS NULL THEN
                -- Left by a release that claimed keys in a transaction of their own.
                outcome := 'in_flight';
                RETURN;
            ELSE
                outcome := 'replay';
                info := jsonb_build_object(
                    'status', stored.response_status, 'body', stored.response_body::jsonb);
                RETURN;
            END IF;
        END IF;
    END IF;

    -- Every transaction locks items in ascending id order (ORDER BY comes before the
    -- locking clause), so orders sharing items queue instead of deadlocking. NO KEY UPDATE
    -- is what the UPDATE below takes anyway, and leaves foreign key checks unblocked.
    PERFORM 1 FROM items i WHERE i.id = ANY (p_item_ids) ORDER BY i.id FOR NO KEY UPDATE;

    -- A new snapshot: the rows as locked. An item deleted while this waited is absent.
    SELECT
        jsonb_agg(jsonb_build_array(l.n - 1, l.id) ORDER BY l.n)
            FILTER (WHERE i.id IS NULL) AS unknown,
        (array_agg(l.n - 1 ORDER BY l.id) FILTER (WHERE i.stock < l.q))[1] AS short_line,
        coalesce(bool_or(i.price <> l.p), false) AS repriced,
        jsonb_object_agg(l.id, i.price::text) FILTER (WHERE i.id IS NOT NULL) AS prices
      INTO checked
      FROM unnest(p_item_ids, p_quantities, p_unit_prices) WITH ORDINALITY AS l (id, q, p, n)
      LEFT JOIN items i ON i.id = l.id;

    IF checked.unknown IS NOT NULL THEN
        outcome := 'unknown';
        info := checked.unknown;
        RETURN;
    ELSIF checked.short_line IS NOT NULL THEN
        outcome := 'short';
        short_line := checked.short_line;
        RETURN;
    ELSIF checked.repriced THEN
        outcome := 'price_changed';
        info := checked.prices;
        RETURN;
    END IF;

    UPDATE items i
       SET stock = i.stock - l.q, updated_at = now()
      FROM unnest(p_item_ids, p_quantities) AS l (id, q)
     WHERE i.id = l.id;

    INSERT INTO orders (user_id, status, shipping_method, shipping_cost, subtotal, total,
                        address_street, address_city, address_country)
    VALUES (p_user_id, p_order ->> 'status', p_shipping, p_shipping_cost, p_subtotal, p_total,
            p_street, p_city, p_country)
    RETURNING id, created_at INTO placed_id, placed_at;

    -- In the request's order, which the lines' ids keep.
    INSERT INTO order_lines (order_id, item_id, item_name, quantity, unit_price, line_total)
    SELECT placed_id, l.id, i.name, l.q, l.p, l.t
      FROM unnest(p_item_ids, p_quantities, p_unit_prices, p_line_totals)
               WITH ORDINALITY AS l (id, q, p, t, n)
      JOIN items i ON i.id = l.id
     ORDER BY l.n;

    body := p_order || jsonb_build_object(
        'id', placed_id,
        'created_at', to_char(placed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'));

    INSERT INTO audit_events (action, actor_id, target_type, target_id, request_id, ip,
                              details, created_at)
    VALUES (p_audit_action, p_user_id, 'order', placed_id, p_request_id, p_ip,
            p_audit_details::json, now());

    -- No NOTIFY here: it would make this commit wait for every other notifying one in the
    -- cluster. The caller wakes the dispatchers once this has committed.
    INSERT INTO outbox_messages (topic, payload, dedup_key) VALUES
        (p_event_topic, jsonb_set(p_event, '{data}', body)::json,
         (p_event ->> 'type') || ':' || placed_id),
        (p_email_topic, (p_email || jsonb_build_object('order_id', placed_id))::json,
         p_email_topic || ':' || placed_id);

    IF p_key IS NOT NULL THEN
        INSERT INTO idempotency_keys (id, user_id, key, fingerprint, status, response_status,
                                      response_body, created_at, expires_at)
        VALUES (replace(gen_random_uuid()::text, '-', ''), p_user_id, p_key, p_fingerprint,
                'completed', 201, body::json, now(), now() + p_key_ttl);
    END IF;

    outcome := 'placed';
END
$$
"""

CHANGE_ORDER_STATUS_V1 = r"""
CREATE FUNCTION change_order_status_v1(
    p_order_id bigint,
    p_owner_id bigint,
    p_from text,
    p_to text,
    p_return_stock boolean,
    p_actor_id bigint,
    p_audit_action text,
    p_request_id text,
    p_ip text,
    p_messages jsonb,
    OUT outcome text,
    OUT current_status text
)
LANGUAGE plpgsql AS $$
-- Moves the order (the owner's, or any when p_owner_id is NULL) from p_from to p_to,
-- returns its stock to the catalog if asked, and records the audit event and the job log
-- messages ([{"topic", "dedup_key", "payload"}]); or, refusing, writes nothing:
--   changed     current_status = p_to
--   illegal     current_status: the order is no longer in p_from
--   not_found
DECLARE
    line record;
BEGIN
    UPDATE orders o
       SET status = p_to, updated_at = now()
     WHERE o.id = p_order_id
       AND o.status = p_from
       AND (p_owner_id IS NULL OR o.user_id = p_owner_id);
    IF NOT FOUND THEN
        SELECT o.status INTO current_status
          FROM orders o
         WHERE o.id = p_order_id AND (p_owner_id IS NULL OR o.user_id = p_owner_id);
        outcome := CASE WHEN FOUND THEN 'illegal' ELSE 'not_found' END;
        RETURN;
    END IF;

    IF p_return_stock THEN
        -- The same lock order as placing: ascending item id. A line whose item has left
        -- the catalog has nowhere to return its stock to. The sum saturates at the
        -- column's maximum: the owner may have raised the stock since.
        FOR line IN
            SELECT l.item_id, l.quantity
              FROM order_lines l
             WHERE l.order_id = p_order_id AND l.item_id IS NOT NULL
             ORDER BY l.item_id
        LOOP
            UPDATE items i
               SET stock = least(i.stock::bigint + line.quantity, 2147483647)::integer,
                   updated_at = now()
             WHERE i.id = line.item_id;
        END LOOP;
    END IF;

    INSERT INTO audit_events (action, actor_id, target_type, target_id, request_id, ip,
                              details, created_at)
    VALUES (p_audit_action, p_actor_id, 'order', p_order_id, p_request_id, p_ip,
            '{}'::json, now());

    INSERT INTO outbox_messages (topic, payload, dedup_key)
    SELECT m ->> 'topic', (m -> 'payload')::json, m ->> 'dedup_key'
      FROM jsonb_array_elements(p_messages) AS m
        ON CONFLICT (dedup_key) DO NOTHING;

    outcome := 'changed';
    current_status := p_to;
END
$$
"""


def upgrade() -> None:
    op.create_index(
        "ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"], unique=False
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PLACE_ORDER_V1)
        op.execute(CHANGE_ORDER_STATUS_V1)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION change_order_status_v1(bigint, bigint, text, text, boolean, bigint, "
            "text, text, text, jsonb)"
        )
        op.execute(
            "DROP FUNCTION place_order_v1(bigint, bigint[], integer[], numeric[], numeric[], "
            "text, numeric, numeric, numeric, text, text, text, jsonb, text, jsonb, text, jsonb, "
            "text, jsonb, text, text, text, text, interval)"
        )
    op.drop_index("ix_idempotency_keys_expires_at", table_name="idempotency_keys")
