"""HTTP routes: parse, authorise, call the service layer, shape the answer. Nothing else."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, status
from hopauth import Principal
from hopkit.logs import annotate

from . import service
from .deps import Broadcaster, Customer, SessionDep
from .schemas import BroadcastIn, NotificationOut
from .service import NotificationView

router = APIRouter()

MAX_LIST = 100
#: Broadcasts listed next to a customer's own notifications unless asked otherwise.
BROADCASTS_LISTED = 10


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {}}}


AUTH_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: _problem("No token, or an invalid one (see `WWW-Authenticate`)"),
    403: _problem(
        "Missing scope (see `WWW-Authenticate`), a caller other than the gateway, "
        "or a token of the wrong kind (user context required, or refused)"
    ),
    422: _problem("The request is invalid; `errors` names the fields"),
}


@router.get(
    "/notifications",
    tags=["notifications"],
    summary="The customer's own notifications and the broadcasts, newest first",
    description="Caller: the gateway, with the customer's token exchanged for this service "
    "(`notifications:read`). The customer is the token's `sub`. The customer's own and "
    "the broadcasts are limited apart (`limit`, `broadcasts`), then merged newest first: "
    "a flood of broadcasts cannot push the customer's own out of the list.",
    responses=AUTH_PROBLEMS,
)
async def list_notifications(
    session: SessionDep,
    principal: Customer,
    limit: int = Query(
        50, ge=1, le=MAX_LIST, description="At most this many of the customer's own, newest"
    ),
    broadcasts: int = Query(
        BROADCASTS_LISTED, ge=0, le=MAX_LIST, description="At most this many broadcasts, newest"
    ),
) -> list[NotificationOut]:
    _audit("list", principal)
    found = await service.list_for(session, principal.subject, limit, broadcasts)
    annotate(count=len(found))
    return [_out(view) for view in found]


@router.post(
    "/broadcasts",
    tags=["broadcasts"],
    summary="Tell every customer something",
    description="Caller: the gateway, by its own client-credentials token "
    "(`notifications:broadcast`), for support staff. A token that carries a user "
    "(a `sub` other than the client, an `act` chain, a login session) is refused: "
    "no user context reaches this service.",
    status_code=status.HTTP_201_CREATED,
    responses=AUTH_PROBLEMS,
)
async def post_broadcast(
    body: BroadcastIn, session: SessionDep, principal: Broadcaster
) -> NotificationOut:
    _audit("broadcast", principal)
    view = await service.broadcast(session, body.message)
    annotate(notification_id=view.id)
    return _out(view)


def _audit(action: str, principal: Principal) -> None:
    """Who did what, on this request's log line: claims only, never the token."""
    annotate(
        action=action,
        sub=principal.subject,
        client_id=principal.client_id,
        act=list(principal.actors),
        jti=principal.token_id,
    )


def _out(view: NotificationView) -> NotificationOut:
    return NotificationOut(
        id=view.id,
        kind=view.kind,
        message=view.message,
        order_id=view.order_id,
        created_at=view.created_at,
        broadcast=view.broadcast,
    )
