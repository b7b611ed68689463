"""hopkit: what hopshop's services share that is not auth.

Modules, each small and imported where needed: ``settings`` (the common
``HOPSHOP_`` variables), ``logs`` and ``tracing`` (JSON logs, request ids,
W3C trace context), ``problems`` (RFC 9457 errors), ``db`` (async engines and
the session dependency that owns the transaction), ``health`` (``/healthz``
and ``/readyz``), ``testing`` (real servers from wheels for integration tests).
"""
