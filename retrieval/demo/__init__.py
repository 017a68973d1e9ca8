"""Generated demo data: the Shopbot Demo Store catalog, its policies and an eval set."""
