"""The token policy: the shipped file matches DESIGN.md, and every bad entry stops start-up.

Each validation rule has a case that breaks a known-good policy in one place
and checks that PolicyError names that place (``clients.<id>.<key>...``).
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from auth_service.app import create_app
from auth_service.cli import main as cli_main
from auth_service.config import DEFAULT_POLICY_FILE, Settings
from auth_service.policy import DelegationPolicy, Policy, PolicyError, load_policy, parse_policy
from auth_testing import REDIRECT_URI, assert_oauth_error, claims, client_credentials, free_port

# The shipped policy, as DESIGN.md's "Starting policy" table states it.
LOGIN_SCOPES = {"orders:read", "orders:write", "billing:read", "notifications:read"}
# Only support staff get these at login: read any order, post broadcasts.
SUPPORT_SCOPES = {"support:read", "support:broadcast"}
CLIENTS = {"web", "gateway", "order", "order-scheduler", "billing-worker", "notification-worker"}
CLIENT_CREDENTIALS = {
    "web": {},
    "gateway": {"notification": {"notifications:broadcast"}},
    "order": {
        "inventory": {"inventory:release"},
        "billing": {"payments:verify", "payments:refund"},
    },
    "order-scheduler": {
        "inventory": {"inventory:release"},
        # Beyond DESIGN.md: the expiry job checks a sold overdue order's payment.
        "billing": {"payments:verify"},
    },
    "billing-worker": {"order": {"orders:read"}},
    "notification-worker": {
        "auth": {"users:read"},
        # The status view only: the full order (orders:read) is billing's alone.
        "order": {"orders:status"},
        "billing": {"payments:verify"},
    },
}
# audience -> {scope it may get: subject scopes it derives from}
EXCHANGE = {
    "web": {},
    "gateway": {
        "order": {
            "orders:read": {"orders:read"},
            "orders:write": {"orders:write"},
            "support:read": {"support:read"},
        },
        "billing": {"billing:read": {"billing:read"}},
        "notification": {"notifications:read": {"notifications:read"}},
    },
    # A derivation: reserving stock needs a subject token that may write orders.
    "order": {"inventory": {"inventory:reserve": {"orders:write"}}},
    "order-scheduler": {},
    "billing-worker": {},
    "notification-worker": {},
}
GRANTS = {
    "web": {"authorization_code", "refresh_token"},
    "gateway": {"token_exchange", "client_credentials"},
    "order": {"token_exchange", "client_credentials"},
    "order-scheduler": {"client_credentials"},
    "billing-worker": {"client_credentials"},
    "notification-worker": {"client_credentials"},
}


@pytest.fixture(scope="module")
def shipped() -> Policy:
    return load_policy(DEFAULT_POLICY_FILE)


def test_the_shipped_policy_has_exactly_the_design_clients(shipped: Policy) -> None:
    assert set(shipped.clients) == CLIENTS
    for client_id, client in shipped.clients.items():
        assert client.client_id == client_id
        assert client.public is (client_id == "web"), client_id
        assert set(client.grants) == GRANTS[client_id], client_id


def test_web_logs_users_in_for_the_gateway(shipped: Policy) -> None:
    web = shipped.clients["web"]
    assert web.redirect_uris == (REDIRECT_URI,)
    assert web.login is not None
    assert web.login.audience == "gateway"
    assert set(web.login.scopes) == LOGIN_SCOPES
    assert {role: set(scopes) for role, scopes in web.login.role_scopes.items()} == {
        "support": SUPPORT_SCOPES
    }
    assert set(web.login.scopes_for(frozenset({"customer"}))) == LOGIN_SCOPES
    assert set(web.login.scopes_for(frozenset())) == LOGIN_SCOPES
    assert set(web.login.scopes_for(frozenset({"support"}))) == LOGIN_SCOPES | SUPPORT_SCOPES


@pytest.mark.parametrize("client_id", sorted(CLIENTS))
def test_client_credentials_scopes_match_the_design(shipped: Policy, client_id: str) -> None:
    table = shipped.clients[client_id].client_credentials
    assert {aud: set(scopes) for aud, scopes in table.items()} == CLIENT_CREDENTIALS[client_id]


@pytest.mark.parametrize("client_id", sorted(CLIENTS))
def test_exchange_scopes_match_the_design(shipped: Policy, client_id: str) -> None:
    table = shipped.clients[client_id].exchange
    actual = {
        aud: {scope: set(needs) for scope, needs in derivations.items()}
        for aud, derivations in table.items()
    }
    assert actual == EXCHANGE[client_id]


def test_only_non_login_clients_have_no_redirect_uris(shipped: Policy) -> None:
    for client_id, client in shipped.clients.items():
        if client_id != "web":
            assert client.redirect_uris == (), client_id
            assert client.login is None, client_id


def test_gateway_may_delegate_to_order_for_support_staff(shipped: Policy) -> None:
    delegation = {
        client_id: dict(client.delegation)
        for client_id, client in shipped.clients.items()
        if client.delegation
    }
    assert delegation == {
        "gateway": {
            "order": DelegationPolicy(
                actor_scopes=frozenset({"support:read"}),
                scopes=frozenset({"orders:read"}),
                subject_roles=frozenset({"customer"}),
            )
        }
    }


def test_order_to_inventory_is_a_derivation(shipped: Policy) -> None:
    order = shipped.clients["order"]
    assert order.exchangeable("inventory", frozenset({"orders:write"})) == frozenset(
        {"inventory:reserve"}
    )
    assert order.exchangeable("inventory", frozenset({"orders:read"})) == frozenset()
    # Holding the target scope itself is not enough: it must derive from orders:write.
    assert order.exchangeable("inventory", frozenset({"inventory:reserve"})) == frozenset()
    assert order.exchangeable("billing", frozenset({"orders:write"})) is None


def test_gateway_exchange_is_requested_and_subject_and_policy(shipped: Policy) -> None:
    gateway = shipped.clients["gateway"]
    subject = frozenset(LOGIN_SCOPES)
    expected = {
        ("order", subject): {"orders:read", "orders:write"},
        ("order", subject | {"support:read"}): {"orders:read", "orders:write", "support:read"},
        ("order", frozenset({"billing:read"})): set(),
        ("billing", subject): {"billing:read"},
        ("notification", subject): {"notifications:read"},
    }
    for (audience, scopes), grantable in expected.items():
        assert gateway.exchangeable(audience, scopes) == frozenset(grantable), audience
    assert gateway.exchangeable("inventory", subject) is None
    assert gateway.exchangeable("gateway", subject) is None


def test_scopes_supported_is_every_scope_once_sorted(shipped: Policy) -> None:
    assert shipped.scopes_supported() == sorted(
        LOGIN_SCOPES
        | SUPPORT_SCOPES
        | {
            "notifications:broadcast",
            "inventory:reserve",
            "inventory:release",
            "payments:verify",
            "payments:refund",
            "users:read",
            "orders:status",
        }
    )


def test_the_notification_worker_gets_the_order_status_view_and_nothing_more(
    http: httpx.Client,
) -> None:
    """Least privilege at the token endpoint (RFC 6749 §3.3, §4.4): the worker's registration
    at order is ``orders:status``; ``orders:read`` (the full order) is refused."""
    granted = client_credentials(http, "notification-worker", "order", "orders:status")
    assert granted.status_code == 200, granted.text
    token = claims(granted.json()["access_token"])
    assert (token["aud"], token["scope"], token["client_id"]) == (
        "order",
        "orders:status",
        "notification-worker",
    )
    # Asking for no scope gets the registered ones: still only the status view.
    default = client_credentials(http, "notification-worker", "order")
    assert default.status_code == 200, default.text
    assert default.json()["scope"] == "orders:status"
    for scope in ("orders:read", "orders:status orders:read"):
        assert_oauth_error(
            client_credentials(http, "notification-worker", "order", scope), 400, "invalid_scope"
        )
    # And billing's worker, which reads the full order, gets no status-view scope.
    assert_oauth_error(
        client_credentials(http, "billing-worker", "order", "orders:status"), 400, "invalid_scope"
    )


def test_lookup_of_an_unknown_client_is_none(shipped: Policy) -> None:
    assert shipped.client("nobody") is None
    assert shipped.client("gateway") is shipped.clients["gateway"]


# Validation: a known-good policy, then one rule broken at a time.

BASE = """\
[clients.web]
kind = "public"
grants = ["authorization_code", "refresh_token"]
redirect_uris = ["http://127.0.0.1:8000/callback"]

