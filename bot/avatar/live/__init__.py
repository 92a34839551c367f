"""Live avatar sessions: reuse per scope, keep-alive, idle close (`sessions`) and the events
replicas and viewer pages exchange (`events`)."""
