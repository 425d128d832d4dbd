// voicenode /phone: a WebRTC softphone. No build step, no dependencies.
// Signalling: POST /v1/webrtc/offer with the complete offer (ICE gathered), then
// DELETE /v1/calls/{call_id} to hang up. The node's events arrive on the "events" channel.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const ui = {
    form: $("setup"), agent: $("agent"), tenant: $("tenant"), key: $("key"),
    call: $("call"), hangup: $("hangup"), callState: $("call-state"),
    agentState: $("agent-state"), level: $("mic-level"), message: $("message"),
    transcript: $("transcript"), latency: $("latency"), remote: $("remote"),
  };
  const ICE_GATHER_TIMEOUT_MS = 5000;
  let session = null; // the call in progress: {pc, stream, channel, callId, meter, ended}

  // Key (and optionally agent/tenant) from the fragment (#key=...) or the query (?key=...).
  // The link `voicenode serve` prints carries a phone token (vnp_...), not the admin key.
  function prefill() {
    readPageParams(ui, ["key", "agent", "tenant"]);
  }

  function setCallState(text) { ui.callState.textContent = text; }
  function say(text) { ui.message.textContent = text || ""; }
  function setBusy(busy) {
    ui.call.disabled = busy;
    ui.hangup.disabled = !busy;
  }

  // -- transcript: one line per utterance; partials update it until its final arrives --
  const openLines = { user: null, agent: null };
  function showTranscript(ev) {
    const role = ev.role === "agent" ? "agent" : "user";
    let li = openLines[role];
    if (!li) {
      li = document.createElement("li");
      li.className = role;
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = role === "user" ? "you" : "agent";
      const text = document.createElement("span");
      text.className = "text";
      li.append(who, text);
      ui.transcript.append(li);
      openLines[role] = li;
    }
    li.querySelector(".text").textContent = ev.text;
    li.classList.toggle("partial", !ev.final);
    li.classList.toggle("interrupted", Boolean(ev.interrupted));
    if (ev.final) openLines[role] = null;
    li.scrollIntoView({ block: "nearest" });
  }

  function showLatency(ev) {
    if (ev.voice_to_voice_ms == null) return;
    const li = document.createElement("li");
    li.textContent = `turn ${ev.turn}: ${Math.round(ev.voice_to_voice_ms)} ms`;
    li.dataset.turn = String(ev.turn);
    ui.latency.append(li);
  }

  function onEvent(ev) {
    switch (ev.type) {
      case "transcript": showTranscript(ev); break;
      case "state": ui.agentState.textContent = ev.state.replace(/_/g, " "); break;
      case "turn": showLatency(ev); break;
      case "ended":
        setCallState(`ended (${ev.reason})`);
        ui.agentState.textContent = "-";
        break;
      case "tool": break;
      default: break;
    }
  }

  // -- microphone level --
  function startMeter(stream) {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return null;
    const audio = new Ctx();
    // created after an await: some browsers (Firefox) start it suspended until resumed
    if (audio.state === "suspended") audio.resume().catch(() => {});
    const analyser = audio.createAnalyser();
    analyser.fftSize = 512;
    audio.createMediaStreamSource(stream).connect(analyser);
    const buf = new Float32Array(analyser.fftSize);
    const timer = setInterval(() => {
      analyser.getFloatTimeDomainData(buf);
      let sum = 0;
      for (const x of buf) sum += x * x;
      const rms = Math.sqrt(sum / buf.length);
      const pct = Math.min(100, Math.round(Math.sqrt(rms) * 160));
      ui.level.style.width = pct + "%";
    }, 60);
    return { audio, timer };
  }

  function waitForIce(pc) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        pc.removeEventListener("icegatheringstatechange", check);
        clearTimeout(timer);
        resolve();
      };
      const check = () => { if (pc.iceGatheringState === "complete") done(); };
      const timer = setTimeout(done, ICE_GATHER_TIMEOUT_MS);
      pc.addEventListener("icegatheringstatechange", check);
    });
  }

  function authHeaders() {
    return { Authorization: "Bearer " + ui.key.value.trim() };
  }

  async function explain(resp) {
    let detail = resp.statusText;
    try { detail = (await resp.json()).detail || detail; } catch (_) { /* not JSON */ }
    const retry = resp.headers.get("Retry-After");
    return `${resp.status}: ${detail}` + (retry ? ` (retry after ${retry} s)` : "");
  }

  async function call() {
    say("");
    setBusy(true);
    setCallState("starting microphone");
    ui.transcript.replaceChildren();
    ui.latency.replaceChildren();
    openLines.user = openLines.agent = null;
    const s = { pc: null, stream: null, channel: null, callId: null, meter: null, ended: false };
    session = s;
    try {
      s.stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
      s.meter = startMeter(s.stream);
      s.pc = new RTCPeerConnection();
      for (const track of s.stream.getAudioTracks()) s.pc.addTrack(track, s.stream);
      s.channel = s.pc.createDataChannel("events");
      s.channel.onmessage = (m) => {
        try { onEvent(JSON.parse(m.data)); } catch (err) { console.warn("bad event", err); }
      };
      s.pc.ontrack = (e) => { ui.remote.srcObject = e.streams[0] || new MediaStream([e.track]); };
      s.pc.onconnectionstatechange = () => {
        const state = s.pc.connectionState;
        if (session === s) setCallState(state);
        if (state === "failed" || state === "closed") end(s, false);
      };
      s.channel.onclose = () => end(s, false);

      setCallState("gathering");
      await s.pc.setLocalDescription(await s.pc.createOffer());
      await waitForIce(s.pc);
      setCallState("calling");
      const body = { agent: ui.agent.value.trim(), sdp: s.pc.localDescription.sdp, type: "offer" };
      if (ui.tenant.value.trim()) body.tenant = ui.tenant.value.trim();
      const resp = await fetch("/v1/webrtc/offer", {
        method: "POST",
        headers: { "Content-Type": "application/json", ...authHeaders() },
        body: JSON.stringify(body),
      });
      if (!resp.ok) throw new Error(await explain(resp));
      const answer = await resp.json();
      s.callId = answer.call_id;
      if (s.ended) { // hung up while the offer was in flight
        fetch(`/v1/calls/${encodeURIComponent(s.callId)}`, { method: "DELETE", headers: authHeaders() });
        return;
      }
      await s.pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
      setCallState("connecting");
    } catch (err) {
      say(String(err.message || err));
      await end(s, false);
      setCallState("idle");
    }
  }

  // End call session `s` (idempotent); `tellNode` asks the node to hang up first.
  async function end(s, tellNode) {
    if (!s || s.ended) return;
    s.ended = true;
    const current = session === s;
    if (current) session = null;
    if (tellNode && s.callId) {
      try {
        await fetch(`/v1/calls/${encodeURIComponent(s.callId)}`, {
          method: "DELETE", headers: authHeaders(), keepalive: true,
        });
      } catch (err) { console.warn("hang up request failed", err); }
    }
    if (s.meter) { clearInterval(s.meter.timer); s.meter.audio.close(); }
    if (s.pc) s.pc.close();
    if (s.stream) for (const t of s.stream.getTracks()) t.stop();
    if (!current) return;
    ui.level.style.width = "0";
    ui.remote.srcObject = null;
    if (!ui.callState.textContent.startsWith("ended")) setCallState("ended");
    setBusy(false);
  }

  ui.form.addEventListener("submit", (e) => { e.preventDefault(); call(); });
  ui.hangup.addEventListener("click", () => end(session, true));
  window.addEventListener("pagehide", () => end(session, true));
  prefill();
})();
