"""HTTP routes of the frontend, one module per concern."""
