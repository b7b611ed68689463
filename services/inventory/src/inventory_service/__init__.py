"""hopshop inventory: products (public catalogue), stock and reservations (port 8003)."""
