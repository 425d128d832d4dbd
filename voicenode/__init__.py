"""voicenode: voicenode."""
