"""The `hopshop` command: run the whole system on one machine, without Docker."""
