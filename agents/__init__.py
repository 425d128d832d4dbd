"""Agent specs, the Agent seam, the LLM agent, the flow agent, tools and outcomes."""
