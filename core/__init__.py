"""What every package may use and that depends on nothing first-party: owned tasks
(`core.tasks`), retry backoff (`core.backoff`) and the node's error hierarchy (`core.errors`)."""
