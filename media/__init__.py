"""Audio frames, codecs, resampling, pacing, and the transports that are not SIP signalling."""
