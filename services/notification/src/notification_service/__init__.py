"""hopshop notification: customers' notifications and support broadcasts (port 8005)."""
