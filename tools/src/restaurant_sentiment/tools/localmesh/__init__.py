"""The local mesh: the app behind a real Envoy gateway generated from the Helm chart's values."""
