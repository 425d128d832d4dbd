"""voicenode: control_api."""