[clients.web.login]
audience = "gateway"
scopes = ["orders:read", "orders:write"]
role_scopes = { support = ["support:read"] }

[clients.gateway]
kind = "confidential"
grants = ["token_exchange", "client_credentials"]

[clients.gateway.exchange]
order = ["orders:read", "orders:write"]

[clients.gateway.client_credentials]
notification = ["notifications:broadcast"]

[clients.gateway.delegation.order]
actor_scopes = ["support:read"]
scopes = ["orders:read"]
subject_roles = ["customer"]

[clients.order]
kind = "confidential"
grants = ["token_exchange"]

[clients.order.exchange.inventory]
"inventory:reserve" = ["orders:write"]
"""


DELEGATION = """\
[clients.gateway.delegation.order]
actor_scopes = ["support:read"]
scopes = ["orders:read"]
subject_roles = ["customer"]
"""


def edit(old: str, new: str) -> str:
    """BASE with one exact fragment replaced; fails loudly if the fragment is not there."""
    assert BASE.count(old) == 1, old
    return BASE.replace(old, new)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_base_policy_is_valid(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, BASE))
    assert set(policy.clients) == {"web", "gateway", "order"}


CASES = [
    # (id, policy text, where the message must point, what it must say)
    ("not-toml", "[clients.web\nkind = ", "policy.toml", "not valid TOML"),
    ("not-toml-duplicate-table", BASE + "\n[clients.web]\nkind = 'public'\n", "policy.toml",
     "not valid TOML"),
    ("unknown-top-level-key", BASE + "\n[defaults]\nttl = 5\n", "policy.toml",
     "unknown key(s) ['defaults']"),
    ("no-clients", "", "policy.toml", "'clients' must be a non-empty table"),
    ("clients-not-a-table", "clients = 5\n", "policy.toml", "'clients' must be a non-empty table"),
    ("bad-client-id", edit("[clients.order]", "[clients.Order]").replace(
        "[clients.order.exchange", "[clients.Order.exchange"), "clients.Order",
     "client id must match"),
    ("client-not-a-table", "clients = { billing = 5 }\n", "clients.billing", "must be a table"),
    ("unknown-client-key", edit('kind = "confidential"\ngrants = ["token_exchange"]\n',
                                'kind = "confidential"\ngrants = ["token_exchange"]\n'
                                'scopes = ["x"]\n'),
     "clients.order", "unknown key(s) ['scopes']"),
    ("bad-kind", edit('kind = "public"', 'kind = "spa"'), "clients.web.kind",
     "must be 'public' or 'confidential'"),
    ("missing-kind", edit('kind = "public"\n', ""), "clients.web.kind",
     "must be 'public' or 'confidential'"),
    ("unknown-grant", edit('grants = ["token_exchange"]',
                           'grants = ["token_exchange", "password"]'),
     "clients.order.grants", "unknown grant(s) ['password']"),
    ("grant-with-urn-name", edit('grants = ["token_exchange"]',
                                 'grants = ["urn:ietf:params:oauth:grant-type:token-exchange"]'),
     "clients.order.grants", "unknown grant(s)"),
    ("grants-not-a-list", edit('grants = ["token_exchange"]', 'grants = "token_exchange"'),
     "clients.order.grants", "must be a list of strings"),
    ("duplicate-grant", edit('grants = ["token_exchange"]',
                             'grants = ["token_exchange", "token_exchange"]'),
     "clients.order.grants", "has duplicates"),
    ("public-client-credentials", edit('grants = ["authorization_code", "refresh_token"]',
                                       'grants = ["authorization_code", "refresh_token", '
                                       '"client_credentials"]'),
     "clients.web.grants", "a public client cannot use ['client_credentials']"),
    ("public-token-exchange", edit('grants = ["authorization_code", "refresh_token"]',
                                   'grants = ["authorization_code", "token_exchange"]'),
     "clients.web.grants", "a public client cannot use ['token_exchange']"),
    ("redirect-uris-missing", edit('redirect_uris = ["http://127.0.0.1:8000/callback"]\n', ""),
     "clients.web", "redirect_uris are required exactly when authorization_code is"),
    ("redirect-uris-empty", edit('["http://127.0.0.1:8000/callback"]', "[]"),
     "clients.web", "redirect_uris are required exactly when authorization_code is"),
    ("redirect-uris-without-code-grant", edit('grants = ["token_exchange"]\n',
                                              'grants = ["token_exchange"]\n'
                                              'redirect_uris = ["https://o.example/cb"]\n'),
     "clients.order", "redirect_uris are required exactly when authorization_code is"),
    ("redirect-uri-relative", edit('"http://127.0.0.1:8000/callback"', '"/callback"'),
     "clients.web.redirect_uris", "'/callback' must be an absolute http(s) URL"),
    ("redirect-uri-no-scheme", edit('"http://127.0.0.1:8000/callback"', '"//evil.example/cb"'),
     "clients.web.redirect_uris", "must be an absolute http(s) URL"),
    ("redirect-uri-fragment", edit('"http://127.0.0.1:8000/callback"',
                                   '"http://127.0.0.1:8000/callback#top"'),
     "clients.web.redirect_uris", "'http://127.0.0.1:8000/callback#top' must be an absolute"),
    ("redirect-uri-javascript", edit('"http://127.0.0.1:8000/callback"', '"javascript:alert(1)"'),
     "clients.web.redirect_uris", "must be an absolute http(s) URL"),
    ("redirect-uri-custom-scheme", edit('"http://127.0.0.1:8000/callback"',
                                        '"myapp://callback"'),
     "clients.web.redirect_uris", "must be an absolute http(s) URL"),
    ("redirect-uri-duplicate", edit('["http://127.0.0.1:8000/callback"]',
                                    '["http://127.0.0.1:8000/callback", '
                                    '"http://127.0.0.1:8000/callback"]'),
     "clients.web.redirect_uris", "has duplicates"),
    ("login-missing", edit('[clients.web.login]\naudience = "gateway"\n'
                           'scopes = ["orders:read", "orders:write"]\n'
                           'role_scopes = { support = ["support:read"] }\n', ""),
     "clients.web", "a 'login' table is required exactly when authorization_code is"),
    ("login-without-code-grant", BASE + '\n[clients.order.login]\naudience = "gateway"\n'
                                        'scopes = ["orders:read"]\n',
     "clients.order", "a 'login' table is required exactly when authorization_code is"),
    ("login-unknown-key", edit('audience = "gateway"\n', 'audience = "gateway"\nttl = 60\n'),
     "clients.web.login", "unknown key(s) ['ttl']"),
    ("login-bad-audience", edit('audience = "gateway"', 'audience = "https://gateway"'),
     "clients.web.login.audience", "must be a service id"),
    ("login-missing-audience", edit('audience = "gateway"\n', ""),
     "clients.web.login.audience", "must be a service id"),
    ("login-empty-scopes", edit('scopes = ["orders:read", "orders:write"]', "scopes = []"),
     "clients.web.login.scopes", "must list at least one scope"),
    ("login-duplicate-scope", edit('scopes = ["orders:read", "orders:write"]',
                                   'scopes = ["orders:read", "orders:read"]'),
     "clients.web.login.scopes", "has duplicates"),
    ("role-scope-bad-token", edit('support = ["support:read"]', 'support = ["support read"]'),
     "clients.web.login.role_scopes.support", "'support read' is not a valid scope token"),
    ("scope-with-space", edit('order = ["orders:read", "orders:write"]',
                              'order = ["orders:read", "orders write"]'),
     "clients.gateway.exchange.order", "'orders write' is not a valid scope token"),
    ("scope-with-quote", edit('order = ["orders:read", "orders:write"]',
                              'order = ["orders:read", "orders\\"write"]'),
     "clients.gateway.exchange.order", "is not a valid scope token (RFC 6749 §3.3)"),
    ("scope-with-backslash", edit('order = ["orders:read", "orders:write"]',
                                  "order = ['orders:read', 'orders\\write']"),
     "clients.gateway.exchange.order", "is not a valid scope token (RFC 6749 §3.3)"),
    ("scope-empty-string", edit('order = ["orders:read", "orders:write"]',
                                'order = ["orders:read", ""]'),
     "clients.gateway.exchange.order", "'' is not a valid scope token"),
    ("scope-non-ascii", edit('order = ["orders:read", "orders:write"]',
                             'order = ["orders:read", "ordérs:write"]'),
     "clients.gateway.exchange.order", "is not a valid scope token"),
    ("scope-not-a-string", edit('order = ["orders:read", "orders:write"]',
                                'order = ["orders:read", 5]'),
     "clients.gateway.exchange.order", "must be a list of strings"),
    ("exchange-duplicate-scope", edit('order = ["orders:read", "orders:write"]',
                                      'order = ["orders:read", "orders:read"]'),
     "clients.gateway.exchange.order", "has duplicates"),
    ("exchange-empty-scopes", edit('order = ["orders:read", "orders:write"]', "order = []"),
     "clients.gateway.exchange.order", "must list at least one scope"),
    ("exchange-bad-audience", edit('order = ["orders:read", "orders:write"]',
                                   'Order = ["orders:read", "orders:write"]').replace(
        "[clients.gateway.delegation.order]", "[clients.gateway.delegation.Order]"),
     "clients.gateway.exchange.Order", "must match"),
    ("exchange-not-a-table", edit('[clients.gateway.exchange]\norder = ["orders:read", '
                                  '"orders:write"]\n', "").replace(
        'grants = ["token_exchange", "client_credentials"]\n',
        'grants = ["token_exchange", "client_credentials"]\nexchange = ["order"]\n'),
     "clients.gateway.exchange", "must be a table"),
    ("exchange-empty-derivation-table", edit('[clients.order.exchange.inventory]\n'
                                             '"inventory:reserve" = ["orders:write"]\n',
                                             "[clients.order.exchange]\ninventory = {}\n"),
     "clients.order.exchange.inventory", "must list at least one scope"),
    ("exchange-derivation-needs-nothing", edit('"inventory:reserve" = ["orders:write"]',
                                               '"inventory:reserve" = []'),
     "clients.order.exchange.inventory.inventory:reserve", "must list at least one scope"),
    ("exchange-derivation-bad-target-scope", edit('"inventory:reserve" = ["orders:write"]',
                                                  '"inventory reserve" = ["orders:write"]'),
     "clients.order.exchange.inventory", "'inventory reserve' is not a valid scope token"),
    ("exchange-derivation-bad-source-scope", edit('"inventory:reserve" = ["orders:write"]',
                                                  '"inventory:reserve" = ["orders\\\\write"]'),
     "clients.order.exchange.inventory.inventory:reserve", "is not a valid scope token"),
    ("exchange-table-without-grant", edit('grants = ["token_exchange"]',
                                          'grants = ["client_credentials"]') +
     '\n[clients.order.client_credentials]\ninventory = ["inventory:release"]\n',
     "clients.order", "an 'exchange' table is required exactly when token_exchange is"),
    ("exchange-grant-without-table", edit('[clients.order.exchange.inventory]\n'
                                          '"inventory:reserve" = ["orders:write"]\n', ""),
     "clients.order", "an 'exchange' table is required exactly when token_exchange is"),
    ("client-credentials-table-without-grant", BASE +
     '\n[clients.order.client_credentials]\ninventory = ["inventory:release"]\n',
     "clients.order", "a 'client_credentials' table is required exactly when that grant is"),
    ("client-credentials-grant-without-table", edit('[clients.gateway.client_credentials]\n'
                                                    'notification = ["notifications:broadcast"]\n',
                                                    ""),
     "clients.gateway", "a 'client_credentials' table is required exactly when that grant is"),
    ("client-credentials-empty-scopes", edit('notification = ["notifications:broadcast"]',
                                             "notification = []"),
     "clients.gateway.client_credentials.notification", "must list at least one scope"),
    ("client-credentials-bad-scope", edit('notification = ["notifications:broadcast"]',
                                          'notification = ["notifications broadcast"]'),
     "clients.gateway.client_credentials.notification", "is not a valid scope token"),
    ("client-credentials-duplicate-scope", edit('notification = ["notifications:broadcast"]',
                                                'notification = ["notifications:broadcast", '
                                                '"notifications:broadcast"]'),
     "clients.gateway.client_credentials.notification", "has duplicates"),
    ("client-credentials-bad-audience", edit('notification = ["notifications:broadcast"]',
                                             '"notification service" = ["x:y"]'),
     "clients.gateway.client_credentials.notification service", "must match"),
    ("delegation-audience-not-exchanged", edit("[clients.gateway.delegation.order]",
                                               "[clients.gateway.delegation.billing]"),
     "clients.gateway.delegation", "['billing'] not among the exchange audiences"),
    ("delegation-not-a-table", edit(DELEGATION, "").replace(
        'grants = ["token_exchange", "client_credentials"]\n',
        'grants = ["token_exchange", "client_credentials"]\ndelegation = "order"\n'),
     "clients.gateway.delegation", "must be a table"),
    ("delegation-old-list-form", edit(DELEGATION, '[clients.gateway.delegation]\n'
                                                  'order = ["support:read"]\n'),
     "clients.gateway.delegation.order", "must be a table with actor_scopes, scopes"),
    ("delegation-unknown-key", edit('subject_roles = ["customer"]\n',
                                    'subject_roles = ["customer"]\nttl = 60\n'),
     "clients.gateway.delegation.order", "unknown key(s) ['ttl']"),
    ("delegation-missing-scopes", edit('scopes = ["orders:read"]\nsubject_roles', 'subject_roles'),
     "clients.gateway.delegation.order", "missing key(s) ['scopes']"),
    ("delegation-missing-roles", edit('subject_roles = ["customer"]\n', ""),
     "clients.gateway.delegation.order", "missing key(s) ['subject_roles']"),
    ("delegation-empty-actor-scopes", edit('actor_scopes = ["support:read"]', "actor_scopes = []"),
     "clients.gateway.delegation.order.actor_scopes", "must list at least one scope"),
    ("delegation-bad-actor-scope", edit('actor_scopes = ["support:read"]',
                                        'actor_scopes = ["support read"]'),
     "clients.gateway.delegation.order.actor_scopes", "is not a valid scope token"),
    ("delegation-empty-scopes", edit('scopes = ["orders:read"]\nsubject_roles',
                                     "scopes = []\nsubject_roles"),
     "clients.gateway.delegation.order.scopes", "must list at least one scope"),
    ("delegation-scope-beyond-exchange", edit('scopes = ["orders:read"]\nsubject_roles',
                                              'scopes = ["orders:read", "billing:read"]\n'
                                              "subject_roles"),
     "clients.gateway.delegation.order.scopes",
     "['billing:read'] not among the exchange scopes for 'order'"),
    ("delegation-empty-roles", edit('subject_roles = ["customer"]', "subject_roles = []"),
     "clients.gateway.delegation.order.subject_roles", "must list at least one role"),
    ("delegation-bad-role", edit('subject_roles = ["customer"]', 'subject_roles = ["Customer"]'),
     "clients.gateway.delegation.order.subject_roles", "'Customer' must match"),
    ("delegation-roles-not-a-list", edit('subject_roles = ["customer"]',
                                         'subject_roles = "customer"'),
     "clients.gateway.delegation.order.subject_roles", "must be a list of strings"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "where", "what"), [pytest.param(*case[1:], id=case[0]) for case in CASES]
)
def test_a_bad_policy_file_names_the_bad_entry(
    tmp_path: Path, text: str, where: str, what: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as raised:
        load_policy(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: "), message
    # The entry is named as a whole (followed by ':' or '.'), not as a prefix of another.
    assert re.search(re.escape(where) + r"[:.]", message), message
    assert what in message, message


def test_a_missing_policy_file_is_a_policy_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(path)


def test_parse_policy_names_its_source() -> None:
    with pytest.raises(PolicyError, match=r"^inline: clients\.web\.kind: "):
        parse_policy({"clients": {"web": {"kind": "spa"}}}, source="inline")


# Start-up stops on a bad policy


def bad_policy(tmp_path: Path) -> Path:
    text = edit(
        'order = ["orders:read", "orders:write"]', 'order = ["orders:read", "orders write"]'
    )
    return write(tmp_path, text)


async def test_start_up_stops_on_a_bad_policy_file(tmp_path: Path) -> None:
    from auth_testing import make_settings

    settings = make_settings(tmp_path, free_port(), policy_file=bad_policy(tmp_path))
    app = create_app(settings)
    with pytest.raises(PolicyError, match=re.escape("clients.gateway.exchange.order: ")):
        async with app.router.lifespan_context(app):
            pytest.fail("the app started with a bad policy")
    # The policy is checked first: nothing else (the database) was touched.
    assert not (tmp_path / "auth.db").exists()


async def test_start_up_stops_on_a_missing_policy_file(tmp_path: Path) -> None:
    from auth_testing import make_settings

    settings = make_settings(tmp_path, free_port(), policy_file=tmp_path / "absent.toml")
    app = create_app(settings)
    with pytest.raises(PolicyError, match="cannot read policy file"):
        async with app.router.lifespan_context(app):
            pytest.fail("the app started without a policy")


def test_policy_file_setting_defaults_to_the_shipped_file() -> None:
    assert Settings.model_validate({}).policy_file == DEFAULT_POLICY_FILE
    assert DEFAULT_POLICY_FILE.is_file()


# hopshop-auth check-policy


def test_check_policy_accepts_the_shipped_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["check-policy", str(DEFAULT_POLICY_FILE)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == f"ok: {len(CLIENTS)} clients"
    assert err == ""


def test_check_policy_rejects_a_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["check-policy", str(bad_policy(tmp_path))]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("invalid policy: ")
    assert "clients.gateway.exchange.order: 'orders write' is not a valid scope token" in err


def test_check_policy_rejects_a_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["check-policy", str(tmp_path / "absent.toml")]) == 1
    assert "cannot read policy file" in capsys.readouterr().err
