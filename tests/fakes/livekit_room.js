// Stands in for livekit-client's network room in the viewer-page tests, and nothing else:
// the page's own code runs unchanged. Same names as livekit-client 2.x (Room, RoomEvent,
// DisconnectReason, localParticipant.publishData(payload, {reliable, topic})). Connecting and
// publishing go to /__room/* , which the test routes into the LiveAvatar fake's room
// (token checked, agent-control JSON checked against the documented schema).
(function () {
  const RoomEvent = {
    TrackSubscribed: "trackSubscribed", DataReceived: "dataReceived",
    Disconnected: "disconnected", Reconnecting: "reconnecting", Reconnected: "reconnected",
  };
  const DisconnectReason = { UNKNOWN_REASON: 0, CLIENT_INITIATED: 1, DUPLICATE_IDENTITY: 2 };
  window.__rooms = [];
  class Room {
    constructor() {
      this.handlers = {};
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
    }
    async _publish(payload, opts) {
      const body = { url: this.url, token: this.token, topic: opts.topic, reliable: opts.reliable,
                     payload: new TextDecoder().decode(payload) };
      const r = await fetch("/__room/publish", { method: "POST", body: JSON.stringify(body) });
      if (!r.ok) throw new Error(await r.text());
    }
    agentSays(event) {  // what LiveAvatar sends on agent-response
      this.emit(RoomEvent.DataReceived, new TextEncoder().encode(JSON.stringify(event)), null, 0,
                "agent-response");
    }
    async disconnect() { this.emit(RoomEvent.Disconnected, DisconnectReason.CLIENT_INITIATED); }
  }
  window.LivekitClient = { Room, RoomEvent, DisconnectReason };
})();
