"""voicenode: pipeline."""
