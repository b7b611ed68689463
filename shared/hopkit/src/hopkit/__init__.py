"""hopkit: what hopshop's services share that is not auth.

Modules, each small and imported where needed: ``settings`` (the common
``HOPSHOP_`` variables), ``logs`` and ``tracing`` (JSON logs, request ids,
W3C trace context), ``problems`` (RFC 9457 errors), ``db`` (async engines and
the session dependency that owns the transaction), ``health`` (``/healthz``
and ``/readyz``), ``docs`` (``/docs`` with Swagger UI served locally, no CDN),
``events`` (the Kafka event envelope and topics), ``outbox``
(the transactional outbox and its relay), ``consumer`` (idempotent consumers
with retries and a dead-letter topic), ``forwarding`` (the vulnerable teaching
mode), ``dpop`` (hopauth's DPoP sides switched on from ``HOPSHOP_DPOP``: the one
module that imports hopauth), ``outgoing`` (the HTTP client every service
calls others with), ``bodylimit`` (request bodies capped before they are read),
``text`` (text shown to people: no hidden or reordering characters),
``redact`` (token-shaped text in a logged path or an echoed key: ``[redacted]``),
``idempotency`` (the ``Idempotency-Key`` request header, checked),
``testing`` (real servers from wheels for integration tests).
"""
