"""voicenode: sip."""
