"""hopshop billing: invoices, and the worker that charges placed orders (port 8004)."""
