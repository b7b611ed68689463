"""Malformed requests at the OAuth endpoints get an RFC 6749 §5.2 error, never a 500.

Every response here is checked for: the exact status, a JSON body whose
``error`` is the exact RFC code (and nothing but ``error``,
``error_description`` and ``error_uri``), ``Cache-Control: no-store``, a
``WWW-Authenticate`` challenge on 401, a status below 500 and no traceback.
The authorization endpoint is checked against RFC 6749 §4.1.2.1: an HTML
error page (never a redirect) while the client or redirect URI is in doubt,
and a redirect to the registered URI carrying ``error`` and ``state`` once
both are known good.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from auth_testing import (
    ACCESS_TOKEN_TYPE,
    EXCHANGE,
    REDIRECT_URI,
    Login,
    ServerThread,
    authorize_params,
    login,
    pkce_pair,
)

FORM = "application/x-www-form-urlencoded"
FORM_HEADERS = {"Content-Type": FORM}
ENDPOINTS = ("/token", "/introspect", "/revoke")
# A request each endpoint accepts (with GATEWAY auth); the cases below break one thing in it.
VALID_BODY = {
    "/token": "grant_type=client_credentials&audience=notification",
    "/introspect": "token=not-a-token",
    "/revoke": "token=not-a-token",
}
ERROR_FIELDS = {"error", "error_description", "error_uri"}
# RFC 6749 §5.2: error = 1*(%x20-21 / %x23-5B / %x5D-7E); error_description likewise.
ERROR_CHARS = re.compile(r"^[\x20-\x21\x23-\x5b\x5d-\x7e]+$")
TRACE_MARKERS = ("Traceback", 'File "', "most recent call last")
MAX_FIELDS = 64


def basic(credentials: bytes) -> str:
    return "Basic " + base64.b64encode(credentials).decode("ascii")


GATEWAY = basic(b"gateway:gateway-dev-secret")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# Tokens whose header segment is well-formed base64url but hostile JSON, under 8 KB.
DEEPLY_NESTED_JWT = b64url(b"[" * 5000) + ".e30.AA"
HUGE_INT_JWT = b64url(b'{"alg":' + b"9" * 4400 + b"}") + ".e30.AA"
HEADER_NOT_OBJECT_JWT = b64url(b'["at+jwt"]') + ".e30.AA"
UNKNOWN_KID_JWT = b64url(b'{"typ":"at+jwt","alg":"ES256","kid":"nope"}') + ".e30.AA"


# Checks


def assert_no_crash(response: httpx.Response) -> None:
    assert response.status_code < 500, f"{response.status_code}: {response.text}"
    for marker in TRACE_MARKERS:
        assert marker not in response.text, response.text


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    """An RFC 6749 §5.2 error response with exactly this status and error code."""
    assert_no_crash(response)
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    content_type = response.headers.get("content-type", "")
    assert content_type.split(";")[0].strip() == "application/json", content_type
    assert response.headers.get("cache-control") == "no-store"
    body = response.json()
    assert isinstance(body, dict), body
    assert body.get("error") == error, body
    assert set(body) <= ERROR_FIELDS, body
    for field in ("error", "error_description"):
        if field in body:
            assert isinstance(body[field], str) and ERROR_CHARS.match(body[field]), body
    if status == 401:
        # RFC 7235 §3.1 and RFC 6749 §5.2: a 401 carries a challenge.
        assert response.headers.get("www-authenticate", "").startswith("Basic"), response.headers
    return body


def assert_error_page(response: httpx.Response, status: int, error: str) -> None:
    """RFC 6749 §4.1.2.1: the user agent is told, the client is not redirected to."""
    assert_no_crash(response)
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    assert "location" not in response.headers, response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers.get("cache-control") == "no-store"
    assert f"<code>{error}</code>" in response.text, response.text


def assert_error_redirect(response: httpx.Response, error: str, state: str | None) -> None:
    """RFC 6749 §4.1.2.1: back to the registered redirect URI with ``error`` and ``state``."""
    assert_no_crash(response)
    assert response.status_code == 302, f"{response.status_code}: {response.text}"
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    query = parse_qs(location.query)
    assert query["error"] == [error], query
    assert query.get("state") == ([state] if state is not None else None), query
    assert "code" not in query, query
    assert response.headers.get("cache-control") == "no-store"


def post(
    client: httpx.Client,
    path: str,
    body: bytes | str,
    authorization: str | None = GATEWAY,
    content_type: str | None = FORM,
) -> httpx.Response:
    headers: dict[str, str] = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if authorization is not None:
        headers["Authorization"] = authorization
    content = body.encode("utf-8") if isinstance(body, str) else body
    return client.post(path, content=content, headers=headers)


# Fixtures


@pytest.fixture(scope="module")
def alice(auth_server: ServerThread) -> Login:
    with httpx.Client(base_url=auth_server.base_url, timeout=10) as client:
        return login(client, "alice")


@pytest.fixture(scope="module")
def client(auth_server: ServerThread) -> Iterator[httpx.Client]:
    """One client for the module; a fresh connection per request, so that a
    server error (which drops its connection) cannot fail the next test."""
    with httpx.Client(
        base_url=auth_server.base_url,
        headers={"Connection": "close"},
        follow_redirects=False,
        timeout=10,
    ) as client:
        yield client


@pytest.fixture
def max_bytes(auth_server: ServerThread) -> int:
    limit: int = auth_server.app.state.settings.max_request_bytes
    return limit


# The requests the cases break are themselves fine


@pytest.mark.parametrize("path", ENDPOINTS)
def test_the_baseline_request_is_accepted(client: httpx.Client, path: str) -> None:
    response = post(client, path, VALID_BODY[path])
    assert response.status_code == 200, response.text
    assert response.headers.get("cache-control") == "no-store"


# Content type, size and encoding: checked before any OAuth logic, at every endpoint


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        pytest.param("application/json", '{"grant_type": "client_credentials"}', id="json"),
        pytest.param(
            "multipart/form-data; boundary=xyz",
            '--xyz\r\nContent-Disposition: form-data; name="grant_type"\r\n\r\n'
            "client_credentials\r\n--xyz--\r\n",
            id="multipart",
        ),
        pytest.param("text/plain", None, id="text-plain"),
        pytest.param(None, None, id="no-content-type"),
        pytest.param("application/x-www-form-urlencodedx", None, id="form-type-prefix"),
        pytest.param("", None, id="empty-content-type"),
    ],
)
def test_wrong_content_type_is_415(
    client: httpx.Client, path: str, content_type: str | None, body: str | None
) -> None:
    response = post(client, path, body or VALID_BODY[path], content_type=content_type)
    if content_type is None:
        assert "content-type" not in response.request.headers
    assert_oauth_error(response, 415, "invalid_request")


@pytest.mark.parametrize("path", ENDPOINTS)
def test_form_content_type_with_charset_is_accepted(client: httpx.Client, path: str) -> None:
    response = post(client, path, VALID_BODY[path], content_type=f"{FORM}; charset=UTF-8")
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", ENDPOINTS)
def test_oversized_body_with_content_length_is_413(
    client: httpx.Client, path: str, max_bytes: int
) -> None:
    body = VALID_BODY[path] + "&pad=" + "x" * max_bytes
    response = post(client, path, body)
    assert response.request.headers["content-length"] == str(len(body))
    assert_oauth_error(response, 413, "invalid_request")


@pytest.mark.parametrize("path", ENDPOINTS)
def test_oversized_chunked_body_without_content_length_is_413(
    client: httpx.Client, path: str, max_bytes: int
) -> None:
    def chunks() -> Iterator[bytes]:
        yield (VALID_BODY[path] + "&pad=").encode()
        for _ in range(max_bytes // 1024 + 2):
            yield b"x" * 1024

    response = client.post(
        path, content=chunks(), headers={"Content-Type": FORM, "Authorization": GATEWAY}
    )
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_oauth_error(response, 413, "invalid_request")


def test_body_of_exactly_the_limit_is_accepted(client: httpx.Client, max_bytes: int) -> None:
    prefix = VALID_BODY["/token"] + "&pad="
    body = prefix + "x" * (max_bytes - len(prefix))
    assert len(body) == max_bytes
    response = post(client, "/token", body)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param(b"&x=\xff\xfe", id="raw-invalid-utf8"),
        pytest.param(b"&x=\xc3", id="raw-truncated-utf8"),
        pytest.param(b"&x=\xed\xa0\x80", id="raw-surrogate"),
        # RFC 6749 Appendix B: names and values are UTF-8 after percent-decoding.
        pytest.param(b"&x=%ff%fe", id="percent-encoded-invalid-utf8"),
    ],
)
def test_invalid_utf8_is_invalid_request(client: httpx.Client, path: str, garbage: bytes) -> None:
    response = post(client, path, VALID_BODY[path].encode() + garbage)
    assert_oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        # Not valid percent-escapes: read literally (as browsers do), so just an unknown grant.
        pytest.param("grant_type=%zz%", "unsupported_grant_type", id="bad-escape-in-grant"),
        pytest.param("grant_type=client_credentials%", "unsupported_grant_type", id="dangling-%"),
        pytest.param(
            "grant_type=client_credentials&audience=%%%",
            "invalid_target",
            id="bad-escape-in-audience",
        ),
        pytest.param("=x&&grant_type=nope&", "unsupported_grant_type", id="empty-name-and-pairs"),
    ],
)
def test_percent_encoding_garbage_is_a_4xx(client: httpx.Client, body: str, error: str) -> None:
    assert_oauth_error(post(client, "/token", body), 400, error)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_too_many_fields_is_invalid_request(client: httpx.Client, path: str) -> None:
    fields = "&".join(f"f{i}=1" for i in range(MAX_FIELDS + 1))
    body = assert_oauth_error(
        post(client, path, f"{VALID_BODY[path]}&{fields}"), 400, "invalid_request"
    )
    assert "Too many parameters" in body["error_description"]


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_wrong_method_is_405_with_an_oauth_body(
    client: httpx.Client, path: str, method: str
) -> None:
    response = client.request(method, path)
    assert_oauth_error(response, 405, "invalid_request")
    assert response.headers["allow"] == "POST"


# /token: grant type and repeated parameters


@pytest.mark.parametrize(
    ("body", "authorization", "status", "error"),
    [
        # RFC 6749 §5.2: a missing required parameter is invalid_request;
        # unsupported_grant_type is for a grant type the server does not know.
        pytest.param("", GATEWAY, 400, "invalid_request", id="empty-body"),
        pytest.param("audience=notification", GATEWAY, 400, "invalid_request", id="no-grant-type"),
        pytest.param("grant_type=password&username=alice&password=x", None, 400,
                     "unsupported_grant_type", id="password-grant"),
        pytest.param("grant_type=implicit", GATEWAY, 400, "unsupported_grant_type", id="implicit"),
        pytest.param("grant_type=urn:x:unknown", GATEWAY, 400, "unsupported_grant_type",
                     id="unknown-urn"),
        pytest.param("grant_type=CLIENT_CREDENTIALS&audience=notification", GATEWAY, 400,
                     "unsupported_grant_type", id="wrong-case"),
    ],
)  # fmt: skip
def test_grant_type(
    client: httpx.Client, body: str, authorization: str | None, status: int, error: str
) -> None:
    assert_oauth_error(post(client, "/token", body, authorization), status, error)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/token", "grant_type=client_credentials&grant_type=client_credentials"),
        ("/token", "grant_type=client_credentials&grant_type=authorization_code"),
        ("/token", "grant_type=client_credentials&audience=notification&scope=a&scope=b"),
        ("/token", "grant_type=client_credentials&audience=notification&audience=order"),
        ("/token", f"grant_type={EXCHANGE}&subject_token=a&subject_token=b&audience=order"),
        ("/token", f"grant_type={EXCHANGE}&subject_token_type=a&subject_token_type=b"),
        ("/token", "grant_type=authorization_code&code=a&code=b&client_id=web"),
        ("/token", "grant_type=refresh_token&refresh_token=a&refresh_token=b&client_id=web"),
        ("/token", "grant_type=client_credentials&client_id=gateway&client_id=order"),
        ("/introspect", "token=a&token=b"),
        ("/introspect", "token=a&token_type_hint=access_token&token_type_hint=refresh_token"),
        ("/revoke", "token=a&token=b"),
        ("/revoke", "token=a&token_type_hint=access_token&token_type_hint=access_token"),
    ],
)
def test_repeated_parameter_is_invalid_request(client: httpx.Client, path: str, body: str) -> None:
    result = assert_oauth_error(post(client, path, body), 400, "invalid_request")
    assert "must not be repeated" in result["error_description"]


# Client authentication


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("Basic !!!!", id="not-base64"),
        pytest.param("Basic ////", id="base64-of-non-utf8"),
        pytest.param(basic("gateway:s\xe9cret".encode("latin-1")), id="latin-1-secret"),
        pytest.param(basic(b"gateway"), id="no-colon"),
        pytest.param(basic(b":"), id="empty-id-and-secret"),
        pytest.param(basic(b"gateway:"), id="empty-secret"),
        pytest.param(basic(b"nobody:nobody-dev-secret"), id="unknown-client"),
        pytest.param(basic(b"gateway:wrong"), id="wrong-secret"),
        pytest.param(basic(b"gateway:gateway-dev-secret "), id="secret-with-trailing-space"),
        pytest.param(basic(b"web:"), id="public-client"),
        pytest.param("Basic", id="scheme-only"),
        pytest.param("Bearer gateway-dev-secret", id="bearer-scheme"),
        pytest.param("Digest username=gateway", id="digest-scheme"),
    ],
)
def test_bad_client_authentication_is_401_invalid_client(
    client: httpx.Client, path: str, authorization: str
) -> None:
    assert_oauth_error(post(client, path, VALID_BODY[path], authorization), 401, "invalid_client")


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param("client_id=gateway&client_secret=gateway-dev-secret", id="same-credentials"),
        pytest.param("client_id=gateway&client_secret=wrong", id="wrong-secret-in-body"),
        pytest.param("client_id=order&client_secret=order-dev-secret", id="another-client"),
    ],
)
@pytest.mark.parametrize("path", ENDPOINTS)
def test_credentials_in_header_and_body_is_invalid_request(
    client: httpx.Client, path: str, extra: str
) -> None:
    # RFC 6749 §2.3: one authentication method per request; §5.2: else invalid_request.
    response = post(client, path, f"{VALID_BODY[path]}&{extra}")
    assert_oauth_error(response, 400, "invalid_request")


def test_client_credentials_in_the_query_string_are_not_accepted(client: httpx.Client) -> None:
    # RFC 6749 §2.3.1: the credentials MUST NOT be in the request URI.
    response = client.post(
        "/token?client_id=gateway&client_secret=gateway-dev-secret",
        content=VALID_BODY["/token"],
        headers=FORM_HEADERS,
    )
    assert_oauth_error(response, 401, "invalid_client")


@pytest.mark.parametrize(
    ("body", "authorization", "status", "error"),
    [
        pytest.param("grant_type=client_credentials&client_id=web", None, 401, "invalid_client",
                     id="cc-public-client"),
        pytest.param(f"grant_type={EXCHANGE}&client_id=web&subject_token=x&audience=order"
                     f"&subject_token_type={ACCESS_TOKEN_TYPE}", None, 401, "invalid_client",
                     id="exchange-public-client"),
        pytest.param(f"grant_type={EXCHANGE}&subject_token=x&audience=order"
                     f"&subject_token_type={ACCESS_TOKEN_TYPE}", None, 401, "invalid_client",
                     id="exchange-no-client"),
        pytest.param("grant_type=authorization_code&code=x", None, 401, "invalid_client",
                     id="code-no-client"),
        pytest.param("grant_type=client_credentials&audience=notification&client_id=gateway"
                     "&client_secret=gateway-dev-secret ", None, 401, "invalid_client",
                     id="post-secret-with-space"),
    ],
)  # fmt: skip
def test_unauthenticated_grants(
    client: httpx.Client, body: str, authorization: str | None, status: int, error: str
) -> None:
    assert_oauth_error(post(client, "/token", body, authorization), status, error)


# Grants with missing or bad parameters


@pytest.mark.parametrize(
    ("body", "authorization", "error"),
    [
        pytest.param("grant_type=authorization_code&client_id=web", None, "invalid_request",
                     id="code-missing"),
        pytest.param(f"grant_type=authorization_code&client_id=web&code=zzz&code_verifier="
                     f"{'a' * 43}&redirect_uri={REDIRECT_URI}", None, "invalid_grant",
                     id="code-garbage"),
        pytest.param("grant_type=refresh_token&client_id=web", None, "invalid_request",
                     id="refresh-token-missing"),
        pytest.param("grant_type=refresh_token&client_id=web&refresh_token=zzz", None,
                     "invalid_grant", id="refresh-token-garbage"),
        pytest.param("grant_type=client_credentials&audience=nope", GATEWAY, "invalid_target",
                     id="cc-unknown-audience"),
        pytest.param("grant_type=client_credentials", basic(b"order:order-dev-secret"),
                     "invalid_request", id="cc-audience-missing-for-two-audience-client"),
        pytest.param("grant_type=client_credentials&audience=notification&scope=orders:write",
                     GATEWAY, "invalid_scope", id="cc-unregistered-scope"),
        pytest.param("grant_type=client_credentials&audience=notification&resource=https://x",
                     GATEWAY, "invalid_target", id="cc-resource"),
    ],
)  # fmt: skip
def test_grant_parameter_errors(
    client: httpx.Client, body: str, authorization: str | None, error: str
) -> None:
    assert_oauth_error(post(client, "/token", body, authorization), 400, error)


# Token exchange (RFC 8693 §2.2.2)

Fields = dict[str, str | list[str]]


def without(*names: str) -> Callable[[Login], Fields]:
    def build(alice: Login) -> Fields:
        return {key: value for key, value in exchange_fields(alice).items() if key not in names}

    return build


def using(**overrides: str | list[str]) -> Callable[[Login], Fields]:
    def build(alice: Login) -> Fields:
        return {**exchange_fields(alice), **overrides}

    return build


def exchange_fields(alice: Login) -> Fields:
    return {
        "grant_type": EXCHANGE,
        "subject_token": alice.access_token,
        "subject_token_type": ACCESS_TOKEN_TYPE,
        "audience": "order",
    }


def with_refresh_token(alice: Login) -> Fields:
    return {**exchange_fields(alice), "subject_token": alice.refresh_token}


def twice(name: str) -> Callable[[Login], Fields]:
    def build(alice: Login) -> Fields:
        fields = exchange_fields(alice)
        value = fields[name]
        assert isinstance(value, str)
        return {**fields, name: [value, value]}

    return build


def test_the_baseline_exchange_is_accepted(client: httpx.Client, alice: Login) -> None:
    response = client.post("/token", data=using()(alice), headers={"Authorization": GATEWAY})
    assert response.status_code == 200, response.text
    assert response.json()["issued_token_type"] == ACCESS_TOKEN_TYPE


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        pytest.param(without("subject_token"), "invalid_request", id="subject-token-missing"),
        pytest.param(without("subject_token_type"), "invalid_request",
                     id="subject-token-type-missing"),
        pytest.param(using(subject_token=""), "invalid_request", id="subject-token-empty"),
        pytest.param(using(subject_token="garbage"), "invalid_request",
                     id="subject-token-garbage"),
        pytest.param(using(subject_token="a.b.c"), "invalid_request", id="subject-token-a.b.c"),
        pytest.param(using(subject_token="é.é.é"), "invalid_request",
                     id="subject-token-non-ascii"),
        pytest.param(with_refresh_token, "invalid_request", id="subject-token-is-refresh-token"),
        pytest.param(using(subject_token="a" * 9 * 1024), "invalid_request",
                     id="subject-token-9kb"),
        pytest.param(using(subject_token=".".join(["a" * 3072] * 3)), "invalid_request",
                     id="subject-token-9kb-jwt-shaped"),
        pytest.param(using(subject_token=HEADER_NOT_OBJECT_JWT), "invalid_request",
                     id="subject-token-header-not-object"),
        pytest.param(using(subject_token=UNKNOWN_KID_JWT), "invalid_request",
                     id="subject-token-unknown-kid"),
        pytest.param(using(subject_token=DEEPLY_NESTED_JWT), "invalid_request",
                     id="subject-token-deeply-nested-header"),
        pytest.param(using(subject_token=HUGE_INT_JWT), "invalid_request",
                     id="subject-token-huge-integer-header"),
        pytest.param(twice("subject_token"), "invalid_request", id="subject-token-twice"),
        pytest.param(using(subject_token_type="urn:ietf:params:oauth:token-type:refresh_token"),
                     "invalid_request", id="subject-token-type-refresh"),
        pytest.param(using(subject_token_type="access_token"), "invalid_request",
                     id="subject-token-type-bare"),
        pytest.param(using(requested_token_type="urn:ietf:params:oauth:token-type:id_token"),
                     "invalid_request", id="requested-token-type-id-token"),
        pytest.param(using(actor_token_type=ACCESS_TOKEN_TYPE), "invalid_request",
                     id="actor-token-type-without-actor-token"),
        pytest.param(using(actor_token="garbage", actor_token_type=ACCESS_TOKEN_TYPE),
                     "invalid_request", id="actor-token-garbage"),
        pytest.param(using(actor_token=DEEPLY_NESTED_JWT, actor_token_type=ACCESS_TOKEN_TYPE),
                     "invalid_request", id="actor-token-deeply-nested-header"),
        pytest.param(without("audience"), "invalid_target", id="audience-missing"),
        pytest.param(using(audience=""), "invalid_target", id="audience-empty"),
        pytest.param(using(audience=["order", "billing"]), "invalid_target",
                     id="audience-twice-different"),
        pytest.param(using(audience=["order", "order"]), "invalid_target",
                     id="audience-twice-same"),
        pytest.param(using(audience="inventory"), "invalid_target", id="audience-not-allowed"),
        pytest.param(using(resource="https://order.example/"), "invalid_target", id="resource"),
        pytest.param(using(resource=["https://a.example/", "https://b.example/"]),
                     "invalid_target", id="resource-twice"),
        pytest.param(using(scope="billing:read"), "invalid_scope", id="scope-beyond-policy"),
    ],
)  # fmt: skip
def test_token_exchange_errors(
    client: httpx.Client, alice: Login, fields: Callable[[Login], Fields], error: str
) -> None:
    response = client.post("/token", data=fields(alice), headers={"Authorization": GATEWAY})
    assert_oauth_error(response, 400, error)


def test_token_exchange_by_a_client_without_the_grant_is_unauthorized_client(
    client: httpx.Client, alice: Login
) -> None:
    response = client.post(
        "/token",
        data=exchange_fields(alice),
        headers={"Authorization": basic(b"billing-worker:billing-worker-dev-secret")},
    )
    assert_oauth_error(response, 400, "unauthorized_client")


# Introspection (RFC 7662) and revocation (RFC 7009)


@pytest.mark.parametrize("path", ["/introspect", "/revoke"])
def test_without_client_authentication_is_401(
    client: httpx.Client, path: str, alice: Login
) -> None:
    response = post(client, path, urlencode({"token": alice.access_token}), authorization=None)
    assert_oauth_error(response, 401, "invalid_client")


def test_introspection_by_a_public_client_is_401(client: httpx.Client, alice: Login) -> None:
    body = urlencode({"token": alice.access_token, "client_id": "web"})
    assert_oauth_error(post(client, "/introspect", body, authorization=None), 401, "invalid_client")


@pytest.mark.parametrize("path", ["/introspect", "/revoke"])
@pytest.mark.parametrize(
    "body", ["", "token_type_hint=access_token", "tokens=x", "Token=x"], ids=repr
)
def test_without_token_is_invalid_request(client: httpx.Client, path: str, body: str) -> None:
    assert_oauth_error(post(client, path, body), 400, "invalid_request")


@pytest.mark.parametrize("path", ["/introspect", "/revoke"])
@pytest.mark.parametrize("hint", ["id_token", "jwt", "ACCESS_TOKEN"])
def test_unsupported_token_type_hint(client: httpx.Client, path: str, hint: str) -> None:
    # RFC 7009 §2.2.1: an RFC 6749 §5.2 error, so HTTP 400 (401 is for client authentication).
    response = post(client, path, urlencode({"token": "x", "token_type_hint": hint}))
    assert_oauth_error(response, 400, "unsupported_token_type")


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("", id="empty"),
        pytest.param("garbage", id="garbage"),
        pytest.param("a" * 9 * 1024, id="9kb"),
        pytest.param(HEADER_NOT_OBJECT_JWT, id="header-not-object"),
        pytest.param(UNKNOWN_KID_JWT, id="unknown-kid"),
        pytest.param(DEEPLY_NESTED_JWT, id="deeply-nested-header"),
        pytest.param(HUGE_INT_JWT, id="huge-integer-header"),
    ],
)
def test_garbage_tokens_are_inactive_and_revocation_is_a_no_op(
    client: httpx.Client, token: str
) -> None:
    body = urlencode({"token": token})
    introspected = post(client, "/introspect", body)
    revoked = post(client, "/revoke", body)
    assert_no_crash(introspected)
    assert introspected.status_code == 200, introspected.text
    assert introspected.json() == {"active": False}
    assert_no_crash(revoked)
    assert revoked.status_code == 200, revoked.text  # RFC 7009 §2.2: unknown tokens get 200


@pytest.fixture(scope="module")
def non_ascii_payload_jwt(client: httpx.Client) -> str:
    """A token with this issuer's real ``kid`` (so it reaches the signature check)
    whose payload segment is not base64url: not even ASCII."""
    kid = client.get("/jwks").json()["keys"][0]["kid"]
    header = b64url(json.dumps({"typ": "at+jwt", "alg": "ES256", "kid": kid}).encode())
    return f"{header}.\u00e9.{b64url(bytes(64))}"


def test_a_non_ascii_payload_is_inactive_not_a_500(
    client: httpx.Client, non_ascii_payload_jwt: str
) -> None:
    body = urlencode({"token": non_ascii_payload_jwt})
    introspected = post(client, "/introspect", body)
    assert_no_crash(introspected)
    assert introspected.json() == {"active": False}
    revoked = post(client, "/revoke", body)
    assert_no_crash(revoked)
    assert revoked.status_code == 200, revoked.text


def test_a_non_ascii_payload_subject_token_is_invalid_request(
    client: httpx.Client, alice: Login, non_ascii_payload_jwt: str
) -> None:
    fields = using(subject_token=non_ascii_payload_jwt)(alice)
    response = client.post("/token", data=fields, headers={"Authorization": GATEWAY})
    assert_oauth_error(response, 400, "invalid_request")


# Authorization endpoint (RFC 6749 §4.1.1, §4.1.2.1)


def params_without(challenge: str, *names: str, **extra: str) -> dict[str, str]:
    return {k: v for k, v in authorize_params(challenge, **extra).items() if k not in names}


def repeated(challenge: str, name: str, value: str) -> str:
    return urlencode([*authorize_params(challenge).items(), (name, value)])


@pytest.mark.parametrize(
    ("query", "error"),
    [
        pytest.param({"client_id": "nobody"}, "invalid_client", id="unknown-client"),
        pytest.param({"client_id": "nobody", "redirect_uri": "https://evil.example/cb"},
                     "invalid_client", id="unknown-client-evil-redirect"),
        pytest.param({"client_id": ""}, "invalid_client", id="empty-client"),
        pytest.param({"client_id": "web\x00"}, "invalid_client", id="client-with-nul"),
        pytest.param({"redirect_uri": "https://evil.example/callback"}, "invalid_request",
                     id="unregistered-redirect"),
        pytest.param({"redirect_uri": REDIRECT_URI + "/evil"}, "invalid_request",
                     id="redirect-path-extended"),
        pytest.param({"redirect_uri": REDIRECT_URI + "?next=https://evil.example"},
                     "invalid_request", id="redirect-extra-query"),
        pytest.param({"redirect_uri": REDIRECT_URI.replace("127.0.0.1", "localhost")},
                     "invalid_request", id="redirect-other-host"),
        pytest.param({"redirect_uri": "/callback"}, "invalid_request", id="redirect-relative"),
        pytest.param({"client_id": "gateway"}, "invalid_request",
                     id="confidential-client-has-no-redirect"),
        pytest.param({"response_type": "token", "redirect_uri": "https://evil.example/cb"},
                     "unsupported_response_type", id="bad-response-type-and-evil-redirect"),
        pytest.param({"code_challenge_method": "plain", "redirect_uri": "https://evil.example/"},
                     "invalid_request", id="plain-pkce-and-evil-redirect"),
    ],
)  # fmt: skip
def test_authorize_without_a_trusted_redirect_shows_an_error_page(
    client: httpx.Client, query: dict[str, str], error: str
) -> None:
    _, challenge = pkce_pair()
    response = client.get("/authorize", params=authorize_params(challenge, **query))
    assert_error_page(response, 400, error)


def test_authorize_without_client_id_shows_an_error_page(client: httpx.Client) -> None:
    _, challenge = pkce_pair()
    response = client.get("/authorize", params=params_without(challenge, "client_id"))
    assert_error_page(response, 400, "invalid_client")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("client_id", "gateway"),
        ("client_id", "web"),
        ("redirect_uri", "https://evil.example/cb"),
        ("redirect_uri", REDIRECT_URI),
    ],
)
def test_authorize_with_a_repeated_client_or_redirect_shows_an_error_page(
    client: httpx.Client, name: str, value: str
) -> None:
    _, challenge = pkce_pair()
    response = client.get(f"/authorize?{repeated(challenge, name, value)}")
    assert_error_page(response, 400, "invalid_request")


@pytest.mark.parametrize(
    ("drop", "extra", "error"),
    [
        pytest.param(("code_challenge", "code_challenge_method"), {}, "invalid_request",
                     id="no-pkce"),
        pytest.param(("code_challenge",), {}, "invalid_request", id="no-code-challenge"),
        pytest.param(("code_challenge_method",), {}, "invalid_request",
                     id="no-method-defaults-to-plain"),
        pytest.param((), {"code_challenge_method": "plain"}, "invalid_request", id="plain"),
        pytest.param((), {"code_challenge_method": "S512"}, "invalid_request", id="unknown-method"),
        pytest.param((), {"code_challenge": "abc"}, "invalid_request", id="challenge-too-short"),
        pytest.param((), {"code_challenge": "a" * 42 + "!"}, "invalid_request",
                     id="challenge-bad-chars"),
        pytest.param((), {"response_type": "token"}, "unsupported_response_type", id="token"),
        pytest.param((), {"response_type": "code token"}, "unsupported_response_type",
                     id="hybrid"),
        pytest.param((), {"response_type": "id_token"}, "unsupported_response_type",
                     id="id-token"),
        # RFC 6749 §4.1.2.1: a missing required parameter is invalid_request.
        pytest.param(("response_type",), {}, "invalid_request", id="no-response-type"),
        pytest.param((), {"scope": "admin"}, "invalid_scope", id="unknown-scope"),
    ],
)  # fmt: skip
def test_authorize_with_a_trusted_redirect_redirects_the_error(
    client: httpx.Client, drop: tuple[str, ...], extra: dict[str, str], error: str
) -> None:
    _, challenge = pkce_pair()
    state = "s-" + error
    response = client.get(
        "/authorize", params=params_without(challenge, *drop, state=state, **extra)
    )
    assert_error_redirect(response, error, state)


def test_authorize_error_redirect_without_state_carries_no_state(client: httpx.Client) -> None:
    _, challenge = pkce_pair()
    params = params_without(challenge, "state", code_challenge_method="plain")
    assert_error_redirect(client.get("/authorize", params=params), "invalid_request", None)


def test_authorize_error_redirect_with_the_default_redirect_uri(client: httpx.Client) -> None:
    # web has one registered redirect URI, so it may be omitted (RFC 6749 §3.1.2.3).
    _, challenge = pkce_pair()
    params = params_without(challenge, "redirect_uri", code_challenge_method="plain")
    assert_error_redirect(client.get("/authorize", params=params), "invalid_request", "st4te")


@pytest.mark.parametrize("length", [4097, 8192, 60_000])
def test_over_long_authorize_query_is_414(client: httpx.Client, length: int) -> None:
    _, challenge = pkce_pair()
    query = urlencode(authorize_params(challenge))
    query += "&pad=" + "x" * (length - len(query) - 5)
    assert len(query) == length
    response = client.get(f"/authorize?{query}")
    assert_error_page(response, 414, "invalid_request")


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        pytest.param("application/json", b'{"username": "alice"}', 415, id="json"),
        pytest.param(None, b"username=alice", 415, id="no-content-type"),
        pytest.param(FORM, b"username=\xff", 400, id="invalid-utf8"),
        pytest.param(FORM, b"x=1&" * 100, 400, id="too-many-fields"),
        pytest.param(FORM, b"username=" + b"x" * 20_000, 413, id="oversized"),
    ],
)
def test_malformed_login_post_shows_an_error_page(
    client: httpx.Client, content_type: str | None, body: bytes, status: int
) -> None:
    _, challenge = pkce_pair()
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post(
        "/authorize", params=authorize_params(challenge), content=body, headers=headers
    )
    assert_error_page(response, status, "invalid_request")


def test_login_post_for_an_unknown_client_is_not_redirected(client: httpx.Client) -> None:
    _, challenge = pkce_pair()
    response = client.post(
        "/authorize",
        params=authorize_params(challenge, client_id="nobody"),
        data={"username": "alice", "password": "alice-dev-password"},
    )
    assert_error_page(response, 400, "invalid_client")


def test_the_server_still_serves_after_the_garbage(client: httpx.Client) -> None:
    response = post(client, "/token", VALID_BODY["/token"])
    assert response.status_code == 200, response.text
    assert json.loads(response.text)["token_type"] == "Bearer"
