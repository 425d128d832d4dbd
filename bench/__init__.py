"""voicenode: bench."""
