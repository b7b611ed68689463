"""`hopshop` entry point (being built)."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    print("hopshop: not implemented yet")
    return 1
