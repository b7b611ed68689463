"""Authlib server core adapted to hopshop: one module per specification."""
