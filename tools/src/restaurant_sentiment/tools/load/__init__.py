"""`make load`: bounded loopback load through the local gateway, with latency and memory figures."""
