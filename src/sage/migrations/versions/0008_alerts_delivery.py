"""alerts that reach the user: more alert kinds, the in-app inbox, the delivery outbox, preferences, push subscriptions

Existing alerts are converted without loss: `above`/`below` become `price_above`/`price_below`;
a pending alert stays active and armed (it fires at the first fresh price on its side, as
before); a fired one becomes `triggered` with its firing time and price kept.

Revision ID: 0008_alerts_delivery
Revises: 0007_portfolio_ledger
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008_alerts_delivery"
down_revision: str | None = "0007_portfolio_ledger"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = "'price_above', 'price_below', 'change_pct', 'fear_greed_above', 'fear_greed_below'"


def upgrade() -> None:
    op.drop_index("ix_market_alerts_pending", table_name="market_alerts")
    op.drop_constraint("ck_market_alerts_condition", "market_alerts", type_="check")
    op.alter_column("market_alerts", "condition", new_column_name="kind", type_=sa.String(24))
    op.alter_column("market_alerts", "symbol", nullable=True)
    op.add_column("market_alerts", sa.Column("direction", sa.String(8)))
    op.add_column("market_alerts", sa.Column("change_window", sa.String(4)))
    op.add_column("market_alerts", sa.Column("repeat", sa.String(8), server_default="once", nullable=False))
    op.add_column("market_alerts", sa.Column("cooldown_seconds", sa.Integer(), server_default="3600", nullable=False))
    op.add_column("market_alerts", sa.Column("note", sa.String(280)))
    op.add_column("market_alerts", sa.Column("status", sa.String(12), server_default="active", nullable=False))
    op.add_column("market_alerts", sa.Column("armed", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column("market_alerts", sa.Column("fire_count", sa.Integer(), server_default="0", nullable=False))
    op.add_column(
        "market_alerts",
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.execute("UPDATE market_alerts SET kind = 'price_' || kind WHERE kind IN ('above', 'below')")
    op.execute(
        "UPDATE market_alerts SET status = CASE WHEN triggered_at IS NULL THEN 'active' ELSE 'triggered' END,"
        " armed = triggered_at IS NULL, fire_count = CASE WHEN triggered_at IS NULL THEN 0 ELSE 1 END"
    )
    op.create_check_constraint("ck_market_alerts_kind", "market_alerts", f"kind IN ({KINDS})")
    op.create_check_constraint(
        "ck_market_alerts_status", "market_alerts", "status IN ('active', 'paused', 'triggered')"
    )
    op.create_check_constraint("ck_market_alerts_repeat", "market_alerts", "repeat IN ('once', 'every')")
    op.create_index(
        "ix_market_alerts_active", "market_alerts", ["kind", "symbol"], postgresql_where=sa.text("status = 'active'")
    )

    op.create_table(
        "notifications",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("data", postgresql.JSONB(), nullable=False),
        sa.Column("alert_id", postgresql.UUID(as_uuid=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_notifications"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_notifications_user_id_users", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["market_alerts.id"], name="fk_notifications_alert_id_market_alerts", ondelete="SET NULL"
        ),
    )
    op.create_index("ix_notifications_user_id_id", "notifications", ["user_id", "id"])
    op.create_index(
        "ix_notifications_unread", "notifications", ["user_id"], postgresql_where=sa.text("read_at IS NULL")
    )

    op.create_table(
        "notification_deliveries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("notification_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("lease_owner", postgresql.UUID(as_uuid=True)),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.String(500)),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_notification_deliveries"),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name="fk_notification_deliveries_notification_id_notifications",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_notification_deliveries_user_id_users", ondelete="CASCADE"
        ),
        sa.CheckConstraint("status IN ('pending', 'sent', 'failed')", name="ck_notification_deliveries_status"),
    )
    op.create_index("ix_notification_deliveries_notification_id", "notification_deliveries", ["notification_id"])
    op.create_index(
        "ix_notification_deliveries_due",
        "notification_deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )

    op.create_table(
        "notification_settings",
        sa.Column("user_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("email", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("web_push", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("verified_email", sa.String(320)),
        sa.Column("email_verified_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_notification_settings"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_notification_settings_user_id_users", ondelete="CASCADE"
        ),
    )
    op.create_table(
        "push_subscriptions",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("endpoint", sa.String(2048), nullable=False),
        sa.Column("p256dh", sa.String(200), nullable=False),
        sa.Column("auth", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_push_subscriptions"),
        sa.UniqueConstraint("endpoint", name="uq_push_subscriptions_endpoint"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_push_subscriptions_user_id_users", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_push_subscriptions_user_id", "push_subscriptions", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_push_subscriptions_user_id", table_name="push_subscriptions")
    op.drop_table("push_subscriptions")
    op.drop_table("notification_settings")
    op.drop_index("ix_notification_deliveries_due", table_name="notification_deliveries")
    op.drop_index("ix_notification_deliveries_notification_id", table_name="notification_deliveries")
    op.drop_table("notification_deliveries")
    op.drop_index("ix_notifications_unread", table_name="notifications")
    op.drop_index("ix_notifications_user_id_id", table_name="notifications")
    op.drop_table("notifications")
    op.drop_index("ix_market_alerts_active", table_name="market_alerts")
    op.drop_constraint("ck_market_alerts_repeat", "market_alerts", type_="check")
    op.drop_constraint("ck_market_alerts_status", "market_alerts", type_="check")
    op.drop_constraint("ck_market_alerts_kind", "market_alerts", type_="check")
    # The old schema knows only level alerts: other kinds cannot be expressed there.
    op.execute("DELETE FROM market_alerts WHERE kind NOT IN ('price_above', 'price_below') OR symbol IS NULL")
    op.execute("UPDATE market_alerts SET kind = substr(kind, 7)")
    op.execute("UPDATE market_alerts SET triggered_at = NULL WHERE status <> 'triggered'")
    for column in (
        "updated_at",
        "fire_count",
        "armed",
        "status",
        "note",
        "cooldown_seconds",
        "repeat",
        "change_window",
        "direction",
    ):
        op.drop_column("market_alerts", column)
    op.alter_column("market_alerts", "symbol", nullable=False)
    op.alter_column("market_alerts", "kind", new_column_name="condition", type_=sa.String(8))
    op.create_check_constraint("ck_market_alerts_condition", "market_alerts", "condition IN ('above', 'below')")
    op.create_index(
        "ix_market_alerts_pending", "market_alerts", ["symbol"], postgresql_where=sa.text("triggered_at IS NULL")
    )
