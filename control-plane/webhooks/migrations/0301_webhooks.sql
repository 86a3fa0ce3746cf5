CREATE TABLE webhook_subscriptions (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL,
    dataset_id TEXT,
    account_id TEXT,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret TEXT NOT NULL,
    status TEXT NOT NULL,
    disabled_reason TEXT,
    consecutive_failures BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhook_subscriptions_dataset ON webhook_subscriptions(dataset_id);
CREATE INDEX webhook_subscriptions_account ON webhook_subscriptions(account_id);

CREATE TABLE webhook_deliveries (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    subscription_id TEXT NOT NULL REFERENCES webhook_subscriptions(id) ON DELETE CASCADE,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    dataset_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_status BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT,
    UNIQUE (subscription_id, event_id)
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries(dataset_id, status, seq);
CREATE INDEX webhook_deliveries_subscription ON webhook_deliveries(subscription_id, seq);
