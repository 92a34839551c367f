// Stands in for livekit-client's network room in the viewer-page tests, and nothing else:
// the page's own code runs unchanged. Same names as livekit-client 2.x (Room, RoomEvent,
// DisconnectReason, room.remoteParticipants, localParticipant.publishData(payload,
// {reliable, topic})). Connecting and publishing go to /__room/*, which the test routes into
// the LiveAvatar fake's room (token checked, agent-control JSON checked against the
// documented schema). As in a real FULL-mode room, the avatar ("heygen") joins after the
// page connected (ParticipantConnected), and the agent's answers to a command
// (avatar.speak_started/ended) arrive on the agent-response topic.
(function () {
  const RoomEvent = {
    TrackSubscribed: "trackSubscribed", DataReceived: "dataReceived",
    ParticipantConnected: "participantConnected",
    Disconnected: "disconnected", Reconnecting: "reconnecting", Reconnected: "reconnected",
  };
  const DisconnectReason = { UNKNOWN_REASON: 0, CLIENT_INITIATED: 1, DUPLICATE_IDENTITY: 2 };
  window.__rooms = [];
  class Room {
    constructor() {
      this.handlers = {};
      this.remoteParticipants = new Map();
      this.localParticipant = { publishData: (payload, opts) => this._publish(payload, opts) };
      window.__rooms.push(this);
    }
    on(event, fn) { (this.handlers[event] = this.handlers[event] || []).push(fn); return this; }
    emit(event, ...args) { for (const fn of this.handlers[event] || []) fn(...args); }
    async connect(url, token) {
      const r = await fetch("/__room/connect", { method: "POST", body: JSON.stringify({ url, token }) });
      if (!r.ok) throw new Error("connection refused: " + (await r.text()));
      this.url = url;
      this.token = token;
      const body = await r.json();
      for (const identity of body.present) this.remoteParticipants.set(identity, { identity });
      if (body.avatar_joins) setTimeout(() => this.avatarJoins(), 50);
    }
    async avatarJoins() {  // the avatar (and the agent) arrive in the room
      await fetch("/__room/avatar-join", { method: "POST", body: JSON.stringify({ url: this.url }) });
      const avatar = { identity: "heygen" };
      this.remoteParticipants.set("heygen", avatar);
      this.emit(RoomEvent.ParticipantConnected, avatar);
    }
    async _publish(payload, opts) {
      const body = { url: this.url, token: this.token, topic: opts.topic, reliable: opts.reliable,
                     payload: new TextDecoder().decode(payload) };
      const r = await fetch("/__room/publish", { method: "POST", body: JSON.stringify(body) });
      if (!r.ok) throw new Error(await r.text());
      const replies = await r.json();
      setTimeout(() => { for (const event of replies) this.agentSays(event); }, 10);
    }
    agentSays(event) {  // what LiveAvatar sends on agent-response
      this.emit(RoomEvent.DataReceived, new TextEncoder().encode(JSON.stringify(event)), null, 0,
                "agent-response");
    }
    async disconnect() { this.emit(RoomEvent.Disconnected, DisconnectReason.CLIENT_INITIATED); }
  }
  window.LivekitClient = { Room, RoomEvent, DisconnectReason };
})();
