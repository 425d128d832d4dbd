"""The flow agent: a deterministic dialog graph with intents, slots and actions."""
