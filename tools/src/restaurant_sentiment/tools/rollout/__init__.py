"""Progressive rollout: move the treatment through the steps of `rollout:` with automatic rollback.

`make rollout` (`python -m restaurant_sentiment.tools.rollout`) sets each step's split with the
code `make split` uses (the running `make up` gateway, or `helm upgrade` in Kubernetes), reads
the experiment's counts and the gateway's 5xx counts of the step, analyses them with the
experiment library, and advances, waits or rolls back (docs/experiment-plan.md, *Progressive
rollout*).
"""
