"""HTTP routes: parse, authorise, call the service layer, shape the answer. Nothing else."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from hopkit.logs import annotate

from . import service
from .deps import InvoiceReader, SessionDep
from .schemas import InvoiceOut

router = APIRouter()


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {}}}


AUTH_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: _problem("No token, or an invalid one (see `WWW-Authenticate`)"),
    403: _problem("Missing scope (see `WWW-Authenticate`) or a caller other than the gateway"),
}


@router.get(
    "/invoices",
    tags=["invoices"],
    summary="The caller's own invoices, newest first",
    description="Caller: the gateway, with the customer's token exchanged for `aud=billing` "
    "(`billing:read`). The customer is the token's `sub`; nobody sees another's invoices.",
    responses=AUTH_PROBLEMS,
)
async def list_invoices(session: SessionDep, principal: InvoiceReader) -> list[InvoiceOut]:
    annotate(
        action="list-invoices",
        sub=principal.subject,
        client_id=principal.client_id,
        act=list(principal.actors),
        jti=principal.token_id,
    )
    invoices = await service.list_invoices(session, principal.subject)
    return [InvoiceOut.model_validate(invoice, from_attributes=True) for invoice in invoices]
