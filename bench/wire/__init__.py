"""voicenode-bench from the wire: calls driven against a node over WebRTC, SIP or AudioSocket,
measured from the audio the caller sends and receives.

- `leg`: the `Leg` seam every transport implements, `LegTarget`, the transport registry;
  `audiosocket_leg` (with `audiosocket_client`), `webrtc_leg`, `sip_leg`;
- `caller`: paces a scenario's lines into a leg and records a `timeline.CallTimeline`;
- `measure`: pure functions over timelines (voice to voice, greeting, barge-in stop, packet
  gaps, WER);
- `events`: the node's transcripts and TurnMarks from its events socket / call history;
- `node`: a spawned node, its CPU and memory;
- `runner`: concurrent calls per step, the capacity sweep; `run`: the whole command;
- `report`, `plots`: report.json, report.md, PNGs; `cli`: arguments.
"""
