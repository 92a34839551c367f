// The live viewer page: joins the scope's LiveKit room, shows the avatar and the transcript,
// and (when the server says the viewer publishes) speaks queued sentences by publishing
// `avatar.speak_text` on the `agent-control` data topic. Each sentence is claimed first
// (POST .../claim/<id>): exactly one tab or replica publishes it.
// Events: https://docs.liveavatar.com/docs/full-mode/events
(function () {
  "use strict";
  const LK = window.LivekitClient;
  const base = location.pathname.replace(/\/+$/, "");
  const statusEl = document.getElementById("status");
  const answersEl = document.getElementById("answers");
  const emptyEl = document.getElementById("empty");
  const videoEl = document.getElementById("avatar");
  const audioEl = document.getElementById("voice");
  const rejoinEl = document.getElementById("rejoin");
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  const LABELS = {
    connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…",
    ended: "Ended", elsewhere: "Watched elsewhere", error: "Unavailable",
  };

  let room = null;
  let session = null; // {session_id, livekit_url, token, publisher}
  let connected = false;
  let joining = false;
  const queue = []; // speech items waiting for this page to publish
  const answers = new Map(); // answer_id -> {li, sentences: Map(seq -> text)}

  function setStatus(kind, detail) {
    statusEl.dataset.status = kind;
    statusEl.textContent = detail ? LABELS[kind] + ": " + detail : LABELS[kind];
    rejoinEl.hidden = !(kind === "ended" || kind === "elsewhere" || kind === "error");
  }

  function newId() {
    return (crypto.randomUUID ? crypto.randomUUID() : String(Math.random())).replace(/-/g, "");
  }

  // --- transcript ------------------------------------------------------------------------

  function entry(answerId) {
    let a = answers.get(answerId);
    if (a) return a;
    const li = document.createElement("li");
    li.className = "answer";
    li.dataset.answerId = answerId;
    li.innerHTML = '<p class="question"></p><p class="text"></p><ul class="sources"></ul>' +
      '<button class="replay" type="button">Replay</button>';
    li.querySelector(".replay").addEventListener("click", () => replay(answerId));
    answersEl.appendChild(li);
    emptyEl.hidden = true;
    a = { li, sentences: new Map(), text: "" };
    answers.set(answerId, a);
    return a;
  }

  function render(a) {
    const spoken = [...a.sentences.keys()].sort((x, y) => x - y).map((k) => a.sentences.get(k));
    a.li.querySelector(".text").textContent = spoken.length ? spoken.join(" ") : a.text;
  }

  function showAnswer(data) {
    const a = entry(data.answer_id);
    a.li.querySelector(".question").textContent = data.question || "";
    a.text = data.text || "";
    const ul = a.li.querySelector(".sources");
    ul.textContent = "";
    for (const s of data.sources || []) {
      const li = document.createElement("li");
      if (/^https?:\/\//.test(s.link || "")) {
        const link = document.createElement("a");
        link.href = s.link;
        link.rel = "noopener noreferrer";
        link.target = "_blank";
        link.textContent = s.title || s.link;
        li.appendChild(link);
      } else {
        li.textContent = s.title || s.link;
      }
      ul.appendChild(li);
    }
    render(a);
  }

  function addSentence(item) {
    const a = entry(item.answer_id);
    if (!a.sentences.has(item.seq)) {
      a.sentences.set(item.seq, item.text);
      render(a);
    }
  }

  async function replay(answerId) {
    const r = await fetch(base + "/replay/" + encodeURIComponent(answerId), { method: "POST" });
    if (!r.ok) {
      const body = await r.json().catch(() => ({}));
      setStatus(connected ? "live" : "error", body.error || "replay failed");
    }
  }

  // --- speaking --------------------------------------------------------------------------

  async function publish(event) {
    const payload = encoder.encode(JSON.stringify(event));
    await room.localParticipant.publishData(payload, { reliable: true, topic: "agent-control" });
  }

  let draining = false;
  async function drain() {
    if (draining) return;
    draining = true;
    try {
      while (connected && session && session.publisher === "viewer" && queue.length) {
        const item = queue[0];
        const r = await fetch(base + "/claim/" + item.id, { method: "POST" });
        const claim = r.ok ? await r.json() : { claimed: false };
        if (claim.claimed) {
          await publish({ event_type: "avatar.speak_text", session_id: session.session_id,
                          event_id: newId(), text: item.text });
        }
        queue.shift();
      }
    } catch (err) {
      console.warn("publishing speech failed", err);
    } finally {
      draining = false;
    }
  }

  // --- the room --------------------------------------------------------------------------

  function onTrack(track) {
    if (track.kind === "video") track.attach(videoEl);
    else if (track.kind === "audio") track.attach(audioEl);
  }

  function onData(payload, participant, kind, topic) {
    if (topic !== "agent-response") return;
    let event;
    try { event = JSON.parse(decoder.decode(payload)); } catch (e) { return; }
    if (event.event_type === "session.stopped") {
      // The avatar's session ended (idle, max duration, ...): the bot starts a new one
      // behind this same link; queued speech is kept.
      rejoin(session && session.session_id);
    } else if (event.event_type === "avatar.speak_started") {
      statusEl.dataset.speaking = "yes";
    } else if (event.event_type === "avatar.speak_ended") {
      statusEl.dataset.speaking = "no";
    }
  }

  function onDisconnected(reason) {
    connected = false;
    if (LK.DisconnectReason && reason === LK.DisconnectReason.DUPLICATE_IDENTITY) {
      setStatus("elsewhere", "opened in another tab or window");
      return;
    }
    if (reason === LK.DisconnectReason.CLIENT_INITIATED) return;
    rejoin(session && session.session_id);
  }

  async function rejoin(goneId) {
    if (room) {
      const old = room;
      room = null;
      connected = false;
      try { await old.disconnect(); } catch (e) { /* already gone */ }
    }
    setStatus("reconnecting");
    await join(goneId);
  }

  async function join(goneId) {
    if (joining) return;
    joining = true;
    try {
      if (!statusEl.dataset.status || statusEl.dataset.status === "ended") setStatus("connecting");
      const r = await fetch(base + "/session", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ gone: goneId || null }),
      });
      if (r.status === 404 || r.status === 410) { location.reload(); return; }
      const body = await r.json().catch(() => ({}));
      if (!r.ok) { setStatus("error", body.error || "try again shortly"); return; }
      session = body;
      room = new LK.Room({ adaptiveStream: true, dynacast: true });
      room.on(LK.RoomEvent.TrackSubscribed, onTrack);
      room.on(LK.RoomEvent.DataReceived, onData);
      room.on(LK.RoomEvent.Disconnected, onDisconnected);
      room.on(LK.RoomEvent.Reconnecting, () => setStatus("reconnecting"));
      room.on(LK.RoomEvent.Reconnected, () => setStatus("live"));
      await room.connect(session.livekit_url, session.token);
      connected = true;
      setStatus("live");
      drain();
    } catch (err) {
      console.warn("joining the live room failed", err);
      setStatus("error", "could not join the avatar's room");
    } finally {
      joining = false;
    }
  }

  rejoinEl.addEventListener("click", () => rejoin(null));

  // --- events from the bot ---------------------------------------------------------------

  const events = new EventSource(base + "/events");
  events.addEventListener("snapshot", (e) => {
    const data = JSON.parse(e.data);
    for (const a of data.answers) showAnswer(a);
    for (const item of data.pending) { addSentence(item); queue.push(item); }
    drain();
  });
  events.addEventListener("answer", (e) => showAnswer(JSON.parse(e.data)));
  events.addEventListener("speech", (e) => {
    for (const item of JSON.parse(e.data).items) {
      addSentence(item);
      if (!queue.some((q) => q.id === item.id)) queue.push(item);
    }
    drain();
  });
  events.addEventListener("interrupt", (e) => {
    const keep = JSON.parse(e.data).keep_answer;
    for (let i = queue.length - 1; i >= 0; i--) if (queue[i].answer_id !== keep) queue.splice(i, 1);
    if (connected && session && session.publisher === "viewer") {
      publish({ event_type: "avatar.interrupt", session_id: session.session_id, event_id: newId() })
        .catch(() => {});
    }
  });
  events.addEventListener("session", (e) => {
    const data = JSON.parse(e.data);
    if (session && data.session_id !== session.session_id && statusEl.dataset.status !== "elsewhere") {
      rejoin(null);
    }
  });
  events.addEventListener("ended", () => {
    if (room) { const old = room; room = null; connected = false; old.disconnect().catch(() => {}); }
    setStatus("ended", "the avatar left after a quiet while");
  });
  events.onerror = () => { if (events.readyState === EventSource.CLOSED) location.reload(); };

  window.__avatarPage = { queue, answers, get session() { return session; } };
  join(null);
})();
