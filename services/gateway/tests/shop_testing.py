"""The shop behind the gateway, for real: inventory, order, billing and notification.

Each service runs in a uvicorn thread of the test process, on its own SQLite
file, with its Kafka workers on, retrying and joining consumer groups quickly.
The gateway tests start one shop in exchange mode (conftest) and one in
forward mode (test_forward_mode).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from billing_service.app import create_app as create_billing_app
from billing_service.config import Settings as BillingSettings
from hopkit.testing import ServerThread, free_port
from inventory_service.app import create_app as create_inventory_app
from inventory_service.config import Settings as InventorySettings
from notification_service.app import create_app as create_notification_app
from notification_service.config import Settings as NotificationSettings
from order_service.app import create_app as create_order_app
from order_service.config import Settings as OrderSettings


@dataclass(frozen=True)
class Shop:
    inventory: ServerThread
    order: ServerThread
    billing: ServerThread
    notification: ServerThread

    @property
    def servers(self) -> tuple[ServerThread, ...]:
        return (self.inventory, self.order, self.billing, self.notification)

    @property
    def urls(self) -> dict[str, str]:
        """Where the gateway finds each service, by the name of its setting."""
        return {
            "inventory_url": self.inventory.base_url,
            "order_url": self.order.base_url,
            "billing_url": self.billing.base_url,
            "notification_url": self.notification.base_url,
        }


@contextmanager
def running_shop(tmp: Path, common: dict[str, object]) -> Iterator[Shop]:
    """The four services with ``common`` settings (issuer, valkey, broker, mode...).

    Stopped in reverse order when the block ends, and so are those already
    started when a later one fails to start.
    """
    # As in the stack, every service is given every service's URL, its own included
    # (what DPoP proofs sent to it must name): the ports are chosen before any starts.
    ports = {name: free_port() for name in ("inventory", "order", "billing", "notification")}
    common = {**common, **{f"{name}_url": f"http://127.0.0.1:{p}" for name, p in ports.items()}}
    with ExitStack() as started:
        inventory_settings = InventorySettings.model_validate(
            {**common, "database_url": f"sqlite:///{tmp / 'inventory.db'}"}
        )
        inventory = started.enter_context(
            ServerThread(create_inventory_app(inventory_settings), ports["inventory"])
        )
        order_settings = OrderSettings.model_validate(
            {
                **common,
                "database_url": f"sqlite:///{tmp / 'order.db'}",
                "outbox_poll_interval": 0.2,
                "consumer_session_timeout_ms": 1000,
                "run_expiry_scheduler": False,
            }
        )
        order = started.enter_context(
            ServerThread(create_order_app(order_settings), ports["order"])
        )
        billing_settings = BillingSettings.model_validate(
            {
                **common,
                "database_url": f"sqlite:///{tmp / 'billing.db'}",
                "worker": True,
                "worker_backoff_first": 0.05,
                "worker_backoff_max": 0.5,
                "outbox_poll_interval": 0.2,
                "kafka_session_timeout_ms": 1000,
                "kafka_heartbeat_interval_ms": 200,
            }
        )
        billing = started.enter_context(
            ServerThread(create_billing_app(billing_settings), ports["billing"])
        )
        notification_settings = NotificationSettings.model_validate(
            {
                **common,
                "database_url": f"sqlite:///{tmp / 'notification.db'}",
                "worker_enabled": True,
                "consumer_session_timeout_ms": 1000,
                "consumer_heartbeat_interval_ms": 200,
                "consumer_backoff_first": 0.05,
                "consumer_backoff_max": 0.5,
            }
        )
        notification = started.enter_context(
            ServerThread(create_notification_app(notification_settings), ports["notification"])
        )
        yield Shop(inventory, order, billing, notification)
