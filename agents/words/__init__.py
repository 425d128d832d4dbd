"""Words as the recogniser writes them and as they sound: text normalisation and number words
(`text`), and matching by sound (`phonetic`). Shared by the flow agent's matcher and slots, the
agent's vocabulary (`agents.vocabulary`) and the understanding bench; it imports nothing else
of `agents`."""
