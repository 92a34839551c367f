// The live viewer page: joins the scope's LiveKit room, shows the avatar, its captions and
// the answers (newest first), and, when the server says the viewer publishes, speaks queued
// sentences by publishing `avatar.speak_text` on the `agent-control` data topic.
// Events: https://docs.liveavatar.com/docs/full-mode/events
//
// Speaking follows the vendor's rules:
// - Only once the room is ready: the avatar participant (LiveKit identity "heygen", the
//   vendor web SDK's name) has joined; events published earlier may be lost
//   (https://docs.liveavatar.com/docs/full-mode/lifecycle). Nothing is claimed before that.
// - One sentence at a time, each claimed first (POST .../claim/<id>: exactly one tab or
//   replica publishes it), sent with its own event id and tracked until the agent's
//   `avatar.speak_started` names that id (`source_event_id`; one without an id confirms the
//   oldest sentence in flight, as the avatar speaks in order). Unconfirmed after CONFIRM_MS
//   while the avatar is silent, it is sent once more with the same event id (so it is one
//   utterance to whoever dedupes); then the page moves on rather than say anything twice.
(function () {
  "use strict";
  const LK = window.LivekitClient;
  const AVATAR = "heygen";
  const CONFIRM_MS = 8000;
  const base = location.pathname.replace(/\/+$/, "");
  const $ = (id) => document.getElementById(id);
  const statusEl = $("status"), answersEl = $("answers"), emptyEl = $("empty");
  const videoEl = $("avatar"), audioEl = $("voice"), rejoinEl = $("rejoin");
  const posterEl = $("poster"), captionEl = $("caption"), soundEl = $("sound");
  const alertEl = $("alert"), posterTextEl = $("poster-text");
  const POSTER = {
    connecting: "Connecting to the avatar…", waiting: "The avatar is joining…",
    live: "Starting the avatar's video…", reconnecting: "Reconnecting…",
    ended: "The avatar left after a quiet while.", elsewhere: "Playing in another window.",
    error: "The avatar is not available right now.",
  };
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  const LABELS = {
    connecting: "Connecting…", waiting: "Waiting for the avatar…", live: "Live",
    reconnecting: "Reconnecting…", ended: "Ended", elsewhere: "Watched elsewhere",
    error: "Unavailable", expired: "Link expired",
  };

  let room = null;
  let session = null; // {session_id, livekit_url, token, publisher}
  let connected = false;
  let ready = false; // the avatar participant is in the room
  let joining = false;
  let soundOn = !!(navigator.userActivation && navigator.userActivation.hasBeenActive);
  const queue = []; // speech items waiting for this page to publish
  const answers = new Map(); // answer_id -> {li, sentences: Map(seq -> text), text}
  const sent = new Map(); // event_id -> {text, confirmed, resolve}
  let lastAgentEvent = 0; // when the agent last said anything (speaking = not silent)

  function setStatus(kind, detail) {
    statusEl.dataset.status = kind;
    statusEl.textContent = detail ? LABELS[kind] + ": " + detail : LABELS[kind];
    rejoinEl.hidden = !(kind === "ended" || kind === "elsewhere" || kind === "error");
    posterEl.hidden = kind === "live" && videoEl.dataset.playing === "yes";
    posterTextEl.textContent = POSTER[kind] || POSTER.connecting;
  }

  function say(message) {
    alertEl.textContent = message || "";
    alertEl.hidden = !message;
  }

  function newId() {
    return (crypto.randomUUID ? crypto.randomUUID() : String(Math.random())).replace(/-/g, "");
  }

  // --- sound: browsers play audio only after a click on the page (autoplay rules) --------

  function showSound() { soundEl.hidden = soundOn; }
  soundEl.addEventListener("click", async () => {
    soundOn = true;
    showSound();
    videoEl.muted = false;
    try { if (room && room.startAudio) await room.startAudio(); } catch (e) { /* retried */ }
    audioEl.play().catch(() => {});
  });

  // --- transcript: newest answer on top --------------------------------------------------

  function entry(answerId) {
    let a = answers.get(answerId);
    if (a) return a;
    const li = document.createElement("li");
    li.className = "answer";
    li.dataset.answerId = answerId;
    li.innerHTML = '<p class="question"></p><p class="text"></p><ol class="sources"></ol>' +
      '<button class="control replay" type="button"><span aria-hidden="true">↻</span> Replay</button>';
    li.querySelector(".replay").addEventListener("click", () => replay(answerId));
    answersEl.prepend(li);
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
    answersEl.prepend(a.li); // a replayed answer moves back to the top
    a.li.querySelector(".question").textContent = data.question || "";
    a.text = data.text || "";
    const list = a.li.querySelector(".sources");
    list.textContent = "";
    (data.sources || []).forEach((s, i) => {
      const li = document.createElement("li");
      const num = document.createElement("span");
      num.className = "num";
      num.textContent = "[" + (s.number || i + 1) + "]";
      li.appendChild(num);
      li.appendChild(document.createTextNode(" "));
      if (/^https?:\/\//.test(s.link || "")) {
        const link = document.createElement("a");
        link.href = s.link;
        link.rel = "noopener noreferrer";
        link.target = "_blank";
        link.textContent = s.title || s.link;
        li.appendChild(link);
      } else {
        li.appendChild(document.createTextNode(s.title || ""));
      }
      list.appendChild(li);
    });
    list.hidden = !list.children.length;
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
      say(body.error || "That replay did not work; try again in a moment.");
    } else {
      say("");
    }
  }

  // --- speaking --------------------------------------------------------------------------

  async function publish(event) {
    const payload = encoder.encode(JSON.stringify(event));
    await room.localParticipant.publishData(payload, { reliable: true, topic: "agent-control" });
  }

  function confirmation(eventId) {
    return new Promise((resolve) => {
      const entry = sent.get(eventId);
      entry.resolve = resolve;
      const check = () => {
        if (entry.confirmed) return resolve(true);
        // Still speaking an earlier sentence: keep waiting; silent too long: not heard.
        if (Date.now() - Math.max(entry.at, lastAgentEvent) >= CONFIRM_MS) return resolve(false);
        entry.timer = setTimeout(check, 250);
      };
      check();
    });
  }

  async function speak(item) {
    const eventId = newId();
    sent.set(eventId, { text: item.text, confirmed: false, at: Date.now() });
    const event = { event_type: "avatar.speak_text", session_id: session.session_id,
                    event_id: eventId, text: item.text };
    for (let attempt = 0; attempt < 2; attempt++) {
      sent.get(eventId).at = Date.now();
      await publish(event);
      if (await confirmation(eventId)) return true;
    }
    console.warn("the avatar did not confirm a sentence; moving on", item.id);
    return false;
  }

  function canSpeak() {
    return connected && ready && session && session.publisher === "viewer";
  }

  let draining = false;
  async function drain() {
    if (draining) return;
    draining = true;
    try {
      while (canSpeak() && queue.length) {
        const item = queue[0];
        const r = await fetch(base + "/claim/" + item.id, { method: "POST" });
        const claim = r.ok ? await r.json() : { claimed: false };
        if (claim.claimed) await speak(item);
        queue.shift();
      }
    } catch (err) {
      console.warn("publishing speech failed", err);
    } finally {
      draining = false;
    }
  }

  // --- the room --------------------------------------------------------------------------

  function avatarJoined() {
    if (ready) return;
    ready = true;
    setStatus("live");
    drain();
  }

  function onParticipant(participant) {
    if (participant && participant.identity === AVATAR) avatarJoined();
  }

  function onTrack(track, _publication, participant) {
    if (track.kind === "video") {
      track.attach(videoEl);
      videoEl.dataset.playing = "yes";
      posterEl.hidden = true;
    } else if (track.kind === "audio") {
      track.attach(audioEl);
      if (soundOn) audioEl.play().catch(() => { soundOn = false; showSound(); });
    }
    onParticipant(participant);
  }

  function caption(text) {
    captionEl.textContent = text || "";
    captionEl.hidden = !text;
  }

  function onData(payload, participant, kind, topic) {
    if (topic !== "agent-response") return;
    let event;
    try { event = JSON.parse(decoder.decode(payload)); } catch (e) { return; }
    lastAgentEvent = Date.now();
    let source = sent.get(event.source_event_id) || sent.get(event.event_id);
    if (!source && event.event_type === "avatar.speak_started") {
      // No id we sent (source_event_id is documented as nullable): the avatar speaks in
      // order, so it is the oldest unconfirmed sentence; never re-send that one.
      source = [...sent.values()].find((s) => !s.confirmed);
    }
    if (event.event_type === "session.stopped") {
      // The avatar's session ended (idle, max duration, ...): the bot starts a new one
      // behind this same link; queued speech is kept.
      rejoin(session && session.session_id);
    } else if (event.event_type === "avatar.speak_started") {
      statusEl.dataset.speaking = "yes";
      if (source) {
        source.confirmed = true;
        caption(source.text);
        if (source.resolve) source.resolve(true);
      }
    } else if (event.event_type === "avatar.speak_ended") {
      statusEl.dataset.speaking = "no";
      caption("");
    }
  }

  function onDisconnected(reason) {
    connected = false;
    ready = false;
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
      ready = false;
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
      room.on(LK.RoomEvent.ParticipantConnected, onParticipant);
      room.on(LK.RoomEvent.DataReceived, onData);
      room.on(LK.RoomEvent.Disconnected, onDisconnected);
      room.on(LK.RoomEvent.Reconnecting, () => setStatus("reconnecting"));
      room.on(LK.RoomEvent.Reconnected, () => setStatus(ready ? "live" : "waiting"));
      if (LK.RoomEvent.AudioPlaybackStatusChanged) {
        room.on(LK.RoomEvent.AudioPlaybackStatusChanged, () => {
          if (!room.canPlaybackAudio) { soundOn = false; showSound(); }
        });
      }
      await room.connect(session.livekit_url, session.token);
      connected = true;
      ready = false;
      setStatus("waiting");
      for (const p of room.remoteParticipants.values()) onParticipant(p);
    } catch (err) {
      console.warn("joining the live room failed", err);
      setStatus("error", "could not join the avatar's room");
    } finally {
      joining = false;
    }
  }

  rejoinEl.addEventListener("click", () => rejoin(null));

  // --- events from the bot ---------------------------------------------------------------

  let events = null;
  function listen() {
    events = new EventSource(base + "/events");
    events.addEventListener("snapshot", (e) => {
      say("");
      const data = JSON.parse(e.data);
      for (const a of data.answers) showAnswer(a);
      for (const item of data.pending) {
        addSentence(item);
        if (!queue.some((q) => q.id === item.id)) queue.push(item);
      }
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
      if (canSpeak()) {
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
      if (room) { const old = room; room = null; connected = false; ready = false; old.disconnect().catch(() => {}); }
      setStatus("ended", "the avatar left after a quiet while");
    });
    events.addEventListener("expired", () => {
      events.close();
      if (room) { const old = room; room = null; connected = false; old.disconnect().catch(() => {}); }
      location.reload(); // the server now shows the "expired" page
    });
    events.onerror = async () => {
      if (events.readyState !== EventSource.CLOSED) return; // the browser retries by itself
      // Refused (too many pages open, link gone, ...): ask why, say so, and try again later.
      const r = await fetch(base + "/events", { headers: { Accept: "application/json" } })
        .catch(() => null);
      if (r && (r.status === 404 || r.status === 410)) { location.reload(); return; }
      const body = r ? await r.json().catch(() => ({})) : {};
      say(body.error || "Lost contact with the bot; trying again…");
      setTimeout(listen, r && r.status === 503 ? 60000 : 15000);
    };
  }

  window.__avatarPage = { queue, answers, sent, get session() { return session; },
                          get ready() { return ready; } };
  showSound();
  listen();
  join(null);
})();
